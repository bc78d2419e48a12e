//! What modman remembers in `state_dir` outside a change: which notices it
//! has already sent, and what the rooms were last told of the fleet. The engine owns `state_dir`, so these files are
//! written here, whole or not at all (an atomic replace, which keeps the
//! file's mode), and never by a front end that happens to know the path.
//!
//! They take no change lock: a notice goes out after a refresh whether or
//! not a change is running, and each file is replaced whole, so a reader
//! sees the old set or the new one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Engine;
use crate::fsutil;

/// What modman remembers having said, by what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Update notices sent: a module and the archive it would update to.
    AnnouncedUpdates,
    /// Advisory notices sent, about one installed copy each.
    AnnouncedAdvisories,
    /// Where the fleet's servers differed when the rooms were last told.
    FleetDrift,
}

impl Record {
    /// Its file in `state_dir`.
    fn file(self) -> &'static str {
        match self {
            Record::AnnouncedUpdates => "announced.json",
            Record::AnnouncedAdvisories => "advisories-announced.json",
            Record::FleetDrift => "fleet-drift.json",
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
        Remembered {
            set: read(&path),
            path,
        }
    }

    /// What `record` last held as a whole; the default when it is
    /// missing or damaged (then something may be said twice, never left
    /// unsaid).
    pub fn recalled<T: Default + DeserializeOwned>(&self, record: Record) -> T {
        read(&self.paths.state_dir.join(record.file()))
    }

    /// Replaces what `record` holds with `value`; a failure is logged,
    /// naming `what` was said.
    pub fn remember<T: Serialize>(&self, record: Record, value: &T, what: &str) {
        write(&self.paths.state_dir.join(record.file()), value, what);
    }
}

fn read<T: Default + DeserializeOwned>(path: &Path) -> T {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write<T: Serialize>(path: &Path, value: &T, what: &str) {
    let saved = serde_json::to_vec(value)
        .map_err(std::io::Error::other)
        .and_then(|b| fsutil::atomic_write(path, &b));
    if let Err(e) = saved {
        tracing::warn!(
            "cannot remember {what} in {}: {e}; it may be said again",
            path.display()
        );
    }
}

impl<T: Ord + Serialize> Remembered<T> {
    /// Remembers `item`; whether it is news.
    pub fn insert(&mut self, item: T) -> bool {
        self.set.insert(item)
    }

    /// Writes it back; a failure is logged, naming `what` was announced.
    pub fn save(&self, what: &str) {
        write(&self.path, &self.set, &format!("the announced {what}"));
    }
}
