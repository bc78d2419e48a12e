//! The time modman's own schedule runs on: the health watch after a
//! change, and the maintenance window of the update policy. Both ask a
//! [`Clock`] instead of the system, so a test moves time on instead of
//! waiting for it.
//!
//! Debug builds (never a release build) read `MODMAN_CLOCK_FILE`: when it
//! names a file, the time is what that file says (RFC 3339), and it moves
//! only when the file is rewritten. An integration test drives the real
//! binary's schedule that way, step by step, without a single sleep.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use time::OffsetDateTime;

/// Where modman reads the time and waits for a moment.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
    /// Resolves once [`Clock::now`] has reached `at`.
    fn sleep_until(&self, at: OffsetDateTime) -> BoxFuture<'_, ()>;
}

/// The clock of this process: the file of `MODMAN_CLOCK_FILE` in a debug
/// build that names one, the system's otherwise.
pub fn of_process() -> Arc<dyn Clock> {
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os("MODMAN_CLOCK_FILE") {
        return Arc::new(FileClock(path.into()));
    }
    Arc::new(SystemClock)
}

/// The system's wall clock.
pub struct SystemClock;

/// Longest single wait: the wall clock can jump (a suspended host, an NTP
/// correction), so a long wait is cut into steps that look at it again.
const STEP: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let left = at - self.now();
                if left <= time::Duration::ZERO {
                    return;
                }
                let left = Duration::try_from(left).unwrap_or(STEP);
                tokio::time::sleep(left.min(STEP)).await;
            }
        })
    }
}

/// Time as a file says it (debug builds, for tests): it stands still
/// until the file is rewritten.
#[cfg(debug_assertions)]
struct FileClock(std::path::PathBuf);

/// How often a [`FileClock`] wait looks at the file again.
#[cfg(debug_assertions)]
const FILE_POLL: Duration = Duration::from_millis(20);

#[cfg(debug_assertions)]
impl Clock for FileClock {
    fn now(&self) -> OffsetDateTime {
        let text = std::fs::read_to_string(&self.0).unwrap_or_default();
        OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| {
                tracing::error!(
                    "MODMAN_CLOCK_FILE {} does not hold an RFC 3339 time ({e}); using the system's",
                    self.0.display()
                );
                OffsetDateTime::now_utc()
            })
    }

    fn sleep_until(&self, at: OffsetDateTime) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            while self.now() < at {
                tokio::time::sleep(FILE_POLL).await;
            }
        })
    }
}

/// A clock the unit tests set by hand; waits end when it is set past them.
#[cfg(test)]
pub struct ManualClock(tokio::sync::watch::Sender<OffsetDateTime>);

#[cfg(test)]
impl ManualClock {
    pub fn at(now: OffsetDateTime) -> ManualClock {
        ManualClock(tokio::sync::watch::Sender::new(now))
    }

    pub fn set(&self, now: OffsetDateTime) {
        self.0.send_replace(now);
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.borrow()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> BoxFuture<'_, ()> {
        let mut seen = self.0.subscribe();
        Box::pin(async move {
            let _ = seen.wait_for(|now| *now >= at).await;
        })
    }
}
