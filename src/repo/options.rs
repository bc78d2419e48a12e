//! The options a module takes, for `configure`: read from the module's
//! own code (`module:get_option_string("x", default)` and friends: the
//! names and types Prosody really reads, and which ones it asserts) and
//! from its README (descriptions, and options the README sets in its Lua
//! examples). Only read, never run.

/// What kind of value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    Text,
    Number,
    Boolean,
    /// A list (or set) of strings.
    List,
    /// Whatever the code does with it; written as text, or as a number or
    /// boolean when the value is one.
    Any,
}

/// One option a module documents or reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleOption {
    /// As written in the config, such as `http_upload_external_secret`.
    pub name: String,
    pub kind: OptionKind,
    /// The default, as the code writes it (Lua), if it has one.
    pub default: Option<String>,
    /// The module refuses to load without it (`assert(module:get_option...)`).
    pub required: bool,
    /// Shown as set / not set, never as its value.
    pub secret: bool,
    /// From the README: the text that introduces it.
    pub description: String,
}

/// Longest option name read; Prosody's own are far shorter.
const MAX_NAME: usize = 128;

/// Whether `name` can be an option name: a Lua identifier.
pub fn is_option_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub use prosody::{prosody_option, ProsodyOption, Versions};

mod prosody;

/// Whether `name` is one `configure` may ever set: an option name that
/// is not a setting of Prosody's server (see [`prosody`]). Also what
/// modman's managed config may hold, and what a README example may offer.
pub fn is_settable(name: &str) -> bool {
    is_option_name(name) && prosody_option(name).is_none_or(|own| own.only_module.is_some())
}

/// Whose copy of a module's code its options were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFrom {
    /// A copy modman installed, from a repository.
    Modman,
    /// The copy Prosody ships.
    Prosody,
}

/// Why `configure` will not set an option of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a Lua identifier, so not an option.
    NotAName,
    /// Prosody itself reads it, and it is not the module's own (see
    /// [`prosody`] for the rule and why).
    ProsodysOwn(&'static ProsodyOption),
    /// The module neither reads nor documents it.
    NotTheModules {
        /// The names the module reads or documents that can be set.
        known: Vec<String>,
    },
}

/// The option `name` of `module` (its code from `code`, its options
/// `options`), if `configure` may set it: one the module reads or
/// documents, and not a setting of Prosody's (see [`prosody`]). The one
/// rule, for every front end and for the form `configure` shows.
pub fn settable<'a>(
    module: &str,
    code: CodeFrom,
    name: &str,
    options: &'a [ModuleOption],
) -> Result<&'a ModuleOption, Refusal> {
    if !is_option_name(name) {
        return Err(Refusal::NotAName);
    }
    if let Some(own) = prosody_option(name) {
        if code == CodeFrom::Prosody || own.only_module != Some(module) {
            return Err(Refusal::ProsodysOwn(own));
        }
    }
    options
        .iter()
        .find(|o| o.name == name)
        .ok_or_else(|| Refusal::NotTheModules {
            known: options
                .iter()
                .filter(|o| settable(module, code, &o.name, std::slice::from_ref(o)).is_ok())
                .map(|o| o.name.clone())
                .collect(),
        })
}

/// Whether an option's value is a secret, by its name: any `_`-separated
/// part that is secret, password, key or token.
pub fn is_secret_name(name: &str) -> bool {
    name.split('_').any(|part| {
        matches!(
            part.to_ascii_lowercase().as_str(),
            "secret" | "password" | "passwd" | "key" | "token" | "apikey"
        )
    })
}

/// The options of module `module` (no `mod_` prefix), from its Lua files
/// and its README (Markdown, possibly empty), code first.
pub fn module_options(module: &str, lua_files: &[String], readme: &str) -> Vec<ModuleOption> {
    let mut options: Vec<ModuleOption> = Vec::new();
    for code in lua_files {
        for option in from_code(module, code) {
            match options.iter_mut().find(|o| o.name == option.name) {
                Some(known) => known.required |= option.required,
                None => options.push(option),
            }
        }
    }
    for (name, kind, description, mention) in from_readme(readme) {
        match (options.iter_mut().find(|o| o.name == name), mention) {
            (Some(known), _) => {
                if known.description.is_empty() {
                    known.description = description;
                }
            }
            // A name in a code sample may be anything the sample sets or
            // computes (mod_http_upload_external's README computes
            // `signed_string` in PHP): only the code and the option
            // tables say what the module reads.
            (None, Mention::Example) => {}
            (None, Mention::Table) => options.push(ModuleOption {
                secret: is_secret_name(&name),
                name,
                kind,
                default: None,
                required: false,
                description,
            }),
        }
    }
    options
}

/// `module:get_option_TYPE(NAME, DEFAULT)` calls; NAME a string literal
/// or `module.name .. "_suffix"`.
fn from_code(module: &str, code: &str) -> Vec<ModuleOption> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("module:get_option") {
        let before = &rest[..at];
        // A statement that starts at the beginning of its line runs when
        // the module loads; an indented one runs in a function or a
        // branch (mod_http_oauth2 asserts component_secret only when
        // loaded on a Component), so it does not stop every load.
        let offset = code.len() - rest.len() + at;
        let line = code[..offset].rfind('\n').map_or(0, |n| n + 1);
        let at_load = !code[line..].starts_with([' ', '\t']);
        let call = &rest[at + "module:get_option".len()..];
        rest = call;
        let Some(open) = call.find('(') else { continue };
        let kind = match &call[..open] {
            "_string" | "_path" => OptionKind::Text,
            "_number" | "_integer" | "_period" => OptionKind::Number,
            "_boolean" => OptionKind::Boolean,
            "_set" | "_array" | "_inherited_set" => OptionKind::List,
            "" => OptionKind::Any,
            _ => continue,
        };
        let args = &call[open + 1..];
        let Some((name, after_name)) = option_name(module, args) else {
            continue;
        };
        let after_name = after_name.trim_start();
        let default = after_name
            .strip_prefix(',')
            .map(|d| d.split([')', ';', '\n']).next().unwrap_or_default().trim())
            .filter(|d| !d.is_empty() && *d != "nil")
            .map(str::to_owned);
        let required = at_load && default.is_none() && before.trim_end().ends_with("assert(");
        found.push(ModuleOption {
            secret: is_secret_name(&name),
            name,
            kind,
            default,
            required,
            description: String::new(),
        });
    }
    found
}

/// The option name at the start of a call's arguments, and what follows.
fn option_name<'a>(module: &str, args: &'a str) -> Option<(String, &'a str)> {
    let args = args.trim_start();
    let (prefix, args) = match args.strip_prefix("module.name") {
        Some(rest) => (module, rest.trim_start().strip_prefix("..")?.trim_start()),
        None => ("", args),
    };
    let quote = args.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let literal = &args[1..];
    let end = literal.find(quote)?;
    let name = format!("{prefix}{}", &literal[..end]);
    is_option_name(&name).then(|| (name, &literal[end + 1..]))
}

/// Where a README names an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mention {
    /// A row of a table whose first column is the option: documented.
    Table,
    /// `name = value` inside a code block: an example, which may set
    /// names that are not the module's options.
    Example,
}

/// Options a README sets in its examples (`name = value` inside code
/// blocks) or lists in a table whose first column is the option, each with
/// the kind its example suggests, the text that introduces it and where
/// it was named.
fn from_readme(readme: &str) -> Vec<(String, OptionKind, String, Mention)> {
    const NOT_OPTIONS: &[&str] = &["local"];
    let mut found: Vec<(String, OptionKind, String, Mention)> = Vec::new();
    let mut in_code = false;
    let mut heading = String::new();
    let mut paragraph = String::new();
    let lines: Vec<&str> = readme.lines().collect();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if line.starts_with("```") || line.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        let underline = lines.get(i + 1).is_some_and(|next| {
            !next.trim().is_empty() && next.trim().chars().all(|c| c == '=' || c == '-')
        });
        let is_rule = !line.is_empty() && line.chars().all(|c| c == '=' || c == '-');
        if !in_code && is_rule {
            continue;
        }
        if !in_code && (line.starts_with('#') || underline) {
            heading = line.trim_start_matches('#').trim().to_owned();
            paragraph.clear();
            continue;
        }
        let candidate = if in_code {
            line.split_once('=')
                .filter(|(_, value)| !value.starts_with('='))
                .map(|(name, value)| (name.trim(), kind_of_example(value.trim())))
        } else {
            // A table row: the first cell, in backticks or not.
            line.split_whitespace()
                .next()
                .map(|cell| (cell.trim_matches('`'), OptionKind::Any))
                .filter(|(cell, _)| cell.contains('_') && line.len() > cell.len() + 2)
        };
        match candidate {
            Some((name, kind))
                if is_settable(name)
                    && !NOT_OPTIONS.contains(&name)
                    && !found.iter().any(|(n, _, _, _)| n == name) =>
            {
                let description = match in_code {
                    true => [heading.as_str(), paragraph.as_str()]
                        .into_iter()
                        .filter(|t| !t.is_empty())
                        .collect::<Vec<_>>()
                        .join(": "),
                    false => line[name.len()..]
                        .trim()
                        .trim_matches('`')
                        .trim()
                        .to_owned(),
                };
                let mention = match in_code {
                    true => Mention::Example,
                    false => Mention::Table,
                };
                found.push((name.to_owned(), kind, one_line(&description), mention));
            }
            _ if !in_code && !line.is_empty() && paragraph.is_empty() => {
                paragraph = line.to_owned();
            }
            _ => {}
        }
    }
    found
}

fn kind_of_example(value: &str) -> OptionKind {
    let value = value
        .trim_end_matches([';', ','])
        .split("--")
        .next()
        .unwrap_or_default()
        .trim();
    if value.starts_with('"') || value.starts_with('\'') {
        OptionKind::Text
    } else if value == "true" || value == "false" {
        OptionKind::Boolean
    } else if value.starts_with('{') {
        OptionKind::List
    } else if value.parse::<f64>().is_ok() {
        OptionKind::Number
    } else {
        OptionKind::Any
    }
}

/// At most 200 characters of one line.
fn one_line(text: &str) -> String {
    let text = crate::clean::one_line(text);
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(module: &str) -> (Vec<String>, String) {
        let dir = std::path::Path::new("/usr/lib/prosody/modules").join(format!("mod_{module}"));
        let code = std::fs::read_to_string(dir.join(format!("mod_{module}.lua"))).unwrap();
        // Debian ships the READMEs gzipped apart from the code.
        let readme = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(format!(
                "/usr/share/doc/prosody-modules/README_mod_{module}.markdown.gz"
            ))
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        (vec![code], readme)
    }

    #[test]
    fn an_assert_inside_a_function_or_branch_does_not_stop_every_load() {
        // As mod_http_oauth2 on 13: component_secret only on a Component.
        let code = "if module:get_host_type() == \"component\" then\n\tlocal component_secret = assert(module:get_option_string(\"component_secret\"), \"required on a Component\");\nend\nlocal jid = assert(module:get_option_string(\"rtbl_jid\"), \"No JID\");\n";
        let options = module_options("x", &[code.to_owned()], "");
        let required = |n: &str| options.iter().find(|o| o.name == n).unwrap().required;
        assert!(!required("component_secret"));
        assert!(required("rtbl_jid"));
    }

    #[test]
    fn http_upload_external_needs_its_url_and_secret() {
        let code = r#"
local file_size_limit = module:get_option_number(module.name .. "_file_size_limit", 100 * 1024 * 1024); -- 100 MB
local base_url = assert(module:get_option_string(module.name .. "_base_url"),
	module.name .. "_base_url is a required option");
local secret = assert(module:get_option_string(module.name .. "_secret"),
	module.name .. "_secret is a required option");
local access = module:get_option_set(module.name .. "_access", {});
"#;
        let readme = "Secret\n------\n\nSet a long and unpredictable string as your secret.\n\n``` {.lua}\nhttp_upload_external_secret = \"this is a secret string!\"\n```\n\nAccess\n------\n\n``` {.lua}\nhttp_upload_access = {\"gateway.example.com\"};\n```\n";
        let options = module_options("http_upload_external", &[code.to_owned()], readme);
        let by_name = |n: &str| options.iter().find(|o| o.name == n).unwrap().clone();
        let url = by_name("http_upload_external_base_url");
        assert!(url.required && !url.secret && url.kind == OptionKind::Text);
        let secret = by_name("http_upload_external_secret");
        assert!(secret.required && secret.secret);
        assert_eq!(
            secret.description,
            "Secret: Set a long and unpredictable string as your secret."
        );
        let limit = by_name("http_upload_external_file_size_limit");
        assert_eq!(limit.kind, OptionKind::Number);
        assert_eq!(limit.default.as_deref(), Some("100 * 1024 * 1024"));
        assert!(!limit.required);
        assert_eq!(
            by_name("http_upload_external_access").kind,
            OptionKind::List
        );
        // Set in a README's code sample only: not an option (the sample
        // may set or compute anything); documented in a table: offered.
        assert!(!options.iter().any(|o| o.name == "http_upload_access"));
        let tabled = module_options(
            "x",
            &[],
            "Option              Default   Description\n  ----------------  -------   -----------\n  x_timeout          60        Seconds to wait.\n",
        );
        assert_eq!(
            tabled.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            ["x_timeout"]
        );
    }

    fn option(name: &str) -> ModuleOption {
        ModuleOption {
            name: name.to_owned(),
            kind: OptionKind::Any,
            default: None,
            required: false,
            secret: false,
            description: String::new(),
        }
    }

    #[test]
    fn configure_sets_the_modules_own_options_never_prosodys() {
        use CodeFrom::{Modman, Prosody};
        // A community auth module that reads Prosody's own settings too.
        let read = ["authentication", "c2s_require_encryption", "auth_x_url"].map(option);
        for name in ["authentication", "c2s_require_encryption"] {
            let Err(Refusal::ProsodysOwn(own)) = settable("auth_x", Modman, name, &read) else {
                panic!("{name}")
            };
            assert_eq!(own.name, name);
            assert!(!is_settable(name));
        }
        assert_eq!(
            settable("auth_x", Modman, "auth_x_url", &read)
                .unwrap()
                .name,
            "auth_x_url"
        );
        // Not read: refused, naming what can be set.
        assert_eq!(
            settable("auth_x", Modman, "storage", &read),
            Err(Refusal::ProsodysOwn(prosody_option("storage").unwrap()))
        );
        assert_eq!(
            settable("auth_x", Modman, "auth_x_base", &read),
            Err(Refusal::NotTheModules {
                known: vec!["auth_x_url".to_owned()]
            })
        );
        assert_eq!(
            settable("auth_x", Modman, "os.exit", &read),
            Err(Refusal::NotAName)
        );
        // Prosody 13 ships cloud_notify: the community copy modman
        // installed sets its own options, on 0.12 and 13 alike; no other
        // module does, nor Prosody's own copy.
        let push = [option("push_max_devices")];
        assert!(settable("cloud_notify", Modman, "push_max_devices", &push).is_ok());
        assert!(settable("cloud_notify", Prosody, "push_max_devices", &push).is_err());
        assert!(settable("other", Modman, "push_max_devices", &push).is_err());
        let own = prosody_option("push_max_devices").unwrap();
        assert_eq!(
            (own.only_module, own.versions),
            (Some("cloud_notify"), Versions::Only13)
        );
        // A name only 0.12 reads is refused on 13 too.
        let old = prosody_option("deny_user_invites_by_roles").unwrap();
        assert_eq!(old.versions, Versions::Only012);
        assert!(settable("other", Modman, old.name, &[option(old.name)]).is_err());
    }

    #[test]
    fn reads_the_real_module_and_refuses_odd_names() {
        if !std::path::Path::new("/usr/lib/prosody/modules/mod_http_upload_external").exists() {
            return;
        }
        let (code, readme) = corpus("http_upload_external");
        let options = module_options("http_upload_external", &code, &readme);
        // Its README's PHP and Python samples compute these.
        assert!(readme.contains("signed_string"), "the README is read");
        for sample in ["signed_string", "calculated_auth_token"] {
            assert!(!options.iter().any(|o| o.name == sample), "{sample}");
        }
        let names: Vec<String> = options
            .into_iter()
            .filter(|o| o.required)
            .map(|o| o.name)
            .collect();
        assert_eq!(
            names,
            [
                "http_upload_external_base_url",
                "http_upload_external_secret"
            ]
        );
        for bad in ["", "1x", "a-b", "a b", "a.b", &"x".repeat(200)] {
            assert!(!is_option_name(bad), "{bad}");
        }
        assert!(is_secret_name("ldap_password") && !is_secret_name("keepalive_interval"));
    }
}
