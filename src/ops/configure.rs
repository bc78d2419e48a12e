//! `configure`: set or unset a module's options, per host or for the whole
//! server, without a shell. The options offered are the ones the module's
//! code reads and its README documents, each with the value Prosody holds
//! now; a secret only as set or not set, never its value, anywhere. Values
//! are checked against the option's kind and written by the engine as Lua
//! literals into the managed config; Prosody then reads its config again
//! and the module is reloaded where it runs, and a value it refuses is
//! undone like any failed change.

use super::{params, Field, Hosts, Module, OptionSetting, Params};
use std::path::Path;

use super::confirm::{Consent, Proposal, Why};
use super::{
    Access, Command, Context, FieldKind, Form, FormField, OpError, ParamKind, Response, Spec, Table,
};
use crate::access::Actor;
use crate::engine::change::Setting;
use crate::engine::managed_config::{LuaValue, Scope};
use crate::engine::ChangeSet;
use crate::repo::options::{
    is_secret_name, module_options, settable, CodeFrom, ModuleOption, OptionKind, Refusal,
};

/// Sets `options` of `module` on `hosts` (the whole server when empty).
#[derive(Debug)]
pub struct Configure {
    module: String,
    hosts: Vec<String>,
    options: Vec<OptionSetting>,
    consent: Consent,
}

/// Longest Lua source read from one module, in all.
const MAX_CODE: u64 = 4 * 1024 * 1024;
/// Most items in a list option.
const MAX_ITEMS: usize = 256;

params! {
    /// What `Configure` takes.
    pub struct ConfigureParams {
        module: Module = Field {
            label: "Module",
            help: "The module's name, such as http_upload_external.",
            kind: ParamKind::Text,
            required: true,
        },
        hosts: Hosts = Field {
            label: "Hosts (empty: the whole server)",
            help: "Where the options apply; leave empty for the whole server.",
            kind: ParamKind::Hosts,
            required: false,
        },
        options: Vec<OptionSetting> = Field {
            label: "Other options (name = value per line)",
            help: "Options by name, one `name = value` per line; `name =` unsets one.",
            kind: ParamKind::Options,
            required: false,
        },
    }
}

impl Command for Configure {
    type Params = ConfigureParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "configure",
        name: "Configure a module",
        instructions: "Set the options a module needs. Name the module, and the hosts (leave empty for the whole server); the next step shows the options it documents with the values Prosody holds now. Secrets are shown only as set or not set.",
        params: ConfigureParams::FIELDS,
    };

    fn new(
        ConfigureParams {
            module,
            hosts,
            options,
        }: ConfigureParams,
        consent: Consent,
    ) -> Result<Self, OpError> {
        Ok(Configure {
            module: module.0,
            hosts: hosts.0,
            options,
            consent,
        })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        let documented = documented_options(ctx, &self.module)?;
        let (_, code) = module_dir(ctx, &self.module)?;
        let settable = |name: &str| settable(&self.module, code, name, &documented);
        let mut live = ctx.engine.live().await?;
        let scopes: Vec<Scope> = match self.hosts.is_empty() {
            true => vec![Scope::Global],
            false => live
                .targets(&self.hosts)?
                .into_iter()
                .map(Scope::Host)
                .collect(),
        };
        if self.options.is_empty() {
            let mut fields = Vec::new();
            for option in documented.iter().filter(|o| settable(&o.name).is_ok()) {
                let now = live.config_get(&scopes[0], &option.name).await?;
                fields.push(field(option, now.as_deref()));
            }
            return Ok(Response::Form(Form {
                title: format!("Options of mod_{} on {}", self.module, scope_names(&scopes)),
                instructions: format!(
                    "Fill in what to change; an empty field stays as it is. In chat: configure {} {}name=value ...",
                    self.module,
                    match self.hosts.is_empty() {
                        true => String::new(),
                        false => format!("on {} ", self.hosts.join(" ")),
                    }
                ),
                fields,
            }));
        }
        let mut settings = Vec::new();
        let mut proposal = Proposal::new("Configure");
        for OptionSetting { name, value } in &self.options {
            let option = settable(name).map_err(|refusal| refused(&self.module, name, refusal))?;
            let kind = option.kind;
            let secret = option.secret || is_secret_name(name);
            let value = match value {
                None => None,
                Some(values) => Some(lua_value(name, kind, values)?),
            };
            for scope in &scopes {
                // A form comes back whole: a field left as it was shown
                // changes nothing, and is not written.
                let now = live.config_get(scope, name).await?;
                if holds(now.as_deref().or(unset_reads(option)), value.as_ref()) {
                    continue;
                }
                // A secret's value is masked where every value is shown.
                let shown = match &value {
                    None => format!("unset {name} on {scope}"),
                    Some(v) => format!("{name} = {} on {scope}", LuaValue::shown(Some(v), secret)),
                };
                let exact = match &value {
                    Some(v) => format!("{name} on {scope} sha256:{}", sha256(&v.render())),
                    None => format!("unset {name} on {scope}"),
                };
                proposal.step(shown, exact);
                settings.push(Setting {
                    module: self.module.clone(),
                    scope: scope.clone(),
                    name: name.clone(),
                    value: value.clone(),
                    secret,
                });
            }
            if secret && value.is_some() && readable_by_everyone(&ctx.config.prosody.managed_config)
            {
                proposal.concern(Why::SecretReadable, format!(
                    "{} is readable by every user of this host, and so would the secret {name} be; run `chmod o-r {}` (Prosody must still read it) and answer again.",
                    ctx.config.prosody.managed_config.display(),
                    ctx.config.prosody.managed_config.display()
                ));
            }
        }
        if settings.is_empty() {
            return Ok(Response::Table(Table {
                title: format!("Options of mod_{}", self.module),
                columns: vec![],
                rows: vec![],
                note: "Nothing to change: Prosody holds every value given already.".into(),
            }));
        }
        if let Err(question) = proposal.decide(&self.consent) {
            return Ok(question);
        }
        drop(live);
        let change = ChangeSet {
            operation: "configure",
            files: vec![],
            disable: vec![],
            settings,
            enable: vec![],
        };
        let applied = guard.commit(actor, change).await?;
        let rows = applied
            .settings
            .iter()
            .map(|s| {
                let value = |v: &Option<LuaValue>| LuaValue::shown(v.as_ref(), s.secret);
                vec![
                    s.name.clone(),
                    s.scope.to_string(),
                    value(&s.before),
                    value(&s.after),
                ]
            })
            .collect();
        let reloaded = match applied.reloaded.is_empty() {
            true => format!(
                "mod_{} is not loaded; it reads them when it loads.",
                self.module
            ),
            false => format!(
                "Reloaded mod_{} on {}.",
                self.module,
                applied
                    .reloaded
                    .iter()
                    .map(|p| p.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Ok(Response::Table(Table {
            title: format!("Options of mod_{}", self.module),
            columns: vec![
                ("option", "Option"),
                ("where", "Where"),
                ("from", "From"),
                ("to", "To"),
            ],
            rows,
            note: format!(
                "Written to {}; Prosody read its config again. {reloaded} rollback puts the previous values back.",
                ctx.config.prosody.managed_config.display()
            ),
        }))
    }
}

/// The error for an option `configure` will not set on `module`.
fn refused(module: &str, name: &str, refusal: Refusal) -> OpError {
    OpError::bad_input(match refusal {
        Refusal::NotAName => format!("`{name}` is not an option name"),
        Refusal::ProsodysOwn(own) => format!(
            "`{name}` is Prosody's own setting (read by {}); configure only sets options of the module; edit prosody.cfg.lua by hand if you mean it",
            own.read_by
        ),
        Refusal::NotTheModules { known } if known.is_empty() => format!(
            "mod_{module} neither reads nor documents `{name}`, and has no option configure sets; set what it needs in prosody.cfg.lua"
        ),
        Refusal::NotTheModules { known } => format!(
            "mod_{module} neither reads nor documents `{name}`; the options it reads: {}",
            known.join(", ")
        ),
    })
}

/// The options `module` reads (its code, in modman's module directory or
/// Prosody's own) and documents (its README, when a repository offers it).
pub(super) fn documented_options(
    ctx: &Context,
    module: &str,
) -> Result<Vec<ModuleOption>, OpError> {
    let (dir, _) = module_dir(ctx, module)?;
    let mut code = Vec::new();
    let mut budget = MAX_CODE;
    for candidate in crate::prosody::module_file_candidates(module) {
        let path = dir.join(&candidate);
        if path.is_file() {
            let folder = path.parent().unwrap_or(dir);
            let files: Vec<_> = match folder == dir {
                true => vec![path],
                false => lua_files(folder),
            };
            for file in files {
                let size = std::fs::metadata(&file)
                    .map(|m| m.len())
                    .unwrap_or(u64::MAX);
                if size > budget {
                    break;
                }
                budget -= size;
                code.extend(std::fs::read_to_string(&file).ok());
            }
            break;
        }
    }
    let catalog = ctx.catalog();
    let readme = catalog
        .find(module)
        .map(|(repository, entry)| catalog.description(&repository.name, &entry.name))
        .unwrap_or_default();
    Ok(module_options(module, &code, &readme))
}

/// Where `module`'s code is: modman's module directory, else Prosody's.
fn module_dir<'a>(ctx: &'a Context, module: &str) -> Result<(&'a Path, CodeFrom), OpError> {
    [
        (ctx.engine.modules_dir(), CodeFrom::Modman),
        (
            ctx.config.prosody.builtin_modules.as_path(),
            CodeFrom::Prosody,
        ),
    ]
    .into_iter()
    .find(|(dir, _)| crate::prosody::has_module(dir, module))
    .ok_or_else(|| {
        OpError::not_found(format!(
            "mod_{module} is neither installed nor one of Prosody's own; install it first"
        ))
    })
}

/// The `.lua` files of a module's directory, not following links.
fn lua_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "lua") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The form field for `option`, with `now` (Prosody's value, as Lua;
/// `None` when unset).
fn field(option: &ModuleOption, now: Option<&str>) -> FormField {
    let unset = now.is_none();
    let kind = match (option.secret, option.kind) {
        (true, _) => FieldKind::Secret,
        (false, OptionKind::Boolean) => FieldKind::Boolean,
        (false, OptionKind::List) => FieldKind::Lines,
        (false, _) => FieldKind::Text,
    };
    let mut help = vec![];
    if !option.description.is_empty() {
        help.push(option.description.clone());
    }
    help.push(match option.kind {
        OptionKind::Number => "A number.".to_owned(),
        OptionKind::Boolean => "Yes or no.".to_owned(),
        OptionKind::List => "A list: one item per line.".to_owned(),
        OptionKind::Text | OptionKind::Any => "Text.".to_owned(),
    });
    if let Some(default) = &option.default {
        help.push(format!("Default: {default}."));
    }
    if option.secret {
        help.push(match unset {
            true => "Now: not set.".to_owned(),
            false => "Now: set.".to_owned(),
        });
    }
    FormField {
        var: option.name.clone(),
        label: option.name.clone(),
        kind,
        values: match (now.or(unset_reads(option)), option.secret) {
            (Some(now), false) => shown_values(now),
            _ => vec![],
        },
        help: help.join(" "),
        needed: option.required && unset,
    }
}

/// Prosody's rendering of a value (`config:get`, util.serialization) as
/// the form shows it and reads it back: a string without its quotes, a
/// list as its items, one per line; anything else as it is.
fn shown_values(now: &str) -> Vec<String> {
    let now = now.trim();
    let items = match now.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        Some(inner) => lua_strings(inner),
        None => lua_strings(now).filter(|one| one.len() == 1),
    };
    items.unwrap_or_else(|| vec![now.to_owned()])
}

/// The Lua string literals in `text`, separated by `,` or `;`; `None` if
/// anything else is there.
fn lua_strings(text: &str) -> Option<Vec<String>> {
    let mut items = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        while chars
            .next_if(|c| c.is_whitespace() || *c == ',' || *c == ';')
            .is_some()
        {}
        let Some(quote) = chars.next() else {
            return Some(items);
        };
        if quote != '"' && quote != '\'' {
            return None;
        }
        let mut item = String::new();
        loop {
            match chars.next()? {
                '\\' => item.push(match chars.next()? {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                }),
                c if c == quote => break,
                c => item.push(c),
            }
        }
        items.push(item);
    }
}

/// What the module reads for `option` while it is unset, as the form
/// shows it: a boolean its default, or false (a form cannot leave a
/// checkbox empty, so an untouched one comes back as this).
fn unset_reads(option: &ModuleOption) -> Option<&str> {
    match option.kind {
        OptionKind::Boolean => Some(match option.default.as_deref() {
            Some("true") => "true",
            _ => "false",
        }),
        _ => None,
    }
}

/// Whether Prosody's value `now` is `value` already (`None`: unset).
fn holds(now: Option<&str>, value: Option<&LuaValue>) -> bool {
    match (now, value) {
        (None, None) => true,
        (Some(now), Some(value)) => {
            let given = match value {
                LuaValue::Text(text) => vec![text.clone()],
                LuaValue::Number(number) => vec![number.clone()],
                LuaValue::Boolean(yes) => vec![yes.to_string()],
                LuaValue::List(items) => items.clone(),
            };
            shown_values(now) == given
        }
        _ => false,
    }
}

/// `values` as the literal for an option of `kind`, checked.
fn lua_value(name: &str, kind: OptionKind, values: &[String]) -> Result<LuaValue, OpError> {
    let text = |value: &str| -> Result<String, OpError> {
        if value.chars().any(char::is_control) {
            return Err(OpError::bad_input(format!(
                "option `{name}`: control characters and line breaks are not accepted in a value"
            )));
        }
        Ok(value.to_owned())
    };
    let single = || -> Result<&str, OpError> {
        match values {
            [one] => Ok(one.trim()),
            _ => Err(OpError::bad_input(format!(
                "option `{name}` takes one value, got {}",
                values.len()
            ))),
        }
    };
    match kind {
        OptionKind::List => {
            let items: Vec<&str> = values
                .iter()
                .flat_map(|v| v.split([',', '\n']))
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .collect();
            if items.len() > MAX_ITEMS {
                return Err(OpError::bad_input(format!(
                    "option `{name}`: {} items; at most {MAX_ITEMS} are accepted",
                    items.len()
                )));
            }
            Ok(LuaValue::List(
                items.into_iter().map(text).collect::<Result<_, _>>()?,
            ))
        }
        OptionKind::Number => {
            let value = single()?;
            LuaValue::number(value).ok_or_else(|| {
                OpError::bad_input(format!(
                    "option `{name}` takes a number, such as 100; `{}` is not one",
                    value.chars().take(32).collect::<String>()
                ))
            })
        }
        OptionKind::Boolean => {
            let value = single()?;
            super::input::yes_or_no(value)
                .map(LuaValue::Boolean)
                .ok_or_else(|| {
                    OpError::bad_input(format!(
                        "option `{name}` is yes or no; `{}` is neither",
                        value.chars().take(32).collect::<String>()
                    ))
                })
        }
        OptionKind::Text => Ok(LuaValue::Text(text(single()?)?)),
        OptionKind::Any => {
            let value = single()?;
            Ok(match value {
                "true" => LuaValue::Boolean(true),
                "false" => LuaValue::Boolean(false),
                _ => LuaValue::number(value).unwrap_or(LuaValue::Text(text(value)?)),
            })
        }
    }
}

fn scope_names(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn readable_by_everyone(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// For `enable`: the options `module` refuses to load without that
/// Prosody does not hold for `host`, read from its installed code.
pub(super) async fn missing_required(
    ctx: &Context,
    module: &str,
    host: &str,
    live: &mut crate::engine::live::Live,
) -> Result<Vec<String>, OpError> {
    super::required::missing(&documented_options(ctx, module)?, host, live).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_shown_in_the_form_and_sent_back_unchanged_is_what_prosody_holds() {
        // As Prosody's shell prints them.
        for (now, shown) in [
            (
                "\"https://upload.example/\"",
                vec!["https://upload.example/"],
            ),
            ("104857600", vec!["104857600"]),
            (
                "{ \"a.example\"; \"b \\\"c\\\"\" }",
                vec!["a.example", "b \"c\""],
            ),
            ("{}", vec![]),
            ("{ x = 1 }", vec!["{ x = 1 }"]),
        ] {
            assert_eq!(shown_values(now), shown, "{now}");
        }
        let list = LuaValue::List(vec!["a.example".into(), "b.example".into()]);
        assert!(holds(Some("{ \"a.example\"; \"b.example\" }"), Some(&list)));
        assert!(!holds(Some("{ \"a.example\" }"), Some(&list)));
        assert!(holds(Some("true"), Some(&LuaValue::Boolean(true))));
        assert!(holds(Some("\"x\""), Some(&LuaValue::Text("x".into()))));
        assert!(!holds(None, Some(&LuaValue::Text("x".into()))));
        assert!(holds(None, None));
        // An unset boolean is shown, and comes back, as what it reads.
        let boolean = ModuleOption {
            name: "x_enabled".into(),
            kind: OptionKind::Boolean,
            default: None,
            required: false,
            secret: false,
            description: String::new(),
        };
        assert!(holds(
            unset_reads(&boolean),
            Some(&LuaValue::Boolean(false))
        ));
        assert!(!holds(
            unset_reads(&boolean),
            Some(&LuaValue::Boolean(true))
        ));
        assert_eq!(field(&boolean, None).values, ["false"]);
        assert!(!holds(Some("1"), None));
    }

    #[test]
    fn values_become_checked_literals_never_code() {
        let text = |v: &str| lua_value("x", OptionKind::Text, &[v.to_owned()]);
        assert_eq!(text("a\"b]]--").unwrap().render(), "\"a\\\"b]]--\"");
        assert!(text("line\nbreak").is_err());
        assert!(text("\u{1b}[2J").is_err());
        assert!(lua_value("x", OptionKind::Number, &["12 or os.exit()".into()]).is_err());
        assert_eq!(
            lua_value("x", OptionKind::Number, &["-1.5".into()])
                .unwrap()
                .render(),
            "-1.5"
        );
        assert!(lua_value("x", OptionKind::Boolean, &["maybe".into()]).is_err());
        let list = lua_value("x", OptionKind::List, &["a.example, b.example".into()]).unwrap();
        assert_eq!(list.render(), "{ \"a.example\", \"b.example\" }");
        let many = vec!["i".to_owned(); MAX_ITEMS + 1].join(",");
        assert!(lua_value("x", OptionKind::List, &[many]).is_err());
        assert_eq!(
            lua_value("x", OptionKind::Any, &["true".into()]).unwrap(),
            LuaValue::Boolean(true)
        );
    }
}
