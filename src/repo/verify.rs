//! `modman repo verify`: everything a client will check, checked on the
//! server side before publishing: the signature, then each archive's size,
//! hash and contents against the index, and no stray files.

use std::collections::BTreeSet;
use std::path::Path;

use ed25519_dalek::VerifyingKey;

use super::archive;
use super::index::{Index, Stamp, Timestamp};
use super::signing;

/// One failed check: the file, relative to the repository, which check
/// failed, and what is wrong with it in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub kind: ProblemKind,
    pub what: String,
}

/// Which check a file failed: what a publishing script acts on, where the
/// sentence is for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file cannot be read.
    Unreadable,
    /// The index's signature does not verify with the key given.
    Signature,
    /// The index does not parse or breaks one of its rules.
    Invalid,
    /// The index has expired: clients refuse it.
    Expired,
    /// An archive's size is not the index's.
    Size,
    /// An archive's sha256 is not the index's.
    Sha256,
    /// An archive does not unpack, or holds other files than the index lists.
    Contents,
    /// A file in archives/ that the index does not list.
    NotListed,
}

impl ProblemKind {
    /// The name `repo verify --json` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::Signature => "signature",
            ProblemKind::Invalid => "invalid",
            ProblemKind::Expired => "expired",
            ProblemKind::Size => "size",
            ProblemKind::Sha256 => "sha256",
            ProblemKind::Contents => "contents",
            ProblemKind::NotListed => "not_listed",
        }
    }
}

/// What `repo verify` found.
#[derive(Debug, Default)]
pub struct Verified {
    pub modules: usize,
    /// The index's repository name, serial and dates, if it could be read.
    pub stamp: Option<Stamp>,
    /// Empty when the repository is good.
    pub problems: Vec<Problem>,
}

impl Verified {
    /// The same facts as the text, for a publishing script:
    /// `problems` keyed by file and kind.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "modules": self.modules,
            "repository": self.stamp.as_ref().map(|s| &s.repository),
            "serial": self.stamp.as_ref().map(|s| s.serial),
            "generated": self.stamp.as_ref().map(|s| s.generated.to_string()),
            "expires": self.stamp.as_ref().map(|s| s.expires.to_string()),
            "problems": self.problems.iter().map(|p| serde_json::json!({
                "file": p.file,
                "kind": p.kind.as_str(),
                "what": p.what,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Checks the repository in `dir`, as a client would now.
pub fn verify(dir: &Path, key: &VerifyingKey) -> Verified {
    let mut stamp = None;
    let (modules, problems) = check(dir, key, &mut stamp);
    Verified {
        modules,
        stamp,
        problems,
    }
}

fn check(dir: &Path, key: &VerifyingKey, stamp: &mut Option<Stamp>) -> (usize, Vec<Problem>) {
    use ProblemKind::*;
    let mut problems = Vec::new();
    let mut fail = |file: &str, kind: ProblemKind, what: String| {
        problems.push(Problem {
            file: file.to_owned(),
            kind,
            what,
        })
    };
    let read = |name: &str| std::fs::read(dir.join(name));
    let index_bytes = match read("index.json") {
        Ok(bytes) => bytes,
        Err(e) => {
            fail("index.json", Unreadable, format!("cannot read: {e}"));
            return (0, problems);
        }
    };
    match read("index.json.sig") {
        Ok(signature) => {
            if let Err(e) = signing::verify(key, &index_bytes, &signature) {
                fail("index.json.sig", Signature, e.to_string());
            }
        }
        Err(e) => fail("index.json.sig", Unreadable, format!("cannot read: {e}")),
    }
    let index = match Index::parse(&index_bytes) {
        Ok(index) => index,
        Err(e) => {
            fail("index.json", Invalid, e.to_string());
            return (0, problems);
        }
    };
    *stamp = Some(index.stamp());
    if index.is_expired(Timestamp::now()) {
        fail(
            "index.json",
            Expired,
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
                fail(file, Unreadable, format!("cannot read: {e}"));
                continue;
            }
        };
        if bytes.len() as u64 != module.size {
            fail(
                file,
                Size,
                format!("{} bytes, the index says {}", bytes.len(), module.size),
            );
        }
        let sha256 = super::sha256_hex(&bytes);
        if sha256 != module.sha256 {
            fail(
                file,
                Sha256,
                format!("sha256 {sha256}, the index says {}", module.sha256),
            );
            continue;
        }
        match archive::read(&bytes, &module.name) {
            Ok(files) => {
                let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
                if paths != module.files {
                    fail(
                        file,
                        Contents,
                        "holds other files than the index lists".into(),
                    );
                }
            }
            Err(e) => fail(file, Contents, e.to_string()),
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("archives")) {
        for entry in entries.flatten() {
            let name = format!("archives/{}", entry.file_name().to_string_lossy());
            if !listed.contains(&name) {
                fail(&name, NotListed, "not listed in index.json".into());
            }
        }
    }
    (index.modules.len(), problems)
}
