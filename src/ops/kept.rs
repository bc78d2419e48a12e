//! The verified downloads of a plan that asked first, kept for its answer.
//!
//! `update` fetches and verifies every archive before its question, which
//! shows what the new copies change. Without these, the "yes" would fetch
//! them all again: an update of 250 modules downloaded each twice. A copy
//! is kept by its repository, module name and SHA-256, the very line the
//! question's approval names ([`super::plan::Plan::propose`]), so a "yes"
//! that applies the plan shown takes exactly the bytes verified for it;
//! a plan made from another index names another SHA-256 and fetches
//! anew. Each copy is taken once; the next question replaces them all.

use std::sync::Mutex;

use crate::engine::manifest::Prepared;
use crate::repo::archive::ArchiveFile;
use crate::repo::index::ModuleEntry;

/// At most this many bytes of files are kept: a plan larger than that is
/// fetched again after its "yes", rather than held in memory meanwhile.
const MAX_KEPT_BYTES: usize = 16 * 1024 * 1024;

/// One verified copy, as its plan named it.
struct Copy {
    repository: String,
    name: String,
    sha256: String,
    files: Vec<ArchiveFile>,
}

/// The copies of the last plan that asked; see the module documentation.
#[derive(Default)]
pub struct KeptDownloads {
    copies: Mutex<Vec<Copy>>,
}

impl KeptDownloads {
    /// Keeps the verified copies in `prepared` for the answer to the
    /// question about them, in place of those kept before. Nothing is
    /// kept of a plan over [`MAX_KEPT_BYTES`].
    pub fn keep(&self, prepared: Vec<Prepared>) {
        let size: usize = (prepared.iter())
            .filter_map(|p| p.after.as_ref())
            .flat_map(|(_, files)| files)
            .map(|f| f.data.len())
            .sum();
        let copies = match size <= MAX_KEPT_BYTES {
            true => prepared
                .into_iter()
                .filter_map(|p| {
                    let (record, files) = p.after?;
                    Some(Copy {
                        repository: record.repository,
                        name: p.name,
                        sha256: record.sha256,
                        files,
                    })
                })
                .collect(),
            false => Vec::new(),
        };
        *self.copies.lock().unwrap_or_else(|e| e.into_inner()) = copies;
    }

    /// The copy of `entry` from `repository` verified for a plan that
    /// asked, if it is kept: the same SHA-256, holding the files the entry
    /// lists. Taken, so it serves one change.
    pub fn take(&self, repository: &str, entry: &ModuleEntry) -> Option<Vec<ArchiveFile>> {
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        let at = copies.iter().position(|c| {
            c.repository == repository
                && c.name == entry.name
                && c.sha256 == entry.sha256
                && c.files.iter().map(|f| &f.path).eq(entry.files.iter())
        })?;
        Some(copies.swap_remove(at).files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::state::InstalledModule;
    use crate::repo::index::tests::entry;

    fn verified(name: &str, hash: char, size: usize) -> Prepared {
        let file = ArchiveFile {
            path: format!("mod_{name}.lua"),
            data: vec![b'-'; size],
            executable: false,
        };
        Prepared {
            name: name.into(),
            after: Some((InstalledModule::for_test("local", "2", hash), vec![file])),
        }
    }

    fn offered(name: &str, hash: char) -> ModuleEntry {
        let mut entry = entry(name);
        entry.sha256 = hash.to_string().repeat(64);
        entry.files = vec![format!("mod_{name}.lua")];
        entry
    }

    #[test]
    fn a_kept_copy_serves_only_the_same_bytes_from_the_same_repository_once() {
        let kept = KeptDownloads::default();
        kept.keep(vec![
            verified("lastlog", 'a', 10),
            verified("firewall", 'b', 10),
        ]);
        // Another index, another SHA-256: fetched anew.
        assert_eq!(kept.take("local", &offered("lastlog", 'c')), None);
        assert_eq!(kept.take("other", &offered("lastlog", 'a')), None);
        let mut listed_otherwise = offered("lastlog", 'a');
        listed_otherwise.files = vec!["init.lua".into()];
        assert_eq!(kept.take("local", &listed_otherwise), None);
        let files = kept.take("local", &offered("lastlog", 'a')).unwrap();
        assert_eq!(files[0].path, "mod_lastlog.lua");
        assert_eq!(kept.take("local", &offered("lastlog", 'a')), None);
        // The next question replaces what the last one kept.
        kept.keep(vec![verified("lastlog", 'a', 10)]);
        assert_eq!(kept.take("local", &offered("firewall", 'b')), None);
    }

    #[test]
    fn a_plan_too_large_to_hold_keeps_nothing() {
        let kept = KeptDownloads::default();
        kept.keep(vec![
            verified("lastlog", 'a', MAX_KEPT_BYTES / 2),
            verified("firewall", 'b', MAX_KEPT_BYTES / 2 + 1),
        ]);
        assert_eq!(kept.take("local", &offered("lastlog", 'a')), None);
    }
}
