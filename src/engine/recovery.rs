//! Start-up recovery: a change a crash cut short is finished or undone
//! from its journals before modman does anything else: first the file
//! swap from the file journal, then the whole change from the change
//! journal ([`super::journal`]).

use super::faults::Faults;
use super::journal::{self, ChangeJournal, Recovered};
use super::manifest::Transaction;
use super::state::Installed;
use super::transaction::{finish, undo, Backup, Journal};
use super::{audit, io, EngineError, Paths};
use crate::fsutil;

/// Finishes or undoes the change a crash interrupted, removes leftover
/// staging, and forgets modules that vanished from disk. Returns a note
/// per thing it did, and the change journal whose undo still needs the
/// running server ([`journal::settle`]).
pub(super) fn recover(
    paths: &Paths,
    managed_config: &std::path::Path,
    faults: &Faults,
) -> Result<(Vec<String>, Option<ChangeJournal>), EngineError> {
    let mut notes = Vec::new();
    let change = ChangeJournal::load(paths)?;
    match std::fs::read(&paths.journal) {
        Ok(bytes) => {
            let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| EngineError::Io {
                what: "damaged journal",
                path: paths.journal.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            let transaction = &journal.transaction;
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
            // read the history once, here, rather than on every change. A
            // change journal writes the one line for the whole change.
            let logged = change.is_some()
                || audit::read(&paths.state_dir)
                    .map_err(io("cannot read the history in", &paths.state_dir))?
                    .iter()
                    .any(|e| e.transaction == transaction.id);
            if committed {
                finish(paths, transaction, Backup::Keep)
                    .and_then(|()| log_once(paths, transaction, logged, "interrupted (modman stopped before it finished); the files were finished"))
                    .map_err(io("cannot finish the interrupted change in", &paths.state_dir))?;
                notes.push(format!(
                    "finished an interrupted {} of {}",
                    transaction.operation,
                    names.join(", ")
                ));
            } else {
                undo(paths, &journal)
                    .and_then(|()| {
                        log_once(
                            paths,
                            transaction,
                            logged,
                            "interrupted (modman stopped before it finished); undone",
                        )
                    })
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
    let pending = match change {
        Some(mut change) => {
            match journal::undo_on_disk(paths, managed_config, &mut change, faults)? {
                Recovered::Completed => {
                    notes.push(format!(
                        "finished an interrupted {} of {}: it was whole when modman stopped",
                        change.operation,
                        change.names()
                    ));
                    None
                }
                Recovered::UndoneOnDisk => {
                    notes.push(format!(
                    "undid an interrupted {} of {} on disk (files, managed config, state); what Prosody was told is undone once it can be asked",
                    change.operation,
                    change.names()
                ));
                    Some(change)
                }
            }
        }
        None => None,
    };
    // Staging from a crash before any journal was written: never live.
    // The stage made ahead goes too, without a word: the daemon makes it
    // again once idle.
    if let Ok(mut leftovers) = std::fs::read_dir(&paths.staging) {
        let change_of_its_own = |entry: std::io::Result<std::fs::DirEntry>| {
            entry.map_or(true, |entry| {
                !super::stage::is_made_ahead(&entry.file_name())
            })
        };
        if leftovers.any(change_of_its_own) {
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
        .iter()
        .filter(|(name, record)| !paths.live(name, record).is_dir())
        .map(|(name, _)| name.clone())
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
    Ok((notes, pending))
}

/// Logs the end of an interrupted transaction, unless its line was
/// written before the crash.
fn log_once(
    paths: &Paths,
    transaction: &Transaction,
    logged: bool,
    result: &str,
) -> std::io::Result<()> {
    if logged {
        return Ok(());
    }
    let entry = audit::Entry {
        time: audit::now(),
        actor: transaction.actor.clone(),
        operation: transaction.operation.clone(),
        changes: transaction.module_changes(),
        result: result.to_owned(),
        transaction: transaction.id.clone(),
        change: String::new(),
        hosts: vec![],
        settings: vec![],
        reason: None,
    };
    audit::append(&paths.state_dir, &entry)
}
