//! Failure injection for the engine's own tests: every step of a change
//! can be made to fail once, or have the disk taken as a crash at that
//! instant would leave it, so the tests can check that each failure is
//! undone and truthfully reported and each crash recovered. Outside
//! `cargo test` a [`Faults`] never fails.
//!
//! Debug builds (never a release build) also read two environment
//! variables, so an integration test can stop the real binary at a chosen
//! step: `MODMAN_PAUSE_AT` names a step (`swap`, `state-save`,
//! `config-write`, `audit`) and `MODMAN_PAUSE_FILE` a file. The first time
//! the step is reached, the engine creates that file and waits until it
//! is removed: the test sends SIGTERM or SIGKILL while it exists, then
//! removes it to let the change go on.

/// A step of a change that can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Renaming module directories in or out.
    Swap,
    /// Replacing `installed.json`, the commit point of the files.
    StateSave,
    /// Writing the managed config.
    ConfigWrite,
    /// Appending the history line.
    Audit,
}

impl Step {
    /// Its name in `MODMAN_PAUSE_AT`.
    #[cfg(debug_assertions)]
    fn named(name: &str) -> Option<Step> {
        [Step::Swap, Step::StateSave, Step::ConfigWrite, Step::Audit]
            .into_iter()
            .find(|step| step.name() == name)
    }

    #[cfg(debug_assertions)]
    fn name(self) -> &'static str {
        match self {
            Step::Swap => "swap",
            Step::StateSave => "state-save",
            Step::ConfigWrite => "config-write",
            Step::Audit => "audit",
        }
    }
}

/// What a test does when a change reaches a step: copy the disk as a
/// crash there would leave it, say.
#[cfg(test)]
pub type Hook = Box<dyn FnOnce() + Send>;

/// Where a change fails or pauses on purpose; nowhere unless a test says
/// so.
#[derive(Default)]
pub struct Faults {
    /// The step to fail, after how many more times it is reached.
    #[cfg(test)]
    armed: std::sync::Mutex<Option<(Step, usize)>>,
    /// Whether exchanging two directories fails as on a file system that
    /// cannot ([`Faults::exchange`]).
    #[cfg(test)]
    no_exchange: std::sync::atomic::AtomicBool,
    #[cfg(test)]
    hooked: std::sync::Mutex<Option<(Step, Hook)>>,
    #[cfg(debug_assertions)]
    pause: Pause,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    /// Makes the next time `step` is reached fail (tests only).
    #[cfg(test)]
    pub fn fail_once(&self, step: Step) {
        self.fail_after(step, 0);
    }

    /// Makes `step` fail once, after it is passed `passes` times (tests
    /// only): a swap cut after so many modules.
    #[cfg(test)]
    pub fn fail_after(&self, step: Step, passes: usize) {
        *self.armed.lock().unwrap() = Some((step, passes));
    }

    /// Makes [`Faults::exchange`] fail as where it is not supported (tests
    /// only).
    #[cfg(test)]
    pub fn refuse_exchange(&self) {
        self.no_exchange
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// [`crate::fsutil::exchange`], unless a test made the file system
    /// one that cannot.
    pub fn exchange(&self, a: &std::path::Path, b: &std::path::Path) -> std::io::Result<()> {
        #[cfg(test)]
        if self.no_exchange.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::ErrorKind::Unsupported.into());
        }
        crate::fsutil::exchange(a, b)
    }

    /// Runs `hook` the next time `step` is reached, before the step does
    /// anything (tests only).
    #[cfg(test)]
    pub fn at(&self, step: Step, hook: Hook) {
        *self.hooked.lock().unwrap() = Some((step, hook));
    }

    /// Fails if a test armed `step`, disarming it.
    #[cfg_attr(not(test), allow(unused_variables))]
    pub fn check(&self, step: Step) -> std::io::Result<()> {
        #[cfg(debug_assertions)]
        self.pause.at(step);
        #[cfg(test)]
        {
            let hook = {
                let mut hooked = self.hooked.lock().unwrap_or_else(|e| e.into_inner());
                match hooked.take() {
                    Some((at, hook)) if at == step => Some(hook),
                    other => {
                        *hooked = other;
                        None
                    }
                }
            };
            if let Some(hook) = hook {
                hook();
            }
            let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
            match &mut *armed {
                Some((at, 0)) if *at == step => {
                    *armed = None;
                    return Err(std::io::Error::other(format!(
                        "injected failure at {step:?}"
                    )));
                }
                Some((at, passes)) if *at == step => *passes -= 1,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether this process was told to pause at a step (debug builds): its
/// change must then be made here, where the pause is, so the command line
/// does not hand it to the daemon.
pub fn pausing_here() -> bool {
    #[cfg(debug_assertions)]
    return Pause::default().at.is_some();
    #[cfg(not(debug_assertions))]
    false
}

/// The pause of a debug build at the step `MODMAN_PAUSE_AT` names, once.
#[cfg(debug_assertions)]
struct Pause {
    at: Option<(Step, std::path::PathBuf)>,
    done: std::sync::atomic::AtomicBool,
}

#[cfg(debug_assertions)]
impl Default for Pause {
    fn default() -> Pause {
        let at = std::env::var("MODMAN_PAUSE_AT")
            .ok()
            .and_then(|name| Step::named(&name))
            .zip(std::env::var_os("MODMAN_PAUSE_FILE").map(std::path::PathBuf::from));
        Pause {
            at,
            done: Default::default(),
        }
    }
}

#[cfg(debug_assertions)]
impl Pause {
    /// Waits at `step` while the pause file exists, the first time.
    fn at(&self, step: Step) {
        let Some((at, file)) = &self.at else { return };
        if *at != step || self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            "debug build: paused at {} while {} exists",
            step.name(),
            file.display()
        );
        if std::fs::write(file, std::process::id().to_string()).is_err() {
            return;
        }
        let wait = || {
            while file.exists() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        };
        // On an async worker, hand its other tasks (the stream, the signal
        // listener) to another thread first, so the stop can be seen.
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        match on_worker {
            true => tokio::task::block_in_place(wait),
            false => wait(),
        }
    }
}
