//! `installed.json` in `state_dir`: what modman installed, from where,
//! when and for whom. Modules in `modules_dir` that are not listed here
//! are unmanaged, and modman never touches them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// One module modman installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledModule {
    pub version: String,
    /// SHA-256 of the archive it came from: the identity of this copy.
    pub sha256: String,
    /// The repository's name in modman.toml.
    pub repository: String,
    /// RFC 3339.
    pub installed_at: String,
    /// The JID (or `cli:USER`) that asked for it.
    pub installed_by: String,
    /// Relative to the module directory, sorted.
    pub files: Vec<String>,
    /// Modules it declares with `module:depends`, so `remove` can tell
    /// what would break without asking a repository.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Set for a Lua library other modules load with `module:require`
    /// (a LuaRocks library rock such as mod_lib_ldap: `ldap`): its files
    /// live in `modules_dir/LIBRARY/`, where Prosody finds them by the
    /// library's name, and it is never enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
    /// Set while an admin keeps this copy where it is (`hold`): `update`
    /// leaves it alone and no notice offers it another. Kept with the
    /// record, so it goes when the module is removed and comes back with
    /// it when a rollback restores this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Hold>,
}

/// Who keeps a module at its version, since when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The JID (or `cli:USER`) that held it.
    pub by: String,
    /// RFC 3339.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Why a module is held, as an admin wrote it: text from outside, so one
/// line, without control characters, at most [`Reason::MAX_CHARS`]; it is
/// shown to every admin in `list`, `info` and the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    /// Longest reason kept, in characters: a sentence, not a document.
    pub const MAX_CHARS: usize = 200;

    /// The reason `text` gives, cleaned; `Err` says why it is refused
    /// (empty, or too long).
    pub fn new(text: &str) -> Result<Reason, String> {
        let text = crate::clean::one_line(&crate::clean::clean(text));
        let text = text.trim_matches('"').trim();
        match text.chars().count() {
            0 => Err("the reason is empty".to_owned()),
            n if n > Reason::MAX_CHARS => Err(format!(
                "the reason is {n} characters long; at most {} are kept, so say it shorter",
                Reason::MAX_CHARS
            )),
            _ => Ok(Reason(text.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = String;
    fn try_from(text: String) -> Result<Reason, String> {
        Reason::new(&text)
    }
}

impl From<Reason> for String {
    fn from(reason: Reason) -> String {
        reason.0
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
impl InstalledModule {
    /// A copy of `version` from `repository`, its SHA-256 `hash` repeated,
    /// with no files, for tests.
    pub(crate) fn for_test(repository: &str, version: &str, hash: char) -> InstalledModule {
        InstalledModule {
            version: version.into(),
            sha256: hash.to_string().repeat(64),
            repository: repository.into(),
            installed_at: String::new(),
            installed_by: String::new(),
            files: vec![],
            dependencies: vec![],
            library: None,
            held: None,
        }
    }
}

impl InstalledModule {
    /// Its directory in `modules_dir`: `mod_NAME`, or a library's name.
    pub fn directory(&self, name: &str) -> String {
        match &self.library {
            Some(library) => library.clone(),
            None => format!("mod_{name}"),
        }
    }
}

/// All managed modules by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub modules: BTreeMap<String, InstalledModule>,
}

const FILE: &str = "installed.json";

impl Installed {
    /// Reads the state; no file yet means nothing is installed.
    pub fn load(state_dir: &Path) -> std::io::Result<Installed> {
        load_json(
            &state_dir.join(FILE),
            "restore it from a backup or remove it to forget what modman installed",
        )
    }

    /// Replaces the state file atomically.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        save_json(&state_dir.join(FILE), self)
    }

    /// The state file's bytes, for [`Self::pending`].
    pub fn serialized(&self) -> std::io::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(std::io::Error::other)
    }

    /// The state file's replacement holding `serialized` (this state's
    /// [`Self::serialized`]), written but neither synced nor in place: the
    /// file transaction makes it durable with its staged files and
    /// renames it in at its commit point.
    pub fn pending(state_dir: &Path, serialized: &[u8]) -> std::io::Result<fsutil::Pending> {
        fsutil::write_pending(&state_dir.join(FILE), serialized)
    }
}

/// Reads a state file of modman's own; no file yet is the default. A
/// damaged one is an error naming it and `what_to_do`.
fn load_json<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
    what_to_do: &str,
) -> std::io::Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is damaged ({e}); {what_to_do}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e),
    }
}

/// Replaces a state file atomically.
fn save_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    fsutil::atomic_write(path, &bytes)
}

/// `pulled_in.json` in `state_dir`: modules Prosody loaded, per host
/// (`*`: globally), only because a module modman enabled depends on them
/// (`module:depends`), and that were not loaded before. modman unloads
/// one once nothing needs it any more; a module the admin loaded or
/// enabled is never in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PulledIn(pub BTreeMap<String, BTreeSet<String>>);

const PULLED_IN_FILE: &str = "pulled_in.json";

impl PulledIn {
    /// Reads the record; no file yet means nothing was pulled in.
    pub fn load(state_dir: &Path) -> std::io::Result<PulledIn> {
        load_json(
            &state_dir.join(PULLED_IN_FILE),
            "remove it, and modman will no longer unload the modules that modules it enabled pulled in",
        )
    }

    /// Replaces the record atomically.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        save_json(&state_dir.join(PULLED_IN_FILE), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_one_clean_bounded_line() {
        let reason = Reason::new("  \"breaks with\n our\u{1b}[2J LDAP\"  ").unwrap();
        assert!(crate::clean::is_clean(reason.as_str()));
        assert!(!reason.as_str().contains('\n'));
        assert!(reason.as_str().starts_with("breaks with our"));
        assert!(Reason::new(" \"\" ").is_err());
        assert!(Reason::new(&"x".repeat(Reason::MAX_CHARS + 1)).is_err());
        // Read back through the same checks.
        let stored = format!("\"{}\"", "y".repeat(Reason::MAX_CHARS + 1));
        assert!(serde_json::from_str::<Reason>(&stored).is_err());
    }
}
