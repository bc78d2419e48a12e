//! Asking peer modmans over s2s: each request is an XEP-0050 `execute`
//! with the form filled in and the admin named ([`super::trust`]), sent
//! through our own component stream; the answers are matched by id and
//! sender, so nobody else can answer for a peer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use minidom::Element;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::stanza_error::DefinedCondition;

/// Peers asked at once by one fleet request: a request to 100 servers
/// keeps at most this many IQs in flight, and the answers are taken as
/// they come.
pub const CONCURRENCY: usize = 16;

/// Our questions to peers awaiting an answer.
#[derive(Default)]
pub struct Relay {
    /// IQ id -> (the peer asked, its waiter).
    pending: Mutex<HashMap<String, (Jid, oneshot::Sender<Iq>)>>,
}

/// What a request needs to reach the peers: the questions awaiting their
/// answers, and the way out to them.
#[derive(Clone, Copy)]
pub struct Link<'a> {
    pub relay: &'a Relay,
    pub replies: &'a mpsc::Sender<Stanza>,
}

/// Why one peer's answer is missing from a fleet result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerFailure {
    #[error("did not answer within {0} s (its server or the s2s link may be down)")]
    Timeout(u64),
    #[error("refused ({condition}): {text}")]
    Refused { condition: String, text: String },
    /// The peer ran the command and it failed there (a change that
    /// failed is undone whole there).
    #[error("failed there ({condition}): {text}")]
    FailedThere { condition: String, text: String },
    #[error("could not be reached ({condition}): its server, its modman or the s2s link is down")]
    Unreachable { condition: String },
    #[error("answered something modman cannot read: {0}")]
    Unreadable(String),
    #[error("could not be asked: the connection to Prosody is gone")]
    NotSent,
    #[error("failed here: {0}")]
    Failed(String),
}

impl PeerFailure {
    /// The kind of failure, as a table cell: `timeout`, `refused`,
    /// `failed-there`, `unreachable`, `unreadable`, `not-sent` or
    /// `failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerFailure::Timeout(_) => "timeout",
            PeerFailure::Refused { .. } => "refused",
            PeerFailure::FailedThere { .. } => "failed-there",
            PeerFailure::Unreachable { .. } => "unreachable",
            PeerFailure::Unreadable(_) => "unreadable",
            PeerFailure::NotSent => "not-sent",
            PeerFailure::Failed(_) => "failed",
        }
    }
}

impl Relay {
    /// Takes `iq` if it answers one of our questions, from the peer that
    /// was asked.
    pub fn answered(&self, iq: &Iq) -> bool {
        let (id, from) = match iq {
            Iq::Result { id, from, .. } | Iq::Error { id, from, .. } => (id, from),
            Iq::Get { .. } | Iq::Set { .. } => return false,
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get(id) {
            Some((asked, _)) if from.as_ref() == Some(asked) => {}
            _ => return false,
        }
        if let Some((_, waiter)) = pending.remove(id) {
            let _ = waiter.send(iq.clone());
        }
        true
    }

    /// Sends `command` to `peer` and waits up to `within` for its
    /// `<command/>` answer.
    pub async fn ask(
        &self,
        me: &BareJid,
        peer: &BareJid,
        command: Element,
        replies: &mpsc::Sender<Stanza>,
        within: Duration,
    ) -> Result<Element, PeerFailure> {
        let id = format!("modman-fleet-{:032x}", rand::random::<u128>());
        let to = Jid::from(peer.clone());
        let (answered, answer) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), (to.clone(), answered));
        let iq = Iq::Set {
            from: Some(Jid::from(me.clone())),
            to: Some(to),
            id: id.clone(),
            payload: command,
        };
        let outcome = match replies.send(iq.into()).await {
            Err(_) => Err(PeerFailure::NotSent),
            Ok(()) => match tokio::time::timeout(within, answer).await {
                Ok(Ok(iq)) => read_answer(iq),
                Ok(Err(_)) | Err(_) => Err(PeerFailure::Timeout(within.as_secs())),
            },
        };
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        outcome
    }

    /// Asks every peer in `peers` (at most [`CONCURRENCY`] at once) and
    /// returns each one's answer as it came.
    pub async fn gather(
        &self,
        me: &BareJid,
        peers: Vec<BareJid>,
        command: &Element,
        replies: &mpsc::Sender<Stanza>,
        within: Duration,
    ) -> Vec<(BareJid, Result<Element, PeerFailure>)> {
        stream::iter(peers)
            .map(|peer| async move {
                let answer = self.ask(me, &peer, command.clone(), replies, within).await;
                (peer, answer)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }
}

/// The `<command/>` of a peer's answer, or why there is none.
fn read_answer(iq: Iq) -> Result<Element, PeerFailure> {
    match iq {
        Iq::Result {
            payload: Some(payload),
            ..
        } if payload.is("command", crate::xmpp::command::NS) => Ok(payload),
        Iq::Result { .. } => Err(PeerFailure::Unreadable("a result without a command".into())),
        // Said by a server on the way, not by the peer: its server or
        // its modman is not there.
        Iq::Error { error, .. }
            if matches!(
                error.defined_condition,
                DefinedCondition::RemoteServerNotFound
                    | DefinedCondition::RemoteServerTimeout
                    | DefinedCondition::ServiceUnavailable
            ) =>
        {
            Err(PeerFailure::Unreachable {
                condition: format!("{:?}", error.defined_condition),
            })
        }
        Iq::Error { error, .. } => {
            let condition = format!("{:?}", error.defined_condition);
            let text = error
                .texts
                .values()
                .next()
                .map(|t| crate::clean::one_line(t).chars().take(300).collect())
                .unwrap_or_default();
            // Said about who asks or what was asked: the peer ran
            // nothing. Anything else: it ran the command, which failed.
            match error.defined_condition {
                DefinedCondition::Forbidden
                | DefinedCondition::NotAuthorized
                | DefinedCondition::NotAllowed
                | DefinedCondition::BadRequest
                | DefinedCondition::ItemNotFound
                | DefinedCondition::FeatureNotImplemented
                | DefinedCondition::PolicyViolation
                | DefinedCondition::ResourceConstraint => {
                    Err(PeerFailure::Refused { condition, text })
                }
                _ => Err(PeerFailure::FailedThere { condition, text }),
            }
        }
        Iq::Get { .. } | Iq::Set { .. } => Err(PeerFailure::Unreadable("a request".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the peer asked can answer, by the id it was given: a stanza
    /// from anyone else with that id, or an answer nobody waits for, is
    /// not taken.
    #[tokio::test]
    async fn only_the_peer_asked_answers() {
        let relay = Relay::default();
        let (replies, mut sent) = mpsc::channel(4);
        let me: BareJid = "modman.a.test".parse().unwrap();
        let peer: BareJid = "modman.b.test".parse().unwrap();
        let command = Element::builder("command", crate::xmpp::command::NS).build();
        let asking = relay.ask(
            &me,
            &peer,
            command.clone(),
            &replies,
            Duration::from_secs(5),
        );
        let answering = async {
            let Some(Stanza::Iq(Iq::Set { id, .. })) = sent.recv().await else {
                panic!("no question went out");
            };
            let answer = |from: &str| Iq::Result {
                from: Some(from.parse().unwrap()),
                to: Some(Jid::from(me.clone())),
                id: id.clone(),
                payload: Some(command.clone()),
            };
            assert!(!relay.answered(&answer("mallory@b.test")));
            assert!(!relay.answered(&answer("modman.c.test")));
            assert!(relay.answered(&answer("modman.b.test")));
            assert!(!relay.answered(&answer("modman.b.test")), "taken twice");
        };
        let (answer, ()) = futures::join!(asking, answering);
        assert!(answer.is_ok());
    }

    #[tokio::test]
    async fn a_peer_that_never_answers_is_a_timeout() {
        let relay = Relay::default();
        let (replies, _sent) = mpsc::channel(4);
        let me: BareJid = "modman.a.test".parse().unwrap();
        let peer: BareJid = "modman.b.test".parse().unwrap();
        let command = Element::builder("command", crate::xmpp::command::NS).build();
        let answer = relay
            .ask(&me, &peer, command, &replies, Duration::from_millis(1))
            .await;
        assert_eq!(answer, Err(PeerFailure::Timeout(0)));
        assert!(relay.pending.lock().unwrap().is_empty());
    }
}
