//! Cached indexes this modman has checked against their signature,
//! remembered by digest, so that loading the same index again costs a
//! SHA-256 of its bytes (hardware-assisted on most servers) rather than
//! an Ed25519 check (a SHA-512 of the same bytes and two scalar
//! multiplications). Every `modman` command from the shell loads the
//! cached indexes anew, and the check was a tenth of an install's time.
//! The refresh that accepts an index, having checked its signature,
//! remembers it; loading only reads the record, so a command that
//! changes nothing writes nothing. An index cached before its refresh
//! remembered it is checked in full until the next refresh.
//!
//! Why this is as safe as checking the signature at every load:
//!
//! - Nothing is trusted without its content: the bytes loaded must hash
//!   to the digest that was verified, and their signature file to the
//!   digest of the signature that verified them, so a cached index
//!   changed on disk (by accident, or by a program that is not modman)
//!   is caught as surely as before, and then checked against its
//!   signature in full, which refuses it.
//! - Nothing is trusted beyond the keys modman.toml lists now: the record
//!   names the key that verified the index, and a key taken out of
//!   modman.toml (a key rotated away, or compromised) no longer vouches
//!   for anything it signed.
//! - The record is in modman's state directory, which only modman's
//!   user (and root) can write. Whoever can forge it can write the
//!   module directory Prosody loads code from, and the indexes modman
//!   makes of a LuaRocks server, kept in the same directory, are trusted
//!   as they are. The record opens no way in that was not there.
//!
//! A record that cannot be read or written costs speed, never safety:
//! the index is then checked against its signature in full.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::config::Repository;
use crate::store::{Kept, Store};

use super::signing;

/// The digests of a cached index and of its signature, as loaded now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    index: String,
    signature: String,
}

/// What is remembered of the last index verified from one repository.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    index_sha256: String,
    signature_sha256: String,
    /// The key that verified it, base64 as modman.toml has it.
    public_key: String,
}

impl Digests {
    /// The digests of `index` and `signature`.
    pub fn of(index: &[u8], signature: &[u8]) -> Digests {
        Digests {
            index: super::sha256_hex(index),
            signature: super::sha256_hex(signature),
        }
    }

    /// Whether these very bytes were verified before under one of `keys`
    /// (the repository's keys in modman.toml now).
    pub fn remembered(
        &self,
        store: &Store,
        repository: &Repository,
        keys: &[VerifyingKey],
    ) -> bool {
        let Ok(bytes) = store.read(Kept::Verified(repository)) else {
            return false;
        };
        let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
            return false;
        };
        record.index_sha256 == self.index
            && record.signature_sha256 == self.signature
            && keys
                .iter()
                .any(|key| signing::public_key_text(key) == record.public_key)
    }

    /// Remembers that these bytes verified under `key`, if this process
    /// runs as the state's owner: another user reading the catalog (root
    /// running `modman list` on prosody's state) leaves no file of its
    /// own there. A record that cannot be written is left: the next load
    /// checks the signature in full again.
    pub fn remember(&self, store: &Store, repository: &Repository, key: &VerifyingKey) {
        use std::os::unix::fs::MetadataExt;
        let uid = |path: &std::path::Path| std::fs::metadata(path).map(|m| m.uid()).ok();
        if uid(std::path::Path::new("/proc/self")).is_none_or(|me| uid(store.dir()) != Some(me)) {
            return;
        }
        let record = Record {
            index_sha256: self.index.clone(),
            signature_sha256: self.signature.clone(),
            public_key: signing::public_key_text(key),
        };
        let bytes = serde_json::to_vec(&record)
            .unwrap_or_else(|e| unreachable!("three strings always serialise: {e}"));
        if let Err(e) = store.write(Kept::Verified(repository), &bytes) {
            tracing::debug!(
                "cannot remember the verified index of {} in {}: {e}",
                repository.name,
                store.path(Kept::Verified(repository)).display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::repository;

    #[test]
    fn only_the_same_bytes_under_a_key_still_listed_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let repository = repository();
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]).verifying_key();
        let digests = Digests::of(b"index", b"signature");
        assert!(!digests.remembered(&store, &repository, &[key]));
        digests.remember(&store, &repository, &key);
        assert!(digests.remembered(&store, &repository, &[other, key]));
        // The key taken out of modman.toml vouches for nothing.
        assert!(!digests.remembered(&store, &repository, &[other]));
        // One byte more in the index, or another signature file.
        assert!(!Digests::of(b"index ", b"signature").remembered(&store, &repository, &[key]));
        assert!(!Digests::of(b"index", b"signature2").remembered(&store, &repository, &[key]));
        // A damaged record is no record.
        store.write(Kept::Verified(&repository), b"{").unwrap();
        assert!(!digests.remembered(&store, &repository, &[key]));

        // Someone else's state (where this test may hand it to nobody):
        // nothing is written.
        let theirs = tempfile::tempdir().unwrap();
        if std::os::unix::fs::chown(theirs.path(), Some(65534), None).is_ok() {
            let store = Store::at(theirs.path());
            digests.remember(&store, &repository, &key);
            assert!(!digests.remembered(&store, &repository, &[key]));
            assert!(store.read(Kept::Verified(&repository)).is_err());
        }
    }
}
