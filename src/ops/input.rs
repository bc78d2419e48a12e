//! What an operation takes: its parameters, declared once with
//! [`params!`] as a struct whose fields are the form fields, chat words
//! and CLI flags, read from any front end into the checked [`Input`] by
//! one parser per kind of value, and handed to the operation as that
//! struct. A misspelt parameter is a compile error, not an empty list.

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
    /// repository offers (`lastlog@20240601`), read as [`Wanted`].
    Versioned(ModuleChoice),
    /// Yes or no; no when not given.
    Boolean,
    /// One or more of the server's host names; all VirtualHosts when none.
    Hosts,
    /// Why, in the admin's words (`hold x because "..."`): one line,
    /// control characters replaced, at most [`Reason::MAX_CHARS`]. In
    /// chat, the rest of the line after the parameter's name.
    Reason,
    /// Module options: `name=value` assignments (`name=` unsets), and in
    /// a form any other field named like an option; each read by
    /// [`option_setting`].
    Options,
}

impl ParamKind {
    /// The shape of the [`Value`] this kind is read into.
    const fn shape(self) -> Shape {
        match self {
            ParamKind::Text => Shape::Text,
            ParamKind::Choice(_) => Shape::Choice,
            ParamKind::Modules(_) => Shape::Modules,
            ParamKind::Versioned(_) => Shape::Versioned,
            ParamKind::Boolean => Shape::Boolean,
            ParamKind::Hosts => Shape::Hosts,
            ParamKind::Reason => Shape::Reason,
            ParamKind::Options => Shape::Options,
        }
    }
}

/// The variants of [`Value`] without their contents, so that a field's
/// Rust type and its declared kind are checked to agree when the
/// operation compiles ([`params!`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Text,
    Choice,
    Modules,
    Versioned,
    Boolean,
    Hosts,
    Reason,
    Options,
}

/// Whether a field of a type that reads `shape` may be declared `kind`.
#[doc(hidden)]
pub const fn fits(shape: Shape, kind: ParamKind) -> bool {
    shape as u8 == kind.shape() as u8
}

/// One input of an operation: a data-form field, a chat word, a CLI flag.
#[derive(Debug)]
pub struct Param {
    /// The form field `var`, the chat word and the CLI flag: the name of
    /// the field in the operation's [`params!`] struct. Stable, bots rely
    /// on it.
    pub var: &'static str,
    pub label: &'static str,
    /// A sentence shown as the field's description.
    pub help: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

/// A [`Param`] before [`params!`] names it after its struct field; shared
/// ones (the hosts of enable and install) are constants of this type.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub label: &'static str,
    pub help: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

impl Field {
    /// This field under the name `var`.
    pub const fn named(self, var: &'static str) -> Param {
        Param {
            var,
            label: self.label,
            help: self.help,
            kind: self.kind,
            required: self.required,
        }
    }
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
    /// The operation's [`Params::FIELDS`]; the registry refuses to compile
    /// any other list.
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

/// One module option as asked, from any front end: its name and its new
/// value (one, or a list's items), `None` to unset it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionSetting {
    pub name: String,
    pub value: Option<Vec<String>>,
}

/// A parameter's value as its kind reads it: the one parser per kind of
/// value turns what a front end gave into one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Trimmed, not empty.
    Text(String),
    /// One of the declared choices.
    Choice(&'static str),
    /// Module names without `mod_`, unique, in the order given.
    Modules(Vec<String>),
    Versioned(Vec<Wanted>),
    Boolean(bool),
    /// Host names, lowercased, unique, in the order given.
    Hosts(Vec<String>),
    Reason(Reason),
    Options(Vec<OptionSetting>),
}

impl Value {
    /// The value as a form shows it again, one string per value.
    pub fn shown(&self) -> Vec<String> {
        match self {
            Value::Text(text) => vec![text.clone()],
            Value::Choice(choice) => vec![(*choice).to_owned()],
            Value::Modules(names) | Value::Hosts(names) => names.clone(),
            Value::Versioned(wanted) => wanted.iter().map(Wanted::to_string).collect(),
            Value::Boolean(yes) => vec![yes.to_string()],
            Value::Reason(reason) => vec![reason.to_string()],
            Value::Options(settings) => settings
                .iter()
                .map(|s| {
                    format!(
                        "{}={}",
                        s.name,
                        s.value.as_deref().unwrap_or_default().join(" ")
                    )
                })
                .collect(),
        }
    }
}

/// Submitted values, checked against an operation's [`Param`]s: every
/// name is known, every value read by its kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Input {
    values: BTreeMap<&'static str, Value>,
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
        let options_param = params.iter().find(|p| p.kind == ParamKind::Options);
        let mut options = Vec::new();
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
            if options_param.is_some()
                && !params.iter().any(|p| p.var == var)
                && is_option_name(var)
            {
                // A form field per option: empty means unchanged.
                let values: Vec<String> =
                    vals.into_iter().filter(|v| !v.trim().is_empty()).collect();
                if !values.is_empty() {
                    push_option(&mut options, option_setting(var, values)?)?;
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
            if param.kind == ParamKind::Options {
                for line in vals.iter().flat_map(|v| v.lines()).map(str::trim) {
                    if !line.is_empty() {
                        push_option(&mut options, assignment(var, line)?)?;
                    }
                }
                continue;
            }
            match read(param, &vals)? {
                Some(value) => input.values.insert(param.var, value),
                None => input.values.remove(param.var),
            };
        }
        if let Some(param) = options_param.filter(|_| !options.is_empty()) {
            input.values.insert(param.var, Value::Options(options));
        }
        if let Some(missing) = params
            .iter()
            .find(|p| p.required && !input.values.contains_key(p.var))
        {
            return Err(OpError::bad_input(format!(
                "field `{}` ({}) is required",
                missing.var, missing.label
            )));
        }
        Ok(input)
    }

    /// The checked value of field `var`, if one was given: for front
    /// ends that show a request again. Operations read their
    /// [`params!`] struct instead.
    pub fn value(&self, var: &str) -> Option<&Value> {
        self.values.get(var)
    }

    /// The fields, for a [`Params::parse`] to take one by one.
    pub fn fields(&self) -> Fields {
        Fields {
            values: self.values.clone(),
        }
    }
}

/// The values of `param`, read by its kind; `None` when empty.
fn read(param: &Param, vals: &[String]) -> Result<Option<Value>, OpError> {
    let var = param.var;
    let single = match param.kind {
        ParamKind::Text | ParamKind::Choice(_) | ParamKind::Reason if vals.len() > 1 => {
            return Err(OpError::bad_input(format!(
                "field `{var}` takes one value, got {}",
                vals.len()
            )))
        }
        _ => vals.first().map(|v| v.trim()).filter(|v| !v.is_empty()),
    };
    let listed = |list: Vec<String>| (!list.is_empty()).then_some(list);
    Ok(match param.kind {
        ParamKind::Text => single.map(|text| Value::Text(text.to_owned())),
        ParamKind::Reason => match single {
            None => None,
            Some(text) => {
                Some(Value::Reason(Reason::new(text).map_err(|e| {
                    OpError::bad_input(format!("field `{var}`: {e}"))
                })?))
            }
        },
        ParamKind::Choice(options) => match single {
            None => None,
            Some(value) => match options.iter().find(|(o, _)| *o == value) {
                Some((choice, _)) => Some(Value::Choice(choice)),
                None => {
                    let allowed: Vec<_> = options.iter().map(|(o, _)| *o).collect();
                    return Err(OpError::bad_input(format!(
                        "field `{var}`: `{}` is not one of {}",
                        truncate(value),
                        allowed.join(", ")
                    )));
                }
            },
        },
        ParamKind::Modules(_) => listed(module_names(var, vals)?).map(Value::Modules),
        ParamKind::Versioned(_) => {
            let wanted = versioned_names(var, vals)?;
            (!wanted.is_empty()).then_some(Value::Versioned(wanted))
        }
        ParamKind::Boolean => Some(Value::Boolean(parse_bool(var, vals)?)),
        ParamKind::Hosts => listed(host_names(var, vals)?).map(Value::Hosts),
        ParamKind::Options => unreachable!("options are read by assignment"),
    })
}

/// The fields of one request, taken one by one by the operation's
/// [`Params::parse`]: each declared field once, then [`Fields::finish`]
/// refuses whatever is left.
#[derive(Debug)]
pub struct Fields {
    values: BTreeMap<&'static str, Value>,
}

impl Fields {
    /// Field `var`, as the type of its struct field reads it.
    pub fn take<T: FromValue>(&mut self, var: &'static str) -> Result<T, OpError> {
        T::from_value(var, self.values.remove(var))
    }

    /// Refuses a value for a field the operation does not declare: the
    /// input was checked against other parameters than it reads.
    pub fn finish(self) -> Result<(), OpError> {
        match self.values.keys().next() {
            None => Ok(()),
            Some(var) => Err(OpError::bad_input(format!(
                "field `{var}` is not one this command takes"
            ))),
        }
    }
}

/// An operation's typed parameters: a struct declared with [`params!`].
pub trait Params: Sized {
    /// The form fields, chat words and CLI flags, one per struct field
    /// and named after it.
    const FIELDS: &'static [Param];

    /// Takes each declared field from `input` once, typed; refuses any
    /// other.
    fn parse(input: &Input) -> Result<Self, OpError>;
}

/// The Rust type of a parameter's struct field: what it reads from the
/// field's [`Value`] (`None` when not given).
pub trait FromValue: Sized {
    /// The value it reads; a field declared with another kind does not
    /// compile.
    const SHAPE: Shape;

    fn from_value(var: &'static str, value: Option<Value>) -> Result<Self, OpError>;
}

/// Declares an operation's parameters: a struct with one field per
/// parameter, each with its Rust type and its [`Field`] (label, help,
/// kind, required), and their [`Params`] impl. The field's name is the
/// parameter's `var`; its type must read the kind's [`Value`].
///
/// ```ignore
/// params! {
///     pub struct EnableParams {
///         modules: Vec<String> = Field { label: "Modules", help: "...", kind: ParamKind::Modules(ModuleChoice::Enableable), required: true },
///         hosts: Vec<String> = HOSTS,
///     }
/// }
/// ```
#[macro_export]
macro_rules! params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $param:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        $vis struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::ops::input::Params for $name {
            const FIELDS: &'static [$crate::ops::input::Param] = &[
                $( $crate::ops::input::Field::named($param, stringify!($field)), )*
            ];

            #[allow(unused_mut)]
            fn parse(
                input: &$crate::ops::input::Input,
            ) -> ::std::result::Result<Self, $crate::ops::OpError> {
                let mut fields = input.fields();
                let parsed = $name {
                    $( $field: fields.take(stringify!($field))?, )*
                };
                fields.finish()?;
                Ok(parsed)
            }
        }

        const _: () = {
            $(
                assert!(
                    $crate::ops::input::fits(
                        <$ty as $crate::ops::input::FromValue>::SHAPE,
                        $param.kind,
                    ),
                    concat!("the type of `", stringify!($field), "` does not read its kind"),
                );
            )*
        };
    };
}
pub use params;

params! {
    /// The parameters of an operation that takes none.
    pub struct NoParams {}
}

/// The refusal of a value of another kind than the field's type reads;
/// [`params!`] makes it unreachable.
fn wrong_kind(var: &str, value: &Value) -> OpError {
    OpError::bad_input(format!(
        "field `{var}` cannot take {value:?}; this command reads it otherwise"
    ))
}

/// Host names, from a `Hosts` field: empty means every VirtualHost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts(pub Vec<String>);

/// The [`FromValue`] of a type that holds one [`Value`] variant's
/// contents (the variant and its [`Shape`] share a name): `$none` when not
/// given, `$some` of the contents bound to `$bound` when given.
macro_rules! read_as {
    ($ty:ty, $variant:ident, $none:expr, |$bound:ident| $some:expr) => {
        impl FromValue for $ty {
            const SHAPE: Shape = Shape::$variant;
            fn from_value(var: &'static str, value: Option<Value>) -> Result<Self, OpError> {
                match value {
                    None => Ok($none),
                    Some(Value::$variant($bound)) => Ok($some),
                    Some(other) => Err(wrong_kind(var, &other)),
                }
            }
        }
    };
}

read_as!(bool, Boolean, false, |yes| yes);
read_as!(Option<String>, Text, None, |text| Some(text));
// Module names, from a `Modules` field; empty when not given.
read_as!(Vec<String>, Modules, Vec::new(), |names| names);
read_as!(Hosts, Hosts, Hosts::default(), |names| Hosts(names));
read_as!(Vec<Wanted>, Versioned, Vec::new(), |wanted| wanted);
read_as!(Option<Reason>, Reason, None, |reason| Some(reason));
read_as!(Vec<OptionSetting>, Options, Vec::new(), |settings| settings);

/// One module's name, typed into a text field (`info`, `diff`,
/// `configure`): read by [`module_names`], exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module(pub String);

impl FromValue for Option<Module> {
    const SHAPE: Shape = Shape::Text;
    fn from_value(var: &'static str, value: Option<Value>) -> Result<Self, OpError> {
        let Some(text) = Option::<String>::from_value(var, value)? else {
            return Ok(None);
        };
        match <[String; 1]>::try_from(module_names(var, &[text])?) {
            Ok([name]) => Ok(Some(Module(name))),
            Err(_) => Err(OpError::bad_input(format!(
                "field `{var}`: give exactly one module name"
            ))),
        }
    }
}

/// A required module name ([`Input::check`] refused the request without
/// one).
impl FromValue for Module {
    const SHAPE: Shape = Shape::Text;
    fn from_value(var: &'static str, value: Option<Value>) -> Result<Self, OpError> {
        Option::<Module>::from_value(var, value)?.ok_or_else(|| {
            OpError::bad_input(format!("field `{var}`: give exactly one module name"))
        })
    }
}

/// A type whose values are a `Choice` parameter's: it reads the chosen
/// value; unset is its default.
pub trait Chosen: Sized {
    /// The value `choice` names, one of the declared choices.
    fn chosen(choice: &'static str) -> Option<Self>;
}

/// A choice field, read by [`Chosen`]; `None` when not given.
impl<T: Chosen> FromValue for Option<T> {
    const SHAPE: Shape = Shape::Choice;
    fn from_value(var: &'static str, value: Option<Value>) -> Result<Self, OpError> {
        match value {
            None => Ok(None),
            Some(Value::Choice(choice)) => Ok(T::chosen(choice)),
            Some(other) => Err(wrong_kind(var, &other)),
        }
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

/// The one reading of a module option from any front end: `name` and
/// the values given for it; no value but blanks unsets it.
pub fn option_setting(name: &str, values: Vec<String>) -> Result<OptionSetting, OpError> {
    let name = name.trim();
    if !is_option_name(name) {
        return Err(OpError::bad_input(format!(
            "`{}` is not an option name (letters, digits and `_`, such as http_upload_external_base_url)",
            truncate(name)
        )));
    }
    let values: Vec<String> = values
        .iter()
        .map(|v| unquote(v.trim()).to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    Ok(OptionSetting {
        name: name.to_owned(),
        value: (!values.is_empty()).then_some(values),
    })
}

/// `name=value` as chat, `--set` and a form's options lines write it
/// (`name=` unsets), read by [`option_setting`].
fn assignment(var: &str, text: &str) -> Result<OptionSetting, OpError> {
    let (name, value) = text.split_once('=').ok_or_else(|| {
        OpError::bad_input(format!(
            "field `{var}`: `{}` is not `name=value` (or `name=` to unset)",
            truncate(text)
        ))
    })?;
    option_setting(name, vec![value.to_owned()])
}

/// Adds `setting` to `options`, refusing a name given twice or too many.
fn push_option(options: &mut Vec<OptionSetting>, setting: OptionSetting) -> Result<(), OpError> {
    if options.iter().any(|o| o.name == setting.name) {
        return Err(OpError::bad_input(format!(
            "option `{}` is given twice",
            setting.name
        )));
    }
    if options.len() >= MAX_VALUES {
        return Err(OpError::bad_input(format!(
            "at most {MAX_VALUES} options at once"
        )));
    }
    options.push(setting);
    Ok(())
}

/// Names from values that may each hold several, separated by spaces or
/// commas; `mod_x` becomes `x`.
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

impl std::fmt::Display for Wanted {
    /// `name` or `name@version`, as it is typed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}{VERSION_SEPARATOR}{version}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Module names as [`module_names`] reads them, each possibly followed
/// by `@VERSION` (letters, digits and `.-_+~`, at most 64 bytes); one
/// module named twice is refused, since it cannot be at two versions.
fn versioned_names(var: &str, values: &[String]) -> Result<Vec<Wanted>, OpError> {
    let mut wanted: Vec<Wanted> = Vec::new();
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
        let this = Wanted {
            name,
            version: version.map(str::to_owned),
        };
        match wanted.iter().find(|earlier| earlier.name == this.name) {
            Some(earlier) if *earlier == this => {}
            Some(earlier) => {
                return Err(OpError::bad_input(format!(
                    "field `{var}`: {} is named twice ({earlier} and {this}); name it once",
                    this.name
                )))
            }
            None => wanted.push(this),
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
        assert_eq!(input.value("query"), Some(&Value::Text("smacks".into())));
        assert_eq!(input.value("show"), Some(&Value::Choice("installed")));
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
        let names = ["smacks", "cloud_notify", "csi"].map(String::from).to_vec();
        assert_eq!(input.value("modules"), Some(&Value::Modules(names)));
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
        let shown: Vec<String> = wanted.iter().map(Wanted::to_string).collect();
        assert_eq!(shown, ["lastlog@20240601.abc", "smacks"]);
        assert_eq!(wanted[0].version.as_deref(), Some("20240601.abc"));
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

    params! {
        /// Two of [`PARAMS`], typed.
        struct Searched {
            query: Option<String> = Field {
                label: "Search",
                help: "",
                kind: ParamKind::Text,
                required: false,
            },
            modules: Vec<String> = Field {
                label: "Modules",
                help: "",
                kind: ParamKind::Modules(ModuleChoice::Available),
                required: false,
            },
        }
    }

    #[test]
    fn each_declared_field_is_taken_typed_and_any_other_refused() {
        assert_eq!(
            Searched::FIELDS.iter().map(|p| p.var).collect::<Vec<_>>(),
            ["query", "modules"]
        );
        let input = Input::check(
            Searched::FIELDS,
            raw(&[("query", &[" smacks "]), ("modules", &["mod_csi smacks"])]),
        )
        .unwrap();
        let Searched { query, modules } = Searched::parse(&input).unwrap();
        assert_eq!(query.as_deref(), Some("smacks"));
        assert_eq!(modules, ["csi", "smacks"]);
        // Checked against more fields than the struct declares: `show`
        // is left over, and refused rather than dropped.
        let wider = Input::check(PARAMS, raw(&[("show", &["installed"])])).unwrap();
        let error = Searched::parse(&wider).unwrap_err();
        assert_eq!(error.kind, ErrorKind::BadInput);
    }

    #[test]
    fn options_from_chat_cli_and_form_fields_are_one_setting() {
        const OPTIONS: &[Param] = &[Param {
            var: "options",
            label: "Options",
            help: "",
            kind: ParamKind::Options,
            required: false,
        }];
        let set = |value: &str| OptionSetting {
            name: "upload_url".into(),
            value: Some(vec![value.to_owned()]),
        };
        let unset = OptionSetting {
            name: "upload_url".into(),
            value: None,
        };
        for (given, expected) in [
            (
                raw(&[("options", &["upload_url=https://x/"])]),
                set("https://x/"),
            ),
            (raw(&[("options", &["upload_url = \"a b\""])]), set("a b")),
            (raw(&[("upload_url", &["https://x/"])]), set("https://x/")),
            (raw(&[("options", &["upload_url="])]), unset),
        ] {
            let input = Input::check(OPTIONS, given).unwrap();
            assert_eq!(
                input.value("options"),
                Some(&Value::Options(vec![expected]))
            );
        }
        // A form's empty option field leaves the option as it is.
        let input = Input::check(OPTIONS, raw(&[("upload_url", &[" "])])).unwrap();
        assert_eq!(input.value("options"), None);
        for bad in ["no equals sign", "../x=1", "a=1\na=2"] {
            assert!(
                Input::check(OPTIONS, raw(&[("options", &[bad])])).is_err(),
                "{bad}"
            );
        }
    }
}
