//! What each archive of a `repo build` was packed from, kept beside the
//! index (`sources.json`, signed in `sources.json.sig`), so that the next
//! build into the same directory reuses the archive of a module that did
//! not change instead of compressing it again.
//!
//! A module's sources are named by the SHA-256 of its tar stream (every
//! path, mode and byte its archive holds, see [`archive::lay_out`]), each
//! recorded with the path, SHA-256 and size of the archive compressed
//! from it, under [`archive::PACKING`]. The same stream compressed the
//! same way gives the same bytes, so an archive reused is the one a
//! build from scratch would write.
//!
//! Whoever can write the output directory can plant an archive or edit
//! this record, and must not get their bytes signed by the next build:
//! the record counts only when this repository's key signed it (under
//! its own context, so that signature never passes for an index's, nor
//! an index's for it), and an archive is reused only when the file,
//! read through the very link that publishes it, has the recorded size
//! and SHA-256. Anything else, and the module is packed anew. The index
//! is not changed by any of this, so every client reads it as before.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::archive;
use super::index::limits;
use super::published::{is_plain_file_name, read_published};
use super::signing;

/// The record's file in the repository directory.
pub(crate) const FILE: &str = "sources.json";
/// Its signature.
pub(crate) const SIGNATURE: &str = "sources.json.sig";
/// What is signed is this, then the record.
const CONTEXT: &[u8] = b"modman repo build: sources of archives\n";
/// Most bytes of a record read: one entry per module an index may hold,
/// each far below 512 bytes (two hashes, a size and a path).
const MAX_BYTES: u64 = limits::MODULES as u64 * 512;
/// Most bytes of its signature (base64 of 64 bytes and a newline).
const MAX_SIGNATURE: u64 = 1024;

/// One archive and what it was packed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Packed {
    /// Lower-case hex SHA-256 of the module's tar stream.
    pub sources: String,
    /// Where the archive is, relative to the repository: `archives/...`.
    pub archive: String,
    /// Lower-case hex SHA-256 of the archive.
    pub sha256: String,
    /// Size of the archive in bytes.
    pub size: u64,
}

impl Packed {
    fn is_well_formed(&self) -> bool {
        is_hex_digest(&self.sources)
            && is_hex_digest(&self.sha256)
            && self
                .archive
                .strip_prefix("archives/")
                .is_some_and(is_plain_file_name)
    }
}

/// The file as written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    /// [`archive::PACKING`] when these archives were compressed.
    packing: String,
    archives: Vec<Packed>,
}

/// The archives a published repository holds, by the sources they were
/// packed from.
#[derive(Debug, Default)]
pub(crate) struct Record {
    by_sources: HashMap<String, Packed>,
}

impl Record {
    /// The record published at `out`. None there (a first build, or one
    /// by an earlier modman) is an empty record; one that is there but
    /// is not signed by `key`, not readable within its bound, or made by
    /// another packing is not used, and `Err` says why, for a warning.
    pub(crate) fn published(out: &Path, key: &ed25519_dalek::SigningKey) -> Result<Record, String> {
        let (file, signature) = (out.join(FILE), out.join(SIGNATURE));
        let unused =
            |why: String| format!("{}: {why}; every module is packed anew", file.display());
        let bytes = match read_published(&file, MAX_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(e) => return Err(unused(format!("cannot read it ({e})"))),
        };
        let signature = read_published(&signature, MAX_SIGNATURE)
            .map_err(|e| unused(format!("cannot read {SIGNATURE} ({e})")))?;
        signing::verify(&key.verifying_key(), &signed(&bytes), &signature)
            .map_err(|_| unused("not signed by this repository's key".into()))?;
        let written: Written = serde_json::from_slice(&bytes)
            .map_err(|e| unused(format!("not a record of sources ({e})")))?;
        if written.archives.len() > limits::MODULES
            || !written.archives.iter().all(Packed::is_well_formed)
        {
            return Err(unused("an entry out of bounds".into()));
        }
        if written.packing != archive::PACKING {
            return Err(unused(format!(
                "its archives were compressed as `{}`, not as this build compresses",
                written.packing
            )));
        }
        let by_sources = written
            .archives
            .into_iter()
            .map(|packed| (packed.sources.clone(), packed))
            .collect();
        Ok(Record { by_sources })
    }

    /// The archive recorded as packed from the tar stream whose SHA-256
    /// is `sources`.
    pub(crate) fn find(&self, sources: &str) -> Option<&Packed> {
        self.by_sources.get(sources)
    }

    /// The record of `archives` signed with `key`: each file to write
    /// into a repository being staged, by name, with its bytes.
    pub(crate) fn files(
        key: &ed25519_dalek::SigningKey,
        archives: Vec<Packed>,
    ) -> [(&'static str, Vec<u8>); 2] {
        let written = Written {
            packing: archive::PACKING.to_owned(),
            archives,
        };
        let bytes =
            serde_json::to_vec(&written).expect("a record of strings and numbers serializes");
        let signature = signing::sign(key, &signed(&bytes)).into_bytes();
        [(FILE, bytes), (SIGNATURE, signature)]
    }
}

/// What the signature covers: the record under its context.
fn signed(record: &[u8]) -> Vec<u8> {
    [CONTEXT, record].concat()
}

fn is_hex_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(sources: char) -> Packed {
        Packed {
            sources: sources.to_string().repeat(64),
            archive: "archives/mod_a-20261206.abcdef01.tar.gz".into(),
            sha256: "b".repeat(64),
            size: 10,
        }
    }

    #[test]
    fn a_record_is_used_only_as_its_key_signed_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        assert!(Record::published(dir.path(), &key)
            .unwrap()
            .find(&"a".repeat(64))
            .is_none());
        for (name, bytes) in Record::files(&key, vec![packed('a')]) {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let record = Record::published(dir.path(), &key).unwrap();
        assert_eq!(record.find(&"a".repeat(64)), Some(&packed('a')));

        // Another key's record, an edited one, the index's signature.
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        assert!(Record::published(dir.path(), &other).is_err());
        let file = dir.path().join(FILE);
        let edited = std::fs::read_to_string(&file).unwrap().replace('a', "c");
        std::fs::write(&file, &edited).unwrap();
        assert!(Record::published(dir.path(), &key).is_err());
        let plain = signing::sign(&key, edited.as_bytes());
        std::fs::write(dir.path().join(SIGNATURE), plain).unwrap();
        assert!(Record::published(dir.path(), &key).is_err());

        // Signed, but made by another packing, or naming a path elsewhere.
        for (packing, archive) in [
            ("tar, gzip level 9", "archives/x.tar.gz"),
            (archive::PACKING, "../index.json"),
        ] {
            let mut entry = packed('a');
            entry.archive = archive.into();
            let written = Written {
                packing: packing.into(),
                archives: vec![entry],
            };
            let bytes = serde_json::to_vec(&written).unwrap();
            std::fs::write(&file, &bytes).unwrap();
            let signature = signing::sign(&key, &signed(&bytes));
            std::fs::write(dir.path().join(SIGNATURE), signature).unwrap();
            assert!(Record::published(dir.path(), &key).is_err(), "{archive}");
        }
    }
}
