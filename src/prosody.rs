//! Facts about Prosody (0.12 and 13) that more than one part of modman
//! relies on: where it finds a module, and what a running server already
//! has, so a community module is checked against it before it is
//! installed.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::repo::index::ModuleEntry;

/// Where Prosody finds a module's file: its plugin loader's rule, kept
/// with the rest of that rule in [`crate::repo::placement`].
pub use crate::repo::placement::{has_module, module_file_candidates, ModuleDir};

/// What the running server already has, asked from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// Prosody's own module directory (`prosody.builtin_modules`), listed
    /// when the facts were learnt.
    pub builtin: ModuleDir,
    /// `core.features`: on 13 it names the community modules Prosody took
    /// in (`mod_flags`, `mod_cloud_notify`...) and capabilities that
    /// `--% requires:` headers name.
    pub features: BTreeSet<String>,
    /// The Lua Prosody runs on, such as `5.4`.
    pub lua: String,
}

impl ServerFacts {
    /// Whether `core.features` names `mod_NAME`: the module is part of
    /// this Prosody (as mod_flags is of 13), not a community add-on.
    pub fn has_feature_module(&self, name: &str) -> bool {
        self.features.contains(&format!("mod_{name}"))
    }

    /// Why installing `entry` from a repository would not do what the
    /// admin expects on this server; empty when nothing stands against
    /// it. [`Objection::refused`] tells the ones Prosody itself enforces.
    pub fn objections(&self, entry: &ModuleEntry) -> Vec<Objection> {
        let name = &entry.name;
        let mut objections = Vec::new();
        let headers = &entry.headers;
        if !headers.lua.is_empty() && !headers.lua.contains(&self.lua) {
            objections.push(Objection::Lua {
                running: self.lua.clone(),
                supported: headers.lua.clone(),
            });
        }
        let conflicting: Vec<String> = headers
            .conflicts
            .iter()
            .filter(|f| self.features.contains(*f))
            .cloned()
            .collect();
        if !conflicting.is_empty() {
            objections.push(Objection::Conflicts(conflicting));
        }
        let missing: Vec<String> = headers
            .requires
            .iter()
            .filter(|f| !self.features.contains(*f))
            .cloned()
            .collect();
        if !missing.is_empty() {
            objections.push(Objection::MissingFeatures(missing));
        }
        if self.has_feature_module(name) {
            objections.push(Objection::BuiltIn(Shipped::Feature));
        } else if self.builtin.has_module(name) {
            objections.push(Objection::BuiltIn(shipped_in(self.builtin.path(), name)));
        }
        match entry.stage.as_deref() {
            Some("merged") => objections.push(Objection::Merged),
            Some("obsolete") => objections.push(Objection::Obsolete),
            _ => {}
        }
        objections
    }
}

/// How the server already has a module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shipped {
    /// Declared in `core.features` (`mod_flags` on 13): part of Prosody.
    Feature,
    /// A module of that name in Prosody's own module directory.
    Directory(PathBuf),
    /// A community module that Debian's prosody-modules package put in
    /// Prosody's own module directory (`dir`), at the package's version:
    /// not part of Prosody, though it sits among Prosody's modules.
    Debian { dir: PathBuf, version: String },
}

impl Shipped {
    /// Whose module it is, as `list`, `info` and the enable form label it:
    /// a community module from Debian's package is not Prosody's own,
    /// though it sits in Prosody's directory.
    pub fn whose(&self) -> &'static str {
        match self {
            Shipped::Debian { .. } => "Debian's prosody-modules",
            Shipped::Feature | Shipped::Directory(_) => "Prosody's own",
        }
    }
}

/// How `name`, found in Prosody's module directory `dir`, got there: by
/// Debian's prosody-modules (its dpkg file list says so) or with Prosody.
pub fn shipped_in(dir: &Path, name: &str) -> Shipped {
    match crate::repo::debian::installed_for(dir) {
        Some(package) if package.has(name) => Shipped::Debian {
            dir: dir.to_owned(),
            version: package.version.clone(),
        },
        _ => Shipped::Directory(dir.to_owned()),
    }
}

/// One reason against installing a community module on this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Objection {
    /// `--% lua:` names other Lua versions: Prosody will not load it.
    Lua {
        running: String,
        supported: Vec<String>,
    },
    /// `--% conflicts:` names features this server has: Prosody will not
    /// load it (and keeps its own module of that name, if any).
    Conflicts(Vec<String>),
    /// `--% requires:` names features this server lacks: Prosody will not
    /// load it.
    MissingFeatures(Vec<String>),
    /// The server already has a module of this name; a community copy in
    /// a plugin path comes first and replaces it silently.
    BuiltIn(Shipped),
    /// Labelled Stage-Merged: its function is in Prosody now.
    Merged,
    /// Labelled Stage-Obsolete.
    Obsolete,
}

impl Objection {
    /// Whether Prosody itself refuses to load the module: installing it
    /// can only leave files that never run.
    pub fn refused(&self) -> bool {
        matches!(
            self,
            Objection::Lua { .. } | Objection::Conflicts(_) | Objection::MissingFeatures(_)
        )
    }
}

impl fmt::Display for Objection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Objection::Lua { running, supported } => write!(
                f,
                "it runs only on Lua {} and this Prosody runs Lua {running}, so Prosody will not load it",
                supported.join(", ")
            ),
            Objection::Conflicts(features) => write!(
                f,
                "it conflicts with {}, which this Prosody has built in, so Prosody will not load it and keeps its own",
                features.join(", ")
            ),
            Objection::MissingFeatures(features) => write!(
                f,
                "it requires {}, which this Prosody lacks, so Prosody will not load it; it needs a newer Prosody",
                features.join(", ")
            ),
            Objection::BuiltIn(Shipped::Feature) => f.write_str(
                "this Prosody has it built in; a community copy would replace the built-in one silently, so use Prosody's own (just enable it)",
            ),
            Objection::BuiltIn(Shipped::Directory(dir)) => write!(
                f,
                "this Prosody already has a module of that name in {}; a community copy would replace it silently, so enable that one unless you need this version",
                dir.display()
            ),
            Objection::BuiltIn(Shipped::Debian { dir, version }) => write!(
                f,
                "Debian's prosody-modules ({version}) has it in {}; a copy from a repository would replace it silently, so enable that one unless you need this version",
                dir.display()
            ),
            Objection::Merged => f.write_str(
                "its README marks it Stage-Merged: what it does is part of Prosody now",
            ),
            Objection::Obsolete => f.write_str("its README marks it Stage-Obsolete"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::index::Headers;

    fn facts(dir: &Path, features: &[&str]) -> ServerFacts {
        ServerFacts {
            builtin: ModuleDir::new(dir),
            features: features.iter().map(|f| f.to_string()).collect(),
            lua: "5.4".into(),
        }
    }

    fn entry(name: &str, headers: Headers, stage: Option<&str>) -> ModuleEntry {
        ModuleEntry {
            headers,
            stage: stage.map(str::to_owned),
            ..crate::repo::index::tests::entry(name)
        }
    }

    #[test]
    fn finds_a_module_in_every_layout_prosody_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mod_roster.lua"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("mod_firewall")).unwrap();
        std::fs::write(dir.path().join("mod_firewall/mod_firewall.lua"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("muc")).unwrap();
        std::fs::write(dir.path().join("muc/mod_muc.lua"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("mod_http_upload")).unwrap();
        std::fs::write(dir.path().join("ldap.lib.lua"), "").unwrap();
        for name in ["firewall", "muc", "roster"] {
            assert!(has_module(dir.path(), name), "{name}");
        }
        for name in ["http_upload", "ldap.lib", "ldap"] {
            assert!(!has_module(dir.path(), name), "{name}");
        }
    }

    /// The 2025 mod_flags on Prosody 13 (features as 13.0.1 declares them)
    /// and on 0.12 (only mod_bookmarks).
    #[test]
    fn a_conflicting_module_is_refused_and_a_built_in_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let flags = entry(
            "flags",
            Headers {
                conflicts: vec!["mod_flags".into()],
                ..Headers::default()
            },
            None,
        );
        let on_13 = facts(dir.path(), &["mod_flags", "mod_cloud_notify", "loader"]);
        let objections = on_13.objections(&flags);
        assert_eq!(
            objections,
            [
                Objection::Conflicts(vec!["mod_flags".into()]),
                Objection::BuiltIn(Shipped::Feature)
            ]
        );
        assert!(objections[0].refused() && !objections[1].refused());
        assert!(objections[0]
            .to_string()
            .contains("Prosody will not load it"));
        let on_0_12 = facts(dir.path(), &["mod_bookmarks"]);
        assert_eq!(on_0_12.objections(&flags), []);

        // Facts are learnt for each plan.
        std::fs::write(dir.path().join("mod_cloud_notify.lua"), "").unwrap();
        let on_0_12 = facts(dir.path(), &["mod_bookmarks"]);
        let cloud_notify = entry("cloud_notify", Headers::default(), None);
        assert_eq!(
            on_0_12.objections(&cloud_notify),
            [Objection::BuiltIn(Shipped::Directory(
                dir.path().to_owned()
            ))]
        );
    }

    #[test]
    fn requirements_lua_versions_and_stage_labels() {
        let dir = tempfile::tempdir().unwrap();
        let server = facts(dir.path(), &["loader"]);
        let needs = entry(
            "needs",
            Headers {
                requires: vec!["loader".into(), "split-user-roles".into()],
                lua: vec!["5.2".into(), "5.3".into()],
                ..Headers::default()
            },
            Some("obsolete"),
        );
        let objections = server.objections(&needs);
        assert_eq!(
            objections,
            [
                Objection::Lua {
                    running: "5.4".into(),
                    supported: vec!["5.2".into(), "5.3".into()]
                },
                Objection::MissingFeatures(vec!["split-user-roles".into()]),
                Objection::Obsolete,
            ]
        );
        assert_eq!(
            server.objections(&entry("merged", Headers::default(), Some("merged"))),
            [Objection::Merged]
        );
        assert!(server
            .objections(&entry(
                "fine",
                Headers {
                    lua: vec!["5.4".into()],
                    ..Headers::default()
                },
                Some("beta")
            ))
            .is_empty());
    }
}

/// Whether Prosody holds back small writes (Nagle's algorithm), as its
/// global `network_settings` decides: on unless `nagle = false`. On, a
/// reply that leaves in pieces waits for the client's delayed ACK, about
/// 40 ms; it made one install + enable over XMPP 73 ms instead of 16 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nagle {
    On,
    Off,
}

impl Nagle {
    /// The global option that turns it off, as setup writes it.
    pub const OFF_SETTING: &'static str = "network_settings = { nagle = false }";

    /// From the value of `network_settings` as Prosody's admin shell or
    /// prosody.cfg.lua writes it (a Lua table, or nothing when unset).
    pub fn from_network_settings(value: &str) -> Nagle {
        let code: String = value
            .lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .collect::<String>()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        match code.contains("nagle=false") {
            true => Nagle::Off,
            false => Nagle::On,
        }
    }
}

#[cfg(test)]
mod nagle_tests {
    use super::Nagle;

    #[test]
    fn nagle_is_off_only_when_network_settings_says_so() {
        for (value, nagle) in [
            ("OK: nil", Nagle::On),
            ("{ nagle = true }", Nagle::On),
            ("{ -- nagle = false\n}", Nagle::On),
            (Nagle::OFF_SETTING, Nagle::Off),
            (
                "OK: {\n\tnagle = false;\n\ttcp_backlog = 128;\n}",
                Nagle::Off,
            ),
        ] {
            assert_eq!(Nagle::from_network_settings(value), nagle, "{value}");
        }
    }
}
