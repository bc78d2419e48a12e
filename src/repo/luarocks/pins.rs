//! Trust on first use. A LuaRocks server signs nothing, so the first bytes
//! modman accepts for a rock are remembered by their SHA-256; the same rock
//! URL (same server, name and version) with other bytes later is refused.
//! A published version never changes on an honest server, so a change
//! means the server or the path to it is not the one trusted before.

use std::collections::BTreeMap;

use crate::store::RockCache;

/// The pins file of a [`RockCache`]: rock URL -> hex SHA-256.
#[derive(Debug)]
pub struct Pins {
    cache: RockCache,
    pins: BTreeMap<String, String>,
    changed: bool,
}

/// A pin problem, naming the rock and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("{url}: sha256 {found}, but modman recorded {pinned} for this rock before; the server now serves other bytes under the same name and version, so the rock was refused (if the publisher confirms a rebuild, delete its line from {pins})")]
    Changed {
        url: String,
        found: String,
        pinned: String,
        pins: String,
    },
    #[error("{path}: {problem}; without it modman cannot tell a changed rock from a new one, so nothing was fetched (restore it from a backup, or delete it to trust every rock anew)")]
    File { path: String, problem: String },
}

impl Pins {
    /// Reads the pins of `cache`; a missing file is no pins yet.
    pub fn load(cache: &RockCache) -> Result<Pins, PinError> {
        let path = cache.pins();
        let fail = |problem: String| PinError::File {
            path: path.display().to_string(),
            problem,
        };
        let pins = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| fail(format!("not a pins file ({e})")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(fail(format!("cannot read: {e}"))),
        };
        Ok(Pins {
            cache: cache.clone(),
            pins,
            changed: false,
        })
    }

    /// Checks `sha256` against the pin for `url`, pinning it if it has none.
    pub fn check(&mut self, url: &str, sha256: &str) -> Result<(), PinError> {
        match self.pins.get(url) {
            Some(pinned) if pinned != sha256 => Err(PinError::Changed {
                url: url.to_owned(),
                found: sha256.to_owned(),
                pinned: pinned.clone(),
                pins: self.cache.pins().display().to_string(),
            }),
            Some(_) => Ok(()),
            None => {
                self.pins.insert(url.to_owned(), sha256.to_owned());
                self.changed = true;
                Ok(())
            }
        }
    }

    /// The pin for `url`, if any.
    pub fn get(&self, url: &str) -> Option<&str> {
        self.pins.get(url).map(String::as_str)
    }

    /// Writes the pins back if any were added.
    pub fn save(&mut self) -> Result<(), PinError> {
        if !self.changed {
            return Ok(());
        }
        let fail = |e: std::io::Error| PinError::File {
            path: self.cache.pins().display().to_string(),
            problem: format!("cannot write: {e}"),
        };
        let mut bytes = serde_json::to_vec_pretty(&self.pins)
            .unwrap_or_else(|e| unreachable!("a map of strings always serialises: {e}"));
        bytes.push(b'\n');
        self.cache.write_pins(&bytes).map_err(fail)?;
        self.changed = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_are_trusted_and_other_bytes_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RockCache::in_dir(dir.path());
        let mut pins = Pins::load(&cache).unwrap();
        pins.check("http://127.0.0.1/mod_x-1-1.src.rock", "aa")
            .unwrap();
        pins.save().unwrap();

        let mut pins = Pins::load(&cache).unwrap();
        pins.check("http://127.0.0.1/mod_x-1-1.src.rock", "aa")
            .unwrap();
        pins.check("http://127.0.0.1/mod_x-2-1.src.rock", "cc")
            .unwrap();
        let error = pins
            .check("http://127.0.0.1/mod_x-1-1.src.rock", "bb")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("mod_x-1-1.src.rock: sha256 bb, but modman recorded aa"),
            "{error}"
        );
        assert!(error.contains("other bytes under the same name and version"));
    }

    #[test]
    fn a_damaged_pins_file_stops_everything() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RockCache::in_dir(dir.path());
        std::fs::write(cache.pins(), "{ not json").unwrap();
        let error = Pins::load(&cache).unwrap_err().to_string();
        assert!(error.contains("not a pins file"), "{error}");
    }
}
