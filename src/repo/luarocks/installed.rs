//! Modules installed by `prosodyctl install`: a LuaRocks tree in Prosody's
//! `installer_plugin_path` ([`crate::config::DEFAULT_INSTALLER_PLUGIN_DIR`]
//! under its data directory), which Prosody searches before every
//! `plugin_paths` entry. The tree's
//! manifest, `lib/luarocks/rocks-5.4/manifest`, says which rocks are
//! installed at which version and which files under `share/lua/5.4/` each
//! one put there; the rock's own directory holds its rockspec and copied
//! directories. modman reads this to show such modules and to leave them
//! alone; it never writes here.

use std::path::{Path, PathBuf};

use super::lua::{self, Value};
use super::{is_module_rock, RockVersion};
use crate::repo::index::is_safe_relative_path;

/// The tree's manifest, relative to the tree.
pub const MANIFEST: &str = "lib/luarocks/rocks-5.4/manifest";

/// One module `prosodyctl install` installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRock {
    /// As in `modules_enabled`: the rock's name without `mod_`.
    pub name: String,
    pub version: RockVersion,
    /// Everything it installed: its Lua files under `share/lua/5.4/`, then
    /// its rock directory (rockspec, copied directories, docs).
    pub paths: Vec<PathBuf>,
}

/// Why the tree could not be read, naming the manifest.
#[derive(Debug, thiserror::Error)]
pub enum InstalledError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Syntax(#[from] lua::SyntaxError),
    #[error("{path}: {problem}")]
    Shape { path: PathBuf, problem: String },
}

/// The modules installed in the LuaRocks tree at `tree`, sorted by name;
/// none when it has no manifest. Rocks that are not Prosody modules
/// (Lua libraries pulled in as dependencies) are left out.
pub fn read(tree: &Path) -> Result<Vec<InstalledRock>, InstalledError> {
    let path = tree.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => return Err(InstalledError::Io { path, source }),
    };
    let shape = |problem: String| InstalledError::Shape {
        path: path.clone(),
        problem,
    };
    let globals = lua::parse(&path.display().to_string(), &text)?;
    let Some(repository) = globals.get("repository").and_then(Value::as_table) else {
        return Err(shape("no `repository` table".into()));
    };
    let mut installed = Vec::new();
    for (package, versions) in &repository.fields {
        let Some(name) = package
            .strip_prefix("mod_")
            .filter(|_| is_module_rock(package))
        else {
            continue;
        };
        let versions = versions
            .as_table()
            .ok_or_else(|| shape(format!("repository[\"{package}\"] is not a table")))?;
        for (version_text, entries) in &versions.fields {
            let version = RockVersion::parse(version_text)
                .ok_or_else(|| shape(format!("{package} version `{version_text}` is not N-R")))?;
            let mut paths = Vec::new();
            let entries = entries
                .as_table()
                .map(|t| t.items.as_slice())
                .unwrap_or_default();
            for entry in entries.iter().filter_map(Value::as_table) {
                let modules = entry.get("modules").and_then(Value::as_table);
                for file in modules.into_iter().flat_map(|m| m.fields.values()) {
                    let file = file
                        .as_str()
                        .filter(|f| is_safe_relative_path(f))
                        .ok_or_else(|| {
                            shape(format!("{package} lists a module file outside the tree"))
                        })?;
                    paths.push(tree.join("share/lua/5.4").join(file));
                }
            }
            paths.sort();
            paths.push(
                tree.join("lib/luarocks/rocks-5.4")
                    .join(package)
                    .join(version_text),
            );
            installed.push(InstalledRock {
                name: name.to_owned(),
                version,
                paths,
            });
        }
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As `luarocks --tree` (which `prosodyctl install` runs) writes it.
    const MANIFEST_TEXT: &str = r#"commands = {}
dependencies = {
   mod_invites_page = {
      ["1-1"] = {
         { constraints = { { op = ">=", version = { 5, 1, string = "5.1" } } }, name = "lua" },
         { constraints = {}, name = "mod_register_apps" }
      }
   }
}
modules = { ldap = { "mod_lib_ldap/1-1" }, mod_invites_page = { "mod_invites_page/1-1" } }
repository = {
   luasocket = { ["3.1.0-1"] = { { arch = "installed", modules = { socket = "socket.lua" } } } },
   mod_invites_page = {
      ["1-1"] = {
         { arch = "installed", commands = {}, dependencies = {},
           modules = { mod_invites_page = "mod_invites_page.lua" } }
      }
   },
   mod_lib_ldap = {
      ["35-2"] = {
         { arch = "installed", commands = {}, dependencies = {}, modules = { ldap = "ldap.lua" } }
      }
   }
}
"#;

    #[test]
    fn reads_what_prosodyctl_installed() {
        let tree = tempfile::tempdir().unwrap();
        assert_eq!(read(tree.path()).unwrap(), []);
        let manifest = tree.path().join(MANIFEST);
        std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
        std::fs::write(&manifest, MANIFEST_TEXT).unwrap();
        let installed = read(tree.path()).unwrap();
        let names: Vec<(&str, String)> = installed
            .iter()
            .map(|r| (r.name.as_str(), r.version.to_string()))
            .collect();
        assert_eq!(
            names,
            [("invites_page", "1-1".into()), ("lib_ldap", "35-2".into())]
        );
        assert_eq!(
            installed[1].paths,
            [
                tree.path().join("share/lua/5.4/ldap.lua"),
                tree.path().join("lib/luarocks/rocks-5.4/mod_lib_ldap/35-2"),
            ]
        );
    }

    #[test]
    fn a_manifest_pointing_outside_the_tree_is_refused() {
        let tree = tempfile::tempdir().unwrap();
        let manifest = tree.path().join(MANIFEST);
        std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
        let evil = MANIFEST_TEXT.replace("\"ldap.lua\"", "\"../../../../etc/passwd\"");
        std::fs::write(&manifest, evil).unwrap();
        let error = read(tree.path()).unwrap_err().to_string();
        assert!(
            error.contains("mod_lib_ldap lists a module file outside the tree"),
            "{error}"
        );
        std::fs::write(&manifest, "repository = io.open('/etc/passwd')").unwrap();
        let error = read(tree.path()).unwrap_err().to_string();
        assert!(error.contains("rocks-5.4/manifest, line 1"), "{error}");
    }
}
