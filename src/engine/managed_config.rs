//! The Prosody config file modman owns (`prosody.managed_config`),
//! Included at the end of prosody.cfg.lua: server-wide options first, then
//! per-host sections that add modules to `modules_enabled` and set module
//! options. Values are written as Lua literals modman renders itself
//! (never Lua from a user). Prosody reads it at start; modman loads
//! and unloads the same modules live through the admin socket, so the
//! running server and its next start agree.
//!
//! modman writes the file whole (temp file and rename) and reads back only
//! its own format, so a hand edit is reported rather than guessed at.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::fsutil;
use crate::repo::index::is_valid_module_name;

/// Options for the whole server, and modules and options per host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedConfig {
    /// Written before any section, so they are global.
    pub global: BTreeMap<String, LuaValue>,
    pub hosts: BTreeMap<String, HostModules>,
}

/// One host's section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostModules {
    /// The component module for `Component "x" "muc"` sections; `None` for
    /// a VirtualHost.
    pub component: Option<String>,
    pub modules: BTreeSet<String>,
    pub options: BTreeMap<String, LuaValue>,
}

impl HostModules {
    /// A section with nothing in it is not written.
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty() && self.options.is_empty()
    }
}

pub use super::scope::Scope;

/// A config value modman writes: only these shapes, always rendered by
/// modman, so no user text is ever Lua code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LuaValue {
    Text(String),
    /// A decimal number, checked when made.
    Number(String),
    Boolean(bool),
    List(Vec<String>),
}

impl LuaValue {
    /// A number from text such as `100`, `-2`, `0.5`.
    pub fn number(text: &str) -> Option<LuaValue> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
        let decimal = |part: &str| {
            !part.is_empty() && part.len() <= 18 && part.chars().all(|c| c.is_ascii_digit())
        };
        (decimal(whole) && decimal(fraction)).then(|| LuaValue::Number(text.to_owned()))
    }

    /// `value` as a person reads it (replies, history, info): a secret's
    /// value is never shown, only whether it is set; unset says so.
    pub fn shown(value: Option<&LuaValue>, secret: bool) -> String {
        match (value, secret) {
            (None, _) => "unset".to_owned(),
            (Some(_), true) => "(secret, set)".to_owned(),
            (Some(value), false) => value.render(),
        }
    }

    /// The Lua literal.
    pub fn render(&self) -> String {
        match self {
            LuaValue::Text(text) => lua_string(text),
            LuaValue::Number(number) => number.clone(),
            LuaValue::Boolean(value) => value.to_string(),
            LuaValue::List(items) => {
                let items: Vec<String> = items.iter().map(|i| lua_string(i)).collect();
                format!("{{ {} }}", items.join(", "))
            }
        }
    }

    /// Reads back what [`LuaValue::render`] wrote, and nothing else.
    fn parse(text: &str) -> Option<LuaValue> {
        let text = text.trim();
        if let Some(list) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let mut items = Vec::new();
            let mut rest = list.trim();
            while !rest.is_empty() {
                let (item, after) = read_lua_string(rest)?;
                items.push(item);
                rest = after.trim_start();
                rest = match rest.strip_prefix(',') {
                    Some(after_comma) => after_comma.trim_start(),
                    None if rest.is_empty() => rest,
                    None => return None,
                };
            }
            return Some(LuaValue::List(items));
        }
        match text {
            "true" => return Some(LuaValue::Boolean(true)),
            "false" => return Some(LuaValue::Boolean(false)),
            _ => {}
        }
        if text.starts_with('"') {
            let (value, rest) = read_lua_string(text)?;
            return rest.is_empty().then_some(LuaValue::Text(value));
        }
        LuaValue::number(text)
    }
}

/// A double-quoted Lua string with every byte that could end it, or be
/// read as something else, escaped.
fn lua_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            c if c.is_control() => {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out += &format!("\\{byte:03}");
                }
            }
            c => out.push(c),
        }
    }
    out + "\""
}

/// A string [`lua_string`] wrote at the start of `text`, and the rest.
fn read_lua_string(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut bytes = Vec::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((String::from_utf8(bytes).ok()?, &body[at + 1..])),
            '\\' => match chars.next()?.1 {
                '"' => bytes.push(b'"'),
                '\\' => bytes.push(b'\\'),
                'n' => bytes.push(b'\n'),
                d if d.is_ascii_digit() => {
                    let digits: String = [
                        Some(d),
                        chars.next().map(|x| x.1),
                        chars.next().map(|x| x.1),
                    ]
                    .into_iter()
                    .collect::<Option<String>>()?;
                    bytes.push(digits.parse::<u8>().ok()?);
                }
                _ => return None,
            },
            c => {
                let mut buffer = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    None
}

/// Why the managed file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManagedConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: `{text}` was not written by modman; modman rewrites this file whole, so move that line to prosody.cfg.lua and delete it here")]
    HandEdited {
        path: String,
        line: usize,
        text: String,
    },
}

impl ManagedConfig {
    /// Reads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ManagedConfig, ManagedConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ManagedConfig::default())
            }
            Err(source) => {
                return Err(ManagedConfigError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        ManagedConfig::parse(&text).map_err(|(line, text)| ManagedConfigError::HandEdited {
            path: path.display().to_string(),
            line,
            text,
        })
    }

    /// Parses modman's own format; `Err((line, text))` names the first line
    /// that is not.
    pub fn parse(text: &str) -> Result<ManagedConfig, (usize, String)> {
        let mut config = ManagedConfig::default();
        let mut current: Option<String> = None;
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let bad = || (number + 1, line.chars().take(80).collect::<String>());
            if line.is_empty() || line.starts_with("--") {
                continue;
            }
            if let Some(rest) = line.strip_prefix("VirtualHost ") {
                let [host] = quoted(rest).ok_or_else(bad)?;
                config.hosts.entry(host.clone()).or_default().component = None;
                current = Some(host);
            } else if let Some(rest) = line.strip_prefix("Component ") {
                let [host, module] = quoted(rest).ok_or_else(bad)?;
                config.hosts.entry(host.clone()).or_default().component = Some(module);
                current = Some(host);
            } else if let Some(list) = line
                .strip_prefix("modules_enabled = {")
                .and_then(|l| l.strip_suffix('}'))
            {
                let host = current.as_ref().ok_or_else(bad)?;
                let mut modules = BTreeSet::new();
                for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let [name] = quoted(item).ok_or_else(bad)?;
                    if !is_valid_module_name(&name) {
                        return Err(bad());
                    }
                    modules.insert(name);
                }
                config.hosts.entry(host.clone()).or_default().modules = modules;
            } else if let Some((name, value)) = line.split_once(" = ") {
                let value = LuaValue::parse(value).ok_or_else(bad)?;
                if !crate::repo::options::is_settable(name) {
                    return Err(bad());
                }
                match &current {
                    Some(host) => config
                        .hosts
                        .entry(host.clone())
                        .or_default()
                        .options
                        .insert(name.to_owned(), value),
                    None => config.global.insert(name.to_owned(), value),
                };
            } else {
                return Err(bad());
            }
        }
        config.hosts.retain(|_, h| !h.is_empty());
        Ok(config)
    }

    /// The file's text: a header, then one section per host with modules.
    pub fn render(&self, path: &Path) -> String {
        let mut out = format!(
            "-- Written by modman: do not edit, modman rewrites this file whole.\n\
             -- prosody.cfg.lua Includes it after every VirtualHost and Component:\n\
             --     Include \"{}\"\n\
             -- Each section adds modules to that host's modules_enabled.\n",
            path.display()
        );
        for (name, value) in &self.global {
            out += &format!("{name} = {}\n", value.render());
        }
        for (host, section) in &self.hosts {
            if section.is_empty() {
                continue;
            }
            let header = match &section.component {
                None => format!("VirtualHost \"{host}\""),
                Some(module) => format!("Component \"{host}\" \"{module}\""),
            };
            out += &format!("\n{header}\n");
            if !section.modules.is_empty() {
                let modules: Vec<String> =
                    section.modules.iter().map(|m| format!("\"{m}\"")).collect();
                out += &format!("    modules_enabled = {{ {} }}\n", modules.join(", "));
            }
            for (name, value) in &section.options {
                out += &format!("    {name} = {}\n", value.render());
            }
        }
        out
    }

    /// Replaces the file atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        fsutil::atomic_write(path, self.render(path).as_bytes())
    }

    /// The options set in `scope`.
    pub fn options(&self, scope: &Scope) -> BTreeMap<String, LuaValue> {
        match scope {
            Scope::Global => self.global.clone(),
            Scope::Host(host) => self
                .hosts
                .get(host)
                .map(|h| h.options.clone())
                .unwrap_or_default(),
        }
    }

    /// Sets (`Some`) or removes (`None`) option `name` in `scope`.
    pub fn set_option(
        &mut self,
        scope: &Scope,
        name: &str,
        value: Option<LuaValue>,
        component: Option<String>,
    ) {
        let options = match scope {
            Scope::Global => &mut self.global,
            Scope::Host(host) => {
                &mut self
                    .hosts
                    .entry(host.clone())
                    .or_insert_with(|| HostModules {
                        component,
                        ..HostModules::default()
                    })
                    .options
            }
        };
        match value {
            Some(value) => options.insert(name.to_owned(), value),
            None => options.remove(name),
        };
        self.hosts.retain(|_, h| !h.is_empty());
    }

    /// The hosts `module` is enabled on.
    pub fn hosts_of(&self, module: &str) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.modules.contains(module))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// The `"..."` strings of `text`, exactly N, with only blanks between
/// them, each a plain name (letters, digits, `.`, `_`, `-`).
fn quoted<const N: usize>(text: &str) -> Option<[String; N]> {
    // `"a" "b"` splits into ["", "a", " ", "b", ""]: names at odd places.
    let pieces: Vec<&str> = text.split('"').collect();
    if pieces.len() != 2 * N + 1 || pieces.iter().step_by(2).any(|p| !p.trim().is_empty()) {
        return None;
    }
    let names: Vec<String> = pieces
        .iter()
        .skip(1)
        .step_by(2)
        .map(|p| p.to_string())
        .collect();
    let plain =
        |n: &String| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || "._-".contains(c));
    if !names.iter().all(plain) {
        return None;
    }
    names.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_shown_as_set_never_its_value() {
        let value = LuaValue::Text("hunter2".into());
        assert_eq!(LuaValue::shown(Some(&value), true), "(secret, set)");
        assert_eq!(LuaValue::shown(Some(&value), false), "\"hunter2\"");
        assert_eq!(LuaValue::shown(None, true), "unset");
    }

    fn sample() -> ManagedConfig {
        let mut config = ManagedConfig::default();
        config.hosts.insert(
            "localhost".into(),
            HostModules {
                component: None,
                modules: ["csi_battery_saver", "track_muc_joins"]
                    .map(String::from)
                    .into(),
                options: [(
                    "csi_battery_saver_filter_muc".to_owned(),
                    LuaValue::Boolean(true),
                )]
                .into(),
            },
        );
        config.hosts.insert(
            "conference.localhost".into(),
            HostModules {
                component: Some("muc".into()),
                modules: ["muc_moderation".into()].into(),
                options: Default::default(),
            },
        );
        config.global.insert(
            "http_upload_external_secret".into(),
            LuaValue::Text("a \"quoted\" \\ secret\n]]\u{1b}".into()),
        );
        config.global.insert(
            "http_upload_access".into(),
            LuaValue::List(vec!["a.example".into(), "b\"c".into()]),
        );
        config
            .global
            .insert("limit".into(), LuaValue::number("-10.5").unwrap());
        config
    }

    #[test]
    fn renders_per_host_sections_and_reads_them_back() {
        let path = Path::new("/etc/prosody/modman.cfg.lua");
        let text = sample().render(path);
        assert!(text.contains("VirtualHost \"localhost\"\n    modules_enabled = { \"csi_battery_saver\", \"track_muc_joins\" }\n"));
        assert!(text.contains("Component \"conference.localhost\" \"muc\"\n    modules_enabled = { \"muc_moderation\" }\n"));
        assert_eq!(ManagedConfig::parse(&text).unwrap(), sample());
        assert_eq!(
            sample().hosts_of("muc_moderation"),
            ["conference.localhost"]
        );
    }

    #[test]
    fn a_hand_edit_is_named_not_guessed_at() {
        let text = sample().render(Path::new("x")) + "\nadmins = { \"me@localhost\" }\n";
        let (line, bad) = ManagedConfig::parse(&text).unwrap_err();
        assert_eq!(bad, "admins = { \"me@localhost\" }");
        assert_eq!(line, text.lines().count());
        for bad in [
            "VirtualHost \"a\" \"b\"",
            "VirtualHost \"a\\\"b\"",
            "modules_enabled = { \"x\" }",
            "VirtualHost \"h\"\nmodules_enabled = { \"../x\" }",
            "VirtualHost \"h\"\nmodules_enabled = { \"a\" .. os.exit() }",
            "x = os.exit()",
            "x = \"a\" .. os.exit()",
            "x = \"unterminated",
            "x = { \"a\" \"b\" }",
            "x = 1e9",
            "x.y = 1",
        ] {
            assert!(ManagedConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
