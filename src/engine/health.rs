//! The health check after a change: a module that loads may still fail a
//! moment later (a timer, a connection it opens), and Prosody keeps it
//! loaded with an error status. So after an update or an enable the
//! module is watched for a while: Prosody answering at all, the module
//! still loaded on each host it was loaded on, and no error status there
//! (`module:list()`, the status a module sets with `module:set_status` or
//! `module:log_status`, the same in Prosody 0.12 and 13). If it turns to
//! error, the change is undone as a change of its own: the previous copy
//! back and reloaded, or the module disabled again, with the reason in
//! the history.
//!
//! [`watch`] is one watch, with a typed [`Verdict`]; whoever starts it
//! (an admin's update, the update policy, a fleet rollout) decides whom
//! to tell.

use std::time::Duration;

use super::admin_socket::{ModuleStatus, StatusLevel};
use super::change::{ChangeSet, Outcome};
use super::placement::Placement;
use super::scope::GLOBAL;
use super::Engine;
use crate::access::Actor;
use crate::clock::Clock;

/// How often a watched module is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// What is watched, and how to undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub module: String,
    /// The version the change put in place, if it placed files.
    pub version: Option<String>,
    /// Where the change loaded or reloaded it.
    pub hosts: Vec<String>,
    pub undo: Undo,
    /// How many history lines there were once the change was made: a
    /// later line that names the module is a newer change, which ends
    /// the watch.
    pub history_len: usize,
}

/// How a change that failed its health check is undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Put back the copy that transaction replaced (an update).
    Restore { transaction: String },
    /// Take these placements out again (an enable, an install with
    /// enable): the files stay installed.
    Disable(Vec<Placement>),
}

/// What the health check found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Prosody reports an error status for the module on a host.
    Status { host: String, status: ModuleStatus },
    /// The module is no longer loaded on a host it was loaded on.
    NotLoaded { host: String },
    /// Prosody did not answer on its admin socket, twice in a row.
    NotAnswering(String),
}

impl Problem {
    /// The host it concerns, if one.
    pub fn host(&self) -> Option<&str> {
        match self {
            Problem::Status { host, .. } | Problem::NotLoaded { host } => Some(host),
            Problem::NotAnswering(_) => None,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Status { status, .. } => write!(f, "{status}"),
            Problem::NotLoaded { .. } => f.write_str("no longer loaded"),
            Problem::NotAnswering(why) => write!(f, "Prosody stopped answering: {why}"),
        }
    }
}

/// What is back after an undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Back {
    /// This version of the module, reloaded where it was loaded.
    Version(String),
    /// The module is disabled again on these hosts.
    Disabled(Vec<String>),
}

/// Why a watch ended before its verdict; the change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A newer change to the module.
    Superseded,
    /// modman is stopping.
    Shutdown,
}

/// How a watch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy for the whole watch: the change stands.
    Healthy,
    /// It failed, and the change was undone.
    FailedAndUndone { problem: Problem, back: Back },
    /// It failed, and undoing the change failed too: what is true now.
    UndoFailed {
        problem: Problem,
        error: String,
        outcome: Outcome,
    },
    /// Ended without a verdict; the change stands.
    Ended(Ending),
}

/// Watches `subject` for `span` from `since` (when the change was made,
/// so a watch that starts late still ends on time) on `clock`, looking
/// every [`CHECK_EVERY`], and undoes the change at the first problem.
/// `ended` resolves when the watch must stop early (shutdown, a newer
/// watch of the same module).
pub async fn watch(
    engine: &Engine,
    clock: &dyn Clock,
    subject: &Subject,
    (since, span): (time::OffsetDateTime, Duration),
    ended: impl std::future::Future<Output = Ending>,
) -> Verdict {
    let span = time::Duration::try_from(span).unwrap_or(time::Duration::HOUR);
    let every = time::Duration::try_from(CHECK_EVERY).unwrap_or(time::Duration::SECOND);
    let deadline = since + span;
    let mut ended = std::pin::pin!(ended);
    let mut unanswered: Option<String> = None;
    let mut last = since;
    loop {
        let next = (last + every).min(deadline);
        tokio::select! {
            why = &mut ended => return Verdict::Ended(why),
            () = clock.sleep_until(next) => {}
        }
        // One look stands for every one the clock jumped past.
        last = clock.now().clamp(next, deadline);
        if engine.superseded(subject) {
            return Verdict::Ended(Ending::Superseded);
        }
        match engine.check_health(&subject.module, &subject.hosts).await {
            Ok(()) => unanswered = None,
            // Once may be Prosody restarting; twice is a server down.
            Err(Problem::NotAnswering(why)) if unanswered.is_none() => unanswered = Some(why),
            Err(problem) => return engine.undo_unhealthy(subject, problem).await,
        }
        if last >= deadline {
            return match unanswered {
                None => Verdict::Healthy,
                Some(why) => {
                    engine
                        .undo_unhealthy(subject, Problem::NotAnswering(why))
                        .await
                }
            };
        }
    }
}

/// Where each process lists the watches it runs (`PID.json`), so that a
/// start after it died mid-watch says which changes stood unchecked.
const WATCHING: &str = "watching";

/// A watch as recorded: the module and the version watched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Watched {
    pub module: String,
    pub version: Option<String>,
}

/// Notes on the watches of processes that are gone, whose records are
/// removed: what they watched stands, unchecked.
pub(super) fn stood_unchecked(state_dir: &std::path::Path) -> Vec<String> {
    let dir = state_dir.join(WATCHING);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return vec![];
    };
    let mut notes = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(pid) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if std::path::Path::new("/proc").join(pid).exists() {
            continue;
        }
        let watched: Vec<Watched> = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        for w in watched {
            notes.push(format!(
                "modman stopped while it watched the health of {} {}; that change stands unchecked: see `info {}`, and `rollback {}` if it misbehaves",
                w.module,
                w.version.as_deref().unwrap_or(""),
                w.module,
                w.module
            ));
        }
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }
    notes
}

/// Longest status text carried into a verdict, a message and the history:
/// a module writes it, so it is cleaned and cut.
const MAX_STATUS_CHARS: usize = 300;

fn bounded(text: &str) -> String {
    let text = crate::clean::one_line(&crate::clean::clean(text));
    match text.char_indices().nth(MAX_STATUS_CHARS) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

impl Engine {
    /// One look at `module` on `hosts`: Prosody answers, and lists it on
    /// each (or globally, for a module that runs globally) without an
    /// error status.
    pub async fn check_health(&self, module: &str, hosts: &[String]) -> Result<(), Problem> {
        let mut live = self
            .live()
            .await
            .map_err(|e| Problem::NotAnswering(e.to_string()))?;
        let loaded = live
            .loaded_with_status()
            .await
            .map_err(|e| Problem::NotAnswering(e.to_string()))?;
        for host in hosts {
            let listed = [host.as_str(), GLOBAL]
                .into_iter()
                .find_map(|scope| loaded.get(scope)?.get(module));
            match listed {
                None => return Err(Problem::NotLoaded { host: host.clone() }),
                Some(Some(status)) if status.level == StatusLevel::Error => {
                    return Err(Problem::Status {
                        host: host.clone(),
                        status: ModuleStatus {
                            level: StatusLevel::Error,
                            text: bounded(&status.text),
                        },
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Records the watches this process runs now (none: the record
    /// goes), for [`stood_unchecked`] after a crash.
    pub fn record_watching(&self, watched: &[Watched]) {
        let dir = self.paths.state_dir.join(WATCHING);
        let path = dir.join(format!("{}.json", std::process::id()));
        let written = match watched.is_empty() {
            true => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            false => serde_json::to_vec(watched)
                .map_err(std::io::Error::other)
                .and_then(|bytes| {
                    std::fs::create_dir_all(&dir)?;
                    crate::fsutil::atomic_write(&path, &bytes)
                }),
        };
        if let Err(e) = written {
            tracing::warn!(
                "cannot record the health watches in {}: {e}; a crash now would not be reported at the next start",
                path.display()
            );
        }
    }

    /// Whether a change to the module came after the one watched.
    fn superseded(&self, subject: &Subject) -> bool {
        self.history().is_ok_and(|history| {
            (history.iter().skip(subject.history_len))
                .any(|entry| entry.changes.iter().any(|c| c.module == subject.module))
        })
    }

    /// Undoes the change `subject` made, because of `problem`: a change
    /// of its own, by [`Actor::health_check`], with the problem as its
    /// recorded reason.
    pub async fn undo_unhealthy(&self, subject: &Subject, problem: Problem) -> Verdict {
        let failed = |error: String, outcome: Outcome| Verdict::UndoFailed {
            problem: problem.clone(),
            error,
            outcome,
        };
        let mut guard = match self.lock().await {
            Ok(guard) => guard,
            Err(e) => return failed(e.to_string(), Outcome::NothingChanged),
        };
        // Checked again under the lock: a change may have come meanwhile.
        if self.superseded(subject) {
            return Verdict::Ended(Ending::Superseded);
        }
        let (change, back) = match &subject.undo {
            Undo::Restore { transaction } => {
                let kept = self.backups().ok().and_then(|backups| {
                    backups
                        .into_iter()
                        .find(|t| &t.id == transaction)
                        .and_then(|t| t.changes.into_iter().find(|c| c.name == subject.module))
                });
                let Some(kept) = kept else {
                    return failed(
                        format!(
                            "the copy it replaced (transaction {transaction}) is no longer kept"
                        ),
                        Outcome::NothingChanged,
                    );
                };
                let back = match &kept.before {
                    Some(record) => Back::Version(record.version.clone()),
                    None => Back::Disabled(subject.hosts.clone()),
                };
                let files = match self.restoring(transaction, &kept, &Actor::health_check()) {
                    Ok(prepared) => vec![prepared],
                    Err(e) => return failed(e.to_string(), Outcome::NothingChanged),
                };
                let change = ChangeSet {
                    operation: "health-rollback",
                    files,
                    disable: vec![],
                    settings: vec![],
                    enable: vec![],
                };
                (change, back)
            }
            Undo::Disable(placements) => {
                let change = ChangeSet {
                    operation: "health-disable",
                    files: vec![],
                    disable: placements.clone(),
                    settings: vec![],
                    enable: vec![],
                };
                let hosts = placements.iter().map(|p| p.host.clone()).collect();
                (change, Back::Disabled(hosts))
            }
        };
        let version = subject.version.as_deref().unwrap_or("as enabled");
        let reason = match problem.host() {
            Some(host) => format!(
                "{} {version} failed its health check on {host} ({problem})",
                subject.module
            ),
            None => format!(
                "{} {version} failed its health check ({problem})",
                subject.module
            ),
        };
        tracing::warn!("{reason}; undoing the change");
        match guard
            .commit_because(&Actor::health_check(), change, Some(reason))
            .await
        {
            Ok(_) => Verdict::FailedAndUndone { problem, back },
            Err(e) => failed(e.error.to_string(), e.outcome),
        }
    }
}
