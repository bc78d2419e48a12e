//! The XEP-0050 front end: sessions, stages and actions around the neutral
//! operations. An operation with parameters first shows its form; a form
//! submitted with the first `execute` runs at once, so a bot finishes in
//! one round trip.
//!
//! A result is a single-item form every client shows, unless the
//! requester's client is known to render multi-item tables
//! ([`Rendering`]). A "no" to a question completes the command with a
//! note: `canceled` after a form crashes Gajim 1.7.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xmpp_parsers::jid::Jid;

use super::clients::PendingRendering;
use super::command::{Action, CommandReply, CommandRequest, Note, Status};
use super::forms::{params, question, results};
use crate::access::Actor;
use crate::ops::{
    self, Consent, Context, Input, OpError, Operation, Question, Response, CONFIRM_FIELD,
};

/// The actions offered on a form, default first. `next` leads to the
/// result as `complete` does; it is the default because Psi 1.5 closes
/// its dialog on "Finish" (complete) before the result arrives, and keeps
/// it open on "Next".
const FORWARD: [Action; 2] = [Action::Next, Action::Complete];

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
    #[error("action `{0:?}` is not allowed at this step; allowed: next, complete, cancel")]
    BadAction(Action),
    #[error("{0}")]
    BadPayload(String),
    /// A submitted form that does not fit the command's parameters: a
    /// malformed request, answered as one whoever sent it.
    #[error(transparent)]
    Form(OpError),
    /// The operation ran and failed.
    #[error(transparent)]
    Operation(#[from] OpError),
}

/// 128 random bits: unguessable, so a session id proves nothing by itself
/// but cannot be hit by chance either.
pub fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Where a session stands.
#[derive(Debug, Clone)]
enum Stage {
    /// The parameters form was shown.
    Parameters,
    /// The operation asked this question about this input.
    Confirming(Input, Question),
    /// The operation asked for more fields; this is what it had.
    Fields(Input),
}

struct Session {
    owner: Jid,
    node: &'static str,
    stage: Stage,
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
    /// Opens (or, with `id`, reopens) a session for `owner` on `node`.
    fn keep(
        &self,
        id: Option<String>,
        owner: &Jid,
        node: &'static str,
        stage: Stage,
        now: Instant,
    ) -> String {
        let id = id.unwrap_or_else(new_session_id);
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
                stage,
                touched: now,
            },
        );
        id
    }

    /// Takes the session `id` if `owner` started it on `node`. Another
    /// requester learns nothing about it and leaves it untouched.
    fn take(&self, id: &str, owner: &Jid, node: &str, now: Instant) -> Result<Stage, AdhocError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get(id) {
            Some(s) if &s.owner == owner && s.node == node => {
                let expired = now.duration_since(s.touched) >= SESSION_TTL;
                let session = open.remove(id).ok_or(AdhocError::SessionExpired)?;
                if expired {
                    Err(AdhocError::SessionExpired)
                } else {
                    Ok(session.stage)
                }
            }
            _ => Err(AdhocError::BadSessionId(id.chars().take(64).collect())),
        }
    }
}

/// One request in the context of its session.
struct Turn<'a, 'r> {
    ctx: &'a Context,
    actor: &'a Actor,
    sessions: &'a Sessions,
    from: &'a Jid,
    op: &'static dyn Operation,
    rendering: &'a PendingRendering<'r>,
    now: Instant,
}

/// Runs one `<command/>` request from `from`, already authorised, for a
/// client that shows results as `rendering` says once it is known.
pub async fn handle(
    ctx: &Context,
    sessions: &Sessions,
    actor: &Actor,
    from: &Jid,
    rendering: &PendingRendering<'_>,
    request: CommandRequest,
) -> Result<CommandReply, AdhocError> {
    let op = ops::find(&request.node)
        .ok_or_else(|| AdhocError::UnknownNode(request.node.chars().take(64).collect()))?;
    let turn = Turn {
        ctx,
        actor,
        sessions,
        from,
        op,
        rendering,
        now: Instant::now(),
    };
    let Some(session_id) = request.session_id else {
        if request.action != Action::Execute {
            return Err(AdhocError::BadSessionId(String::new()));
        }
        return match request.form {
            Some(form) => turn.run(None, read_input(op, &form)?).await,
            None if op.spec().params.is_empty() => turn.run(None, Input::default()).await,
            None => Ok(turn.show_parameters(None, None)),
        };
    };
    let stage = sessions.take(&session_id, from, op.spec().node, turn.now)?;
    match (request.action, stage) {
        (Action::Cancel, _) => Ok(turn.reply(
            session_id,
            Status::Canceled,
            vec![],
            "Canceled; nothing was changed.",
            None,
        )),
        (Action::Prev, Stage::Confirming(input, _) | Stage::Fields(input))
            if !op.spec().params.is_empty() =>
        {
            Ok(turn.show_parameters(Some(session_id), Some(&input)))
        }
        (Action::Execute | Action::Next | Action::Complete, Stage::Parameters) => {
            let input = match &request.form {
                Some(form) => read_input(op, form)?,
                None => Input::default(),
            };
            turn.run(Some(session_id), input).await
        }
        (Action::Execute | Action::Next | Action::Complete, Stage::Fields(earlier)) => {
            let input = match &request.form {
                Some(form) => read_more(op, form, earlier)?,
                None => earlier,
            };
            turn.run(Some(session_id), input).await
        }
        (
            Action::Execute | Action::Next | Action::Complete,
            Stage::Confirming(mut input, question),
        ) => {
            let answer = match &request.form {
                Some(form) => read_answer(form)?,
                None => false,
            };
            if !answer {
                let note = "Not confirmed; nothing was changed.";
                // Gajim 2 would show a note, a gap, then the same text as
                // the form's result: there the form says it once.
                let beside = match turn.rendering.get().await.note_in_title() {
                    true => "",
                    false => note,
                };
                return Ok(turn.reply(
                    session_id,
                    Status::Completed,
                    vec![],
                    beside,
                    Some(results::message_form(op.spec().name, note)),
                ));
            }
            input.consent = Consent::Approved(question.approval);
            turn.run(Some(session_id), input).await
        }
        (action, stage) => {
            sessions.keep(Some(session_id), from, op.spec().node, stage, turn.now);
            Err(AdhocError::BadAction(action))
        }
    }
}

/// The submitted form, checked against the operation's parameters.
fn read_input(op: &dyn Operation, form: &minidom::Element) -> Result<Input, AdhocError> {
    let raw = params::submitted_values(form).map_err(AdhocError::BadPayload)?;
    let raw = params::fold_typed(op.spec().params, raw);
    Input::check(
        op.spec().params,
        raw.iter()
            .map(|(var, values)| (var.as_str(), values.clone())),
    )
    .map_err(AdhocError::Form)
}

/// A later form of the same request, on top of what `earlier` had.
fn read_more(
    op: &dyn Operation,
    form: &minidom::Element,
    earlier: Input,
) -> Result<Input, AdhocError> {
    let raw = params::submitted_values(form).map_err(AdhocError::BadPayload)?;
    Input::check_onto(
        op.spec().params,
        earlier,
        raw.iter()
            .map(|(var, values)| (var.as_str(), values.clone())),
    )
    .map_err(AdhocError::Form)
}

/// The `confirm` boolean of a submitted confirmation form.
fn read_answer(form: &minidom::Element) -> Result<bool, AdhocError> {
    let raw = params::submitted_values(form).map_err(AdhocError::BadPayload)?;
    // A client may send back every field it was shown (the changes of
    // an update too); only the answer counts.
    Ok(Input::check(
        &[],
        raw.iter()
            .filter(|(var, _)| var == CONFIRM_FIELD)
            .map(|(var, values)| (var.as_str(), values.clone())),
    )
    .map_err(AdhocError::Form)?
    .consent
        == Consent::Given)
}

impl Turn<'_, '_> {
    fn reply(
        &self,
        session_id: String,
        status: Status,
        actions: Vec<Action>,
        note: &str,
        form: Option<minidom::Element>,
    ) -> CommandReply {
        CommandReply {
            node: self.op.spec().node.to_owned(),
            session_id,
            status,
            actions,
            notes: if note.is_empty() {
                vec![]
            } else {
                vec![Note::info(note)]
            },
            form,
        }
    }

    /// The parameters form, filled with `previous` when going back.
    fn show_parameters(
        &self,
        session_id: Option<String>,
        previous: Option<&Input>,
    ) -> CommandReply {
        let spec = self.op.spec();
        let id = self.sessions.keep(
            session_id,
            self.from,
            spec.node,
            Stage::Parameters,
            self.now,
        );
        self.reply(
            id,
            Status::Executing,
            FORWARD.to_vec(),
            "",
            Some(params::parameters_form(spec, self.ctx, previous)),
        )
    }

    /// Runs the operation and renders its response. A question keeps the
    /// session open (a one-shot request gets one now).
    async fn run(
        &self,
        session_id: Option<String>,
        input: Input,
    ) -> Result<CommandReply, AdhocError> {
        let spec = self.op.spec();
        let (response, rendering) = tokio::join!(
            self.op.run_for_reply(self.ctx, self.actor, &input),
            self.rendering.get()
        );
        let response = response?.after_dry_run(&input.consent, params::CARRY_OUT);
        let id = || session_id.clone().unwrap_or_else(new_session_id);
        Ok(match response {
            Response::Table(table) => self.reply(
                id(),
                Status::Completed,
                vec![],
                if rendering.note_in_title() {
                    ""
                } else {
                    &table.note
                },
                Some(results::table_result(&table, rendering)),
            ),
            Response::Details(details) => self.reply(
                id(),
                Status::Completed,
                vec![],
                "",
                Some(results::details_form(&details)),
            ),
            Response::Form(form) => {
                let id = self.sessions.keep(
                    session_id.clone(),
                    self.from,
                    spec.node,
                    Stage::Fields(input),
                    self.now,
                );
                let mut actions = vec![Action::Complete];
                if !spec.params.is_empty() {
                    actions.push(Action::Prev);
                }
                self.reply(
                    id,
                    Status::Executing,
                    actions,
                    "",
                    Some(params::fields_form(&form)),
                )
            }
            Response::Confirm(question) => {
                let by_chat = crate::xmpp::chat::line::line_of(self.op, &input);
                let id = self.sessions.keep(
                    session_id.clone(),
                    self.from,
                    spec.node,
                    Stage::Confirming(input, question.clone()),
                    self.now,
                );
                let mut actions = FORWARD.to_vec();
                if !spec.params.is_empty() {
                    actions.push(Action::Prev);
                }
                self.reply(
                    id,
                    Status::Executing,
                    actions,
                    "",
                    Some(question::confirm_form(
                        spec.name,
                        &question,
                        by_chat.as_deref(),
                    )),
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn open(sessions: &Sessions, owner: &Jid, now: Instant) -> String {
        sessions.keep(None, owner, "list", Stage::Parameters, now)
    }

    #[test]
    fn a_session_belongs_to_the_full_jid_that_opened_it() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let id = open(&sessions, &jid("admin@x/phone"), now);
        let stranger = sessions.take(&id, &jid("admin@x/laptop"), "list", now);
        assert!(matches!(stranger, Err(AdhocError::BadSessionId(_))));
        let wrong_node = sessions.take(&id, &jid("admin@x/phone"), "install", now);
        assert!(matches!(wrong_node, Err(AdhocError::BadSessionId(_))));
        assert!(matches!(
            sessions.take(&id, &jid("admin@x/phone"), "list", now),
            Ok(Stage::Parameters)
        ));
        assert!(sessions.open.lock().unwrap().is_empty());
    }

    #[test]
    fn idle_sessions_expire_then_are_forgotten() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let owner = jid("admin@x/r");
        let id = open(&sessions, &owner, start);
        let later = start + SESSION_TTL + Duration::from_secs(1);
        assert!(matches!(
            sessions.take(&id, &owner, "list", later),
            Err(AdhocError::SessionExpired)
        ));
        let old = open(&sessions, &owner, start);
        open(&sessions, &owner, start + 2 * SESSION_TTL);
        assert!(matches!(
            sessions.take(&old, &owner, "list", start + 2 * SESSION_TTL),
            Err(AdhocError::BadSessionId(_))
        ));
    }

    #[test]
    fn one_jid_cannot_hold_unbounded_sessions() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let first = open(&sessions, &jid("admin@x/r"), now);
        for i in 1..1000 {
            open(&sessions, &jid("admin@x/r"), now + Duration::from_millis(i));
        }
        assert_eq!(sessions.open.lock().unwrap().len(), MAX_SESSIONS_PER_JID);
        assert!(sessions
            .take(&first, &jid("admin@x/r"), "list", now)
            .is_err());
    }
}
