//! The Prosody config file modman owns (`prosody.managed_config`),
//! Included at the end of prosody.cfg.lua: per-host sections that add
//! modules to `modules_enabled`. Prosody reads it at start; modman loads
//! and unloads the same modules live through the admin socket, so the
//! running server and its next start agree.
//!
//! modman writes the file whole (temp file and rename) and reads back only
//! its own format, so a hand edit is reported rather than guessed at.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::fsutil;
use crate::repo::index::is_valid_module_name;

/// Modules enabled per host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedConfig {
    pub hosts: BTreeMap<String, HostModules>,
}

/// One host's section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostModules {
    /// The component module for `Component "x" "muc"` sections; `None` for
    /// a VirtualHost.
    pub component: Option<String>,
    pub modules: BTreeSet<String>,
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
            } else {
                return Err(bad());
            }
        }
        config.hosts.retain(|_, h| !h.modules.is_empty());
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
        for (host, section) in &self.hosts {
            if section.modules.is_empty() {
                continue;
            }
            let header = match &section.component {
                None => format!("VirtualHost \"{host}\""),
                Some(module) => format!("Component \"{host}\" \"{module}\""),
            };
            let modules: Vec<String> = section.modules.iter().map(|m| format!("\"{m}\"")).collect();
            out += &format!(
                "\n{header}\n    modules_enabled = {{ {} }}\n",
                modules.join(", ")
            );
        }
        out
    }

    /// Replaces the file atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        fsutil::atomic_write(path, self.render(path).as_bytes())
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

/// Hosts for which prosody.cfg.lua (the admin's file, not ours) sets its
/// own `modules_enabled`. A later section of ours replaces that list
/// (Prosody keeps the last assignment), so modman must say so before
/// writing one. A plain scan of section headers; Includes are not followed.
pub fn hosts_with_own_list(prosody_cfg: &str) -> BTreeSet<String> {
    let mut hosts = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in prosody_cfg.lines().map(str::trim) {
        let code = line.split("--").next().unwrap_or_default().trim();
        if let Some(rest) = code
            .strip_prefix("VirtualHost")
            .or_else(|| code.strip_prefix("Component"))
        {
            current = rest.split('"').nth(1).map(str::to_owned);
        } else if code
            .strip_prefix("modules_enabled")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            hosts.extend(current.clone());
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ManagedConfig {
        let mut config = ManagedConfig::default();
        config.hosts.insert(
            "localhost".into(),
            HostModules {
                component: None,
                modules: ["csi_battery_saver", "track_muc_joins"]
                    .map(String::from)
                    .into(),
            },
        );
        config.hosts.insert(
            "conference.localhost".into(),
            HostModules {
                component: Some("muc".into()),
                modules: ["muc_moderation".into()].into(),
            },
        );
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
        ] {
            assert!(ManagedConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_host_level_lists_in_the_admins_config() {
        let cfg = "modules_enabled = { \"roster\" }\nVirtualHost \"a.org\"\n  -- modules_enabled = { }\nVirtualHost \"b.org\"\n    modules_enabled = { \"mam\" }\nComponent \"c.b.org\" \"muc\"\n";
        assert_eq!(
            hosts_with_own_list(cfg),
            BTreeSet::from(["b.org".to_owned()])
        );
    }
}
