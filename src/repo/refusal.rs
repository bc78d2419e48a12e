//! Why a repository's refresh was refused, as a fact beside the sentence:
//! the refresh table carries it in a column of its own, so a bot (or a
//! test) tells a replayed index from an unreachable server without reading
//! English, and the sentence a person reads may change freely.

use super::fetch::FetchError;
use super::luarocks::pins::PinError;
use super::luarocks::server::ServerError;

/// The kind of refusal, decided once where the refusal is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The server could not be reached, answered an HTTP error, sent more
    /// than allowed, or redirected to another host.
    Unreachable,
    /// The index is signed for another repository than the one configured.
    OtherRepository,
    /// The index names no repository (built before `repo build --name`).
    Unnamed,
    /// The signature does not verify with the configured key(s).
    Signature,
    /// The index or manifest does not parse or breaks one of its rules.
    Invalid,
    /// The index is older than one already accepted: a replay.
    Replay,
    /// The index has the serial of one already accepted, with other content.
    SerialReused,
    /// The index served has expired.
    Expired,
    /// A rock now has other bytes than those pinned for its name and version.
    PinChanged,
    /// modman's own state (the replay guard, the cache, the pins) could not
    /// be read or written.
    State,
}

impl Cause {
    /// The name forms, JSON and the CLI carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Unreachable => "unreachable",
            Cause::OtherRepository => "other_repository",
            Cause::Unnamed => "unnamed",
            Cause::Signature => "signature",
            Cause::Invalid => "invalid",
            Cause::Replay => "replay",
            Cause::SerialReused => "serial_reused",
            Cause::Expired => "expired",
            Cause::PinChanged => "pin_changed",
            Cause::State => "state",
        }
    }
}

/// A refused refresh: its cause, and the whole sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub cause: Cause,
    pub text: String,
}

impl Refusal {
    pub fn new(cause: Cause, text: impl Into<String>) -> Refusal {
        Refusal {
            cause,
            text: text.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Cause {
    /// Why `error` refused what was fetched.
    pub fn of_fetch(error: &FetchError) -> Cause {
        match error {
            FetchError::Unreachable { .. }
            | FetchError::Status { .. }
            | FetchError::TooLarge { .. } => Cause::Unreachable,
            FetchError::OtherRepository { .. } => Cause::OtherRepository,
            FetchError::Unnamed { .. } => Cause::Unnamed,
            FetchError::Signature { .. } => Cause::Signature,
            FetchError::Index { .. } | FetchError::Archive { .. } => Cause::Invalid,
            FetchError::Expired { .. } => Cause::Expired,
        }
    }
}

impl From<FetchError> for Refusal {
    fn from(error: FetchError) -> Refusal {
        Refusal::new(Cause::of_fetch(&error), error.to_string())
    }
}

impl From<ServerError> for Refusal {
    fn from(error: ServerError) -> Refusal {
        let cause = match &error {
            ServerError::Fetch(fetch) => Cause::of_fetch(fetch),
            ServerError::Url(_) | ServerError::Manifest(_) | ServerError::Refused(_) => {
                Cause::Invalid
            }
            ServerError::Pin(PinError::Changed { .. }) => Cause::PinChanged,
            ServerError::Pin(PinError::File { .. }) | ServerError::Cache { .. } => Cause::State,
        };
        Refusal::new(cause, error.to_string())
    }
}
