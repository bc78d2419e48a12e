//! A graceful stop. On SIGINT or SIGTERM modman takes no new request (each
//! is answered "shutting down" at once), lets the requests in flight end
//! (a change finishes, is answered and writes its history line) for at
//! most [`GRACE`], then leaves its rooms and closes the stream. A change
//! still running when the grace is over is cut short with the process, and
//! the next start undoes it from its journal. [`GRACE`] is shorter than
//! `TimeoutStopSec` in debian/modman.service, so systemd never has to
//! SIGKILL a modman that is still finishing within it.
//!
//! The same pattern as mini-redis's shutdown: one signal everyone can
//! wait on, and a count of the tasks in flight (here the permits of the
//! request semaphore) that the stop waits to see return.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

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

/// Whether a stop was asked for, and the requests in flight.
pub struct Stop {
    /// When the stop's grace ends, once a signal came.
    deadline: watch::Receiver<Option<Instant>>,
    in_flight: Arc<Semaphore>,
    capacity: u32,
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
}

impl Stop {
    /// Listens for SIGINT and SIGTERM; at most `capacity` requests run
    /// at once.
    pub fn listen(capacity: u32) -> std::io::Result<Stop> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let (set, deadline) = watch::channel(None);
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let _ = set.send(Some(Instant::now() + grace()));
        });
        Ok(Stop {
            deadline,
            in_flight: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        })
    }

    /// Lets a request start, unless modman is stopping or full.
    pub fn admit(&self) -> Admission {
        if self.stopping() {
            return Admission::Refused(Refused::Stopping);
        }
        match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Admission::Run(permit),
            Err(_) => Admission::Refused(Refused::Busy),
        }
    }

    /// Whether a stop was asked for.
    pub fn stopping(&self) -> bool {
        self.deadline.borrow().is_some()
    }

    /// Resolves once a stop is asked for (at once if it was). Safe to
    /// poll again after it resolved, so every loop can select on it.
    pub async fn requested(&self) {
        let mut deadline = self.deadline.clone();
        // Err only if the listener is gone, which it never is while
        // modman runs: then wait for nothing.
        if deadline.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// After a stop was asked for: waits until every request in flight
    /// has ended, or the grace ran out.
    pub async fn drained(&self) -> Drained {
        let deadline = (*self.deadline.borrow()).unwrap_or_else(Instant::now);
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
