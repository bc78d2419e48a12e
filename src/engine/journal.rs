//! The change journal: `change.jsonl` in `state_dir`, written when a
//! change starts and extended, durably, before each of its steps, so that
//! whatever stops modman (SIGKILL, a crash, power loss, a stop whose grace
//! ran out) the next start can undo the whole change: module files,
//! managed config, `pulled_in.json`, the rollback record and what Prosody
//! has loaded. The file swap keeps its own finer journal
//! ([`super::transaction`]); this one names that swap by its id.
//!
//! The commit point of a change is its history line. Before it, recovery
//! rolls back: every step is undone and one line says so. Rolling back is
//! the truthful default: the requester was never told the change was
//! done, and the steps still missing (loads, reloads, the release of
//! pulled-in modules) need the running Prosody, which may be down at
//! start, whereas every undo can be done on disk alone. After the line was
//! written the change is whole, and recovery only removes the journal.
//!
//! Recovery is in two halves: [`undo_on_disk`] at open, under the state
//! lock, before anything reads the state; then [`settle`] once the
//! running Prosody can be asked, which undoes what it was told and writes
//! the history line. If Prosody is down then, the restored managed config
//! is what it loads at its next start, and the history line says so.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::admin_socket::ModuleAction;
use super::faults::Faults;
use super::live::{Live, LoadedMap};
use super::manifest::Transaction;
use super::placement::Placement;
use super::state::{Installed, PulledIn};
use super::transaction;
use super::{audit, io, EngineError, Paths};
use crate::fsutil;

/// What was true before a change, and each step it began, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeJournal {
    /// The change's id, also in its history line.
    pub id: String,
    pub actor: String,
    pub operation: String,
    /// What the history line names: each module, with the versions from
    /// and to when its files change.
    pub modules: Vec<audit::ModuleChange>,
    pub hosts: Vec<String>,
    /// The managed config's text before the change; `None` if there was
    /// none.
    pub config_before: Option<String>,
    pub pulled_in_before: PulledIn,
    /// What Prosody had loaded before the change; `None` when it was not
    /// reachable (then the change tells it nothing).
    pub loaded_before: Option<LoadedMap>,
    /// Each step as it began, with what its undo needs: one line each
    /// after the first, appended and synced before the step.
    #[serde(skip)]
    pub steps: Vec<Begun>,
    /// Set once the disk half of the undo is done, so a crash during
    /// [`settle`] does not undo the files a second time.
    #[serde(default)]
    pub undone_on_disk: bool,
    /// Whether the journal's directory entry is known to be durable: a
    /// journal [`Self::start`]ed is not until its directory is synced, by
    /// the first step that needs it or by the file transaction's barrier.
    #[serde(skip)]
    pub entry_synced: bool,
}

/// A step of a change, recorded before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Begun {
    /// The managed config is written; undo: the text before.
    Config,
    /// A placement is unloaded; undo: load it again if it was loaded
    /// before.
    Unload { placement: Placement },
    /// The file swap with this transaction id; undo: put the old files
    /// back from its backup, if it got that far.
    Files { transaction: String },
    /// Prosody re-reads its config; undo: re-read it once the config is
    /// back.
    ConfigReload,
    /// A placement is loaded, maybe pulling in others; undo: unload what
    /// is loaded and was not before.
    Load { placement: Placement },
    /// A module is reloaded with new files or options; undo: reload it
    /// once the old ones are back.
    Reload { placement: Placement },
    /// `pulled_in.json` is written; undo: the record before.
    PulledIn,
    /// The rollback record of module options is kept; undo: remove it.
    Record { id: String },
}

/// When the line of a step begun must be durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced before the step acts: it changes something at once.
    SyncNow,
    /// The file transaction stages first and syncs once before it moves
    /// anything: that barrier makes this line durable too
    /// ([`ChangeJournal::durable_paths`]), without a sync of its own.
    AtTheFileBarrier,
}

impl Begun {
    /// When this step's line must be durable.
    pub fn durability(&self) -> Durability {
        match self {
            Begun::Files { .. } => Durability::AtTheFileBarrier,
            _ => Durability::SyncNow,
        }
    }
}

/// JSON lines: the journal, then one line per step begun.
const FILE: &str = "change.jsonl";

impl ChangeJournal {
    /// Writes the whole journal at once (atomically, synced): at the start
    /// of a change, and when recovery marks it. Readable by modman alone:
    /// the managed config it keeps may hold secret options.
    pub fn save(&self, paths: &Paths) -> std::io::Result<()> {
        let mut bytes = line(self)?;
        for step in &self.steps {
            bytes.extend(line(step)?);
        }
        fsutil::atomic_write_with_mode(&paths.state_dir.join(FILE), &bytes, 0o600)
    }

    /// Writes the journal at the start of a change, not synced: nothing
    /// has changed yet, and [`Self::begin`] makes it durable before the
    /// first step acts. A power loss before then can leave its first line
    /// cut short, which [`Self::load`] takes for a change that never began.
    pub fn start(&mut self, paths: &Paths) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(paths.state_dir.join(FILE))?;
        file.write_all(&line(self)?)?;
        self.entry_synced = false;
        Ok(())
    }

    /// Records that each of `steps` begins, unless it already did: a line
    /// each, appended and made durable before the first acts
    /// ([`Durability`]).
    /// Several steps at once take one sync for all: steps done one after
    /// another whose undo is harmless for those that had not begun yet
    /// (the reloads of an update of many modules), so the change waits
    /// for one sync, not one per module.
    pub fn begin_all(&mut self, paths: &Paths, steps: Vec<Begun>) -> std::io::Result<()> {
        self.append(paths, steps, Durability::SyncNow)
    }

    /// Records steps to come after the file transaction, without a sync
    /// of their own: its barrier makes them durable with its files
    /// ([`Self::durable_paths`]) before anything moves, and once recorded
    /// they are not recorded again when they begin. Only for steps whose
    /// undo changes nothing if they never began (the config and loads of
    /// an enable).
    pub fn ahead(&mut self, paths: &Paths, steps: Vec<Begun>) -> std::io::Result<()> {
        self.append(paths, steps, Durability::AtTheFileBarrier)
    }

    /// Appends the lines of `steps` not recorded yet, synced if one of
    /// them needs it and `at_most` allows it.
    fn append(
        &mut self,
        paths: &Paths,
        steps: Vec<Begun>,
        at_most: Durability,
    ) -> std::io::Result<()> {
        use std::io::Write;
        let mut lines = Vec::new();
        let mut sync = false;
        for step in steps {
            if self.steps.contains(&step) {
                continue;
            }
            lines.extend(line(&step)?);
            sync |= step.durability() == Durability::SyncNow && at_most == Durability::SyncNow;
            self.steps.push(step);
        }
        if lines.is_empty() {
            return Ok(());
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(paths.state_dir.join(FILE))?;
        file.write_all(&lines)?;
        if sync {
            file.sync_data()?;
            if !self.entry_synced {
                fsutil::sync_dir(&paths.state_dir)?;
                self.entry_synced = true;
            }
        }
        Ok(())
    }

    /// What makes the journal as written so far durable: the file and
    /// its directory (for its entry, once new), for the file
    /// transaction's barrier to sync with its own files.
    pub fn durable_paths(paths: &Paths) -> Vec<std::path::PathBuf> {
        vec![paths.state_dir.join(FILE), paths.state_dir.clone()]
    }

    /// Notes that the journal as written so far is durable: the file
    /// transaction's barrier synced [`Self::durable_paths`].
    pub fn synced(&mut self) {
        self.entry_synced = true;
    }

    /// The journal of a change cut short, if there is one. A last line
    /// cut short by the crash is a step that never began.
    pub fn load(paths: &Paths) -> Result<Option<ChangeJournal>, EngineError> {
        let path = paths.state_dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("cannot read the change journal", &path)(e)),
        };
        let damaged = |e: serde_json::Error| {
            EngineError::Io {
            what: "damaged change journal (move it away to start without undoing the change it records)",
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }
        };
        // The first line is synced before any step acts: cut short (or
        // empty), it is a change that never began.
        if !text.contains('\n') {
            return Ok(None);
        }
        let mut lines = text.lines();
        let mut journal: ChangeJournal =
            serde_json::from_str(lines.next().unwrap_or_default()).map_err(damaged)?;
        let complete = text.ends_with('\n');
        let steps: Vec<&str> = lines.collect();
        for (n, step) in steps.iter().enumerate() {
            match serde_json::from_str(step) {
                Ok(step) => journal.steps.push(step),
                Err(_) if n + 1 == steps.len() && !complete => {}
                Err(e) => return Err(damaged(e)),
            }
        }
        Ok(Some(journal))
    }

    /// The end of a change, done or undone. Not synced: it follows the
    /// change's synced history line, so a journal that a power loss
    /// brings back is recognised as complete at the next start and goes
    /// then (a change that failed before changing anything has no line:
    /// its recovery undoes nothing and notes that).
    pub fn remove(paths: &Paths) -> std::io::Result<()> {
        match std::fs::remove_file(paths.state_dir.join(FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The modules it concerns, as a note names them.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.modules.iter().map(|m| m.module.as_str()).collect();
        names.join(", ")
    }

    fn began(&self, wanted: impl Fn(&Begun) -> bool) -> bool {
        self.steps.iter().any(wanted)
    }

    /// The file transaction this change began, if any.
    fn transaction(&self) -> Option<&str> {
        self.steps.iter().find_map(|s| match s {
            Begun::Files { transaction } => Some(transaction.as_str()),
            _ => None,
        })
    }

    /// Whether the change ever told Prosody anything.
    fn touched_prosody(&self) -> bool {
        self.began(|s| {
            matches!(
                s,
                Begun::Unload { .. }
                    | Begun::Load { .. }
                    | Begun::Reload { .. }
                    | Begun::ConfigReload
            )
        })
    }
}

/// `value` as one line of JSON.
fn line(value: &impl Serialize) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// How recovery ended an interrupted change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// Its history line was written before the stop: it was whole.
    Completed,
    /// Undone on disk; what Prosody was told is undone by [`settle`].
    UndoneOnDisk,
}

/// The disk half of recovery, after the file journal was replayed (so any
/// swap is wholly done or wholly undone): undoes the files, the managed
/// config, the pulled-in record and the rollback record the change
/// touched, and marks the journal. A change whose history line was
/// written is complete, and its journal just goes.
pub(super) fn undo_on_disk(
    paths: &Paths,
    managed_config: &std::path::Path,
    journal: &mut ChangeJournal,
    faults: &Faults,
) -> Result<Recovered, EngineError> {
    let logged = audit::read(&paths.state_dir)
        .map_err(io("cannot read the history in", &paths.state_dir))?
        .iter()
        .any(|e| e.change == journal.id);
    if logged {
        ChangeJournal::remove(paths)
            .map_err(io("cannot remove the change journal in", &paths.state_dir))?;
        return Ok(Recovered::Completed);
    }
    if journal.undone_on_disk {
        return Ok(Recovered::UndoneOnDisk);
    }
    if let Some(id) = journal.transaction() {
        // Replayed by now: a backup exists only if the swap committed.
        if paths
            .backups
            .join(id)
            .join(super::backups::MANIFEST)
            .is_file()
        {
            let committed: Transaction = super::backups::list(paths)?
                .into_iter()
                .find(|t| t.id == id)
                .ok_or_else(|| {
                    EngineError::Internal(format!("the backup {id} has no readable manifest"))
                })?;
            let installed = Installed::load(&paths.state_dir)
                .map_err(io("cannot read the state in", &paths.state_dir))?;
            transaction::unapply(paths, installed, &committed, &journal.actor, faults)?;
        }
    }
    for step in &journal.steps {
        if let Begun::Record { id } = step {
            let dir = paths.backups.join(id);
            fsutil::remove_dir_if_present(&dir)
                .map_err(io("cannot remove the rollback record", &dir))?;
        }
    }
    if journal.began(|s| *s == Begun::Config) {
        let restored = match &journal.config_before {
            Some(text) => fsutil::atomic_write(managed_config, text.as_bytes()),
            None => std::fs::remove_file(managed_config),
        };
        restored.map_err(io("cannot put back the managed config", managed_config))?;
    }
    if journal.began(|s| *s == Begun::PulledIn) {
        journal
            .pulled_in_before
            .save(&paths.state_dir)
            .map_err(io("cannot write the state in", &paths.state_dir))?;
    }
    journal.undone_on_disk = true;
    journal
        .save(paths)
        .map_err(io("cannot write the change journal in", &paths.state_dir))?;
    Ok(Recovered::UndoneOnDisk)
}

/// The live half of recovery: puts back what Prosody had loaded before the
/// change (`live` is `Err` with why when it cannot be reached), writes the
/// change's one history line and removes the journal. Returns the note
/// for the admin.
pub(super) async fn settle(
    paths: &Paths,
    journal: &ChangeJournal,
    live: Result<Live, String>,
) -> Result<String, EngineError> {
    let mut result = "interrupted by a stop; undone at start".to_owned();
    match (journal.touched_prosody(), &journal.loaded_before, live) {
        (false, _, _) | (_, None, _) => {}
        (true, Some(_), Err(why)) => result.push_str(&format!(
            "; Prosody could not be asked ({why}): it loads the restored managed config at its next start"
        )),
        (true, Some(before), Ok(mut live)) => {
            if let Err(left) = undo_live(journal, before, &mut live).await {
                result.push_str(&format!("; {left}"));
            }
        }
    }
    let entry = audit::Entry {
        time: audit::now(),
        actor: journal.actor.clone(),
        operation: journal.operation.clone(),
        changes: journal.modules.clone(),
        result,
        transaction: journal.transaction().unwrap_or_default().to_owned(),
        change: journal.id.clone(),
        hosts: journal.hosts.clone(),
        settings: vec![],
        reason: None,
    };
    audit::append(&paths.state_dir, &entry)
        .map_err(io("cannot write the history in", &paths.state_dir))?;
    ChangeJournal::remove(paths)
        .map_err(io("cannot remove the change journal in", &paths.state_dir))?;
    Ok(format!(
        "undid an interrupted {} of {} ({})",
        journal.operation,
        journal.names(),
        entry.result
    ))
}

/// Undoes, newest first, what each step told Prosody; `Err` says what
/// stays as the change left it.
async fn undo_live(
    journal: &ChangeJournal,
    before: &LoadedMap,
    live: &mut Live,
) -> Result<(), String> {
    let mut stuck: Vec<String> = Vec::new();
    let was_loaded = |p: &Placement| before.get(&p.host).is_some_and(|m| m.contains(&p.module));
    if journal.began(|s| *s == Begun::ConfigReload) {
        if let Err(why) = live.config_reload().await {
            return Err(format!(
                "Prosody still holds the new options until it reloads its config ({why})"
            ));
        }
    }
    let mut reloaded = BTreeSet::new();
    for step in journal.steps.iter().rev() {
        if !matches!(
            step,
            Begun::Load { .. } | Begun::Unload { .. } | Begun::Reload { .. }
        ) {
            continue;
        }
        let now = live
            .loaded()
            .await
            .map_err(|e| format!("what Prosody has loaded is unknown ({e})"))?;
        let loaded_now = |p: &Placement| now.get(&p.host).is_some_and(|m| m.contains(&p.module));
        match step {
            Begun::Load { .. } => {
                let empty = BTreeSet::new();
                for (host, modules) in &now {
                    for module in modules.difference(before.get(host).unwrap_or(&empty)) {
                        let p = Placement {
                            module: module.clone(),
                            host: host.clone(),
                        };
                        act(live, ModuleAction::Unload, &p, &mut stuck).await;
                    }
                }
            }
            Begun::Unload { placement } if was_loaded(placement) && !loaded_now(placement) => {
                act(live, ModuleAction::Load, placement, &mut stuck).await
            }
            Begun::Reload { placement } if loaded_now(placement) && reloaded.insert(placement) => {
                act(live, ModuleAction::Reload, placement, &mut stuck).await
            }
            _ => {}
        }
    }
    match stuck.is_empty() {
        true => Ok(()),
        false => Err(format!("left as the change made it: {}", stuck.join("; "))),
    }
}

/// One action on Prosody; what it refused goes to `stuck`.
async fn act(live: &mut Live, action: ModuleAction, p: &Placement, stuck: &mut Vec<String>) {
    if let Err(why) = live.act(action, &p.module, &p.host).await {
        stuck.push(format!("mod_{} on {}: {why}", p.module, p.host));
    }
}
