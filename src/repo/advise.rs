//! `modman repo advise`: marks versions of a module in a built repository
//! as insecure or withdrawn. The index gains the advisory and is signed
//! again with the repository's key, under a new serial, so every modman
//! takes it at its next refresh; the archives stay as they are.
//!
//! The new repository is put together beside the old one (its files
//! linked, not copied) and swapped in whole, as `repo build` does, so a
//! server never serves the new index with the old signature.

use std::path::Path;

use super::build::{self, io_error, BuildError};
use super::index::{limits, Advisory, Index, IndexError, Timestamp};
use super::signing;

/// Why nothing was advised; the repository is as it was.
#[derive(Debug, thiserror::Error)]
pub enum AdviseError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("{dir}/index.json: {problem}; nothing was changed")]
    Index { dir: String, problem: String },
    #[error("the advisory for {module}: {problem}; nothing was changed")]
    Advisory { module: String, problem: String },
}

/// What `repo advise` did.
#[derive(Debug)]
pub struct Advised {
    /// An advisory for the same module and versions was replaced.
    pub replaced: bool,
    /// The version the repository offers now, if it offers the module.
    pub offered: Option<String>,
    /// The new index's serial.
    pub serial: u64,
}

/// Adds `advisory` to the repository at `dir`, signed with the key at
/// `key_path`. The index there must verify with that key: a repository
/// signed by someone else is not re-signed by this one.
pub fn advise(dir: &Path, key_path: &Path, mut advisory: Advisory) -> Result<Advised, AdviseError> {
    let key = signing::read_private(key_path).map_err(BuildError::from)?;
    let index_error = |problem: String| AdviseError::Index {
        dir: dir.display().to_string(),
        problem,
    };
    let bytes = std::fs::read(dir.join("index.json")).map_err(|e| {
        index_error(format!(
            "cannot read it ({e}); is this a repository `modman repo build` made?"
        ))
    })?;
    let signature = std::fs::read(dir.join("index.json.sig"))
        .map_err(|e| index_error(format!("cannot read its signature ({e})")))?;
    signing::verify(&key.verifying_key(), &bytes, &signature).map_err(|e| {
        index_error(format!(
            "{e}: it was not signed with {}, so it is not re-signed with it",
            key_path.display()
        ))
    })?;
    let mut index = Index::parse(&bytes).map_err(|e: IndexError| index_error(e.to_string()))?;
    advisory.clean_text();
    advisory.check().map_err(|problem| AdviseError::Advisory {
        module: advisory.module.clone(),
        problem,
    })?;
    let before = index.advisories.len();
    index.advisories.retain(|a| !a.same_subject(&advisory));
    let replaced = index.advisories.len() < before;
    if index.advisories.len() >= limits::ADVISORIES {
        return Err(AdviseError::Advisory {
            module: advisory.module,
            problem: format!(
                "the index holds {} advisories already, the most an index may hold",
                limits::ADVISORIES
            ),
        });
    }
    let offered = index.get(&advisory.module).map(|e| e.version.clone());
    index.advisories.push(advisory);
    // Valid as long as the build made it, from now.
    let valid_for = index.expires.0 - index.generated.0;
    let (generated, clock) = build::build_time()?;
    index.serial = build::next_serial(dir, clock);
    index.generated = generated;
    index.expires = Timestamp(generated.0 + valid_for);
    let serial = index.serial;
    let json = index.to_json();
    let staging = build::staging_dir(dir)?;
    link_tree(dir, staging.path())?;
    let index_path = staging.path().join("index.json");
    std::fs::write(&index_path, &json).map_err(io_error(&index_path))?;
    let signature_path = staging.path().join("index.json.sig");
    std::fs::write(&signature_path, signing::sign(&key, &json))
        .map_err(io_error(&signature_path))?;
    build::replace_dir(staging, dir)?;
    Ok(Advised {
        replaced,
        offered,
        serial,
    })
}

/// Links every file under `from` (but its index and signature, which are
/// written anew) into `to`, directories made as met; a file that cannot
/// be linked is copied.
fn link_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    for entry in std::fs::read_dir(from).map_err(io_error(from))? {
        let entry = entry.map_err(io_error(from))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(io_error(&source))?;
        if kind.is_dir() {
            std::fs::create_dir(&target).map_err(io_error(&target))?;
            link_tree(&source, &target)?;
        } else if from.join("index.json") != source
            && from.join("index.json.sig") != source
            && std::fs::hard_link(&source, &target).is_err()
        {
            std::fs::copy(&source, &target).map_err(io_error(&source))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::advisory::tests::advisory;
    use crate::repo::index::AdvisoryKind;

    #[test]
    fn an_advisory_is_signed_into_the_index_and_survives_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let module = tree.join("mod_lastlog");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(module.join("mod_lastlog.lua"), "-- code\n").unwrap();
        let built = build::tests::TestBuild::new(dir.path());
        let (key, out) = (&built.key, &built.out);
        let public = signing::read_private(key).unwrap().verifying_key();
        let options = built.options(&tree);
        build::build(&options).unwrap();
        let read = || Index::parse(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        let built = read();
        let version = built.modules[0].version.clone();

        let done = advise(
            out,
            key,
            advisory("lastlog", &version, AdvisoryKind::Withdrawn),
        )
        .unwrap();
        assert!(!done.replaced);
        assert_eq!(done.offered.as_deref(), Some(version.as_str()));
        let advised = read();
        assert!(advised.serial > built.serial);
        assert_eq!(advised.modules, built.modules);
        assert_eq!(
            advised.advisories_for("lastlog", &version)[0].kind,
            AdvisoryKind::Withdrawn
        );
        let verified = crate::repo::verify::verify(out, &public);
        assert!(verified.problems.is_empty(), "{:?}", verified.problems);

        // The same versions again: replaced, not added.
        let again = advise(
            out,
            key,
            advisory("lastlog", &version, AdvisoryKind::Insecure),
        )
        .unwrap();
        assert!(again.replaced);
        assert_eq!(read().advisories.len(), 1);
        assert_eq!(read().advisories[0].kind, AdvisoryKind::Insecure);

        // A rebuild keeps it.
        build::build(&options).unwrap();
        assert_eq!(read().advisories.len(), 1);

        // Another key does not re-sign this repository.
        let other = dir.path().join("other");
        signing::generate(&other).unwrap();
        let refused = advise(
            out,
            &other,
            advisory("lastlog", "1", AdvisoryKind::Insecure),
        );
        assert!(
            matches!(refused, Err(AdviseError::Index { .. })),
            "{refused:?}"
        );
        assert_eq!(read().advisories.len(), 1);
    }
}
