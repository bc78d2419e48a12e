//! The files modman keeps under `state_dir` for the repository layer:
//! each repository's last good index and its signature, the replay
//! guard, the record of a failed refresh, the LuaRocks rock cache and
//! its pins, and the anonymous files that hold an index's READMEs.
//!
//! The engine owns `state_dir`: it opens the one [`Store`]
//! (`Engine::store`) and hands it down to the repository calls that
//! keep something, so their file names and the way each is written
//! (whole or not at all, its directory made first) are decided here
//! once, and `repo` never joins a path under `state_dir` itself. It sits
//! below `repo` because `repo` may not import the engine. The tools with
//! a directory of their own (`repo mirror`) make a [`RockCache`] there.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::Repository;
use crate::fsutil;

/// `state_dir`, as the repository layer sees it.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// A file the store keeps for one repository.
#[derive(Debug, Clone, Copy)]
pub enum Kept<'a> {
    /// Its last good index, `indexes/NAME.json`.
    Index(&'a Repository),
    /// That index's signature, `indexes/NAME.json.sig`.
    Signature(&'a Repository),
    /// The newest index accepted from it (the replay guard),
    /// `indexes/NAME.accepted.json`.
    Accepted(&'a Repository),
    /// Why its last refresh failed, `refresh/NAME.failed.json`; beside
    /// the indexes, which a failed refresh leaves untouched.
    Failure(&'a Repository),
    /// The digests of its index and signature last checked, and the key
    /// that verified them, `indexes/NAME.verified.json` (see
    /// [`crate::repo::verified`]).
    Verified(&'a Repository),
}

impl Store {
    /// The store in `state_dir`. Creates nothing: a reader that does not
    /// own the state writes nothing until it keeps something.
    pub fn at(state_dir: &Path) -> Store {
        Store {
            dir: state_dir.to_owned(),
        }
    }

    /// The directory itself, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `kept` is, for messages and its time.
    pub fn path(&self, kept: Kept) -> PathBuf {
        let (dir, name, suffix) = match kept {
            Kept::Index(r) => ("indexes", &r.name, ".json"),
            Kept::Signature(r) => ("indexes", &r.name, ".json.sig"),
            Kept::Accepted(r) => ("indexes", &r.name, ".accepted.json"),
            Kept::Failure(r) => ("refresh", &r.name, ".failed.json"),
            Kept::Verified(r) => ("indexes", &r.name, ".verified.json"),
        };
        self.dir.join(dir).join(format!("{name}{suffix}"))
    }

    /// The bytes of `kept`.
    pub fn read(&self, kept: Kept) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(kept))
    }

    /// Replaces `kept` with `bytes`, whole or not at all.
    pub fn write(&self, kept: Kept, bytes: &[u8]) -> io::Result<()> {
        write_making_dir(&self.path(kept), bytes)
    }

    /// Removes `kept`; one that is not there is removed already.
    pub fn remove(&self, kept: Kept) -> io::Result<()> {
        match std::fs::remove_file(self.path(kept)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// An anonymous file in `state_dir`, gone with its last handle: for
    /// what lives only as long as the process uses it (an index's
    /// READMEs), on disk rather than in memory.
    pub fn scratch(&self) -> io::Result<File> {
        std::fs::create_dir_all(&self.dir)?;
        tempfile::tempfile_in(&self.dir)
    }

    /// The rocks fetched from the LuaRocks server `repository`,
    /// `rocks/NAME/`, and the pins of every server, `rocks-pins.json`.
    pub fn rocks(&self, repository: &Repository) -> RockCache {
        RockCache {
            dir: self.dir.join("rocks").join(&repository.name),
            pins: self.dir.join("rocks-pins.json"),
        }
    }
}

/// Where rocks already fetched are kept, and the file that pins each
/// rock's bytes (see `repo::luarocks::pins`).
#[derive(Debug, Clone)]
pub struct RockCache {
    dir: PathBuf,
    pins: PathBuf,
}

impl RockCache {
    /// A cache of its own in `dir`, its pins in `dir/pins.json`: for a
    /// tool with no `state_dir`.
    pub fn in_dir(dir: &Path) -> RockCache {
        RockCache {
            dir: dir.to_owned(),
            pins: dir.join("pins.json"),
        }
    }

    /// The directory of the rocks, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where rock `file` is kept.
    pub fn rock(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Keeps rock `file`, whole or not at all.
    pub fn keep(&self, file: &str, bytes: &[u8]) -> io::Result<()> {
        write_making_dir(&self.rock(file), bytes)
    }

    /// The pins file, for messages.
    pub fn pins(&self) -> &Path {
        &self.pins
    }

    /// Replaces the pins file with `bytes`, whole or not at all.
    pub fn write_pins(&self, bytes: &[u8]) -> io::Result<()> {
        write_making_dir(&self.pins, bytes)
    }
}

/// [`fsutil::atomic_write`], its directory made first.
fn write_making_dir(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    fsutil::atomic_write(path, bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A repository to name files after, for tests here and of what the
    /// store keeps.
    pub(crate) fn repository() -> Repository {
        Repository {
            name: "r".into(),
            url: url::Url::parse("http://127.0.0.1/").unwrap(),
            kind: crate::config::RepositoryKind::LuaRocks,
            timeout: std::time::Duration::from_secs(1),
        }
    }

    /// The names are those of every modman before the store: a server
    /// upgraded in place finds its indexes, guards, pins and rocks.
    #[test]
    fn files_keep_the_names_installed_servers_have() {
        let repository = repository();
        let store = Store::at(Path::new("/s"));
        let named = |kept| store.path(kept).display().to_string();
        assert_eq!(named(Kept::Index(&repository)), "/s/indexes/r.json");
        assert_eq!(named(Kept::Signature(&repository)), "/s/indexes/r.json.sig");
        assert_eq!(
            named(Kept::Accepted(&repository)),
            "/s/indexes/r.accepted.json"
        );
        assert_eq!(
            named(Kept::Failure(&repository)),
            "/s/refresh/r.failed.json"
        );
        assert_eq!(
            named(Kept::Verified(&repository)),
            "/s/indexes/r.verified.json"
        );
        let rocks = store.rocks(&repository);
        assert_eq!(
            rocks.rock("x-1-1.src.rock"),
            Path::new("/s/rocks/r/x-1-1.src.rock")
        );
        assert_eq!(rocks.pins(), Path::new("/s/rocks-pins.json"));
        let mirror = RockCache::in_dir(Path::new("/m/.out.rocks"));
        assert_eq!(mirror.pins(), Path::new("/m/.out.rocks/pins.json"));
    }

    #[test]
    fn a_write_makes_its_directory_and_a_removal_of_nothing_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let repository = repository();
        let store = Store::at(&dir.path().join("state"));
        let kept = Kept::Failure(&repository);
        store.remove(kept).unwrap();
        store.write(kept, b"{}").unwrap();
        assert_eq!(store.read(kept).unwrap(), b"{}");
        store.remove(kept).unwrap();
        assert!(store.read(kept).is_err());
    }
}
