//! Failures that reach a user: what failed, on what, what state things
//! are in now (an [`Outcome`], rendered in one place), and what to do.

use std::fmt;

use crate::engine::{ChangeError, EngineError, Outcome};
use crate::repo::fetch::FetchError;

/// What kind of failure, so each front end can pick its own wording
/// (an XMPP error condition, an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong: fix it and try again.
    BadInput,
    /// What the request names does not exist.
    NotFound,
    /// It conflicts with the state of the host (not installed, unmanaged,
    /// another change running, Prosody refused).
    Conflict,
    /// The host or a repository failed (I/O, network, a bad download).
    Unavailable,
}

/// A failure that reaches a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct OpError {
    pub kind: ErrorKind,
    /// What failed, on what, and what to do.
    pub text: String,
    /// What is true on the host afterwards.
    pub outcome: Outcome,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::NothingChanged => write!(f, "{}; nothing was changed", self.text),
            Outcome::Undone => write!(
                f,
                "{}; everything this change had done was undone, so nothing is changed",
                self.text
            ),
            Outcome::PartlyChanged(left) => write!(
                f,
                "{}; the change could not be wholly undone: {left}",
                self.text
            ),
        }
    }
}

impl OpError {
    /// The kind as a word for machines (`--json`, a failed command's
    /// form).
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ErrorKind::BadInput => "bad_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
        }
    }

    /// What the host is left in, as a word for machines, with what is
    /// left when part of a change could not be undone.
    pub fn state_name(&self) -> (&'static str, Option<&str>) {
        match &self.outcome {
            Outcome::NothingChanged => ("nothing_changed", None),
            Outcome::Undone => ("undone", None),
            Outcome::PartlyChanged(left) => ("partly_changed", Some(left)),
        }
    }

    fn new(kind: ErrorKind, text: impl Into<String>) -> Self {
        OpError {
            kind,
            text: text.into(),
            outcome: Outcome::NothingChanged,
        }
    }
    pub fn bad_input(text: impl Into<String>) -> Self {
        OpError::new(ErrorKind::BadInput, text)
    }
    pub fn not_found(text: impl Into<String>) -> Self {
        OpError::new(ErrorKind::NotFound, text)
    }
    pub fn conflict(text: impl Into<String>) -> Self {
        OpError::new(ErrorKind::Conflict, text)
    }
    pub fn unavailable(text: impl Into<String>) -> Self {
        OpError::new(ErrorKind::Unavailable, text)
    }
}

fn kind_of(error: &EngineError) -> ErrorKind {
    match error {
        EngineError::Unmanaged { .. }
        | EngineError::Busy(_)
        | EngineError::ManagedConfig(_)
        | EngineError::Refused(_) => ErrorKind::Conflict,
        EngineError::NoSuchHost { .. } | EngineError::ExternalComponent(_) => ErrorKind::BadInput,
        EngineError::Io { .. }
        | EngineError::Prosody(_)
        | EngineError::Stuck(_)
        | EngineError::Internal(_) => ErrorKind::Unavailable,
    }
}

impl From<EngineError> for OpError {
    fn from(error: EngineError) -> Self {
        OpError::from(ChangeError::from(error))
    }
}

impl From<ChangeError> for OpError {
    fn from(change: ChangeError) -> Self {
        OpError {
            kind: kind_of(&change.error),
            text: change.error.to_string(),
            outcome: change.outcome,
        }
    }
}

impl From<FetchError> for OpError {
    fn from(error: FetchError) -> Self {
        OpError::unavailable(error.to_string())
    }
}
