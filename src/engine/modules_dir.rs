//! The modules present in `modules_dir`, in the layouts Prosody loads
//! (see [`crate::prosody::module_file_candidates`]): a directory
//! `DIR/mod_x/` holding `mod_x.lua` or `x/mod_x.lua` with any other files
//! of the module, and a single `DIR/mod_x.lua`.

use std::io;
use std::path::{Path, PathBuf};

/// A module found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModule {
    /// The name without the `mod_` prefix, as in `modules_enabled`.
    pub name: String,
    /// The module's directory, or its single `.lua` file.
    pub path: PathBuf,
    /// Regular files, relative to `path` (just the file name for a single
    /// `.lua`), sorted.
    pub files: Vec<PathBuf>,
}

/// Lists the modules in `dir`, sorted by name. Entries that are not
/// modules (other files, dot-directories such as modman's staging area)
/// are skipped; symbolic links are not followed, so a link cannot make
/// modman read outside the directory.
pub fn scan(dir: &Path) -> io::Result<Vec<LocalModule>> {
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            let Some(name) = file_name.strip_prefix("mod_") else {
                continue;
            };
            let [nested, flat, ..] = crate::prosody::module_file_candidates(name);
            let is_regular = |relative: &str| {
                std::fs::symlink_metadata(dir.join(relative)).is_ok_and(|m| m.is_file())
            };
            if name.is_empty() || !(is_regular(&nested) || is_regular(&flat)) {
                continue;
            }
            let mut files = Vec::new();
            collect_files(&entry.path(), Path::new(""), &mut files)?;
            files.sort();
            modules.push(LocalModule {
                name: name.to_owned(),
                path: entry.path(),
                files,
            });
        } else if file_type.is_file() {
            let Some(name) = file_name
                .strip_prefix("mod_")
                .and_then(|n| n.strip_suffix(".lua"))
            else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            modules.push(LocalModule {
                name: name.to_owned(),
                path: entry.path(),
                files: vec![PathBuf::from(file_name)],
            });
        }
    }
    modules.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(modules)
}

fn collect_files(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(root.join(relative))? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_files(root, &path, out)?;
        } else if file_type.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn finds_both_layouts_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("mod_firewall/definitions")).unwrap();
        fs::write(root.join("mod_firewall/mod_firewall.lua"), "-- main").unwrap();
        fs::write(root.join("mod_firewall/definitions/a.lua"), "").unwrap();
        fs::write(root.join("mod_lastlog.lua"), "").unwrap();
        fs::create_dir(root.join("mod_empty")).unwrap();
        fs::create_dir_all(root.join("mod_auth_dovecot/auth_dovecot")).unwrap();
        fs::write(
            root.join("mod_auth_dovecot/auth_dovecot/mod_auth_dovecot.lua"),
            "",
        )
        .unwrap();
        fs::create_dir(root.join(".modman-staging")).unwrap();
        fs::write(root.join("README"), "").unwrap();
        fs::write(root.join("mod_.lua"), "").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("mod_link")).unwrap();

        let found = scan(root).unwrap();
        let names: Vec<_> = found.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["auth_dovecot", "firewall", "lastlog"]);
        assert_eq!(
            found[0].files,
            [PathBuf::from("auth_dovecot/mod_auth_dovecot.lua")]
        );
        assert_eq!(
            found[1].files,
            [
                PathBuf::from("definitions/a.lua"),
                PathBuf::from("mod_firewall.lua")
            ]
        );
        assert_eq!(found[2].files, [PathBuf::from("mod_lastlog.lua")]);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert_eq!(
            scan(Path::new("/nonexistent/modman")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
