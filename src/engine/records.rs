//! What modman remembers in `state_dir` outside a change: which notices it
//! has already sent. The engine owns `state_dir`, so these files are
//! written here, whole or not at all (an atomic replace, which keeps the
//! file's mode), and never by a front end that happens to know the path.
//!
//! They take no change lock: a notice goes out after a refresh whether or
//! not a change is running, and each file is replaced whole, so a reader
//! sees the old set or the new one.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Engine;
use crate::fsutil;

/// A set of things modman remembers having said, by what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Update notices sent: a module and the archive it would update to.
    AnnouncedUpdates,
    /// Advisory notices sent, about one installed copy each.
    AnnouncedAdvisories,
}

impl Record {
    /// Its file in `state_dir`.
    fn file(self) -> &'static str {
        match self {
            Record::AnnouncedUpdates => "announced.json",
            Record::AnnouncedAdvisories => "advisories-announced.json",
        }
    }
}

/// A remembered set, read from `state_dir`, saved back by [`Remembered::save`].
pub struct Remembered<T> {
    path: PathBuf,
    set: BTreeSet<T>,
}

impl Engine {
    /// What `record` holds; nothing when it is missing or damaged (then
    /// something may be said twice, never left unsaid).
    pub fn remembered<T: Ord + Serialize + DeserializeOwned>(
        &self,
        record: Record,
    ) -> Remembered<T> {
        let path = self.paths.state_dir.join(record.file());
        let set = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Remembered { path, set }
    }
}

impl<T: Ord + Serialize> Remembered<T> {
    /// Remembers `item`; whether it is news.
    pub fn insert(&mut self, item: T) -> bool {
        self.set.insert(item)
    }

    /// Writes it back; a failure is logged, naming `what` was announced.
    pub fn save(&self, what: &str) {
        let saved = serde_json::to_vec(&self.set)
            .map_err(std::io::Error::other)
            .and_then(|b| fsutil::atomic_write(&self.path, &b));
        if let Err(e) = saved {
            tracing::warn!(
                "cannot remember announced {what} in {}: {e}; they may be announced again",
                self.path.display()
            );
        }
    }
}
