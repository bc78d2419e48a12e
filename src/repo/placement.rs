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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

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
    found_in(dir, name, |_| true)
}

/// [`has_module`], stat'ing only the layouts whose first name `may_hold`
/// says the directory may hold.
fn found_in(dir: &Path, name: &str, may_hold: impl Fn(&str) -> bool) -> bool {
    module_file_candidates(name).iter().any(|candidate| {
        let first = candidate.split('/').next().unwrap_or(candidate);
        may_hold(first) && dir.join(candidate).is_file()
    })
}

/// A plugin directory asked [`has_module`] many times, as a plan of many
/// modules asks Prosody's own: past the first few questions it lists the
/// directory's top-level names once, and then a layout whose first name
/// the directory does not hold is known absent without a stat; the others
/// are still stat'ed (through symlinks, as Prosody's loader follows them).
/// A plan of 250 modules asked 1,000 stats, one path walk each; a plan of
/// one module still asks its four, cheaper than listing 170 names.
#[derive(Debug)]
pub struct ModuleDir {
    path: PathBuf,
    /// Questions asked so far, up to [`STATS_BEFORE_LISTING`].
    asked: AtomicUsize,
    /// The top-level names, once listed; `None` inside when the directory
    /// could not be listed, and then every layout is stat'ed.
    names: OnceLock<Option<BTreeSet<OsString>>>,
}

/// Questions [`ModuleDir`] answers by stats alone before it lists: eight
/// modules' 32 stats cost about what one listing of Prosody's directory
/// does.
const STATS_BEFORE_LISTING: usize = 8;

impl ModuleDir {
    /// `path`, listed when it is asked enough.
    pub fn new(path: &Path) -> ModuleDir {
        ModuleDir {
            path: path.to_owned(),
            asked: AtomicUsize::new(0),
            names: OnceLock::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`has_module`] of this directory.
    pub fn has_module(&self, name: &str) -> bool {
        if self.asked.fetch_add(1, Ordering::Relaxed) < STATS_BEFORE_LISTING {
            return has_module(&self.path, name);
        }
        let names = self.names.get_or_init(|| {
            std::fs::read_dir(&self.path).ok().map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
                    .collect()
            })
        });
        found_in(&self.path, name, |first| {
            names
                .as_ref()
                .is_none_or(|names| names.contains(std::ffi::OsStr::new(first)))
        })
    }
}

/// A copy asks afresh: stats first, its own listing later.
impl Clone for ModuleDir {
    fn clone(&self) -> ModuleDir {
        ModuleDir::new(&self.path)
    }
}

/// The same directory.
impl PartialEq for ModuleDir {
    fn eq(&self, other: &ModuleDir) -> bool {
        self.path == other.path
    }
}

impl Eq for ModuleDir {}

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

    /// A directory asked many times answers as stats of each layout do,
    /// symlinks followed as Prosody's loader follows them.
    #[test]
    fn a_directory_asked_many_times_finds_what_its_stats_find() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mod_roster.lua"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("mod_firewall/firewall")).unwrap();
        std::fs::write(
            dir.path().join("mod_firewall/firewall/mod_firewall.lua"),
            "",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("muc")).unwrap();
        std::fs::write(dir.path().join("muc/mod_muc.lua"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("mod_http_upload")).unwrap();
        std::fs::write(elsewhere.path().join("mod_linked.lua"), "").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("mod_linked")).unwrap();
        std::os::unix::fs::symlink("gone", dir.path().join("mod_dangling.lua")).unwrap();
        let names = [
            "roster",
            "firewall",
            "muc",
            "linked",
            "http_upload",
            "dangling",
            "absent",
        ];
        // Asked as a plan of many modules asks it: by stats at first,
        // then from its listing, made once.
        let asked = ModuleDir::new(dir.path());
        for round in ["stats", "listing", "listing"] {
            let found: Vec<&str> = names.into_iter().filter(|n| asked.has_module(n)).collect();
            assert_eq!(found, ["roster", "firewall", "muc", "linked"], "{round}");
        }
        assert!(asked.names.get().is_some_and(Option::is_some));
        // A module added once the listing is made is not seen by it: the
        // facts of a server are learnt for each plan.
        std::fs::write(dir.path().join("mod_new.lua"), "").unwrap();
        assert!(!asked.has_module("new"));
        assert!(ModuleDir::new(dir.path()).has_module("new"));
        // A directory that cannot be listed is asked by stats alone.
        let missing = ModuleDir::new(&dir.path().join("none"));
        for _ in 0..20 {
            assert!(!missing.has_module("roster"));
        }
        assert_eq!(missing.names.get(), Some(&None));
    }

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
