//! The file half of a change: a journaled swap of module directories that
//! a crash at any instant leaves wholly old or wholly new.
//!
//! 1. the new files are written to `modules_dir/.modman-staging/<id>/new`
//!    (same file system as the live directories, so renames are atomic;
//!    Prosody never looks at dot-directories; see [`super::stage`]), a
//!    file the copy in place holds byte for byte linked from it;
//! 2. a journal with each module's record before and after, and the
//!    inode of each new copy, is written, and one barrier makes the
//!    stage, the journal and the new state durable together
//!    ([`fsutil::sync_together`]: fsyncs issued at once, one journal
//!    commit, instead of one after another);
//! 3. each live `mod_x` is exchanged with its new copy (moved in, or out,
//!    for an install or a removal), so `new/` ends holding the old copies;
//! 4. `installed.json`, written before the barrier, is renamed in: the
//!    commit point;
//! 5. `new/`, with the manifest staged in it, is renamed to
//!    `state_dir/backups/<id>` (for rollback), staging and journal are
//!    removed.
//!
//! The history line is not written here: a change has one line, written
//! by [`super::change`] once the whole change (files, config, live state)
//! has ended. Only [`super::recovery`] logs on its own, for a change a
//! crash cut short.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::faults::{Faults, Step};
use super::manifest::{Prepared, RecordChange, Transaction};
use super::stage::Stage;
use super::state::{Installed, InstalledModule};
use super::{backups, io, EngineError, Paths};
use crate::fsutil;

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
    /// Its stage, empty, whose id is the transaction's (see
    /// [`transaction_id`]), known before it starts so the change journal
    /// can name it first.
    pub stage: Stage,
    pub actor: &'a str,
    pub operation: &'a str,
    /// Files and directories written before, which must be durable before
    /// anything moves (the change journal's line naming this transaction):
    /// made so by the transaction's one barrier, without syncs of their
    /// own.
    pub durable_with: Vec<std::path::PathBuf>,
}

/// Applies `changes` as one transaction over `installed` (the state as
/// committed), and returns it with the state it committed. On failure
/// everything is as before, or, if even the undo failed, the journal
/// stays and the error says so.
pub(super) fn apply(
    paths: &Paths,
    installed: Installed,
    mut meta: Meta<'_>,
    changes: Vec<Prepared>,
    backup: Backup,
    faults: &Faults,
) -> Result<(Transaction, Installed), EngineError> {
    let id = meta.stage.id().to_owned();
    let stage = meta.stage.dir().to_owned();
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

    let after = with_records(installed, &transaction.changes, |c| c.after.as_ref());
    let staged = (|| {
        // What the barrier makes durable, as it is written: walking the
        // stage again afterwards would cost a stat and a directory read
        // per path (hundreds for an update of every module). The state
        // and the transaction (the backup's manifest, and the journal's
        // bulk) are serialized meanwhile: for an update of 250 modules,
        // a millisecond or more that no longer follows the stage.
        // Each module's copy in place now, whose unchanged files the
        // stage links rather than writes again.
        let live: BTreeMap<String, PathBuf> = (transaction.changes.iter())
            .filter_map(|change| {
                let before = change.before.as_ref()?;
                Some((change.name.clone(), paths.live(&change.name, before)))
            })
            .collect();
        let (written, serialized) = meta.stage.complete(changes, &live, || {
            Ok::<_, std::io::Error>((backups::manifest(&transaction)?, after.serialized()?))
        })?;
        let (manifest, state) = serialized?;
        let mut durable = written.paths;
        let new = stage.join("new");
        let staged = written.copies;
        if backup == Backup::Keep {
            // The backup's manifest, made durable by the barrier below:
            // `new/`, holding the old copies once the swap is done,
            // becomes the backup by one rename ([`backups::keep`]).
            let path = new.join(backups::MANIFEST);
            std::fs::write(&path, &manifest)?;
            durable.push(path);
        }
        let bytes = Journal::bytes(manifest, &staged)?;
        let pending = fsutil::write_pending(&paths.journal, &bytes)?;
        let state = Installed::pending(&paths.state_dir, &state)?;
        // One barrier before anything moves: the staged files, this
        // journal, the new state and what the caller wrote before.
        durable.extend([pending.temp_path().to_owned(), state.temp_path().to_owned()]);
        durable.extend(meta.durable_with);
        tracing::debug!("transaction {id}: staged, syncing {} paths", durable.len());
        fsutil::sync_together(&durable)?;
        pending.commit()?;
        tracing::debug!("transaction {id}: staged and durable");
        Ok((state, staged))
    })();
    let (state, staged) = match staged {
        Ok(staged) => staged,
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
        let journal = Journal {
            transaction: transaction.clone(),
            staged: Some(staged),
        };
        let outcome = undo(paths, &journal).and_then(|()| {
            let before = with_records(after, &transaction.changes, |c| c.before.as_ref());
            before.save(&paths.state_dir)
        });
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
    Ok((transaction, after))
}

/// `state` with each module `changes` names set to its record on one
/// side of its change (`side`: before or after), or gone where that side
/// has none.
fn with_records(
    mut state: Installed,
    changes: &[RecordChange],
    side: impl Fn(&RecordChange) -> Option<&InstalledModule>,
) -> Installed {
    for change in changes {
        match side(change) {
            Some(record) => state.modules.insert(change.name.clone(), record.clone()),
            None => state.modules.remove(&change.name),
        };
    }
    state
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
        stage: Stage::open(&paths.staging, transaction_id(), &restoring)
            .map_err(io("cannot stage the change in", &paths.staging))?,
        actor,
        operation: &transaction.operation,
        durable_with: vec![],
    };
    apply(paths, installed, meta, restoring, Backup::Discard, faults)?;
    fsutil::remove_dir_if_present(&paths.backups.join(&transaction.id))
        .map_err(io("cannot remove the backup in", &paths.backups))
}

/// Step 3: each new copy in, each old copy out to where the new one was
/// staged (`new/mod_x`), so that `new/` ends holding exactly the copies
/// the change replaced or removed. A replaced module is exchanged with its
/// new copy in one step ([`fsutil::exchange`]): Prosody never finds it
/// missing, and the swap is one rename per module, not two (250 took 3.4
/// ms instead of 10 here). Where the file system cannot exchange, it is
/// moved aside, the new copy moved in, and the old moved to `new/mod_x`.
fn swap_in(paths: &Paths, transaction: &Transaction, faults: &Faults) -> std::io::Result<()> {
    let stage = paths.staging.join(&transaction.id);
    for change in &transaction.changes {
        let live = paths.live(&change.name, change.record());
        let held = stage.join("new").join(format!("mod_{}", change.name));
        // Exchanged without a look first (a stat per module, on the one
        // thread of the swap): the exchange says when nothing is there.
        match change.after.is_some() {
            true => match faults.exchange(&held, &live) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::rename(&held, &live)?
                }
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => match live.exists() {
                    true => {
                        let aside = stage.join("aside");
                        std::fs::create_dir_all(&aside)?;
                        let aside = aside.join(format!("mod_{}", change.name));
                        std::fs::rename(&live, &aside)?;
                        std::fs::rename(&held, &live)?;
                        std::fs::rename(&aside, &held)?;
                    }
                    false => std::fs::rename(&held, &live)?,
                },
                other => other?,
            },
            false if live.exists() => std::fs::rename(&live, &held)?,
            false => {}
        }
        faults.check(Step::Swap)?;
    }
    fsutil::sync_dir(&paths.modules_dir)
}

/// Undoes step 3 as far as it went, from what is on disk, and removes the
/// staging and the journal. Safe to run again after a crash inside it.
pub(super) fn undo(paths: &Paths, journal: &Journal) -> std::io::Result<()> {
    let transaction = &journal.transaction;
    let stage = paths.staging.join(&transaction.id);
    // Where new copies go as they are taken out, and a directory not
    // modman's found where an old copy goes back (`trash.found/`).
    for part in ["trash", "trash.found"] {
        std::fs::create_dir_all(stage.join(part))?;
    }
    for change in transaction.changes.iter().rev() {
        let module = Module {
            live: paths.live(&change.name, change.record()),
            dir_name: format!("mod_{}", change.name),
            stage: &stage,
        };
        match &journal.staged {
            Some(staged) => undo_swap(change, &module, staged.get(&change.name).copied())?,
            None => undo_renamed(change, &module)?,
        }
    }
    fsutil::sync_dir(&paths.modules_dir)?;
    close(paths, transaction)
}

/// Where one module of a change being undone may be.
struct Module<'a> {
    live: PathBuf,
    /// `mod_x`, its name in the stage.
    dir_name: String,
    stage: &'a Path,
}

impl Module<'_> {
    /// Its place in the stage's directory `part`: `new/mod_x`, say.
    fn in_stage(&self, part: &str) -> PathBuf {
        self.stage.join(part).join(&self.dir_name)
    }
}

/// [`undo`] of one module of a swap by [`swap_in`], whose new copy was
/// staged as inode `new_copy`. Where a module is, both before and after
/// its swap, a directory sits at its live path and at `new/mod_x`: the
/// inode of the new copy, journaled before anything moved, tells which.
/// The new copy is moved out to `trash/` first, the old one back in
/// second; a crash between the two finds the new copy in `trash/` and the
/// old one still at `new/mod_x` (or in `aside/`), and goes on.
fn undo_swap(
    change: &RecordChange,
    module: &Module<'_>,
    new_copy: Option<u64>,
) -> std::io::Result<()> {
    let live = &module.live;
    let held = module.in_stage("new");
    let aside = module.in_stage("aside");
    let trashed = module.in_stage("trash");
    let is_new = |path: &Path| new_copy.is_some() && fsutil::inode(path) == new_copy;
    let moved_in = is_new(live) || is_new(&trashed);
    let old_copy = match (aside.exists(), held.exists()) {
        (true, _) => Some(aside),
        (false, true) if change.after.is_none() || moved_in => Some(held),
        _ => None,
    };
    if is_new(live) {
        std::fs::rename(live, &trashed)?;
    }
    if let Some(old_copy) = old_copy {
        if live.exists() {
            // Not modman's: kept beside the new copy, not lost.
            std::fs::rename(live, module.in_stage("trash.found"))?;
        }
        std::fs::rename(&old_copy, live)?;
    }
    Ok(())
}

/// [`undo`] of one module of a swap journaled by a modman before
/// [`swap_in`] exchanged modules (no inodes in its journal): each old copy
/// was renamed to `old/mod_x`, then each new one in from `new/mod_x`, so
/// where a directory is tells how far it went.
fn undo_renamed(change: &RecordChange, module: &Module<'_>) -> std::io::Result<()> {
    let live = &module.live;
    let old = module.in_stage("old");
    let new_moved_in = change.after.is_some() && !module.in_stage("new").exists();
    if old.exists() {
        if live.exists() {
            std::fs::rename(live, module.in_stage("trash"))?;
        }
        std::fs::rename(&old, live)?;
    } else if new_moved_in && live.exists() {
        std::fs::rename(live, module.in_stage("trash"))?;
    }
    Ok(())
}

/// The file journal: the transaction, and the inode of each new copy as
/// staged, by which an undo tells a module swapped from one the swap did
/// not reach ([`undo_swap`]). A journal without them was written by a
/// modman that swapped by renames ([`undo_renamed`]).
#[derive(Debug, Deserialize)]
pub(super) struct Journal {
    #[serde(flatten)]
    pub transaction: Transaction,
    #[serde(default)]
    pub staged: Option<BTreeMap<String, u64>>,
}

impl Journal {
    /// The journal's bytes: those of its transaction, `transaction` (the
    /// backup's manifest, [`backups::manifest`]: serialized once, beside
    /// the stage), with the inode of each new copy, known only once the
    /// stage is written, added as its last field. Serializing the
    /// journal whole after the stage put every record of an update of
    /// 250 modules through serde a second time, on the change's path.
    fn bytes(mut transaction: Vec<u8>, staged: &BTreeMap<String, u64>) -> std::io::Result<Vec<u8>> {
        let damaged = || std::io::Error::other("the transaction is not serialized as an object");
        if transaction.pop() != Some(b'}') {
            return Err(damaged());
        }
        while transaction.last().is_some_and(u8::is_ascii_whitespace) {
            transaction.pop();
        }
        match transaction.last() {
            Some(b'{') => {}
            Some(_) => transaction.push(b','),
            None => return Err(damaged()),
        }
        transaction.extend_from_slice(b"\n  \"staged\": ");
        serde_json::to_writer(&mut transaction, staged).map_err(std::io::Error::other)?;
        transaction.extend_from_slice(b"\n}");
        Ok(transaction)
    }
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
    close(paths, transaction)
}

/// The end of every transaction, done or undone: its staging and the
/// journal go.
fn close(paths: &Paths, transaction: &Transaction) -> std::io::Result<()> {
    // Empty once its copies went into place and the replaced ones into
    // the backup: one rmdir, not a walk. An undo leaves more in it.
    let stage = paths.staging.join(&transaction.id);
    match std::fs::remove_dir(&stage) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => fsutil::remove_dir_if_present(&stage)?,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::manifest::Prepared;
    use crate::engine::state::InstalledModule;
    use crate::repo::archive::ArchiveFile;

    fn paths(root: &Path) -> Paths {
        let paths = Paths::at(root.join("modules"), root.join("state"));
        std::fs::create_dir_all(&paths.modules_dir).unwrap();
        std::fs::create_dir_all(&paths.backups).unwrap();
        paths
    }

    fn copy(name: &str, version: &str) -> Prepared {
        let files = vec![ArchiveFile {
            path: format!("mod_{name}.lua"),
            data: format!("-- {name} {version}\n").into_bytes(),
            executable: false,
        }];
        let mut record = InstalledModule::for_test("r", version, 'a');
        record.files = vec![format!("mod_{name}.lua")];
        Prepared {
            name: name.into(),
            after: Some((record, files)),
        }
    }

    fn removal(name: &str) -> Prepared {
        Prepared {
            name: name.into(),
            after: None,
        }
    }

    /// `change` applied over `installed`, keeping a backup.
    fn made(
        paths: &Paths,
        installed: Installed,
        change: Vec<Prepared>,
        faults: &Faults,
    ) -> Result<Transaction, EngineError> {
        apply(
            paths,
            installed,
            meta(paths, &change),
            change,
            Backup::Keep,
            faults,
        )
        .map(|(transaction, _)| transaction)
    }

    fn meta(paths: &Paths, change: &[Prepared]) -> Meta<'static> {
        Meta {
            stage: Stage::open(&paths.staging, transaction_id(), change).unwrap(),
            actor: "test",
            operation: "update",
            durable_with: vec![],
        }
    }

    /// Every file under the module directory (staging included, which
    /// should be gone), and the state.
    fn on_disk(paths: &Paths) -> (BTreeMap<PathBuf, String>, Installed) {
        let files = fsutil::tree_paths(&paths.modules_dir)
            .unwrap()
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                (p.strip_prefix(&paths.modules_dir).unwrap().to_owned(), text)
            })
            .collect();
        (files, Installed::load(&paths.state_dir).unwrap())
    }

    fn backups(paths: &Paths) -> usize {
        std::fs::read_dir(&paths.backups).unwrap().count()
    }

    /// alpha 1 and beta 1 installed, and the change to make: alpha to 2,
    /// beta removed, gamma 1 installed.
    fn installed(root: &Path) -> (Paths, Installed, Vec<Prepared>) {
        let paths = paths(root);
        let first = vec![copy("alpha", "1"), copy("beta", "1")];
        let faults = Faults::default();
        made(&paths, Installed::default(), first, &faults).unwrap();
        let installed = Installed::load(&paths.state_dir).unwrap();
        let change = vec![copy("alpha", "2"), removal("beta"), copy("gamma", "1")];
        (paths, installed, change)
    }

    /// The journal, its transaction serialized as the backup's manifest
    /// and the staged inodes added after, reads back as what it records,
    /// with a map of inodes or an empty one; bytes that are not an
    /// object are refused, not spliced.
    #[test]
    fn a_journal_made_from_the_manifest_reads_back_as_its_transaction_and_inodes() {
        let transaction = Transaction {
            id: transaction_id(),
            time: "2026-12-07T20:00:00Z".into(),
            actor: "admin@example.org".into(),
            operation: "update".into(),
            changes: vec![RecordChange {
                name: "alpha".into(),
                before: Some(InstalledModule::for_test("r", "1", 'a')),
                after: Some(InstalledModule::for_test("r", "2", 'b')),
            }],
            settings: vec![],
        };
        let inodes = BTreeMap::from([("alpha".to_owned(), 7u64), ("beta".to_owned(), 9)]);
        for staged in [inodes, BTreeMap::new()] {
            let manifest = backups::manifest(&transaction).unwrap();
            let compact = serde_json::to_vec(&transaction).unwrap();
            for serialized in [manifest, compact] {
                let bytes = Journal::bytes(serialized, &staged).unwrap();
                let journal: Journal = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(journal.transaction, transaction);
                assert_eq!(journal.staged.as_ref(), Some(&staged));
            }
        }
        for not_an_object in [&b"[1]"[..], b"", b"}", b"{\"id\": 1"] {
            assert!(Journal::bytes(not_an_object.to_vec(), &BTreeMap::new()).is_err());
        }
    }

    /// Cut after any module, by exchanges or by the renames of a file
    /// system that cannot exchange, a swap is undone whole; uncut, the
    /// change is whole and its backup holds exactly what it replaced.
    #[test]
    fn a_swap_cut_after_any_module_is_undone_whole_with_or_without_exchange() {
        for exchange in [true, false] {
            for cut in 0..3 {
                let case = format!("exchange {exchange}, cut after {cut} modules");
                let dir = tempfile::tempdir().unwrap();
                let (paths, installed, change) = installed(dir.path());
                let before = on_disk(&paths);
                let faults = Faults::default();
                if !exchange {
                    faults.refuse_exchange();
                }
                faults.fail_after(Step::Swap, cut);
                let failed = made(&paths, installed, change, &faults);
                assert!(matches!(failed, Err(EngineError::Io { .. })), "{case}");
                assert_eq!(on_disk(&paths), before, "{case}");
                assert!(!paths.journal.exists(), "{case}");
                assert_eq!(backups(&paths), 1, "{case}: the first install's only");
            }
            let dir = tempfile::tempdir().unwrap();
            let (paths, installed, change) = installed(dir.path());
            let faults = Faults::default();
            if !exchange {
                faults.refuse_exchange();
            }
            let done = made(&paths, installed, change, &faults);
            let transaction = done.unwrap();
            let (files, installed) = on_disk(&paths);
            let expected = BTreeMap::from([
                ("mod_alpha/mod_alpha.lua".into(), "-- alpha 2\n".into()),
                ("mod_gamma/mod_gamma.lua".into(), "-- gamma 1\n".into()),
            ]);
            assert_eq!(files, expected, "exchange {exchange}");
            let versions: Vec<(&str, &str)> = installed
                .modules
                .iter()
                .map(|(name, record)| (name.as_str(), record.version.as_str()))
                .collect();
            assert_eq!(versions, [("alpha", "2"), ("gamma", "1")]);
            let backup = paths.backups.join(&transaction.id);
            let mut kept: Vec<PathBuf> = fsutil::tree_paths(&backup)
                .unwrap()
                .into_iter()
                .filter(|p| p.is_file())
                .map(|p| p.strip_prefix(&backup).unwrap().to_owned())
                .collect();
            kept.sort();
            let expected: Vec<PathBuf> = [
                "manifest.json",
                "mod_alpha/mod_alpha.lua",
                "mod_beta/mod_beta.lua",
            ]
            .map(PathBuf::from)
            .to_vec();
            assert_eq!(kept, expected, "exchange {exchange}");
            let old = std::fs::read_to_string(backup.join("mod_alpha/mod_alpha.lua")).unwrap();
            assert_eq!(old, "-- alpha 1\n");
        }
    }

    /// An install over a directory modman does not manage is refused
    /// before anything moves, and leaves no stage behind.
    #[test]
    fn an_install_over_a_directory_modman_does_not_manage_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        std::fs::create_dir(paths.modules_dir.join("mod_alpha")).unwrap();
        std::fs::write(
            paths.modules_dir.join("mod_alpha/mod_alpha.lua"),
            "-- mine\n",
        )
        .unwrap();
        let before = on_disk(&paths);
        let change = vec![copy("alpha", "1")];
        let faults = Faults::default();
        let refused = made(&paths, Installed::default(), change, &faults);
        assert!(matches!(refused, Err(EngineError::Unmanaged { .. })));
        assert_eq!(on_disk(&paths), before);
        assert!(!paths.staging.exists());
    }

    /// What a crash leaves part-way through one module, made by hand from
    /// the swap done (live the new copy, `new/mod_alpha` the old), is
    /// undone: an undo cut between moving the new copy out and the old
    /// one back in, and the renames of a file system that cannot exchange
    /// cut after the first or the second.
    #[test]
    fn a_module_left_part_way_by_a_crash_is_undone() {
        type Cut = fn(&Path, &Path, &Path);
        let cases: [(&str, Cut); 3] = [
            (
                "undo cut after the new copy went to the trash",
                |stage, live, _| {
                    std::fs::create_dir_all(stage.join("trash")).unwrap();
                    std::fs::rename(live, stage.join("trash/mod_alpha")).unwrap();
                },
            ),
            (
                "renames cut with the old copy aside",
                |stage, live, held| {
                    std::fs::create_dir_all(stage.join("aside")).unwrap();
                    std::fs::rename(held, stage.join("aside/mod_alpha")).unwrap();
                    std::fs::rename(live, held).unwrap();
                },
            ),
            ("renames cut with the new copy in", |stage, _, held| {
                std::fs::create_dir_all(stage.join("aside")).unwrap();
                std::fs::rename(held, stage.join("aside/mod_alpha")).unwrap();
            }),
        ];
        for (case, cut) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (paths, installed, change) = installed(dir.path());
            let before = on_disk(&paths);
            let meta = meta(&paths, &change);
            let stage = meta.stage.dir().to_owned();
            let live = paths.modules_dir.join("mod_alpha");
            let faults = Faults::default();
            faults.at(
                Step::StateSave,
                Box::new(move || cut(&stage, &live, &stage.join("new/mod_alpha"))),
            );
            faults.fail_once(Step::StateSave);
            let failed = apply(&paths, installed, meta, change, Backup::Keep, &faults);
            assert!(matches!(failed, Err(EngineError::Io { .. })), "{case}");
            assert_eq!(on_disk(&paths), before, "{case}");
            assert!(!paths.journal.exists(), "{case}");
        }
    }

    /// A journal from a modman that swapped by renames (no inodes, the
    /// old copies in `old/`) is undone as that modman swapped.
    #[test]
    fn a_swap_journaled_by_renames_is_undone_by_renames() {
        let dir = tempfile::tempdir().unwrap();
        let (paths, installed, _) = installed(dir.path());
        let before = on_disk(&paths);
        let id = transaction_id();
        let stage = paths.staging.join(&id);
        std::fs::create_dir_all(stage.join("new/mod_alpha")).unwrap();
        std::fs::create_dir_all(stage.join("old")).unwrap();
        std::fs::write(stage.join("new/mod_alpha/mod_alpha.lua"), "-- alpha 2\n").unwrap();
        // alpha moved out, its new copy in; beta (a removal) moved out.
        let live = |name: &str| paths.modules_dir.join(format!("mod_{name}"));
        std::fs::rename(live("alpha"), stage.join("old/mod_alpha")).unwrap();
        std::fs::rename(stage.join("new/mod_alpha"), live("alpha")).unwrap();
        std::fs::rename(live("beta"), stage.join("old/mod_beta")).unwrap();
        let record = |name: &str| installed.modules.get(name).cloned();
        let mut alpha = record("alpha").unwrap();
        alpha.version = "2".into();
        let transaction = Transaction {
            id,
            time: String::new(),
            actor: "test".into(),
            operation: "update".into(),
            changes: vec![
                RecordChange {
                    name: "alpha".into(),
                    before: record("alpha"),
                    after: Some(alpha),
                },
                RecordChange {
                    name: "beta".into(),
                    before: record("beta"),
                    after: None,
                },
            ],
            settings: vec![],
        };
        let legacy = serde_json::to_vec(&transaction).unwrap();
        let journal: Journal = serde_json::from_slice(&legacy).unwrap();
        assert_eq!(journal.staged, None);
        undo(&paths, &journal).unwrap();
        assert_eq!(on_disk(&paths), before);
    }

    /// A file an update leaves the same is linked, not written: the new
    /// copy and the backup share it. A rollback of that update (its undo)
    /// gives back the old copy whole, and drops the backup.
    #[test]
    fn a_file_an_update_keeps_is_shared_with_its_backup_and_undone_whole() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let with_readme = |version: &str| {
            let mut prepared = copy("alpha", version);
            let (record, files) = prepared.after.as_mut().unwrap();
            files.push(ArchiveFile {
                path: "README.markdown".into(),
                data: b"The same in every version.\n".to_vec(),
                executable: false,
            });
            record.files.push("README.markdown".into());
            prepared
        };
        let faults = Faults::default();
        made(
            &paths,
            Installed::default(),
            vec![with_readme("1")],
            &faults,
        )
        .unwrap();
        let before = on_disk(&paths);
        let installed = Installed::load(&paths.state_dir).unwrap();
        let update = made(&paths, installed, vec![with_readme("2")], &faults).unwrap();
        let live = paths.modules_dir.join("mod_alpha");
        let backup = paths.backups.join(&update.id).join("mod_alpha");
        let inode = |dir: &Path, file: &str| fsutil::inode(&dir.join(file)).unwrap();
        assert_eq!(
            inode(&live, "README.markdown"),
            inode(&backup, "README.markdown")
        );
        assert_ne!(
            inode(&live, "mod_alpha.lua"),
            inode(&backup, "mod_alpha.lua")
        );
        let lua = std::fs::read_to_string(live.join("mod_alpha.lua")).unwrap();
        assert_eq!(lua, "-- alpha 2\n");

        let installed = Installed::load(&paths.state_dir).unwrap();
        unapply(&paths, installed, &update, "test", &faults).unwrap();
        let (files, state) = on_disk(&paths);
        assert_eq!(files, before.0);
        assert_eq!(state.modules["alpha"].version, "1");
        assert!(!paths.backups.join(&update.id).exists());
    }
}
