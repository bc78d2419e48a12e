//! The file half of a change: a journaled swap of module directories that
//! a crash at any instant leaves wholly old or wholly new.
//!
//! 1. the new files are written to `modules_dir/.modman-staging/<id>/new`
//!    (same file system as the live directories, so renames are atomic;
//!    Prosody never looks at dot-directories);
//! 2. a journal with each module's record before and after is written,
//!    and one barrier makes the stage, the journal and the new state
//!    durable together ([`fsutil::sync_together`]: fsyncs issued at once,
//!    one journal commit, instead of one after another);
//! 3. each live `mod_x` is renamed to `.../old`, each new one into place;
//! 4. `installed.json`, written before the barrier, is renamed in: the
//!    commit point;
//! 5. the old copies, with a manifest staged beside them, are renamed to
//!    `state_dir/backups/<id>` (for rollback), staging and journal are
//!    removed.
//!
//! The history line is not written here: a change has one line, written
//! by [`super::change`] once the whole change (files, config, live state)
//! has ended. Only [`super::recovery`] logs on its own, for a change a
//! crash cut short.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::faults::{Faults, Step};
use super::manifest::{Prepared, RecordChange, Transaction};
use super::state::Installed;
use super::{backups, io, EngineError, Paths};
use crate::fsutil;
use crate::repo::archive::ArchiveFile;

/// Whether a transaction keeps the copies it replaced for `rollback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backup {
    /// An ordinary change: `rollback` can undo it later.
    Keep,
    /// The undo of a change that failed half-way: there is nothing to
    /// roll back to, since the change as a whole did not happen.
    Discard,
}

/// Who asked for a transaction, and as part of which operation.
pub struct Meta<'a> {
    /// Its id (see [`transaction_id`]), known before it starts so the
    /// change journal can name it first.
    pub id: String,
    pub actor: &'a str,
    pub operation: &'a str,
    /// Files and directories written before, which must be durable before
    /// anything moves (the change journal's line naming this transaction):
    /// made so by the transaction's one barrier, without syncs of their
    /// own.
    pub durable_with: Vec<std::path::PathBuf>,
}

/// Applies `changes` as one transaction over `installed` (the state as
/// committed). On failure everything is as before, or, if even the undo
/// failed, the journal stays and the error says so.
pub(super) fn apply(
    paths: &Paths,
    installed: Installed,
    meta: Meta<'_>,
    changes: Vec<Prepared>,
    backup: Backup,
    faults: &Faults,
) -> Result<Transaction, EngineError> {
    let id = meta.id;
    let stage = paths.staging.join(&id);
    let transaction = Transaction {
        id: id.clone(),
        time: super::audit::now(),
        actor: meta.actor.to_owned(),
        operation: meta.operation.to_owned(),
        changes: changes
            .iter()
            .map(|c| RecordChange {
                name: c.name.clone(),
                before: installed.modules.get(&c.name).cloned(),
                after: c.after.as_ref().map(|(record, _)| record.clone()),
            })
            .collect(),
        settings: vec![],
    };
    for change in transaction.changes.iter().filter(|c| c.before.is_none()) {
        let taken = match &change.record().library {
            Some(library) => paths.modules_dir.join(library).exists().then(|| {
                format!(
                    "the directory `{library}/` (for the library {})",
                    change.name
                )
            }),
            None => crate::prosody::has_module(&paths.modules_dir, &change.name)
                .then(|| format!("mod_{}", change.name)),
        };
        if let Some(what) = taken {
            return Err(EngineError::Unmanaged {
                what,
                dir: paths.modules_dir.clone(),
            });
        }
    }

    let before = installed.clone();
    let mut after = installed;
    for change in &transaction.changes {
        match &change.after {
            Some(record) => after.modules.insert(change.name.clone(), record.clone()),
            None => after.modules.remove(&change.name),
        };
    }
    let staged = (|| {
        // What the barrier makes durable, as it is written: walking the
        // stage again afterwards would cost a stat and a directory read
        // per path (hundreds for an update of every module).
        let mut durable = vec![stage.clone(), stage.join("new"), stage.join("old")];
        std::fs::create_dir_all(stage.join("new"))?;
        write_stage(&stage.join("new"), &changes, &mut durable)?;
        std::fs::create_dir(stage.join("old"))?;
        // The backup it becomes is modman's alone, as its manifest names
        // who changed what.
        std::fs::set_permissions(
            stage.join("old"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let journal = backups::manifest(&transaction)?;
        if backup == Backup::Keep {
            // The backup's manifest, made durable by the barrier below:
            // `old/` becomes the backup by one rename ([`backups::keep`]).
            let manifest = stage.join("old").join(backups::MANIFEST);
            std::fs::write(&manifest, &journal)?;
            durable.push(manifest);
        }
        let journal = fsutil::write_pending(&paths.journal, &journal)?;
        let state = after.pending(&paths.state_dir)?;
        // One barrier before anything moves: the staged files, this
        // journal, the new state and what the caller wrote before.
        durable.extend([journal.temp_path().to_owned(), state.temp_path().to_owned()]);
        durable.extend(meta.durable_with);
        tracing::debug!("transaction {id}: staged, syncing {} paths", durable.len());
        fsutil::sync_together(&durable)?;
        journal.commit()?;
        tracing::debug!("transaction {id}: staged and durable");
        Ok(state)
    })();
    let state = match staged {
        Ok(state) => state,
        Err(e) => {
            let _ = fsutil::remove_dir_if_present(&stage);
            return Err(io("cannot stage the change in", &stage)(e));
        }
    };

    // The swap syncs the module directory before the state is renamed in,
    // so the commit point never lasts without the files it records.
    let swapped = swap_in(paths, &transaction, faults).and_then(|()| {
        faults.check(Step::StateSave)?;
        state.commit()
    });
    if let Err(e) = swapped {
        // The state file may or may not have been replaced: put back the
        // records that match the files undo restores.
        let outcome = undo(paths, &transaction).and_then(|()| before.save(&paths.state_dir));
        return Err(match outcome {
            Ok(()) => io("cannot swap the module into", &paths.modules_dir)(e),
            Err(undo_error) => EngineError::Stuck(format!(
                "swapping the files failed ({e}) and undoing it failed too ({undo_error}); modman finishes undoing it on its next start"
            )),
        });
    }
    tracing::debug!("transaction {id}: swapped, state committed");
    finish(paths, &transaction, backup).map_err(io(
        "the files are in place, but the backup cannot be finished in",
        &paths.state_dir,
    ))?;
    Ok(transaction)
}

/// Undoes a committed `transaction` from its backup, keeping no backup of
/// the undo, then drops the transaction's own backup: afterwards it is as
/// if the transaction never happened. `installed` is the state as
/// committed now.
pub(super) fn unapply(
    paths: &Paths,
    installed: Installed,
    transaction: &Transaction,
    actor: &str,
    faults: &Faults,
) -> Result<(), EngineError> {
    // The records go back exactly as they were: the transaction never
    // happened, so nobody installed anything anew.
    let restoring = transaction
        .changes
        .iter()
        .map(|change| {
            let mut prepared = backups::restoring(paths, &transaction.id, change, actor)?;
            if let (Some((record, _)), Some(before)) = (&mut prepared.after, &change.before) {
                *record = before.clone();
            }
            Ok(prepared)
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    let meta = Meta {
        id: transaction_id(),
        actor,
        operation: &transaction.operation,
        durable_with: vec![],
    };
    apply(paths, installed, meta, restoring, Backup::Discard, faults)?;
    fsutil::remove_dir_if_present(&paths.backups.join(&transaction.id))
        .map_err(io("cannot remove the backup in", &paths.backups))
}

/// Step 3: old copies out to staging, new copies in.
fn swap_in(paths: &Paths, transaction: &Transaction, faults: &Faults) -> std::io::Result<()> {
    let stage = paths.staging.join(&transaction.id);
    for change in &transaction.changes {
        let live = paths.live(&change.name, change.record());
        let dir_name = format!("mod_{}", change.name);
        if live.exists() {
            std::fs::rename(&live, stage.join("old").join(&dir_name))?;
        }
        faults.check(Step::Swap)?;
        if change.after.is_some() {
            std::fs::rename(stage.join("new").join(&dir_name), &live)?;
        }
    }
    fsutil::sync_dir(&paths.modules_dir)
}

/// Undoes step 3 as far as it went, from what is on disk, and removes the
/// staging and the journal. Safe to run again after a crash inside it.
pub(super) fn undo(paths: &Paths, transaction: &Transaction) -> std::io::Result<()> {
    let stage = paths.staging.join(&transaction.id);
    let trash = stage.join("trash");
    std::fs::create_dir_all(&trash)?;
    for change in transaction.changes.iter().rev() {
        let live = paths.live(&change.name, change.record());
        let dir_name = format!("mod_{}", change.name);
        let old = stage.join("old").join(&dir_name);
        let new_moved_in = change.after.is_some() && !stage.join("new").join(&dir_name).exists();
        if old.exists() {
            if live.exists() {
                std::fs::rename(&live, trash.join(&dir_name))?;
            }
            std::fs::rename(&old, &live)?;
        } else if new_moved_in && live.exists() {
            std::fs::rename(&live, trash.join(&dir_name))?;
        }
    }
    fsutil::sync_dir(&paths.modules_dir)?;
    close(paths, transaction)
}

/// Step 5: backup (when kept), clean up. Safe to run again after a crash
/// inside it.
pub(super) fn finish(
    paths: &Paths,
    transaction: &Transaction,
    backup: Backup,
) -> std::io::Result<()> {
    if backup == Backup::Keep {
        backups::keep(paths, transaction)?;
    }
    close(paths, transaction)?;
    backups::prune(paths)
}

/// The end of every transaction, done or undone: its staging and the
/// journal go.
fn close(paths: &Paths, transaction: &Transaction) -> std::io::Result<()> {
    fsutil::remove_dir_if_present(&paths.staging.join(&transaction.id))?;
    // Empty now (one change at a time): leave the module directory as
    // Prosody's admin would expect to find it.
    let _ = std::fs::remove_dir(&paths.staging);
    // Not synced: a journal that a power loss brings back describes a swap
    // that is wholly done or undone, and recovery finishes it again (both
    // ends are idempotent).
    match std::fs::remove_file(&paths.journal) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(super) fn transaction_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z-{:08x}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.nanosecond(),
        rand::random::<u32>()
    )
}

/// From this many modules on, a stage is written by [`STAGE_THREADS`]
/// threads at once rather than by the change's own.
const STAGE_IN_PARALLEL_FROM: usize = 16;

/// Threads writing one stage. Creating a file waits on the disk more than
/// on the CPU (ext4 reads inode tables to pick a free inode), so several
/// threads overlap those waits even on two cores: 250 two-file modules
/// took 168 ms from one thread and 26 to 46 ms from eight here, with the
/// disk at its slowest (right after many deletions).
const STAGE_THREADS: usize = 8;

/// Writes the new copy of every module `changes` installs or replaces
/// under `new`, adding what it wrote to `written` (see [`write_tree`]).
fn write_stage(
    new: &Path,
    changes: &[Prepared],
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let trees: Vec<(PathBuf, &[ArchiveFile])> = changes
        .iter()
        .filter_map(|prepared| {
            let (_, files) = prepared.after.as_ref()?;
            Some((new.join(format!("mod_{}", prepared.name)), files.as_slice()))
        })
        .collect();
    let workers = match trees.len() < STAGE_IN_PARALLEL_FROM {
        true => 1,
        false => STAGE_THREADS,
    };
    let staged = crate::parallel::each(&trees, workers, |(root, files)| {
        let mut mine = Vec::new();
        write_tree(root, files, &mut mine).map(|()| mine)
    });
    staged
        .into_iter()
        .try_for_each(|mine| mine.map(|mine| written.extend(mine)))
}

/// Writes files (already checked: relative, no `..`) under `root`, not
/// synced: [`apply`] makes the whole stage durable with one barrier, over
/// the directories and files this adds to `written`. Each directory is
/// made once, not once per file in it.
fn write_tree(
    root: &Path,
    files: &[ArchiveFile],
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir(root)?;
    written.push(root.to_owned());
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    for file in files {
        let path = root.join(&file.path);
        // Every directory between the root and the file, outermost first.
        let parents: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .take_while(|dir| *dir != root)
            .collect();
        for dir in parents.into_iter().rev() {
            if made.insert(dir.to_owned()) {
                match std::fs::create_dir(dir) {
                    Ok(()) => written.push(dir.to_owned()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if file.executable { 0o755 } else { 0o644 })
            .open(&path)?;
        out.write_all(&file.data)?;
        written.push(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_tree_lists_every_directory_and_file_it_wrote_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mod_x");
        let file = |path: &str, executable| ArchiveFile {
            path: path.into(),
            data: path.as_bytes().to_vec(),
            executable,
        };
        let files = [
            file("mod_x.lua", false),
            file("lib/a.lua", false),
            file("lib/deep/b.lua", false),
            file("lib/c.lua", false),
            file("tool", true),
        ];
        let mut written = vec![];
        write_tree(&root, &files, &mut written).unwrap();
        let mut expected: Vec<PathBuf> = ["", "lib", "lib/deep"]
            .iter()
            .map(|d| root.join(d))
            .chain(files.iter().map(|f| root.join(&f.path)))
            .collect();
        expected.sort();
        written.sort();
        assert_eq!(written, expected);
        for f in &files {
            assert_eq!(std::fs::read(root.join(&f.path)).unwrap(), f.data);
        }
        let mode = |p: &str| {
            std::fs::metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("tool"), mode("mod_x.lua")), (0o755, 0o644));
        // What the barrier syncs is what a walk of the tree finds.
        let mut walked = fsutil::tree_paths(&root).unwrap();
        walked.sort();
        assert_eq!(walked, expected);
    }

    /// Written by several threads, a large stage is the same stage: every
    /// module, file and directory once in what the barrier syncs, every
    /// byte in place; and removals write nothing.
    #[test]
    fn a_stage_of_many_modules_written_by_several_threads_is_whole_and_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        std::fs::create_dir(&new).unwrap();
        let count = 3 * STAGE_IN_PARALLEL_FROM;
        let changes: Vec<Prepared> = (0..count)
            .map(|i| Prepared {
                name: format!("m{i}"),
                after: (i % 7 != 3).then(|| {
                    let record = super::super::state::InstalledModule::for_test("r", "1", 'a');
                    let files = ["mod_m.lua", "lib/helper.lua"]
                        .map(|path| ArchiveFile {
                            path: path.into(),
                            data: format!("{i} {path}").into_bytes(),
                            executable: false,
                        })
                        .to_vec();
                    (record, files)
                }),
            })
            .collect();
        let mut written = vec![];
        write_stage(&new, &changes, &mut written).unwrap();
        written.sort();
        let mut walked = fsutil::tree_paths(&new).unwrap();
        walked.retain(|p| *p != new);
        walked.sort();
        assert_eq!(written, walked, "every path once, none missed");
        let staged = changes.iter().filter(|c| c.after.is_some()).count();
        assert_eq!(written.len(), staged * 4, "a root, lib/ and two files each");
        for (i, change) in changes.iter().enumerate() {
            let root = new.join(format!("mod_m{i}"));
            assert_eq!(root.exists(), change.after.is_some(), "{i}");
            if change.after.is_some() {
                let helper = std::fs::read(root.join("lib/helper.lua")).unwrap();
                assert_eq!(helper, format!("{i} lib/helper.lua").into_bytes());
            }
        }
        // A module staged twice fails the stage rather than mixing copies.
        let again = write_stage(&new, &changes, &mut vec![]);
        assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    }
}
