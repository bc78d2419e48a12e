//! A graceful stop. On SIGINT or SIGTERM modman takes no new request (each
//! is answered "shutting down" at once), lets the requests in flight end
//! (a change finishes, is answered and writes its history line) for at
//! most [`GRACE`], then leaves its rooms and closes the stream. A change
//! still running when the grace is over is cut short with the process, and
//! the next start undoes it from its journal. [`GRACE`] is shorter than
//! `TimeoutStopSec` in debian/modman.service, so systemd never has to
//! SIGKILL a modman that is still finishing within it.
//!
//! A reload that changed modman.toml ends the same way, as a restart in
//! place ([`Ending::Reload`]): the same drain, with its own answer to the
//! requests refused meanwhile, and [`Exit::Reload`] for `main` to start
//! modman again. A SIGINT or SIGTERM during that drain makes it a stop.
//!
//! The same pattern as mini-redis's shutdown: one signal everyone can
//! wait on, and a count of the tasks in flight (here the permits of the
//! request semaphore) that the stop waits to see return.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::Part;

/// How long a stop waits for the requests in flight.
pub const GRACE: Duration = Duration::from_secs(60);

/// [`GRACE`]; in a debug build `MODMAN_STOP_GRACE_MS` may shorten it, so
/// a test can see a change outlive it.
fn grace() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("MODMAN_STOP_GRACE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    GRACE
}

/// What a request refused during a stop is told.
pub const REFUSAL: &str = "modman is shutting down; try again in a moment";

/// What a request refused during a restart in place is told.
pub const RELOAD_REFUSAL: &str = "modman is restarting to apply modman.toml; try again in a moment";

/// Why modman is draining its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// SIGINT or SIGTERM: modman exits.
    Stop,
    /// A reload found these parts of modman.toml changed: modman starts
    /// again in place to apply them.
    Reload(Vec<Part>),
}

/// How [`super::component::run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Stopped by SIGINT or SIGTERM.
    Stopped,
    /// Drained for a reload: start again, the same way, to apply these
    /// changed parts of modman.toml.
    Reload(Vec<Part>),
}

/// The end asked for, and when its grace is over.
type Asked = Option<(Instant, Ending)>;

/// Whether a stop was asked for, and the requests in flight.
pub struct Stop {
    ask: Arc<watch::Sender<Asked>>,
    asked: watch::Receiver<Asked>,
    in_flight: Arc<Semaphore>,
    capacity: u32,
}

/// Asks for a restart in place, as a reload does.
#[derive(Clone)]
pub struct Restarter(Arc<watch::Sender<Asked>>);

impl Restarter {
    /// Starts the drain for a restart that applies `parts`; false if a
    /// stop or a restart is already under way (which then goes on as it
    /// is: a stop is never turned into a restart).
    pub fn request(&self, parts: Vec<Part>) -> bool {
        self.0.send_if_modified(|asked| {
            if asked.is_some() {
                return false;
            }
            *asked = Some((Instant::now() + grace(), Ending::Reload(parts)));
            true
        })
    }
}

/// How the requests in flight ended at a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// All of them ended.
    All,
    /// The grace ran out with this many still running.
    GraceOver(usize),
}

/// Whether a request may start.
pub enum Admission {
    /// It runs, holding this until it has answered.
    Run(OwnedSemaphorePermit),
    /// It is answered at once, saying why.
    Refused(Refused),
}

/// Why a request is answered at once without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// As many requests as allowed are running already: try again soon.
    Busy,
    /// modman is stopping: try again once it is back.
    Stopping,
    /// modman is restarting in place to apply modman.toml: try again in
    /// a moment.
    Reloading,
}

impl Stop {
    /// Listens for SIGINT and SIGTERM; at most `capacity` requests run
    /// at once.
    pub fn listen(capacity: u32) -> std::io::Result<Stop> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let (ask, asked) = watch::channel(None);
        let ask = Arc::new(ask);
        let stop = ask.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            // During a restart's drain, keep its deadline: only the exit
            // that follows changes.
            stop.send_modify(|asked| {
                let deadline = asked
                    .as_ref()
                    .map_or_else(|| Instant::now() + grace(), |(deadline, _)| *deadline);
                *asked = Some((deadline, Ending::Stop));
            });
        });
        Ok(Stop {
            ask,
            asked,
            in_flight: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        })
    }

    /// Lets a request start, unless modman is stopping or full.
    pub fn admit(&self) -> Admission {
        match &*self.asked.borrow() {
            Some((_, Ending::Stop)) => return Admission::Refused(Refused::Stopping),
            Some((_, Ending::Reload(_))) => return Admission::Refused(Refused::Reloading),
            None => {}
        }
        match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Admission::Run(permit),
            Err(_) => Admission::Refused(Refused::Busy),
        }
    }

    /// Whether a stop or a restart was asked for.
    pub fn stopping(&self) -> bool {
        self.asked.borrow().is_some()
    }

    /// What a reload uses to ask for a restart in place.
    pub fn restarter(&self) -> Restarter {
        Restarter(self.ask.clone())
    }

    /// How run ends, once the drain is over.
    pub fn exit(&self) -> Exit {
        match &*self.asked.borrow() {
            Some((_, Ending::Reload(parts))) => Exit::Reload(parts.clone()),
            Some((_, Ending::Stop)) | None => Exit::Stopped,
        }
    }

    /// Resolves once a stop is asked for (at once if it was). Safe to
    /// poll again after it resolved, so every loop can select on it.
    pub async fn requested(&self) {
        let mut asked = self.asked.clone();
        // Err only if every sender is gone, which it never is while
        // modman runs: then wait for nothing.
        if asked.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// After a stop was asked for: waits until every request in flight
    /// has ended, or the grace ran out.
    pub async fn drained(&self) -> Drained {
        let deadline = self
            .asked
            .borrow()
            .as_ref()
            .map_or_else(Instant::now, |(deadline, _)| *deadline);
        tokio::select! {
            all = self.in_flight.acquire_many(self.capacity) => {
                // Held until modman ends: nothing starts any more.
                if let Ok(all) = all {
                    all.forget();
                }
                Drained::All
            }
            _ = tokio::time::sleep_until(deadline) => {
                Drained::GraceOver(self.capacity as usize - self.in_flight.available_permits())
            }
        }
    }
}
