//! Where modules come from: a repository is a directory of static files
//! (`index.json`, its signature `index.json.sig`, and `archives/`), built
//! from a prosody-modules tree (`repo build`) or a LuaRocks server (`repo
//! mirror`) and served by any HTTP server; or a LuaRocks server itself,
//! such as Prosody's community repository ([`luarocks`]), read as if it
//! were one, protected by TLS and pinning only.

pub mod advise;
pub mod advisory;
pub mod archive;
pub mod build;
pub mod catalog;
pub mod compat;
pub mod debian;
pub mod descriptions;
pub mod fetch;
pub mod index;
pub mod luarocks;
pub mod metadata;
pub mod mirror;
pub mod options;
pub mod pipeline;
pub mod placement;
pub mod published;
pub mod readme;
pub mod refusal;
pub mod signing;
pub(crate) mod sources;
pub mod verified;
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

/// How two versions of one module compare, where both follow a scheme
/// modman knows: `N-R` from a LuaRocks server (numbers), or
/// `YYYYMMDD.<id>` from `repo build` (by date; the same date with another
/// id is a different copy, not an older one). `None` when they cannot be
/// compared, and then nothing is assumed.
pub fn compare_versions(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    if let (Some(a), Some(b)) = (
        luarocks::RockVersion::parse(a),
        luarocks::RockVersion::parse(b),
    ) {
        return Some(a.cmp(&b));
    }
    let date = |v: &str| {
        let (day, _) = v.split_once('.')?;
        (day.len() == 8 && day.bytes().all(|c| c.is_ascii_digit())).then(|| day.to_owned())
    };
    Some(date(a)?.cmp(&date(b)?))
}

#[cfg(test)]
mod version_tests {
    use super::compare_versions;
    use std::cmp::Ordering::*;

    #[test]
    fn versions_compare_within_their_scheme_only() {
        assert_eq!(compare_versions("35-2", "4-1"), Some(Greater));
        assert_eq!(
            compare_versions("20230101.ab12", "20240601.cd34"),
            Some(Less)
        );
        assert_eq!(
            compare_versions("20240601.ab12", "20240601.cd34"),
            Some(Equal)
        );
        assert_eq!(compare_versions("1.0", "20240601.cd34"), None);
    }
}
