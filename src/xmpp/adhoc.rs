//! The XEP-0050 front end: sessions, stages and actions around the neutral
//! operations. An operation with parameters first shows its form; a form
//! submitted with the first `execute` runs at once, so a bot finishes in
//! one round trip.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xmpp_parsers::jid::Jid;

use super::command::{Action, CommandReply, CommandRequest, NoteType, Status};
use super::forms;
use crate::ops::{self, Context, Input, OpError, Operation, Response};

/// How long a session may sit idle before it expires.
pub const SESSION_TTL: Duration = Duration::from_secs(10 * 60);
/// Open sessions one full JID may hold; the oldest is dropped beyond it.
const MAX_SESSIONS_PER_JID: usize = 16;

/// Why a command request failed, mapped by the component to a stanza error
/// (XEP-0050 section 4.6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdhocError {
    #[error("there is no command `{0}`; ask disco#items on node http://jabber.org/protocol/commands for the list")]
    UnknownNode(String),
    #[error("no session `{0}` of yours is open; start the command again with execute")]
    BadSessionId(String),
    #[error("the session expired after {} minutes idle; start the command again", SESSION_TTL.as_secs() / 60)]
    SessionExpired,
    #[error("action `{0:?}` is not allowed at this step; allowed: complete, cancel")]
    BadAction(Action),
    #[error("{0}")]
    BadPayload(String),
    #[error(transparent)]
    Operation(#[from] OpError),
}

/// 128 random bits: unguessable, so a session id proves nothing by itself
/// but cannot be hit by chance either.
fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

struct Session {
    owner: Jid,
    node: &'static str,
    touched: Instant,
}

/// Open ad-hoc sessions, each bound to the full JID that started it.
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            open: Mutex::new(HashMap::new()),
        }
    }
}

impl Sessions {
    /// Opens a session for `owner` on `node` and returns its id.
    fn open(&self, owner: &Jid, node: &'static str, now: Instant) -> String {
        let id = new_session_id();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // Expired sessions stay one more TTL so their owner hears
        // "session-expired" rather than "bad-sessionid"; then they go.
        open.retain(|_, s| now.duration_since(s.touched) < 2 * SESSION_TTL);
        let mine: Vec<(String, Instant)> = open
            .iter()
            .filter(|(_, s)| &s.owner == owner)
            .map(|(id, s)| (id.clone(), s.touched))
            .collect();
        if mine.len() >= MAX_SESSIONS_PER_JID {
            if let Some((oldest, _)) = mine.iter().min_by_key(|(_, touched)| *touched) {
                open.remove(oldest);
            }
        }
        open.insert(
            id.clone(),
            Session {
                owner: owner.clone(),
                node,
                touched: now,
            },
        );
        id
    }

    /// Takes the session `id` if `owner` started it on `node`. Another
    /// requester learns nothing about it and leaves it untouched.
    fn take(&self, id: &str, owner: &Jid, node: &str, now: Instant) -> Result<(), AdhocError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get(id) {
            Some(s) if &s.owner == owner && s.node == node => {
                let expired = now.duration_since(s.touched) >= SESSION_TTL;
                open.remove(id);
                if expired {
                    Err(AdhocError::SessionExpired)
                } else {
                    Ok(())
                }
            }
            _ => Err(AdhocError::BadSessionId(id.chars().take(64).collect())),
        }
    }

    /// Puts back a session after a request that did not end it.
    fn keep(&self, id: String, owner: &Jid, node: &'static str, now: Instant) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(
            id,
            Session {
                owner: owner.clone(),
                node,
                touched: now,
            },
        );
    }

    /// How many sessions are open (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs one `<command/>` request from `from`, already authorised.
pub async fn handle(
    ctx: &Context,
    sessions: &Sessions,
    from: &Jid,
    request: CommandRequest,
) -> Result<CommandReply, AdhocError> {
    let op = ops::find(&request.node)
        .ok_or_else(|| AdhocError::UnknownNode(request.node.chars().take(64).collect()))?;
    let node = op.spec().node;
    let now = Instant::now();
    let Some(session_id) = request.session_id else {
        if request.action != Action::Execute {
            return Err(AdhocError::BadSessionId(String::new()));
        }
        return match request.form {
            Some(form) => complete(ctx, op, Some(&form), None).await,
            None if op.spec().params.is_empty() => complete(ctx, op, None, None).await,
            None => Ok(CommandReply {
                node: node.to_owned(),
                session_id: sessions.open(from, node, now),
                status: Status::Executing,
                actions: vec![Action::Complete],
                notes: vec![],
                form: Some(forms::parameters_form(op.spec())),
            }),
        };
    };
    sessions.take(&session_id, from, node, now)?;
    match request.action {
        Action::Cancel => Ok(CommandReply {
            node: node.to_owned(),
            session_id,
            status: Status::Canceled,
            actions: vec![],
            notes: vec![(NoteType::Info, "Canceled; nothing was changed.".into())],
            form: None,
        }),
        Action::Execute | Action::Complete => {
            complete(ctx, op, request.form.as_ref(), Some(session_id)).await
        }
        action @ (Action::Next | Action::Prev) => {
            sessions.keep(session_id, from, node, now);
            Err(AdhocError::BadAction(action))
        }
    }
}

/// Reads the submitted form (none counts as empty), runs the operation and
/// renders its response as the final reply. A one-shot request has no
/// session yet; XEP-0050 still wants an id on the reply.
async fn complete(
    ctx: &Context,
    op: &dyn Operation,
    form: Option<&minidom::Element>,
    session_id: Option<String>,
) -> Result<CommandReply, AdhocError> {
    let raw = match form {
        Some(form) => forms::submitted_values(form).map_err(AdhocError::BadPayload)?,
        None => vec![],
    };
    let input = Input::check(
        op.spec().params,
        raw.iter()
            .map(|(var, values)| (var.as_str(), values.clone())),
    )?;
    let response = op.run(ctx, &input).await?;
    let (notes, form) = match &response {
        Response::Table(table) => (
            vec![(NoteType::Info, table.note.clone())],
            Some(forms::table_form(table)),
        ),
    };
    Ok(CommandReply {
        node: op.spec().node.to_owned(),
        session_id: session_id.unwrap_or_else(new_session_id),
        status: Status::Completed,
        actions: vec![],
        notes,
        form,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    #[test]
    fn a_session_belongs_to_the_full_jid_that_opened_it() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let id = sessions.open(&jid("admin@x/phone"), "list", now);
        let stranger = sessions.take(&id, &jid("admin@x/laptop"), "list", now);
        assert!(matches!(stranger, Err(AdhocError::BadSessionId(_))));
        let wrong_node = sessions.take(&id, &jid("admin@x/phone"), "install", now);
        assert!(matches!(wrong_node, Err(AdhocError::BadSessionId(_))));
        assert_eq!(
            sessions.take(&id, &jid("admin@x/phone"), "list", now),
            Ok(())
        );
        assert!(sessions.is_empty());
    }

    #[test]
    fn idle_sessions_expire_then_are_forgotten() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let owner = jid("admin@x/r");
        let id = sessions.open(&owner, "list", start);
        let later = start + SESSION_TTL + Duration::from_secs(1);
        assert_eq!(
            sessions.take(&id, &owner, "list", later),
            Err(AdhocError::SessionExpired)
        );
        let old = sessions.open(&owner, "list", start);
        sessions.open(&owner, "list", start + 2 * SESSION_TTL);
        assert!(matches!(
            sessions.take(&old, &owner, "list", start + 2 * SESSION_TTL),
            Err(AdhocError::BadSessionId(_))
        ));
    }

    #[test]
    fn one_jid_cannot_hold_unbounded_sessions() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let first = sessions.open(&jid("admin@x/r"), "list", now);
        for i in 1..1000 {
            sessions.open(&jid("admin@x/r"), "list", now + Duration::from_millis(i));
        }
        assert_eq!(sessions.len(), MAX_SESSIONS_PER_JID);
        assert!(sessions
            .take(&first, &jid("admin@x/r"), "list", now)
            .is_err());
    }
}
