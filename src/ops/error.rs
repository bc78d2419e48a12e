//! Failures that reach a user: what failed, on what, what state things
//! are in now (an [`Outcome`], rendered in one place), and what to do.

use std::fmt;

use crate::access::NotTheOwner;
use crate::engine::admin_socket::AdminError;
use crate::engine::{ChangeError, EngineError, Outcome};
use crate::repo::fetch::FetchError;
use crate::repo::refusal;

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

/// Why a change failed, where one failure must be told from another
/// without reading its sentence (a bot that retries once Prosody is up, a
/// test): decided once, where the failure is turned into an [`OpError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Prosody refused to load, unload or reload a module, or to reload
    /// its config; its own words are in the text.
    ProsodyRefused,
    /// Prosody's admin socket is not where modman.toml says.
    AdminSocketMissing,
    /// The admin socket is there but modman may not use it.
    AdminSocketDenied,
    /// The admin socket could not be talked to (Prosody down).
    AdminSocketUnreachable,
    /// Prosody did not answer on its admin socket in time.
    AdminSocketTimeout,
    /// Prosody answered something modman cannot read.
    AdminSocketProtocol,
    /// The module will not load without options that are not set; the
    /// text names them and the `configure` that sets them.
    OptionsUnset,
    /// A change asked of the command line by another user than the one
    /// owning modman's state; the text says how to run it as that user.
    NotTheOwner,
    /// A repository, or what it served, was refused, for this reason.
    Repository(refusal::Cause),
}

impl Cause {
    /// The name `--json`, the chat payload and a failed command's form
    /// carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::ProsodyRefused => "prosody_refused",
            Cause::AdminSocketMissing => "admin_socket_missing",
            Cause::AdminSocketDenied => "admin_socket_denied",
            Cause::AdminSocketUnreachable => "admin_socket_unreachable",
            Cause::AdminSocketTimeout => "admin_socket_timeout",
            Cause::AdminSocketProtocol => "admin_socket_protocol",
            Cause::OptionsUnset => "options_unset",
            Cause::NotTheOwner => "not_the_owner",
            Cause::Repository(cause) => cause.as_str(),
        }
    }

    fn of_engine(error: &EngineError) -> Option<Cause> {
        match error {
            EngineError::Refused(_) => Some(Cause::ProsodyRefused),
            EngineError::Prosody(admin) => Some(match admin {
                AdminError::Missing(_) => Cause::AdminSocketMissing,
                AdminError::Denied(_) => Cause::AdminSocketDenied,
                AdminError::Io { .. } => Cause::AdminSocketUnreachable,
                AdminError::Timeout { .. } => Cause::AdminSocketTimeout,
                AdminError::Protocol(_) => Cause::AdminSocketProtocol,
            }),
            _ => None,
        }
    }
}

/// A failure that reaches a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct OpError {
    pub kind: ErrorKind,
    /// Why, where a caller may need to tell it from other failures of
    /// the same kind; `None` where the kind and the text say all.
    pub cause: Option<Cause>,
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
            cause: None,
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
            cause: Cause::of_engine(&change.error),
            text: change.error.to_string(),
            outcome: change.outcome,
        }
    }
}

impl From<NotTheOwner> for OpError {
    fn from(error: NotTheOwner) -> Self {
        OpError {
            cause: Some(Cause::NotTheOwner),
            ..OpError::conflict(error.to_string())
        }
    }
}

impl From<FetchError> for OpError {
    fn from(error: FetchError) -> Self {
        OpError {
            cause: Some(Cause::Repository(refusal::Cause::of_fetch(&error))),
            ..OpError::unavailable(error.to_string())
        }
    }
}
