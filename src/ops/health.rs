//! The watches after changes: `update`, `enable` and `install` with
//! enable hand what they changed to [`Watches::start`] once the change is
//! committed, and answer at once; the verdict of
//! [`crate::engine::health::watch`] follows later as a [`Notice`], which
//! the front end that runs (the component's chat, the command line)
//! delivers. At most one watch runs per module: a newer change to it
//! ends the older watch, and so does a stop; the change then stands.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use xmpp_parsers::jid::BareJid;

use super::Response;
use crate::access::Actor;
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::change::Applied;
use crate::engine::health::{self, Back, Ending, Subject, Undo, Verdict, Watched};
use crate::engine::Engine;
use crate::engine::Placement;

/// Verdicts waiting for the front end; one more is logged and dropped.
const QUEUED_NOTICES: usize = 64;

/// Something modman tells people on its own, not as an answer: the text
/// a person reads and the same facts as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The admins to tell directly.
    pub admins: Vec<BareJid>,
    /// Whether the rooms modman is in hear it too.
    pub rooms: bool,
    pub text: String,
    /// A result that follows the text, rendered by each front end in its
    /// own way (an automatic update's table), as a reply would be.
    pub result: Option<Response>,
    pub facts: serde_json::Value,
}

/// A watch running.
struct Running {
    id: u64,
    /// Ends it early.
    end: oneshot::Sender<Ending>,
    version: Option<String>,
}

/// The health watches of this process.
pub struct Watches {
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    /// Module -> the watch running.
    running: Mutex<HashMap<String, Running>>,
    next_id: AtomicU64,
    notices: mpsc::Sender<Notice>,
    receiver: Mutex<Option<mpsc::Receiver<Notice>>>,
    /// Askers who wait for their own verdicts on a channel of their own
    /// (a command handed over from the shell), instead of the front end
    /// that delivers [`Watches::take_notices`].
    routes: Mutex<HashMap<Actor, mpsc::Sender<Notice>>>,
}

impl Watches {
    pub fn new(config: Arc<Config>, clock: Arc<dyn Clock>) -> Watches {
        let (notices, receiver) = mpsc::channel(QUEUED_NOTICES);
        Watches {
            config,
            clock,
            running: Mutex::default(),
            next_id: AtomicU64::new(0),
            notices,
            receiver: Mutex::new(Some(receiver)),
            routes: Mutex::default(),
        }
    }

    /// Sends the verdicts of the watches that `asker`'s changes start
    /// from now until [`Watches::unroute`] to the receiver returned, and
    /// to nobody else. It closes once [`Watches::unroute`] was called and
    /// every watch started meanwhile has ended, with a verdict or early
    /// (a newer change, a stop), so its reader knows when to stop waiting.
    pub fn route(&self, asker: &Actor) -> mpsc::Receiver<Notice> {
        let (sender, receiver) = mpsc::channel(QUEUED_NOTICES);
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(asker.clone(), sender);
        receiver
    }

    /// Ends [`Watches::route`] for the watches `asker`'s later changes
    /// start.
    pub fn unroute(&self, asker: &Actor) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(asker);
    }

    /// The clock watches and the update policy run on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The verdicts, for the one front end that delivers them.
    pub fn take_notices(&self) -> Option<mpsc::Receiver<Notice>> {
        self.receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Watches every module `applied` loaded or reloaded, for `actor`, and
    /// says so in a sentence for the change's answer (empty when nothing
    /// is watched). An update is undone by putting its old copy back; an
    /// enable by disabling again what it loaded.
    pub fn after(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        actor: &Actor,
        applied: &Applied,
    ) -> String {
        let Some(span) = self.config.health.watch else {
            return String::new();
        };
        let history_len = engine.history().map(|h| h.len()).unwrap_or_default();
        let installed = engine.installed().unwrap_or_default();
        let mut subjects: Vec<Subject> = Vec::new();
        let mut modules: Vec<&str> = (applied.reloaded.iter().chain(&applied.loaded))
            .map(|p| p.module.as_str())
            .collect();
        modules.sort();
        modules.dedup();
        for module in modules {
            let on = |placements: &[Placement]| -> Vec<Placement> {
                placements
                    .iter()
                    .filter(|p| p.module == module)
                    .cloned()
                    .collect()
            };
            let (reloaded, loaded) = (on(&applied.reloaded), on(&applied.loaded));
            let undo = match (&applied.transaction, reloaded.is_empty()) {
                (Some(transaction), false) => Undo::Restore {
                    transaction: transaction.clone(),
                },
                _ => Undo::Disable(loaded.clone()),
            };
            subjects.push(Subject {
                module: module.to_owned(),
                version: installed.modules.get(module).map(|r| r.version.clone()),
                hosts: reloaded
                    .iter()
                    .chain(&loaded)
                    .map(|p| p.host.clone())
                    .collect(),
                undo,
                history_len,
            });
        }
        if subjects.is_empty() {
            return String::new();
        }
        let names: Vec<String> = subjects.iter().map(|s| s.module.clone()).collect();
        for subject in subjects {
            self.start(engine.clone(), actor, subject, span);
        }
        format!(
            " Watching {} for {}: if it turns to error, the change is undone; the verdict follows.",
            names.join(", "),
            seconds(span)
        )
    }

    fn start(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        actor: &Actor,
        subject: Subject,
        span: Duration,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (end, ended) = oneshot::channel();
        let older = self.running(&engine, |running| {
            let watch = Running {
                id,
                end,
                version: subject.version.clone(),
            };
            running.insert(subject.module.clone(), watch)
        });
        if let Some(older) = older {
            let _ = older.end.send(Ending::Superseded);
        }
        // Nobody asked in person (the update policy): every admin, and
        // the rooms, hear the verdict.
        let everyone = *actor == Actor::schedule();
        let admins: Vec<BareJid> = match actor.jid() {
            Some(jid) => vec![jid.clone()],
            None if everyone => self.config.admins.iter().cloned().collect(),
            None => vec![],
        };
        let routed = (self.routes.lock().unwrap_or_else(|e| e.into_inner()))
            .get(actor)
            .cloned();
        let watches = self.clone();
        // Now, not when the task first runs: the watch ends on time.
        let since = self.clock.now();
        tokio::spawn(async move {
            tracing::info!(
                "watching {} on {} for {}",
                subject.module,
                subject.hosts.join(", "),
                seconds(span)
            );
            let ended = async { ended.await.unwrap_or(Ending::Shutdown) };
            let verdict = health::watch(
                &engine,
                watches.clock.as_ref(),
                &subject,
                (since, span),
                ended,
            )
            .await;
            watches.running(&engine, |running| {
                if running.get(&subject.module).is_some_and(|w| w.id == id) {
                    running.remove(&subject.module);
                }
            });
            let Some(notice) = notice(&subject, &verdict, span, admins, everyone) else {
                tracing::info!(
                    "the health watch of {} ended early ({verdict:?}); the change stands",
                    subject.module
                );
                return;
            };
            tracing::info!("{}", notice.text);
            let delivered = match routed {
                // Its asker may have gone meanwhile: the log has it.
                Some(asker) => asker.send(notice).await.map_err(|e| e.to_string()),
                None => watches.notices.try_send(notice).map_err(|e| e.to_string()),
            };
            if let Err(e) = delivered {
                tracing::warn!("a health verdict was not delivered: {e}");
            }
        });
    }

    /// Changes the watches running with `change`, and records them with
    /// the engine, so a start after a crash says which stood unchecked.
    fn running<T>(
        &self,
        engine: &Engine,
        change: impl FnOnce(&mut HashMap<String, Running>) -> T,
    ) -> T {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let result = change(&mut running);
        let watched: Vec<Watched> = (running.iter())
            .map(|(module, w)| Watched {
                module: module.clone(),
                version: w.version.clone(),
            })
            .collect();
        engine.record_watching(&watched);
        result
    }

    /// Ends every watch: modman is stopping, and what they watched stands
    /// (each logged here).
    pub fn stop_all(&self) {
        let running: Vec<(String, Running)> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (module, watch) in running {
            tracing::warn!(
                "stopping: the health watch of {module} ends here, and its change stands unchecked"
            );
            let _ = watch.end.send(Ending::Shutdown);
        }
    }
}

/// `60 s`, `5 min`.
fn seconds(span: Duration) -> String {
    match span.as_secs() {
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// What to say of `verdict`; nothing for a watch that ended early.
fn notice(
    subject: &Subject,
    verdict: &Verdict,
    span: Duration,
    admins: Vec<BareJid>,
    everyone: bool,
) -> Option<Notice> {
    let module = &subject.module;
    let named = match &subject.version {
        Some(version) => format!("{module} {version}"),
        None => module.clone(),
    };
    let failed = |problem: &health::Problem| match problem.host() {
        Some(host) => format!("{named} failed its health check on {host} ({problem})"),
        None => format!("{named} failed its health check ({problem})"),
    };
    let (kind, text, problem, back) = match verdict {
        Verdict::Ended(_) => return None,
        Verdict::Healthy => (
            "healthy",
            format!(
                "{named} passed its health check on {} (watched {}).",
                subject.hosts.join(", "),
                seconds(span)
            ),
            None,
            None,
        ),
        Verdict::FailedAndUndone { problem, back } => {
            let (back_text, back_fact) = match back {
                Back::Version(version) => (format!("{version} is back"), json!(version)),
                Back::Disabled(hosts) => (
                    format!("it is disabled again on {}", hosts.join(", ")),
                    json!("disabled"),
                ),
            };
            (
                "failed_and_undone",
                format!("{}; {back_text}.", failed(problem)),
                Some(problem),
                Some(back_fact),
            )
        }
        Verdict::UndoFailed {
            problem,
            error,
            outcome,
        } => (
            "undo_failed",
            format!(
                "{}, and undoing the change failed: {error}{}. Look at it now: rollback {module}, or disable {module}.",
                failed(problem),
                match outcome {
                    crate::engine::Outcome::PartlyChanged(left) => format!(" (partly undone: {left})"),
                    _ => String::new(),
                }
            ),
            Some(problem),
            None,
        ),
    };
    let facts = json!({
        "kind": "health",
        "module": module,
        "version": subject.version,
        "hosts": subject.hosts,
        "verdict": kind,
        "host": problem.and_then(|p| p.host()),
        "problem": problem.map(ToString::to_string),
        "back": back,
    });
    Some(Notice {
        rooms: problem.is_some() || everyone,
        admins,
        text,
        result: None,
        facts,
    })
}
