//! `modman repo verify`: everything a client will check, checked on the
//! server side before publishing: the signature, then each archive's size,
//! hash and contents against the index, and no stray files.

use std::collections::BTreeSet;
use std::path::Path;

use ed25519_dalek::VerifyingKey;

use super::archive;
use super::index::{Index, Timestamp};
use super::signing;

/// One failed check: the file, relative to the repository, and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub what: String,
}

/// What `repo verify` found.
#[derive(Debug, Default)]
pub struct Verified {
    pub modules: usize,
    /// Repository name, serial, generation time and expiry, if the index
    /// could be read.
    pub freshness: Option<String>,
    /// Empty when the repository is good.
    pub problems: Vec<Problem>,
}

/// Checks the repository in `dir`, as a client would now.
pub fn verify(dir: &Path, key: &VerifyingKey) -> Verified {
    let mut freshness = None;
    let (modules, problems) = check(dir, key, &mut freshness);
    Verified {
        modules,
        freshness,
        problems,
    }
}

fn check(dir: &Path, key: &VerifyingKey, freshness: &mut Option<String>) -> (usize, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut fail = |file: &str, what: String| {
        problems.push(Problem {
            file: file.to_owned(),
            what,
        })
    };
    let read = |name: &str| std::fs::read(dir.join(name));
    let index_bytes = match read("index.json") {
        Ok(bytes) => bytes,
        Err(e) => {
            fail("index.json", format!("cannot read: {e}"));
            return (0, problems);
        }
    };
    match read("index.json.sig") {
        Ok(signature) => {
            if let Err(e) = signing::verify(key, &index_bytes, &signature) {
                fail("index.json.sig", e.to_string());
            }
        }
        Err(e) => fail("index.json.sig", format!("cannot read: {e}")),
    }
    let index = match Index::parse(&index_bytes) {
        Ok(index) => index,
        Err(e) => {
            fail("index.json", e.to_string());
            return (0, problems);
        }
    };
    *freshness = Some(index.freshness());
    if index.is_expired(Timestamp::now()) {
        fail(
            "index.json",
            format!(
                "expired at {}; clients refuse it: rebuild the repository (modman repo build --valid-for DAYS) and publish it",
                index.expires
            ),
        );
    }
    let mut listed = BTreeSet::new();
    // The newest build of each module, and the earlier ones it still
    // serves, each checked alike.
    let builds = index.modules.iter().flat_map(|module| {
        let versions: Vec<&str> = module.versions().collect();
        versions
            .into_iter()
            .filter_map(|version| module.at_version(version))
    });
    for module in builds {
        let module = &module;
        listed.insert(module.archive.clone());
        let file = module.archive.as_str();
        let bytes = match read(file) {
            Ok(bytes) => bytes,
            Err(e) => {
                fail(file, format!("cannot read: {e}"));
                continue;
            }
        };
        if bytes.len() as u64 != module.size {
            fail(
                file,
                format!("{} bytes, the index says {}", bytes.len(), module.size),
            );
        }
        let sha256 = super::sha256_hex(&bytes);
        if sha256 != module.sha256 {
            fail(
                file,
                format!("sha256 {sha256}, the index says {}", module.sha256),
            );
            continue;
        }
        match archive::read(&bytes, &module.name) {
            Ok(files) => {
                let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
                if paths != module.files {
                    fail(file, "holds other files than the index lists".into());
                }
            }
            Err(e) => fail(file, e.to_string()),
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("archives")) {
        for entry in entries.flatten() {
            let name = format!("archives/{}", entry.file_name().to_string_lossy());
            if !listed.contains(&name) {
                fail(&name, "not listed in index.json".into());
            }
        }
    }
    (index.modules.len(), problems)
}
