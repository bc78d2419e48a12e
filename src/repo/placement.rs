//! Which files a module or library may put in modman's module directory,
//! derived from Prosody's plugin loader (`util/pluginloader.lua`, the same
//! in 0.12 and 13). modman's directory is searched before Prosody's own,
//! so a file there that the loader finds for another module replaces that
//! module at its next load.
//!
//! For plugin `P` and resource `R` (`mod_P.lua` for the module itself,
//! `L.lib.lua` for `module:require "L"`), each plugin directory is tried
//! with, in order:
//!
//! ```text
//! mod_P/P/R   mod_P/R   P/R   R   share/lua/<ver>/R   share/lua/<ver>/mod_P/R
//! ```
//!
//! and `module:require "L"` falls back to plugin `L` itself (`L/L.lib.lua`).
//! Prosody also adds the LuaRocks tree of its installer directory
//! (`share/lua/<ver>/?.lua`, `lib/lua/<ver>/?.so`) to Lua's own search
//! paths. So a file's first path component says whom it is found for:
//! `mod_P/` is module `P`'s, `P/` is plugin or library `P`'s, and a file at
//! the top or under `share/` or `lib/` is found for any module.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where Prosody looks for module `name` inside one plugin directory, in
/// its own order (util/pluginloader.lua). The LuaRocks layouts under
/// `share/lua/5.4/`, which only `prosodyctl install` writes, are left out.
pub fn module_file_candidates(name: &str) -> [String; 4] {
    [
        format!("mod_{name}/{name}/mod_{name}.lua"),
        format!("mod_{name}/mod_{name}.lua"),
        format!("{name}/mod_{name}.lua"),
        format!("mod_{name}.lua"),
    ]
}

/// Whether `dir` holds module `name` in a layout Prosody loads.
pub fn has_module(dir: &Path, name: &str) -> bool {
    module_file_candidates(name)
        .iter()
        .any(|c| dir.join(c).is_file())
}

/// A plugin directory with its top-level names, read once, for many
/// questions of [`has_module`]: a layout whose first name the directory
/// does not hold cannot be there, so only the others are stat'ed (through
/// symlinks, as Prosody's loader follows them). A plan of 250 modules
/// asked Prosody's module directory 1,000 stats, one path walk each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleDir {
    path: PathBuf,
    /// `None` when the directory could not be listed: then every layout
    /// is stat'ed, as [`has_module`] does.
    names: Option<BTreeSet<OsString>>,
}

impl ModuleDir {
    /// Lists `path` now.
    pub fn read(path: &Path) -> ModuleDir {
        let names = std::fs::read_dir(path).ok().map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
                .collect()
        });
        ModuleDir {
            path: path.to_owned(),
            names,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`has_module`] of this directory, as it was listed.
    pub fn has_module(&self, name: &str) -> bool {
        module_file_candidates(name).iter().any(|candidate| {
            let first = candidate.split('/').next().unwrap_or(candidate);
            let listed = match &self.names {
                Some(names) => names.contains(std::ffi::OsStr::new(first)),
                None => true,
            };
            listed && self.path.join(candidate).is_file()
        })
    }
}

/// Whom Prosody's loader finds a file for, by its path in a plugin
/// directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundFor<'a> {
    /// `mod_P/...`: the module `P` (`mod_P/P/R`, `mod_P/R`).
    Module(&'a str),
    /// `P/...`: plugin `P`'s resources (`P/R`), which is also where
    /// `module:require "P"` finds the library `P`.
    Named(&'a str),
    /// A file at the top, or under `share/` or `lib/`: any module's
    /// resource, or any Lua `require`.
    Every,
}

/// The top-level directories Prosody's loader and Lua's search paths read
/// for every module.
const SHARED_DIRS: [&str; 2] = ["share", "lib"];

/// Whom the loader finds the file at `path` (relative to a plugin
/// directory) for.
pub fn found_for(path: &str) -> FoundFor<'_> {
    match path.split_once('/') {
        None => FoundFor::Every,
        Some((first, _)) if SHARED_DIRS.contains(&first) => FoundFor::Every,
        Some((first, _)) => match first.strip_prefix("mod_") {
            Some(module) => FoundFor::Module(module),
            None => FoundFor::Named(first),
        },
    }
}

/// What is being installed: the module `P` (in `mod_P/`) or the Lua
/// library `L` (in `L/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Module(&'a str),
    Library(&'a str),
}

impl Owner<'_> {
    /// Its directory in the module directory.
    pub fn dir(&self) -> String {
        match self {
            Owner::Module(name) => format!("mod_{name}"),
            Owner::Library(name) => (*name).to_owned(),
        }
    }
}

impl std::fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Module(name) => write!(f, "the module {name}"),
            Owner::Library(name) => write!(f, "the library {name}"),
        }
    }
}

/// Why a file may not go where it would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Misplaced {
    #[error("`{path}` is where Prosody's loader looks for every module's files (a top-level file, or the LuaRocks tree `share/` or `lib/`), so it could replace Prosody's own modules")]
    Shared { path: String },
    #[error("`{path}` is where Prosody's loader looks for the files of `{other}`, another module or library")]
    Elsewhere { path: String, other: String },
    #[error("`{path}` would make Prosody load the library as a module named `{library}`")]
    LibraryAsModule { path: String, library: String },
    #[error("the library is named `{library}`, like a module Prosody already has: its directory would be searched for that module's files first")]
    ModuleName { library: String },
}

/// Checks that every one of `files` (paths relative to `owner`'s
/// directory) is found by Prosody's loader for `owner` only, and that a
/// library is not named after a module `has_module` says Prosody already
/// has (its own or another directory's).
pub fn check(
    owner: Owner<'_>,
    files: &[String],
    has_module: &dyn Fn(&str) -> bool,
) -> Result<(), Misplaced> {
    let dir = owner.dir();
    if let Owner::Library(library) = owner {
        if has_module(library) {
            return Err(Misplaced::ModuleName {
                library: library.to_owned(),
            });
        }
    }
    for file in files {
        let path = format!("{dir}/{file}");
        match (found_for(&path), owner) {
            (FoundFor::Every, _) => return Err(Misplaced::Shared { path }),
            (FoundFor::Module(found), Owner::Module(own)) if found == own => {}
            (FoundFor::Named(found), Owner::Library(own)) if found == own => {
                if *file == format!("mod_{own}.lua") {
                    return Err(Misplaced::LibraryAsModule {
                        path,
                        library: own.to_owned(),
                    });
                }
            }
            (FoundFor::Module(other) | FoundFor::Named(other), _) => {
                let other = other.to_owned();
                return Err(Misplaced::Elsewhere { path, other });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path the loader tries for plugin `version` with resource
    /// `mod_version.lua`, and for `module:require "ldap"` from plugin
    /// `demo`, with whom each is found for.
    #[test]
    fn the_loaders_patterns_are_found_for_whom_they_serve() {
        let cases = [
            (
                "mod_version/version/mod_version.lua",
                FoundFor::Module("version"),
            ),
            ("mod_version/mod_version.lua", FoundFor::Module("version")),
            ("version/mod_version.lua", FoundFor::Named("version")),
            ("mod_version.lua", FoundFor::Every),
            ("share/lua/5.4/mod_version.lua", FoundFor::Every),
            ("share/lua/5.4/mod_version/mod_version.lua", FoundFor::Every),
            ("lib/lua/5.4/lfs.so", FoundFor::Every),
            ("mod_demo/demo/ldap.lib.lua", FoundFor::Module("demo")),
            ("mod_demo/ldap.lib.lua", FoundFor::Module("demo")),
            ("demo/ldap.lib.lua", FoundFor::Named("demo")),
            ("ldap.lib.lua", FoundFor::Every),
            ("ldap/ldap.lib.lua", FoundFor::Named("ldap")),
            ("mod_ldap/ldap.lib.lua", FoundFor::Module("ldap")),
        ];
        for (path, expected) in cases {
            assert_eq!(found_for(path), expected, "{path}");
        }
    }

    #[test]
    fn a_module_or_library_may_only_place_what_is_found_for_it() {
        let none = |_: &str| false;
        let shipped = |name: &str| matches!(name, "version" | "saslauth");
        let files = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let module = Owner::Module("demo");
        let ok = files(&["mod_demo.lua", "res/page.html", "share/lua/5.4/x.lua"]);
        assert_eq!(check(module, &ok, &shipped), Ok(()));
        let ldap = Owner::Library("ldap");
        assert_eq!(
            check(ldap, &files(&["ldap.lib.lua", "vcard.lib.lua"]), &shipped),
            Ok(())
        );

        let refused = [
            (
                Owner::Library("share"),
                "lua/5.4/mod_version.lua",
                Misplaced::Shared {
                    path: "share/lua/5.4/mod_version.lua".into(),
                },
            ),
            (
                Owner::Library("lib"),
                "lua/5.4/lfs.so",
                Misplaced::Shared {
                    path: "lib/lua/5.4/lfs.so".into(),
                },
            ),
            (
                Owner::Library("version"),
                "version.lib.lua",
                Misplaced::ModuleName {
                    library: "version".into(),
                },
            ),
            (
                Owner::Library("mod_version"),
                "x.lua",
                Misplaced::Elsewhere {
                    path: "mod_version/x.lua".into(),
                    other: "version".into(),
                },
            ),
            (
                Owner::Library("ldap"),
                "mod_ldap.lua",
                Misplaced::LibraryAsModule {
                    path: "ldap/mod_ldap.lua".into(),
                    library: "ldap".into(),
                },
            ),
        ];
        for (owner, file, expected) in refused {
            assert_eq!(check(owner, &files(&[file]), &shipped), Err(expected));
        }
        // Without knowing Prosody's modules, the tree is still refused.
        let share = check(Owner::Library("share"), &files(&["x.lua"]), &none);
        assert!(matches!(share, Err(Misplaced::Shared { .. })), "{share:?}");
    }
}
