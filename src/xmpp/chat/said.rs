//! What modman says back in a chat, text and facts together: below the
//! conversations and the fleet's chat lines, which both say it.

use crate::ops;

/// What modman says back in a chat: the text a person reads and, for a
/// command's result or failure, the same facts as JSON (an XEP-0335
/// container beside the body), so a bot in a room never parses English.
pub struct Said {
    pub text: String,
    pub facts: Option<serde_json::Value>,
}

impl From<String> for Said {
    fn from(text: String) -> Said {
        Said { text, facts: None }
    }
}

impl Said {
    pub(crate) fn failed(text: String, error: &ops::OpError) -> Said {
        Said {
            text,
            facts: Some(error.to_json()),
        }
    }

    /// A command not run, with why as a fact (`{"kind": "refused",
    /// "refused": "not_admin"}`), so a bot tells a refusal from a result
    /// without reading the text.
    pub(super) fn refused(text: String, why: Refusal) -> Said {
        Said {
            text,
            facts: Some(serde_json::json!({"kind": "refused", "refused": why.name()})),
        }
    }
}

/// Why the chat front end ran nothing for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The speaker's real JID is not among the admins.
    NotAdmin,
    /// A room hid the speaker's real JID, so nothing proves who it is.
    UnknownSpeaker,
    /// The speaker has as many commands running as one may.
    Busy,
}

impl Refusal {
    /// Its name in the facts.
    fn name(self) -> &'static str {
        match self {
            Refusal::NotAdmin => "not_admin",
            Refusal::UnknownSpeaker => "unknown_speaker",
            Refusal::Busy => "busy",
        }
    }
}
