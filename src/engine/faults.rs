//! Failure injection for the engine's own tests: every step of a change
//! can be made to fail once, so the tests can check that each failure is
//! undone and truthfully reported. Outside `cargo test` a [`Faults`] never
//! fails.

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

/// Where a change fails on purpose; nowhere unless a test says so.
#[derive(Debug, Default)]
pub struct Faults {
    #[cfg(test)]
    armed: std::sync::Mutex<Option<Step>>,
}

impl Faults {
    /// Makes the next time `step` is reached fail (tests only).
    #[cfg(test)]
    pub fn fail_once(&self, step: Step) {
        *self.armed.lock().unwrap() = Some(step);
    }

    /// Fails if a test armed `step`, disarming it.
    #[cfg_attr(not(test), allow(unused_variables))]
    pub fn check(&self, step: Step) -> std::io::Result<()> {
        #[cfg(test)]
        {
            let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
            if *armed == Some(step) {
                *armed = None;
                return Err(std::io::Error::other(format!(
                    "injected failure at {step:?}"
                )));
            }
        }
        Ok(())
    }
}
