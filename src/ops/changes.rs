//! What an update changes, shown before the admin says yes: for each
//! `from -> to`, the commits in between (the change log `repo build`
//! recorded), the files changed with lines added and removed (the copy on
//! disk against the new archive, downloaded and verified), dependencies
//! and options that come or go, and the compatibility table's changes.
//! Computed here once; the question renders it as text, form fields and
//! JSON. Each part is bounded, so a question still fits one reply.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::updates::Direction;
use crate::engine::copy::CopyFile;
use crate::engine::state::InstalledModule;
use crate::linediff;
use crate::repo::archive::ArchiveFile;
use crate::repo::index::{Change, ModuleEntry};
use crate::repo::metadata;
use crate::repo::options::module_options;

/// Files listed one by one at most; the rest are counted.
const MAX_FILES: usize = 40;

/// What one `from -> to` changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub module: String,
    pub from: String,
    pub to: String,
    /// Whether `to` is later or earlier than `from` (see
    /// [`super::updates::direction`]).
    pub direction: Direction,
    /// The commits after the installed copy, newest first, as far as the
    /// repository recorded them.
    pub log: Vec<Change>,
    /// Files that differ, by path, at most [`MAX_FILES`].
    pub files: Vec<FileChange>,
    /// Files that differ beyond those listed.
    pub more_files: usize,
    /// Lines added and removed over every file compared.
    pub added: usize,
    pub removed: usize,
    pub dependencies: Comes,
    pub options: Comes,
    /// Compatibility rows whose status changed, came or went.
    pub compatibility: Vec<CompatibilityChange>,
}

/// Names that come and names that go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comes {
    pub new: Vec<String>,
    pub dropped: Vec<String>,
}

impl Comes {
    fn between(before: BTreeSet<String>, after: BTreeSet<String>) -> Comes {
        Comes {
            new: after.difference(&before).cloned().collect(),
            dropped: before.difference(&after).cloned().collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.new.is_empty() && self.dropped.is_empty()
    }
}

/// How one file differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub kind: FileChangeKind,
    /// Lines added and removed; zero for a file compared by bytes alone.
    pub added: usize,
    pub removed: usize,
}

/// Whether a file comes, goes or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChangeKind {
    New,
    Dropped,
    Changed,
    /// Changed, but not text (or too large to read): compared by bytes.
    ChangedBinary,
}

impl FileChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileChangeKind::New => "new",
            FileChangeKind::Dropped => "dropped",
            FileChangeKind::Changed => "changed",
            FileChangeKind::ChangedBinary => "changed_binary",
        }
    }
}

/// One row of the README's Compatibility table, before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibilityChange {
    pub prosody: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One file on each side: its bytes, or `None` when it could not be read.
pub type Sides<'a> = BTreeMap<&'a str, (Option<Option<&'a [u8]>>, Option<Option<&'a [u8]>>)>;

/// Both copies' files by path: (installed, new), each absent (`None`) or
/// present with its bytes if read.
pub fn sides<'a>(installed: &'a [CopyFile], new: &'a [ArchiveFile]) -> Sides<'a> {
    let mut sides: Sides = BTreeMap::new();
    for file in installed {
        sides.entry(&file.path).or_default().0 = Some(file.data.as_deref());
    }
    for file in new {
        sides.entry(&file.path).or_default().1 = Some(Some(&file.data));
    }
    sides
}

/// The texts of a file on both sides, when both are UTF-8 (an absent
/// side is empty); `None` for a binary or unread one.
pub fn texts<'a>(
    before: Option<Option<&'a [u8]>>,
    after: Option<Option<&'a [u8]>>,
) -> Option<(&'a str, &'a str)> {
    let text = |side: Option<Option<&'a [u8]>>| match side {
        None => Some(""),
        Some(Some(bytes)) => std::str::from_utf8(bytes).ok(),
        Some(None) => None,
    };
    Some((text(before)?, text(after)?))
}

impl Changes {
    /// What replacing installed `record` (its files on disk: `installed`)
    /// with `entry` (its verified archive: `new`), in `direction`, changes.
    pub fn between(
        name: &str,
        (record, installed): (&InstalledModule, &[CopyFile]),
        entry: &ModuleEntry,
        new: &[ArchiveFile],
        direction: Direction,
    ) -> Changes {
        // The log, down to the commit the installed version names.
        // A downgrade undoes commits rather than bringing them: no log.
        let downgrade = direction == Direction::Downgrade;
        let log: Vec<Change> = (entry.changes.iter())
            .take_while(|c| !downgrade && !c.is(&record.version))
            .cloned()
            .collect();
        let mut files = Vec::new();
        for (path, (before, after)) in sides(installed, new) {
            let kind = match (before, after) {
                (Some(b), Some(a)) if b == a && b.is_some() => continue,
                (None, _) => FileChangeKind::New,
                (_, None) => FileChangeKind::Dropped,
                _ => FileChangeKind::Changed,
            };
            let (kind, added, removed) = match texts(before, after) {
                Some((old, new)) => {
                    let (added, removed) = linediff::counts(&linediff::diff(old, new));
                    (kind, added, removed)
                }
                None if kind == FileChangeKind::Changed => (FileChangeKind::ChangedBinary, 0, 0),
                None => (kind, 0, 0),
            };
            files.push(FileChange {
                path: path.to_owned(),
                kind,
                added,
                removed,
            });
        }
        let (added, removed) = files
            .iter()
            .fold((0, 0), |(a, r), f| (a + f.added, r + f.removed));
        let more_files = files.len().saturating_sub(MAX_FILES);
        files.truncate(MAX_FILES);

        let lua = |files: Vec<&[u8]>| -> Vec<String> {
            files
                .into_iter()
                .map(|data| String::from_utf8_lossy(data).into_owned())
                .collect()
        };
        fn readme<'a>(mut files: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
            files
                .find(|(path, _)| matches!(*path, "README.markdown" | "README.md"))
                .map(|(_, data)| String::from_utf8_lossy(data).into_owned())
                .unwrap_or_default()
        }
        let old_files =
            || (installed.iter()).filter_map(|f| f.data.as_deref().map(|d| (f.path.as_str(), d)));
        let new_files = || new.iter().map(|f| (f.path.as_str(), f.data.as_slice()));
        let is_lua = |(path, _): &(&str, &[u8])| path.ends_with(".lua");
        let old_readme = readme(old_files());
        let options_of = |code: Vec<String>, readme: &str| -> BTreeSet<String> {
            module_options(name, &code, readme)
                .into_iter()
                .map(|o| o.name)
                .collect()
        };
        let options = Comes::between(
            options_of(
                lua(old_files().filter(is_lua).map(|(_, d)| d).collect()),
                &old_readme,
            ),
            options_of(
                lua(new_files().filter(is_lua).map(|(_, d)| d).collect()),
                &readme(new_files()),
            ),
        );
        let dependencies = Comes::between(
            record.dependencies.iter().cloned().collect(),
            entry.dependencies.iter().map(|d| d.name.clone()).collect(),
        );
        let rows = |rows: &[crate::repo::index::Compatibility]| -> BTreeMap<String, String> {
            (rows.iter())
                .map(|r| (r.prosody.clone(), r.status.clone()))
                .collect()
        };
        let before = rows(&metadata::parse_readme(&old_readme).0.compatibility);
        let after = rows(&entry.compatibility);
        let compatibility = (before.keys().chain(after.keys()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|prosody| before.get(*prosody) != after.get(*prosody))
            .map(|prosody| CompatibilityChange {
                prosody: prosody.clone(),
                before: before.get(prosody).cloned(),
                after: after.get(prosody).cloned(),
            })
            .collect();
        Changes {
            module: name.to_owned(),
            from: record.version.clone(),
            to: entry.version.clone(),
            direction,
            log,
            files,
            more_files,
            added,
            removed,
            dependencies,
            options,
            compatibility,
        }
    }

    /// The lines a person reads, under the `from -> to` it describes.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match self.log.len() {
            0 => {}
            n => {
                lines.push(format!("{n} commit{}:", if n == 1 { "" } else { "s" }));
                lines.extend(self.log.iter().map(|c| {
                    format!(
                        "  {} {} {}",
                        c.id,
                        c.date.0.date(),
                        crate::clean::one_line(&c.summary)
                    )
                }));
            }
        }
        let shown = self.files.len() + self.more_files;
        if shown == 0 {
            lines.push("files: none changed".into());
        } else {
            let mut parts: Vec<String> = self
                .files
                .iter()
                .map(|f| match f.kind {
                    FileChangeKind::ChangedBinary => format!("{} (binary)", f.path),
                    FileChangeKind::New => format!("{} (new) +{}", f.path, f.added),
                    FileChangeKind::Dropped => format!("{} (dropped) -{}", f.path, f.removed),
                    FileChangeKind::Changed => format!("{} +{} -{}", f.path, f.added, f.removed),
                })
                .collect();
            if self.more_files > 0 {
                parts.push(format!("{} more", self.more_files));
            }
            lines.push(format!(
                "{shown} file{} changed, +{} -{} lines: {}",
                if shown == 1 { "" } else { "s" },
                self.added,
                self.removed,
                parts.join(", ")
            ));
        }
        for (what, comes) in [
            ("dependencies", &self.dependencies),
            ("options", &self.options),
        ] {
            if !comes.is_empty() {
                let mut parts = Vec::new();
                if !comes.new.is_empty() {
                    parts.push(format!("new {}", comes.new.join(", ")));
                }
                if !comes.dropped.is_empty() {
                    parts.push(format!("dropped {}", comes.dropped.join(", ")));
                }
                lines.push(format!("{what}: {}", parts.join("; ")));
            }
        }
        for row in &self.compatibility {
            let status = |s: &Option<String>| s.clone().unwrap_or_else(|| "not stated".into());
            lines.push(format!(
                "compatibility with {}: {} (was: {})",
                row.prosody,
                status(&row.after),
                status(&row.before)
            ));
        }
        lines
    }

    /// The same facts for bots.
    pub fn to_json(&self) -> Value {
        let comes = |c: &Comes| json!({"new": c.new, "dropped": c.dropped});
        json!({
            "module": self.module,
            "from": self.from,
            "to": self.to,
            "downgrade": self.direction == Direction::Downgrade,
            "log": self.log.iter().map(|c| json!({
                "id": c.id,
                "date": c.date.to_string(),
                "summary": c.summary,
            })).collect::<Vec<_>>(),
            "files": self.files.iter().map(|f| json!({
                "path": f.path,
                "change": f.kind.as_str(),
                "added": f.added,
                "removed": f.removed,
            })).collect::<Vec<_>>(),
            "more_files": self.more_files,
            "added": self.added,
            "removed": self.removed,
            "dependencies": comes(&self.dependencies),
            "options": comes(&self.options),
            "compatibility": self.compatibility.iter().map(|r| json!({
                "prosody": r.prosody,
                "before": r.before,
                "after": r.after,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_options_dependencies_and_the_log_after_the_installed_copy() {
        let record = InstalledModule {
            files: vec!["mod_x.lua".into(), "old.lua".into()],
            dependencies: vec!["gone".into()],
            ..InstalledModule::for_test("r", "20240601.aaaa111", '0')
        };
        let installed = vec![
            CopyFile {
                path: "mod_x.lua".into(),
                data: Some(b"local a = module:get_option(\"x_a\")\nreturn 1\n".to_vec()),
            },
            CopyFile {
                path: "old.lua".into(),
                data: Some(b"one\ntwo\n".to_vec()),
            },
        ];
        let new = vec![
            ArchiveFile {
                path: "mod_x.lua".into(),
                data: b"local b = module:get_option(\"x_b\")\nreturn 1\nreturn 2\n".to_vec(),
                executable: false,
            },
            ArchiveFile {
                path: "README.markdown".into(),
                data: b"---\nsummary: x\n---\n\nCompatibility\n=============\n\n  ----- -----\n  0.12  Works\n  ----- -----\n".to_vec(),
                executable: false,
            },
        ];
        let change = |id: &str, summary: &str| Change {
            id: id.into(),
            date: crate::repo::index::Timestamp::now(),
            summary: summary.into(),
        };
        let mut entry = crate::repo::index::tests::entry("x");
        entry.version = "20240701.bbbb222".into();
        entry.changes = vec![
            change("bbbb222", "Second"),
            change("cccc333", "First"),
            change("aaaa111", "Installed"),
            change("dddd444", "Older"),
        ];
        entry.compatibility = vec![crate::repo::index::Compatibility {
            prosody: "0.12".into(),
            status: "Works".into(),
            works: Some(true),
        }];
        let changes =
            Changes::between("x", (&record, &installed), &entry, &new, Direction::Forward);
        let log: Vec<&str> = changes.log.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(log, ["Second", "First"]);
        let files: Vec<(&str, FileChangeKind, usize, usize)> = (changes.files.iter())
            .map(|f| (f.path.as_str(), f.kind, f.added, f.removed))
            .collect();
        assert_eq!(
            files,
            [
                ("README.markdown", FileChangeKind::New, 10, 0),
                ("mod_x.lua", FileChangeKind::Changed, 2, 1),
                ("old.lua", FileChangeKind::Dropped, 0, 2),
            ]
        );
        assert_eq!(changes.options.new, ["x_b"]);
        assert_eq!(changes.options.dropped, ["x_a"]);
        assert_eq!(changes.dependencies.dropped, ["gone"]);
        assert_eq!(changes.compatibility.len(), 1);
        assert_eq!(changes.compatibility[0].after.as_deref(), Some("Works"));
        assert_eq!(changes.to_json()["files"][1]["added"], 2);
    }
}
