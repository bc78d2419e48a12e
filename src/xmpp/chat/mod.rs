//! The chat front end: the same operations as the ad-hoc commands, typed
//! as text in a direct chat with the component (`install cloud_notify`) or
//! in a MUC room, addressed by nick (`modman: list updates`). A question
//! becomes a chat question answered with `yes` or `no`.
//!
//! This file keeps the conversations (questions waiting, commands
//! running); [`said`] is what is said back; [`line`] reads a line, [`asked`]
//! decides which messages are commands and who says them, [`rooms`] is
//! modman's membership of its rooms.

mod asked;
pub mod line;
pub mod rooms;
pub mod said;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xmpp_parsers::jid::BareJid;
use xmpp_parsers::message::Message;

pub use asked::refusal;
use asked::{answer, asked, speaker, Asked, Speaker};
use line::{help, help_facts, parse_line, usage, Line};
use rooms::Membership;
use said::Refusal;
pub use said::Said;

use super::budget::Caller;
use super::fleet;
use super::fleet::rollout::AskedIn;
use crate::access::Actor;
use crate::config::Config;
use crate::ops::{self, Consent, Context, Input, Operation, Question, Response};

/// How long a question waits for its `yes` or `no`.
const ANSWER_WITHIN: Duration = Duration::from_secs(5 * 60);
/// Commands one sender may have running at once; more get a "busy" reply.
const MAX_RUNNING_PER_SENDER: usize = 3;

/// A question waiting for its answer.
struct Pending {
    op: &'static dyn Operation,
    input: Input,
    /// The question shown; "yes" approves exactly its plan.
    question: Question,
    asked: Instant,
}
/// The chat front end's memory: questions waiting, commands running, and
/// who is who in the rooms.
#[derive(Default)]
pub struct Chat {
    /// By conversation: the sender's bare JID, or room + real JID.
    pending: Mutex<HashMap<String, Pending>>,
    running: Mutex<HashMap<String, usize>>,
    /// modman in its rooms, and who is who there.
    pub rooms: Membership,
}

/// Decrements the sender's running count when a command ends.
struct Running<'a> {
    chat: &'a Chat,
    actor: String,
}

impl Chat {
    /// A chat front end that records where modman stands in its rooms in
    /// `rooms` (the context's, which `check` reads).
    pub fn sharing(rooms: std::sync::Arc<crate::ops::routes::Rooms>) -> Chat {
        Chat {
            rooms: Membership::sharing(rooms),
            ..Chat::default()
        }
    }

    fn start(&self, actor: &str) -> Option<Running<'_>> {
        let actor = actor.to_owned();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let count = running.entry(actor.clone()).or_insert(0);
        if *count >= MAX_RUNNING_PER_SENDER {
            return None;
        }
        *count += 1;
        Some(Running { chat: self, actor })
    }

    /// Whether a question waits for its answer in `conversation`.
    fn is_waiting(&self, conversation: &str) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(conversation)
            .is_some_and(|p| p.asked.elapsed() < ANSWER_WITHIN)
    }

    /// Who `message` would cost modman an answer for, if anyone: decided
    /// before any work is done for it, so a non-admin's flood can be
    /// dropped unread (see [`super::budget`]).
    pub fn caller(&self, config: &Config, message: &Message) -> Caller {
        asked::caller(config, &self.rooms, message)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self.chat.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = running.get_mut(&self.actor) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.actor);
            }
        }
    }
}

/// The XEP-0335 JSON container's namespace.
pub(super) const JSON_NS: &str = "urn:xmpp:json:0";

/// `facts` (JSON text) in an XEP-0335 container, to go beside a body.
pub(super) fn json_payload(facts: String) -> minidom::Element {
    minidom::Element::builder("json", JSON_NS)
        .append(facts)
        .build()
}

impl Chat {
    /// The reply to `text` from `actor`, authorised or not, in
    /// `conversation`, which is in `asked_in`.
    pub async fn reply(
        &self,
        ctx: &Context,
        link: fleet::chat::Link<'_>,
        asked_in: AskedIn<'_>,
        conversation: &str,
        sender: &BareJid,
        text: &str,
    ) -> Said {
        let Some(actor) = Actor::admit(&ctx.config, sender) else {
            return Said::refused(format!(
                "{sender} is not a modman admin, so I run nothing for you. The server's admin can add you to `admins` in modman.toml."
            ), Refusal::NotAdmin);
        };
        let actor = &actor;
        let Some(_running) = self.start(&actor.to_string()) else {
            return Said::refused(format!("Busy: you have {MAX_RUNNING_PER_SENDER} commands running; send this again when one has answered."), Refusal::Busy);
        };
        if let Some((servers, line)) = fleet::chat::addressed(&ctx.config, text) {
            return fleet::chat::reply(ctx, link, asked_in, actor, &servers, line).await;
        }
        match parse_line(text) {
            Err(explanation) => explanation.into(),
            Ok(Line::Help) => Said {
                text: help(),
                facts: Some(help_facts()),
            },
            Ok(Line::Answer(yes)) => {
                let pending = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(conversation);
                match pending {
                    Some(pending) if pending.asked.elapsed() < ANSWER_WITHIN => match yes {
                        true => {
                            let mut input = pending.input;
                            input.consent = Consent::Approved(pending.question.approval);
                            self.run(ctx, conversation, actor, pending.op, input).await
                        }
                        false => "Nothing was changed.".to_owned().into(),
                    },
                    Some(_) => "That question expired; send the command again."
                        .to_owned()
                        .into(),
                    None => "There is no question waiting for an answer."
                        .to_owned()
                        .into(),
                }
            }
            Ok(Line::Command { op, raw }) => match Input::check(op.spec().params, raw) {
                Ok(input) => self.run(ctx, conversation, actor, op, input).await,
                Err(e) => Said::failed(format!("{e}. Usage: {}", usage(op)), &e),
            },
        }
    }

    async fn run(
        &self,
        ctx: &Context,
        conversation: &str,
        actor: &Actor,
        op: &'static dyn Operation,
        input: Input,
    ) -> Said {
        let ran = op.run_for_reply(ctx, actor, &input).await;
        match ran.map(|response| response.after_dry_run(&input.consent, &line::carry_out())) {
            Ok(Response::Confirm(question)) => {
                let facts = Response::Confirm(question.clone()).to_json();
                let text = question.text.clone();
                let pending = Pending {
                    op,
                    input,
                    question,
                    asked: Instant::now(),
                };
                let replaced = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(conversation.to_owned(), pending)
                    .filter(|earlier| earlier.asked.elapsed() < ANSWER_WITHIN);
                let replaces = match replaced {
                    Some(earlier) => format!(
                        "This question replaces your earlier one ({}), which nothing will answer now.\n",
                        earlier.op.spec().node
                    ),
                    None => String::new(),
                };
                Said {
                    text: format!(
                        "{replaces}{text}\nAnswer yes or no (within {} minutes).",
                        ANSWER_WITHIN.as_secs() / 60
                    ),
                    facts: Some(facts),
                }
            }
            Ok(response) => Said {
                text: crate::text::render(&response),
                facts: Some(response.to_json()),
            },
            Err(e) => Said::failed(
                format!("Failed: {}", crate::clean::one_line(&e.to_string())),
                &e,
            ),
        }
    }

    /// The reply to a room or direct message, if it deserves one.
    pub async fn on_message(
        &self,
        ctx: &Context,
        link: fleet::chat::Link<'_>,
        message: &Message,
    ) -> Option<Message> {
        let config = &ctx.config;
        let asked = asked(config, message)?;
        if let Asked::Room {
            room,
            for_fleet: true,
            ..
        } = &asked
        {
            if !self.rooms.coordinates(config, room) {
                return None;
            }
        }
        let said: Said = match (&asked, speaker(config, &self.rooms, &asked)) {
            (Asked::Direct { sender, text }, _) => self.reply(ctx, link, AskedIn::Private, sender.as_str(), sender, text).await,
            (Asked::Room { addressed: false, .. }, Speaker::Unknown(_) | Speaker::Other(_)) => return None,
            (Asked::Room { .. }, Speaker::Unknown(_)) => Said::refused("I cannot tell who you are: I have not seen your real JID in this room since I joined it, and a nick proves nothing. Make the room non-anonymous, or talk to me in a direct chat.".to_owned(), Refusal::UnknownSpeaker),
            // Said to the whole room: a semi-anonymous room shows real
            // JIDs only to moderators, so this never names one.
            (Asked::Room { .. }, Speaker::Other(_)) => Said::refused("you are not a modman admin, so I run nothing for you. The server's admin can add your JID to `admins` in modman.toml.".to_owned(), Refusal::NotAdmin),
            (Asked::Room { room, text, addressed, .. }, Speaker::Admin(jid)) => {
                let conversation = format!("{room} {jid}");
                // A bare "yes" is room talk unless its sender has a
                // question of ours waiting.
                if !addressed && !self.is_waiting(&conversation) {
                    return None;
                }
                self.reply(ctx, link, AskedIn::Room(room), &conversation, &jid, text).await
            }
        };
        let mut reply = answer(&asked, message, said.text);
        // The text is fitted to REPLY_BYTES; facts of at most as much keep
        // the stanza well under Prosody's limit. Larger facts (a long
        // README) are left out rather than risk the stream.
        let facts = said.facts.map(|facts| facts.to_string());
        if let Some(facts) = facts.filter(|facts| facts.len() <= ops::REPLY_BYTES) {
            reply.payloads.push(json_payload(facts));
        }
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sender_cannot_run_more_than_the_bound() {
        let chat = Chat::default();
        let running: Vec<_> = (0..MAX_RUNNING_PER_SENDER)
            .map(|_| chat.start("a@x").unwrap())
            .collect();
        assert!(chat.start("a@x").is_none(), "over the bound");
        assert!(chat.start("b@x").is_some(), "others are not held up");
        drop(running);
        let again = chat.start("a@x");
        assert!(again.is_some(), "free again once they end");
        assert_eq!(chat.running.lock().unwrap().get("a@x"), Some(&1));
    }
}
