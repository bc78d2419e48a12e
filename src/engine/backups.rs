//! The copies a change replaced, kept in `state_dir/backups/<id>` with the
//! transaction's manifest, so `rollback` can put them back later.

use std::path::Path;

use super::audit;
use super::manifest::{Prepared, RecordChange, Transaction};
use super::{io, EngineError, Paths};
use crate::fsutil;
use crate::repo::archive::ArchiveFile;

/// Backups kept; older ones are removed while modman is idle, and when
/// it opens its state (see [`prune`]).
const KEEP_BACKUPS: usize = 50;

/// The manifest of a backup: the transaction, which `rollback` reads.
pub(super) const MANIFEST: &str = "manifest.json";

/// Makes the old module directories of `transaction`, which its staging
/// holds in `new/` once the swap is done (in `old/`, staged by a modman
/// that swapped by renames), beside the manifest written there before the
/// swap's barrier, its backup: by one rename of that directory, whole or
/// not at all, so a backup costs no copy and no sync beyond its
/// directory's. Across file systems (`state_dir` apart from the module
/// directory) it is copied instead.
pub(super) fn keep(paths: &Paths, transaction: &Transaction) -> std::io::Result<()> {
    let stage = paths.staging.join(&transaction.id);
    let old = match stage.join("old").is_dir() {
        true => stage.join("old"),
        false => stage.join("new"),
    };
    let backup = paths.backups.join(&transaction.id);
    if backup.exists() {
        return Ok(());
    }
    if !old.join(MANIFEST).is_file() {
        // Staged by a modman that did not write it there yet.
        std::fs::write(old.join(MANIFEST), manifest(transaction)?)?;
        fsutil::sync_together(&[old.join(MANIFEST), old.clone()])?;
    }
    match std::fs::rename(&old, &backup) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy(paths, &old, &backup)?,
        other => other?,
    }
    fsutil::sync_dir(&paths.backups)
}

/// The manifest's bytes.
pub(super) fn manifest(transaction: &Transaction) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(transaction).map_err(std::io::Error::other)
}

/// Copies the staged `old` directory to `backup` through a temp name,
/// synced before it is renamed in.
fn copy(paths: &Paths, old: &Path, backup: &Path) -> std::io::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix(".modman-backup-")
        .tempdir_in(&paths.backups)?;
    let inside = temp.path().join("backup");
    fsutil::copy_dir(old, &inside)?;
    fsutil::sync_together(&fsutil::tree_paths(&inside)?)?;
    std::fs::rename(&inside, backup)
}

/// Keeps the record of a change without files (module options), for
/// rollback. Readable by modman alone: the values before may be secrets.
pub(super) fn keep_record(paths: &Paths, transaction: &Transaction) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = paths.backups.join(&transaction.id);
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    fsutil::atomic_write(&dir.join(MANIFEST), &manifest(transaction)?)?;
    std::fs::set_permissions(dir.join(MANIFEST), std::fs::Permissions::from_mode(0o600))?;
    fsutil::sync_dir(&paths.backups)
}

/// Where the backups beyond those kept wait for their removal, which
/// holds no lock: neither `rollback` nor [`list`] sees them there (no
/// manifest at its top, a name [`set_aside`] never takes).
const SET_ASIDE: &str = ".pruned";

/// Removes all but the newest [`KEEP_BACKUPS`]: [`set_aside`], then
/// [`remove_set_aside`]. Not on a change's path: removing the oldest
/// backup (a whole module's copy) after each change cost an install a
/// directory listing and a tree's unlinks before its answer. The daemon
/// prunes while idle ([`super::Engine::tidy_while_idle`]), and every
/// opening of the state to change it does too, so a command line that
/// makes its changes itself keeps the count as well. Between the two
/// there may be a few more.
pub(super) fn prune(paths: &Paths) -> std::io::Result<()> {
    set_aside(paths)?;
    remove_set_aside(paths)
}

/// Moves the backups beyond the newest [`KEEP_BACKUPS`] into
/// [`SET_ASIDE`], a rename each: the part of pruning done under the
/// change lock, so a change that comes meanwhile waits for renames, not
/// for the unlinks of whole module copies (measured: idle pruning under
/// the lock made the installs of the bench, which come in bursts, 2 to 4
/// ms slower at the median).
pub(super) fn set_aside(paths: &Paths) -> std::io::Result<()> {
    let mut ids: Vec<String> = std::fs::read_dir(&paths.backups)?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    let excess = ids.len().saturating_sub(KEEP_BACKUPS);
    if excess == 0 {
        return Ok(());
    }
    let aside = paths.backups.join(SET_ASIDE);
    std::fs::create_dir_all(&aside)?;
    for id in &ids[..excess] {
        std::fs::rename(paths.backups.join(id), aside.join(id))?;
    }
    Ok(())
}

/// Removes what [`set_aside`] moved away, this time's and any an
/// interrupted removal left.
pub(super) fn remove_set_aside(paths: &Paths) -> std::io::Result<()> {
    fsutil::remove_dir_if_present(&paths.backups.join(SET_ASIDE))
}

/// Kept transactions, oldest first.
pub(super) fn list(paths: &Paths) -> Result<Vec<Transaction>, EngineError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&paths.backups).map_err(io("cannot read", &paths.backups))?;
    for entry in entries.flatten() {
        let manifest = entry.path().join(MANIFEST);
        if let Ok(bytes) = std::fs::read(&manifest) {
            if let Ok(transaction) = serde_json::from_slice::<Transaction>(&bytes) {
                found.push(transaction);
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

/// The change that puts `change.name` back as it was before transaction
/// `id`: its old files from the backup, or its removal.
pub(super) fn restoring(
    paths: &Paths,
    id: &str,
    change: &RecordChange,
    actor: &str,
) -> Result<Prepared, EngineError> {
    let after = match &change.before {
        Some(record) => {
            let dir = paths.backups.join(id).join(format!("mod_{}", change.name));
            let mut files = Vec::new();
            read_tree(&dir, "", &mut files).map_err(io("cannot read the backup", &dir))?;
            files.sort_by(|a, b| a.path.cmp(&b.path));
            let mut record = record.clone();
            record.installed_at = audit::now();
            record.installed_by = actor.to_owned();
            Some((record, files))
        }
        None => None,
    };
    Ok(Prepared {
        name: change.name.clone(),
        after,
    })
}

fn read_tree(root: &Path, relative: &str, out: &mut Vec<ArchiveFile>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(root.join(relative))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            read_tree(root, &path, out)?;
        } else if kind.is_file() {
            let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
            out.push(ArchiveFile {
                data: std::fs::read(entry.path())?,
                path,
                executable,
            });
        }
    }
    Ok(())
}
