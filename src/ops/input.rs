//! What an operation takes: its parameters, declared once in its
//! [`Spec`] and read from a data form, a chat line or the command line
//! alike, and the checked [`Input`] they become.

use std::collections::BTreeMap;

use super::confirm::Consent;
use super::OpError;
use crate::engine::state::Reason;
use crate::repo::index::is_valid_module_name;
use crate::repo::options::is_option_name;

/// Which module names a `Modules` parameter offers as options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleChoice {
    /// On offer and not installed.
    Available,
    /// Installed by modman; a held one labelled with who held it and why.
    Installed,
    /// Installed by modman, each marked with whether an update is on
    /// offer (see [`super::updates::status`]).
    Updatable,
    /// Installed by modman, or Prosody's own (`prosody.builtin_modules`).
    Enableable,
    /// Enabled by modman on some host.
    Enabled,
}

/// How a parameter is asked for and what values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// One line of free text.
    Text,
    /// One of fixed (value, label) pairs; the first is the default.
    Choice(&'static [(&'static str, &'static str)]),
    /// One or more module names (`mod_x` or `x`).
    Modules(ModuleChoice),
    /// One or more module names, each at the newest version or at one a
    /// repository offers (`lastlog@20240601`); read with
    /// [`Input::wanted`].
    Versioned(ModuleChoice),
    /// Yes or no; no when not given.
    Boolean,
    /// One or more of the server's host names; all VirtualHosts when none.
    Hosts,
    /// Why, in the admin's words (`hold x because "..."`): one line,
    /// control characters replaced, at most [`Reason::MAX_CHARS`]. In
    /// chat, the rest of the line after the parameter's name.
    Reason,
    /// Module options: `name = value` lines (`name =` unsets), and in a
    /// form any other field named like an option.
    Options,
}

/// One input of an operation: a data-form field, a chat word, a CLI flag.
#[derive(Debug)]
pub struct Param {
    /// The form field `var`; stable, bots rely on it.
    pub var: &'static str,
    pub label: &'static str,
    /// A sentence shown as the field's description.
    pub help: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

/// Who may run an operation, and whether it changes the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Admins only; reads and changes nothing.
    Read,
    /// Admins only; changes the host, so it may ask before it does.
    Change,
}

/// The static description of an operation.
#[derive(Debug)]
pub struct Spec {
    /// Reads or changes.
    pub access: Access,
    /// The ad-hoc node and the chat word.
    pub node: &'static str,
    /// The human name clients show in their command list.
    pub name: &'static str,
    /// The instructions shown above the form.
    pub instructions: &'static str,
    pub params: &'static [Param],
}

/// The field every operation accepts: `true` answers its confirmation
/// question in advance, so a bot needs one round trip.
pub const CONFIRM_FIELD: &str = "confirm";

/// The field every changing operation accepts: `true` shows what it
/// would do and changes nothing (see [`Consent::DryRun`]).
pub const DRY_RUN_FIELD: &str = "dry_run";

/// Longest value accepted for any field, in bytes.
const MAX_VALUE_LEN: usize = 1024;
/// Most values accepted for one field.
const MAX_VALUES: usize = 256;

/// What was asked of one module option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionInput {
    /// These values (one, or a list's items).
    Set(Vec<String>),
    Unset,
}

/// Submitted values, checked against an operation's [`Param`]s: every
/// name is known, every value fits its kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Input {
    values: BTreeMap<&'static str, Vec<String>>,
    /// Module options given, in order (see [`ParamKind::Options`]).
    options: Vec<(String, OptionInput)>,
    /// What the requester said about going ahead: nothing, yes in
    /// advance (field `confirm`), yes to a question that showed a plan,
    /// or only show the plan (field `dry_run`).
    pub consent: Consent,
}

impl Input {
    /// Checks raw `(var, values)` pairs against `params`. Fields not in
    /// `params` are refused (a typo in a bot's field name must not be
    /// silently ignored), except `confirm` and the data-forms bookkeeping
    /// `FORM_TYPE`.
    pub fn check<'a>(
        params: &'static [Param],
        raw: impl IntoIterator<Item = (&'a str, Vec<String>)>,
    ) -> Result<Input, OpError> {
        Input::check_onto(params, Input::default(), raw)
    }

    /// [`Input::check`] of a later form of the same request: what it
    /// gives replaces what `earlier` had, the rest stays.
    pub fn check_onto<'a>(
        params: &'static [Param],
        earlier: Input,
        raw: impl IntoIterator<Item = (&'a str, Vec<String>)>,
    ) -> Result<Input, OpError> {
        let mut input = earlier;
        for (var, vals) in raw {
            if var == "FORM_TYPE" {
                continue;
            }
            if vals.len() > MAX_VALUES {
                return Err(OpError::bad_input(format!(
                    "field `{}` has {} values; at most {MAX_VALUES} are accepted",
                    truncate(var),
                    vals.len()
                )));
            }
            if let Some(long) = vals.iter().find(|v| v.len() > MAX_VALUE_LEN) {
                return Err(OpError::bad_input(format!(
                    "field `{}`: a value of {} bytes is too long (at most {MAX_VALUE_LEN})",
                    truncate(var),
                    long.len()
                )));
            }
            if var == CONFIRM_FIELD {
                if parse_bool(var, &vals)? && input.consent != Consent::DryRun {
                    input.consent = Consent::Given;
                }
                continue;
            }
            if var == DRY_RUN_FIELD {
                if parse_bool(var, &vals)? {
                    input.consent = Consent::DryRun;
                }
                continue;
            }
            let takes_options = params.iter().any(|p| p.kind == ParamKind::Options);
            if takes_options && !params.iter().any(|p| p.var == var) && is_option_name(var) {
                // A form field per option: empty means unchanged.
                let values: Vec<String> =
                    vals.into_iter().filter(|v| !v.trim().is_empty()).collect();
                if !values.is_empty() {
                    input.push_option(var, OptionInput::Set(values))?;
                }
                continue;
            }
            let param = params.iter().find(|p| p.var == var).ok_or_else(|| {
                let known: Vec<_> = params
                    .iter()
                    .map(|p| p.var)
                    .chain([CONFIRM_FIELD, DRY_RUN_FIELD])
                    .collect();
                OpError::bad_input(format!(
                    "unknown field `{}`; this command takes: {}",
                    truncate(var),
                    known.join(", ")
                ))
            })?;
            let vals = match param.kind {
                ParamKind::Text | ParamKind::Choice(_) | ParamKind::Reason if vals.len() > 1 => {
                    return Err(OpError::bad_input(format!(
                        "field `{var}` takes one value, got {}",
                        vals.len()
                    )))
                }
                ParamKind::Text => vals,
                ParamKind::Reason => match vals.first().map(|v| v.trim()) {
                    None | Some("") => vals,
                    Some(text) => vec![Reason::new(text)
                        .map_err(|e| OpError::bad_input(format!("field `{var}`: {e}")))?
                        .to_string()],
                },
                ParamKind::Choice(options) => {
                    let value = vals.first().map(|v| v.trim()).unwrap_or_default();
                    if !value.is_empty() && !options.iter().any(|(o, _)| *o == value) {
                        let allowed: Vec<_> = options.iter().map(|(o, _)| *o).collect();
                        return Err(OpError::bad_input(format!(
                            "field `{var}`: `{}` is not one of {}",
                            truncate(value),
                            allowed.join(", ")
                        )));
                    }
                    vals
                }
                ParamKind::Modules(_) => module_names(var, &vals)?,
                ParamKind::Versioned(_) => versioned_names(var, &vals)?,
                ParamKind::Boolean => vec![parse_bool(var, &vals)?.to_string()],
                ParamKind::Hosts => host_names(var, &vals)?,
                ParamKind::Options => {
                    for line in vals.iter().flat_map(|v| v.lines()).map(str::trim) {
                        if line.is_empty() {
                            continue;
                        }
                        let (name, value) = line.split_once('=').ok_or_else(|| {
                            OpError::bad_input(format!(
                                "field `{var}`: `{}` is not `name = value` (or `name =` to unset)",
                                truncate(line)
                            ))
                        })?;
                        let (name, value) = (name.trim(), value.trim());
                        let option = match value.is_empty() {
                            true => OptionInput::Unset,
                            false => OptionInput::Set(vec![unquote(value).to_owned()]),
                        };
                        input.push_option(name, option)?;
                    }
                    continue;
                }
            };
            input.values.insert(param.var, vals);
        }
        if let Some(missing) = params.iter().find(|p| {
            p.required
                && input
                    .values
                    .get(p.var)
                    .is_none_or(|v| v.iter().all(|s| s.trim().is_empty()))
        }) {
            return Err(OpError::bad_input(format!(
                "field `{}` ({}) is required",
                missing.var, missing.label
            )));
        }
        Ok(input)
    }

    /// The value of a single-valued field, trimmed; `None` when empty.
    pub fn text(&self, var: &str) -> Option<&str> {
        self.values
            .get(var)
            .and_then(|v| v.first())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// The names of a `Modules` or `Hosts` field (normalised, unique, in
    /// the order given); empty when not given.
    pub fn modules(&self, var: &str) -> Vec<String> {
        self.values(var)
    }

    /// The values given for `var`, as checked; empty when not given.
    pub fn values(&self, var: &str) -> Vec<String> {
        self.values.get(var).cloned().unwrap_or_default()
    }

    /// The modules of a [`ParamKind::Versioned`] field, each with the
    /// version chosen, if one was; empty when not given.
    pub fn wanted(&self, var: &str) -> Vec<Wanted> {
        self.values(var)
            .into_iter()
            .map(|value| match value.split_once(VERSION_SEPARATOR) {
                Some((name, version)) => Wanted {
                    name: name.to_owned(),
                    version: Some(version.to_owned()),
                },
                None => Wanted {
                    name: value,
                    version: None,
                },
            })
            .collect()
    }

    /// The module options given, in order.
    pub fn options(&self) -> &[(String, OptionInput)] {
        &self.options
    }

    fn push_option(&mut self, name: &str, option: OptionInput) -> Result<(), OpError> {
        if !is_option_name(name) {
            return Err(OpError::bad_input(format!(
                "`{}` is not an option name (letters, digits and `_`, such as http_upload_external_base_url)",
                truncate(name)
            )));
        }
        if self.options.iter().any(|(n, _)| n == name) {
            return Err(OpError::bad_input(format!(
                "option `{name}` is given twice"
            )));
        }
        if self.options.len() >= MAX_VALUES {
            return Err(OpError::bad_input(format!(
                "at most {MAX_VALUES} options at once"
            )));
        }
        self.options.push((name.to_owned(), option));
        Ok(())
    }

    /// A `Boolean` field; false when not given.
    pub fn flag(&self, var: &str) -> bool {
        self.text(var) == Some("true")
    }
}

/// A yes or no as a form, a chat word, a CLI value or a module option
/// gives it; the one reading of such a word. `None` when it is neither.
pub fn yes_or_no(word: &str) -> Option<bool> {
    match word.trim().to_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_bool(var: &str, values: &[String]) -> Result<bool, OpError> {
    match values.first().map(|v| v.trim()) {
        None | Some("") => Ok(false),
        Some(word) => yes_or_no(word).ok_or_else(|| {
            OpError::bad_input(format!(
                "field `{var}`: `{}` is not a boolean; use true or false",
                truncate(word)
            ))
        }),
    }
}

/// Names from values that may each hold several, separated by spaces or
/// commas; `mod_x` becomes `x`.
/// The one module name field `var` of `input` gives (`info`, `diff`).
pub(super) fn one_module(input: &Input, var: &str) -> Result<String, OpError> {
    let names = module_names(var, &[input.text(var).unwrap_or_default().to_owned()])?;
    match <[String; 1]>::try_from(names) {
        Ok([name]) => Ok(name),
        Err(_) => Err(OpError::bad_input(format!(
            "field `{var}`: give exactly one module name"
        ))),
    }
}

pub(super) fn module_names(var: &str, values: &[String]) -> Result<Vec<String>, OpError> {
    let mut names: Vec<String> = Vec::new();
    for word in values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
    {
        if word.is_empty() {
            continue;
        }
        let name = word.strip_prefix("mod_").unwrap_or(word);
        if !is_valid_module_name(name) {
            return Err(OpError::bad_input(format!(
                "field `{var}`: `{}` is not a module name (letters, digits, `_` and `-`, such as cloud_notify)",
                truncate(word)
            )));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Between a module's name and a version chosen for it: `lastlog@20240601`.
pub const VERSION_SEPARATOR: char = '@';

/// Longest version accepted after [`VERSION_SEPARATOR`], in bytes.
const MAX_VERSION_LEN: usize = 64;

/// A module asked for at a version a repository offers, or at the
/// newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub version: Option<String>,
}

/// Module names as [`module_names`] reads them, each possibly followed
/// by `@VERSION` (letters, digits and `.-_+~`, at most 64 bytes); one
/// module named twice is refused, since it cannot be at two versions.
fn versioned_names(var: &str, values: &[String]) -> Result<Vec<String>, OpError> {
    let mut wanted: Vec<String> = Vec::new();
    for word in values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|w| !w.is_empty())
    {
        let (name, version) = match word.split_once(VERSION_SEPARATOR) {
            Some((name, version)) => (name, Some(version)),
            None => (word, None),
        };
        let [name] =
            <[String; 1]>::try_from(module_names(var, &[name.to_owned()])?).map_err(|_| {
                OpError::bad_input(format!(
                    "field `{var}`: `{}` is not a module name",
                    truncate(word)
                ))
            })?;
        let good_version = |v: &str| {
            !v.is_empty()
                && v.len() <= MAX_VERSION_LEN
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '~'))
        };
        if let Some(version) = version.filter(|v| !good_version(v)) {
            return Err(OpError::bad_input(format!(
                "field `{var}`: `{}` is not a version (such as 20240601.abc123 or 0.1-1)",
                truncate(version)
            )));
        }
        let value = match version {
            Some(version) => format!("{name}{VERSION_SEPARATOR}{version}"),
            None => name.clone(),
        };
        let same_module =
            |earlier: &String| earlier.split(VERSION_SEPARATOR).next() == Some(name.as_str());
        match wanted.iter().find(|earlier| same_module(earlier)) {
            Some(earlier) if *earlier == value => {}
            Some(earlier) => {
                return Err(OpError::bad_input(format!(
                    "field `{var}`: {name} is named twice ({earlier} and {value}); name it once"
                )))
            }
            None => wanted.push(value),
        }
    }
    Ok(wanted)
}

/// Host names, split like module names; each must look like a domain.
fn host_names(var: &str, values: &[String]) -> Result<Vec<String>, OpError> {
    let mut names: Vec<String> = Vec::new();
    for word in values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|w| !w.is_empty())
    {
        let domain_like = word.len() <= 255
            && !word.starts_with(['.', '-'])
            && word
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if !domain_like {
            return Err(OpError::bad_input(format!(
                "field `{var}`: `{}` is not a host name",
                truncate(word)
            )));
        }
        let host = word.to_lowercase();
        if !names.contains(&host) {
            names.push(host);
        }
    }
    Ok(names)
}

/// A value without the double quotes around it, if it has them: chat
/// and the shell quote values with blanks.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Quotes at most a short prefix of untrusted text in an error message.
pub(super) fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_of_yes_and_no() {
        for yes in ["1", "true", "Yes", " on "] {
            assert_eq!(yes_or_no(yes), Some(true), "{yes}");
        }
        for no in ["0", "FALSE", "no", "off"] {
            assert_eq!(yes_or_no(no), Some(false), "{no}");
        }
        for neither in ["", "y", "maybe", "2"] {
            assert_eq!(yes_or_no(neither), None, "{neither}");
        }
        assert_eq!(parse_bool("x", &[]), Ok(false));
        assert!(parse_bool("x", &["maybe".into()]).is_err());
    }
    use crate::ops::ErrorKind;

    const PARAMS: &[Param] = &[
        Param {
            var: "query",
            label: "Search",
            help: "",
            kind: ParamKind::Text,
            required: false,
        },
        Param {
            var: "show",
            label: "Show",
            help: "",
            kind: ParamKind::Choice(&[("all", "All"), ("installed", "Installed")]),
            required: false,
        },
        Param {
            var: "modules",
            label: "Modules",
            help: "",
            kind: ParamKind::Modules(ModuleChoice::Available),
            required: false,
        },
    ];

    fn raw(pairs: &[(&'static str, &[&str])]) -> Vec<(&'static str, Vec<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (*k, v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn known_fields_pass_and_form_type_is_ignored() {
        let input = Input::check(
            PARAMS,
            raw(&[
                ("FORM_TYPE", &["x"]),
                ("query", &[" smacks "]),
                ("confirm", &["1"]),
                ("show", &["installed"]),
            ]),
        )
        .unwrap();
        assert_eq!(input.text("query"), Some("smacks"));
        assert_eq!(input.text("show"), Some("installed"));
        assert_eq!(input.consent, Consent::Given);
        // A dry run wins over a yes, in either order.
        for pairs in [
            raw(&[("confirm", &["true"]), ("dry_run", &["true"])]),
            raw(&[("dry_run", &["true"]), ("confirm", &["true"])]),
        ] {
            assert_eq!(
                Input::check(PARAMS, pairs).unwrap().consent,
                Consent::DryRun
            );
        }
    }

    #[test]
    fn module_names_are_normalised_split_and_deduplicated() {
        let input = Input::check(
            PARAMS,
            raw(&[(
                "modules",
                &["mod_smacks", "cloud_notify, smacks", " csi  mod_csi"],
            )]),
        )
        .unwrap();
        assert_eq!(input.modules("modules"), ["smacks", "cloud_notify", "csi"]);
    }

    #[test]
    fn garbage_is_refused_with_the_field_named() {
        for (pairs, expected) in [
            (
                raw(&[("colour", &["red"])]),
                "unknown field `colour`; this command takes: query, show, modules, confirm, dry_run",
            ),
            (
                raw(&[("query", &["a", "b"])]),
                "field `query` takes one value, got 2",
            ),
            (
                raw(&[("show", &["sideways"])]),
                "field `show`: `sideways` is not one of all, installed",
            ),
            (
                raw(&[("modules", &["../../etc"])]),
                "field `modules`: `../../etc` is not a module name",
            ),
            (
                raw(&[("confirm", &["maybe"])]),
                "field `confirm`: `maybe` is not a boolean",
            ),
        ] {
            let error = Input::check(PARAMS, pairs).unwrap_err();
            assert_eq!(error.kind, ErrorKind::BadInput);
            assert!(
                error.text.starts_with(expected),
                "{expected:?} vs {:?}",
                error.text
            );
        }
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let error = Input::check(PARAMS, vec![("query", vec![long])]).unwrap_err();
        assert!(error.text.contains("too long"), "{}", error.text);
        let many = vec!["x".to_owned(); MAX_VALUES + 1];
        let error = Input::check(PARAMS, vec![("modules", many)]).unwrap_err();
        assert!(error.text.contains("at most 256"), "{}", error.text);
    }

    #[test]
    fn a_version_follows_the_name_and_is_checked() {
        let wanted = versioned_names(
            "modules",
            &["mod_lastlog@20240601.abc smacks".into(), "smacks".into()],
        )
        .unwrap();
        assert_eq!(wanted, ["lastlog@20240601.abc", "smacks"]);
        for bad in ["lastlog@", "lastlog@../x", "lastlog@1 lastlog@2", "../x@1"] {
            assert!(versioned_names("modules", &[bad.into()]).is_err(), "{bad}");
        }
        let long = format!("lastlog@{}", "1".repeat(MAX_VERSION_LEN + 1));
        assert!(versioned_names("modules", &[long]).is_err());
    }

    #[test]
    fn hosts_are_lowercased_before_duplicates_are_dropped() {
        let hosts = host_names("hosts", &["example.org Example.org".into()]).unwrap();
        assert_eq!(hosts, ["example.org"]);
    }
}
