//! What happens on the host: modman's changes to Prosody's module
//! directory, made so that a crash at any instant leaves every module
//! either wholly as it was or wholly as asked.
//!
//! A change is a transaction over one or more modules:
//!
//! 1. the new files are written to `modules_dir/.modman-staging/<id>/new`
//!    (same file system as the live directories, so renames are atomic;
//!    Prosody never looks at dot-directories);
//! 2. a journal with each module's record before and after is written;
//! 3. each live `mod_x` is renamed to `.../old`, each new one into place;
//! 4. `installed.json` is replaced: the commit point;
//! 5. the old copies are copied to `state_dir/backups/<id>` (for
//!    rollback), the change is logged, staging and journal are removed.
//!
//! On start, [`Engine::open`] reads any journal left by a crash: if
//! `installed.json` already has the "after" records, it finishes step 5;
//! otherwise it undoes step 3. A failed change is undone by the same code.

pub mod admin_socket;
pub mod audit;
pub mod managed_config;
pub mod modules_dir;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::fsutil;
use crate::repo::archive::ArchiveFile;
use state::{Installed, InstalledModule};

/// Backups kept; older ones are removed after each change.
const KEEP_BACKUPS: usize = 50;

/// A failure of the engine, saying what and where.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mod_{0} is in the module directory but was not installed by modman; remove it by hand first, or leave it alone")]
    Unmanaged(String),
    #[error("another modman process is changing modules right now (state lock {0} is held); try again when it has finished")]
    Busy(PathBuf),
    #[error("the change stopped unexpectedly: {0}")]
    Internal(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_owned();
    move |source| EngineError::Io { what, path, source }
}

/// Where everything lives, derived from the config.
#[derive(Debug, Clone)]
struct Paths {
    modules_dir: PathBuf,
    state_dir: PathBuf,
    staging: PathBuf,
    backups: PathBuf,
    journal: PathBuf,
    lock: PathBuf,
}

impl Paths {
    fn new(config: &Config) -> Paths {
        let modules_dir = config.prosody.modules_dir.clone();
        let state_dir = config.state_dir.clone();
        Paths {
            staging: modules_dir.join(".modman-staging"),
            backups: state_dir.join("backups"),
            journal: state_dir.join("journal.json"),
            lock: state_dir.join("lock"),
            modules_dir,
            state_dir,
        }
    }

    fn live(&self, name: &str) -> PathBuf {
        self.modules_dir.join(format!("mod_{name}"))
    }
}

/// A transaction as journaled, and as kept with its backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Sortable by time.
    pub id: String,
    pub time: String,
    pub actor: String,
    pub operation: String,
    pub changes: Vec<Change>,
}

/// One module's records before and after a transaction; `None` means not
/// installed by modman.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub name: String,
    pub before: Option<InstalledModule>,
    pub after: Option<InstalledModule>,
}

/// A change asked of the engine: the module's new record and files, or
/// `None` to remove it.
pub struct Prepared {
    pub name: String,
    pub after: Option<(InstalledModule, Vec<ArchiveFile>)>,
}

/// modman's side of the host. One per process; cheap to share.
pub struct Engine {
    paths: Paths,
    change: tokio::sync::Mutex<()>,
}

/// Held while a change is planned and applied: no other change can start,
/// in this process or another (the CLI), until it is dropped.
pub struct ChangeGuard<'a> {
    engine: &'a Engine,
    _in_process: tokio::sync::MutexGuard<'a, ()>,
    _across_processes: std::fs::File,
    /// The state as it was when the lock was taken.
    pub installed: Installed,
}

impl Engine {
    /// Opens the engine: creates `state_dir`, finishes or undoes a change
    /// interrupted by a crash, removes leftover staging, and forgets
    /// modules that vanished from disk. Returns a note per thing it did.
    pub fn open(config: Arc<Config>) -> Result<(Engine, Vec<String>), EngineError> {
        let paths = Paths::new(&config);
        if !paths.modules_dir.is_dir() {
            // Nothing can have been installed there; `check` and every
            // change report it, with the fix.
            let note = format!(
                "the module directory {} does not exist; create it, writable by modman and listed in Prosody's plugin_paths",
                paths.modules_dir.display()
            );
            return Ok((
                Engine {
                    paths,
                    change: tokio::sync::Mutex::new(()),
                },
                vec![note],
            ));
        }
        std::fs::create_dir_all(&paths.backups).map_err(io("cannot create", &paths.backups))?;
        let lock = lock_file(&paths)?;
        let mut notes = recover(&paths)?;
        drop(lock);
        // prosody.cfg.lua Includes this file; Prosody will not start if
        // it is missing.
        let managed = &config.prosody.managed_config;
        if !managed.exists() {
            match managed_config::ManagedConfig::default().save(managed) {
                Ok(()) => notes.push(format!("created the empty managed config {}", managed.display())),
                Err(e) => notes.push(format!(
                    "cannot create the managed config {}: {e}; Prosody will not start while prosody.cfg.lua Includes a missing file",
                    managed.display()
                )),
            }
        }
        Ok((
            Engine {
                paths,
                change: tokio::sync::Mutex::new(()),
            },
            notes,
        ))
    }

    /// The managed modules, as last committed. Never waits for a change.
    pub fn installed(&self) -> Result<Installed, EngineError> {
        Installed::load(&self.paths.state_dir)
            .map_err(io("cannot read the state in", &self.paths.state_dir))
    }

    /// The module directory.
    pub fn modules_dir(&self) -> &Path {
        &self.paths.modules_dir
    }

    /// The audit log, oldest first. Never waits for a change.
    pub fn history(&self) -> Result<Vec<audit::Entry>, EngineError> {
        audit::read(&self.paths.state_dir)
            .map_err(io("cannot read the history in", &self.paths.state_dir))
    }

    /// Kept transactions, oldest first, for rollback.
    pub fn backups(&self) -> Result<Vec<Transaction>, EngineError> {
        let mut found = Vec::new();
        let entries = std::fs::read_dir(&self.paths.backups)
            .map_err(io("cannot read", &self.paths.backups))?;
        for entry in entries.flatten() {
            let manifest = entry.path().join("manifest.json");
            if let Ok(bytes) = std::fs::read(&manifest) {
                if let Ok(transaction) = serde_json::from_slice::<Transaction>(&bytes) {
                    found.push(transaction);
                }
            }
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    /// The files of module `name` as they were before transaction `id`.
    pub fn backup_files(&self, id: &str, name: &str) -> Result<Vec<ArchiveFile>, EngineError> {
        let dir = self.paths.backups.join(id).join(format!("mod_{name}"));
        let mut files = Vec::new();
        read_tree(&dir, "", &mut files).map_err(io("cannot read the backup", &dir))?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Waits for any change in this process, then takes the cross-process
    /// lock (failing at once if the CLI holds it).
    pub async fn lock(&self) -> Result<ChangeGuard<'_>, EngineError> {
        let in_process = self.change.lock().await;
        let paths = self.paths.clone();
        let file = tokio::task::spawn_blocking(move || lock_file(&paths))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        let installed = self.installed()?;
        Ok(ChangeGuard {
            engine: self,
            _in_process: in_process,
            _across_processes: file,
            installed,
        })
    }
}

impl ChangeGuard<'_> {
    /// Applies `changes` as one transaction and returns it. On failure,
    /// everything is as before and the error says why.
    pub async fn apply(
        &mut self,
        actor: &str,
        operation: &str,
        changes: Vec<Prepared>,
    ) -> Result<Transaction, EngineError> {
        let paths = self.engine.paths.clone();
        let installed = self.installed.clone();
        let (actor, operation) = (actor.to_owned(), operation.to_owned());
        let transaction = tokio::task::spawn_blocking(move || {
            apply(&paths, installed, &actor, &operation, changes)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        self.installed = self.engine.installed()?;
        Ok(transaction)
    }

    /// Undoes a committed `transaction` with a new one, from its backup:
    /// every module goes back to its record before it.
    pub async fn revert(
        &mut self,
        actor: &str,
        operation: &str,
        transaction: &Transaction,
    ) -> Result<Transaction, EngineError> {
        let prepared = transaction
            .changes
            .iter()
            .map(|change| self.engine.restoring(&transaction.id, change, actor))
            .collect::<Result<Vec<_>, _>>()?;
        self.apply(actor, operation, prepared).await
    }
}

impl Engine {
    /// The change that puts `change.name` back as it was before
    /// transaction `id`: its old files from the backup, or its removal.
    pub fn restoring(
        &self,
        id: &str,
        change: &Change,
        actor: &str,
    ) -> Result<Prepared, EngineError> {
        let after = match &change.before {
            Some(record) => {
                let files = self.backup_files(id, &change.name)?;
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

    /// Logs a change that touched no files (enabling, disabling).
    pub fn log(&self, entry: &audit::Entry) -> Result<(), EngineError> {
        audit::append(&self.paths.state_dir, entry)
            .map_err(io("cannot write the history in", &self.paths.state_dir))
    }
}

fn lock_file(paths: &Paths) -> Result<std::fs::File, EngineError> {
    std::fs::create_dir_all(&paths.state_dir).map_err(io("cannot create", &paths.state_dir))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.lock)
        .map_err(io("cannot open the lock", &paths.lock))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::Busy(paths.lock.clone())),
        Err(std::fs::TryLockError::Error(e)) => Err(io("cannot lock", &paths.lock)(e)),
    }
}

fn transaction_id() -> String {
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

fn apply(
    paths: &Paths,
    installed: Installed,
    actor: &str,
    operation: &str,
    changes: Vec<Prepared>,
) -> Result<Transaction, EngineError> {
    let id = transaction_id();
    let stage = paths.staging.join(&id);
    let transaction = Transaction {
        id: id.clone(),
        time: audit::now(),
        actor: actor.to_owned(),
        operation: operation.to_owned(),
        changes: changes
            .iter()
            .map(|c| Change {
                name: c.name.clone(),
                before: installed.modules.get(&c.name).cloned(),
                after: c.after.as_ref().map(|(record, _)| record.clone()),
            })
            .collect(),
    };
    for change in &transaction.changes {
        if change.before.is_none() && crate::prosody::has_module(&paths.modules_dir, &change.name) {
            return Err(EngineError::Unmanaged(change.name.clone()));
        }
    }

    let staged = (|| {
        for prepared in &changes {
            if let Some((_, files)) = &prepared.after {
                write_tree(
                    &stage.join("new").join(format!("mod_{}", prepared.name)),
                    files,
                )?;
            }
        }
        std::fs::create_dir_all(stage.join("old"))?;
        let journal = serde_json::to_vec_pretty(&transaction).map_err(std::io::Error::other)?;
        fsutil::atomic_write(&paths.journal, &journal)
    })();
    if let Err(e) = staged {
        let _ = fsutil::remove_dir_if_present(&stage);
        return Err(io("cannot stage the change in", &stage)(e));
    }

    let before = installed.clone();
    let swapped = swap_in(paths, &transaction).and_then(|()| {
        let mut after = installed;
        for change in &transaction.changes {
            match &change.after {
                Some(record) => after.modules.insert(change.name.clone(), record.clone()),
                None => after.modules.remove(&change.name),
            };
        }
        after.save(&paths.state_dir)
    });
    if let Err(e) = swapped {
        // The state file may or may not have been replaced: put back the
        // records that match the files undo restores.
        let outcome = undo(paths, &transaction, &format!("failed: {e}"), false)
            .and_then(|()| before.save(&paths.state_dir));
        return Err(match outcome {
            Ok(()) => io("cannot swap the module into", &paths.modules_dir)(e),
            Err(undo_error) => EngineError::Internal(format!(
                "{e}; undoing it also failed ({undo_error}); modman will finish undoing it on its next start"
            )),
        });
    }
    finish(paths, &transaction, false).map_err(io(
        "the change is made, but cannot finish its backup in",
        &paths.state_dir,
    ))?;
    Ok(transaction)
}

/// Step 3: old copies out to staging, new copies in.
fn swap_in(paths: &Paths, transaction: &Transaction) -> std::io::Result<()> {
    let stage = paths.staging.join(&transaction.id);
    for change in &transaction.changes {
        let live = paths.live(&change.name);
        let dir_name = format!("mod_{}", change.name);
        if live.exists() {
            std::fs::rename(&live, stage.join("old").join(&dir_name))?;
        }
        if change.after.is_some() {
            std::fs::rename(stage.join("new").join(&dir_name), &live)?;
        }
    }
    fsutil::sync_dir(&paths.modules_dir)
}

/// Undoes step 3 as far as it went, from what is on disk, logs `result`
/// (unless `logged`), and removes the journal. Safe to run again after a
/// crash inside it.
fn undo(
    paths: &Paths,
    transaction: &Transaction,
    result: &str,
    logged: bool,
) -> std::io::Result<()> {
    let stage = paths.staging.join(&transaction.id);
    let trash = stage.join("trash");
    std::fs::create_dir_all(&trash)?;
    for change in transaction.changes.iter().rev() {
        let live = paths.live(&change.name);
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
    close(paths, transaction, result, logged)
}

/// Step 5: backup, log (unless `logged`), clean up. Safe to run again
/// after a crash inside it.
fn finish(paths: &Paths, transaction: &Transaction, logged: bool) -> std::io::Result<()> {
    let stage = paths.staging.join(&transaction.id);
    let backup = paths.backups.join(&transaction.id);
    if !backup.exists() {
        let temp = tempfile::Builder::new()
            .prefix(".modman-backup-")
            .tempdir_in(&paths.backups)?;
        let inside = temp.path().join("backup");
        std::fs::create_dir(&inside)?;
        for change in &transaction.changes {
            let old = stage.join("old").join(format!("mod_{}", change.name));
            if old.exists() {
                fsutil::copy_dir(&old, &inside.join(format!("mod_{}", change.name)))?;
            }
        }
        let manifest = serde_json::to_vec_pretty(transaction).map_err(std::io::Error::other)?;
        std::fs::write(inside.join("manifest.json"), manifest)?;
        std::fs::rename(&inside, &backup)?;
        fsutil::sync_dir(&paths.backups)?;
    }
    close(paths, transaction, "ok", logged)?;
    prune_backups(paths)
}

/// The end of every change, done or undone: its history line (unless
/// `logged`), then its staging and the journal go.
fn close(
    paths: &Paths,
    transaction: &Transaction,
    result: &str,
    logged: bool,
) -> std::io::Result<()> {
    if !logged {
        log(paths, transaction, result)?;
    }
    fsutil::remove_dir_if_present(&paths.staging.join(&transaction.id))?;
    // Empty now (one change at a time): leave the module directory as
    // Prosody's admin would expect to find it.
    let _ = std::fs::remove_dir(&paths.staging);
    remove_journal(paths)
}

fn remove_journal(paths: &Paths) -> std::io::Result<()> {
    match std::fs::remove_file(&paths.journal) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => fsutil::sync_dir(&paths.state_dir),
    }
}

/// Appends the history line for `transaction`.
fn log(paths: &Paths, transaction: &Transaction, result: &str) -> std::io::Result<()> {
    let entry = audit::Entry {
        time: audit::now(),
        actor: transaction.actor.clone(),
        operation: transaction.operation.clone(),
        changes: transaction
            .changes
            .iter()
            .map(|c| audit::ModuleChange {
                module: c.name.clone(),
                from: c.before.as_ref().map(|r| r.version.clone()),
                to: c.after.as_ref().map(|r| r.version.clone()),
            })
            .collect(),
        result: result.to_owned(),
        transaction: transaction.id.clone(),
        hosts: vec![],
    };
    let version = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let changes: Vec<String> = entry
        .changes
        .iter()
        .map(|c| format!("{} {} -> {}", c.module, version(&c.from), version(&c.to)))
        .collect();
    tracing::info!(
        "{} by {}: {}: {}",
        transaction.operation,
        transaction.actor,
        changes.join(", "),
        result
    );
    audit::append(&paths.state_dir, &entry)
}

fn prune_backups(paths: &Paths) -> std::io::Result<()> {
    let mut ids: Vec<String> = std::fs::read_dir(&paths.backups)?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    let excess = ids.len().saturating_sub(KEEP_BACKUPS);
    for id in &ids[..excess] {
        fsutil::remove_dir_if_present(&paths.backups.join(id))?;
    }
    Ok(())
}

/// See [`Engine::open`].
fn recover(paths: &Paths) -> Result<Vec<String>, EngineError> {
    let mut notes = Vec::new();
    match std::fs::read(&paths.journal) {
        Ok(bytes) => {
            let transaction: Transaction =
                serde_json::from_slice(&bytes).map_err(|e| EngineError::Io {
                    what: "damaged journal",
                    path: paths.journal.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?;
            let installed = Installed::load(&paths.state_dir)
                .map_err(io("cannot read the state in", &paths.state_dir))?;
            let committed = transaction
                .changes
                .iter()
                .all(|c| installed.modules.get(&c.name) == c.after.as_ref());
            let names: Vec<&str> = transaction
                .changes
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            // The crash may have come after the history line was written;
            // read the history once, here, rather than on every change.
            let logged = audit::read(&paths.state_dir)
                .map_err(io("cannot read the history in", &paths.state_dir))?
                .iter()
                .any(|e| e.transaction == transaction.id);
            if committed {
                finish(paths, &transaction, logged).map_err(io(
                    "cannot finish the interrupted change in",
                    &paths.state_dir,
                ))?;
                notes.push(format!(
                    "finished an interrupted {} of {}",
                    transaction.operation,
                    names.join(", ")
                ));
            } else {
                undo(
                    paths,
                    &transaction,
                    "interrupted (modman stopped before it finished); undone",
                    logged,
                )
                .map_err(io(
                    "cannot undo the interrupted change in",
                    &paths.modules_dir,
                ))?;
                notes.push(format!(
                    "undid an interrupted {} of {}",
                    transaction.operation,
                    names.join(", ")
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot read the journal", &paths.journal)(e)),
    }
    // Staging from a crash before any journal was written: never live.
    if let Ok(mut leftovers) = std::fs::read_dir(&paths.staging) {
        if leftovers.next().is_some() {
            notes.push(format!(
                "removed leftover staging in {}",
                paths.staging.display()
            ));
        }
        fsutil::remove_dir_if_present(&paths.staging)
            .map_err(io("cannot clean", &paths.staging))?;
    }
    for entry in std::fs::read_dir(&paths.backups)
        .map_err(io("cannot read", &paths.backups))?
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with('.') {
            let _ = fsutil::remove_dir_if_present(&entry.path());
        }
    }
    let mut installed = Installed::load(&paths.state_dir)
        .map_err(io("cannot read the state in", &paths.state_dir))?;
    let vanished: Vec<String> = installed
        .modules
        .keys()
        .filter(|name| !paths.live(name).is_dir())
        .cloned()
        .collect();
    if !vanished.is_empty() {
        for name in &vanished {
            installed.modules.remove(name);
            notes.push(format!(
                "mod_{name} was removed from {} by hand; forgotten",
                paths.modules_dir.display()
            ));
        }
        installed
            .save(&paths.state_dir)
            .map_err(io("cannot write the state in", &paths.state_dir))?;
    }
    Ok(notes)
}

/// Writes files (already checked: relative, no `..`) under `root`.
fn write_tree(root: &Path, files: &[ArchiveFile]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(root)?;
    for file in files {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if file.executable { 0o755 } else { 0o644 })
            .open(&path)?;
        out.write_all(&file.data)?;
        out.sync_all()?;
    }
    Ok(())
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
