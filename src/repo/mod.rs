//! Where modules come from: a repository is a directory of static files
//! (`index.json`, its signature `index.json.sig`, and `archives/`), built
//! from a prosody-modules tree and served by any HTTP server.

pub mod archive;
pub mod build;
pub mod catalog;
pub mod compat;
pub mod fetch;
pub mod index;
pub mod luarocks;
pub mod metadata;
pub mod mirror;
pub mod options;
pub mod readme;
pub mod signing;
pub mod verify;

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256, as the index records it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}
