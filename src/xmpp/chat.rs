//! The chat front end: the same operations as the ad-hoc commands, typed
//! as text in a direct chat with the component (`install cloud_notify`) or
//! in a MUC room, addressed by nick (`modman: list updates`).
//!
//! A line is read against the operation's declared parameters, so there
//! is no per-command chat code: module names are the words, `on HOST...`
//! names hosts, a choice is its word (`list installed`), a flag is its
//! name (`install x enable`), the rest is text. A question becomes a chat
//! question answered with `yes` or `no`.
//!
//! In a room, who is speaking is the occupant's real JID from its
//! presence; a room that hides real JIDs cannot prove anyone is an admin,
//! and a nick proves nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::muc::user::{MucUser, Status};
use xmpp_parsers::muc::{muc::History, Muc};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use super::budget::Caller;
use super::fleet;
use super::fleet::rollout::AskedIn;
use super::shutdown::Refused;
use crate::access::Actor;
use crate::config::Config;
use crate::ops::routes::InRoom;
use crate::ops::{
    self, Access, Consent, Context, Input, Operation, ParamKind, Question, Response, DRY_RUN_FIELD,
};

/// The word before a changing command that shows its plan and changes
/// nothing (`plan update all`).
const PLAN: &str = "plan";

/// How long a question waits for its `yes` or `no`.
const ANSWER_WITHIN: Duration = Duration::from_secs(5 * 60);
/// Commands one sender may have running at once; more get a "busy" reply.
const MAX_RUNNING_PER_SENDER: usize = 3;

/// A chat line, read.
pub enum Line {
    Help,
    Answer(bool),
    Command {
        op: &'static dyn Operation,
        raw: Vec<(&'static str, Vec<String>)>,
    },
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Line::Help => f.write_str("Help"),
            Line::Answer(yes) => write!(f, "Answer({yes})"),
            Line::Command { op, raw } => f
                .debug_struct("Command")
                .field("node", &op.spec().node)
                .field("raw", raw)
                .finish(),
        }
    }
}

/// Reads a line. `Err` is the reply explaining what was not understood.
pub fn parse_line(text: &str) -> Result<Line, String> {
    let mut words: VecDeque<&str> = text.split_whitespace().collect();
    let Some(first) = words.pop_front() else {
        return Ok(Line::Help);
    };
    match first.to_lowercase().as_str() {
        "help" | "?" => return Ok(Line::Help),
        "yes" | "y" => return Ok(Line::Answer(true)),
        "no" | "n" => return Ok(Line::Answer(false)),
        _ => {}
    }
    // `plan update all`: the command's plan, with nothing changed.
    let dry_run = first.eq_ignore_ascii_case(PLAN);
    let first = match dry_run {
        true => words
            .pop_front()
            .ok_or_else(|| "Say which command to plan, such as: plan update all".to_owned())?,
        false => first,
    };
    let op = ops::find(&first.to_lowercase()).ok_or_else(|| {
        format!(
            "I do not know `{}`; say help for the commands.",
            first.chars().take(32).collect::<String>()
        )
    })?;
    let params = op.spec().params;
    let mut raw = Vec::new();
    if dry_run {
        if op.spec().access != Access::Change {
            return Err(format!(
                "`{}` changes nothing, so there is nothing to plan; send it without `{PLAN}`.",
                op.spec().node
            ));
        }
        raw.push((DRY_RUN_FIELD, vec!["true".to_owned()]));
    }
    if let Some(param) = params.iter().find(|p| p.kind == ParamKind::Options) {
        let assignments = assignments(&mut words);
        if !assignments.is_empty() {
            raw.push((param.var, assignments));
        }
    }
    // `because ...`: the rest of the line is the reason, whatever words
    // it holds (`on`, a flag's name).
    for param in params.iter().filter(|p| p.kind == ParamKind::Reason) {
        if let Some(at) = words.iter().position(|w| w.eq_ignore_ascii_case(param.var)) {
            let reason: Vec<&str> = words.drain(at..).skip(1).collect();
            raw.push((param.var, vec![reason.join(" ")]));
        }
    }
    let on = words.iter().position(|w| w.eq_ignore_ascii_case("on"));
    let hosts: Option<Vec<String>> =
        on.map(|at| words.drain(at..).skip(1).map(str::to_owned).collect());
    // Flags first, by name, wherever they stand; naming hosts also means
    // "and enable it there" for a command that has a flag.
    for param in params.iter().filter(|p| p.kind == ParamKind::Boolean) {
        let named = words.iter().any(|w| w.eq_ignore_ascii_case(param.var));
        words.retain(|w| !w.eq_ignore_ascii_case(param.var));
        if named || hosts.is_some() {
            raw.push((param.var, vec!["true".to_owned()]));
        }
    }
    for param in params {
        match param.kind {
            // The choice first or last: `policy auto lastlog` and
            // `policy lastlog auto` alike.
            ParamKind::Choice(options) => {
                let chosen = |w: &&&str| options.iter().any(|(o, _)| o.eq_ignore_ascii_case(w));
                if let Some(word) = words.front().filter(chosen) {
                    raw.push((param.var, vec![word.to_lowercase()]));
                    words.pop_front();
                } else if let Some(word) = words.back().filter(chosen) {
                    raw.push((param.var, vec![word.to_lowercase()]));
                    words.pop_back();
                }
            }
            ParamKind::Modules(_) | ParamKind::Versioned(_) => {
                let names: Vec<String> = words
                    .drain(..)
                    .filter(|w| !w.eq_ignore_ascii_case("all"))
                    .map(str::to_owned)
                    .collect();
                if !names.is_empty() {
                    raw.push((param.var, names));
                }
            }
            ParamKind::Text if !words.is_empty() => {
                raw.push((
                    param.var,
                    vec![words.drain(..).collect::<Vec<_>>().join(" ")],
                ));
            }
            ParamKind::Hosts => raw.extend(hosts.clone().map(|h| (param.var, h))),
            ParamKind::Text | ParamKind::Boolean | ParamKind::Options | ParamKind::Reason => {}
        }
    }
    let node = op.spec().node;
    if !words.is_empty() {
        return Err(format!(
            "I did not understand `{}`. Usage: {}",
            words.iter().copied().collect::<Vec<_>>().join(" "),
            usage(op)
        ));
    }
    if hosts.is_some() && !params.iter().any(|p| p.kind == ParamKind::Hosts) {
        return Err(format!("`{node}` takes no hosts. Usage: {}", usage(op)));
    }
    Ok(Line::Command { op, raw })
}

/// Takes the `name=value` words out of `words` (a value in double quotes
/// may hold blanks), as `name = value` lines.
fn assignments(words: &mut VecDeque<&str>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = VecDeque::new();
    while let Some(word) = words.pop_front() {
        let Some((name, value)) = word.split_once('=') else {
            rest.push_back(word);
            continue;
        };
        let mut value = value.to_owned();
        if value.starts_with('"') && (value.len() == 1 || !value.ends_with('"')) {
            while let Some(next) = words.pop_front() {
                value = format!("{value} {next}");
                if next.ends_with('"') {
                    break;
                }
            }
        }
        lines.push(format!("{name} = {value}"));
    }
    *words = rest;
    lines
}

/// `install MODULE... [enable] [on HOST...]`, from the declared parameters.
pub fn usage(op: &dyn Operation) -> String {
    let mut parts = vec![op.spec().node.to_owned()];
    for param in op.spec().params {
        let part = match param.kind {
            ParamKind::Choice(options) => options
                .iter()
                .map(|(o, _)| *o)
                .collect::<Vec<_>>()
                .join("|"),
            ParamKind::Modules(_) => "MODULE...".to_owned(),
            ParamKind::Versioned(_) => "MODULE[@VERSION]...".to_owned(),
            ParamKind::Text => param.var.to_uppercase(),
            ParamKind::Boolean => param.var.to_owned(),
            ParamKind::Hosts => "on HOST...".to_owned(),
            ParamKind::Options => "name=value...".to_owned(),
            ParamKind::Reason => format!("{} \"...\"", param.var),
        };
        parts.push(if param.required {
            part
        } else {
            format!("[{part}]")
        });
    }
    parts.join(" ")
}

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
    /// Real JIDs by occupant JID (room/nick); `None` when the room hides it.
    occupants: Mutex<HashMap<Jid, Option<BareJid>>>,
    /// Where modman stands in each room, shared with `check`.
    rooms: std::sync::Arc<crate::ops::routes::Rooms>,
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
            rooms,
            ..Chat::default()
        }
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
    fn failed(text: String, error: &ops::OpError) -> Said {
        Said {
            text,
            facts: Some(error.to_json()),
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
            return format!(
                "{sender} is not a modman admin, so I run nothing for you. The server's admin can add you to `admins` in modman.toml."
            ).into();
        };
        let actor = &actor;
        let Some(_running) = self.start(&actor.to_string()) else {
            return format!("Busy: you have {MAX_RUNNING_PER_SENDER} commands running; send this again when one has answered.").into();
        };
        if let Some((servers, line)) = fleet::chat::addressed(&ctx.config, text) {
            return fleet::chat::reply(ctx, link, asked_in, actor, &servers, line)
                .await
                .into();
        }
        match parse_line(text) {
            Err(explanation) => explanation.into(),
            Ok(Line::Help) => help().into(),
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
        let how = format!("send the same line without `{PLAN}`");
        match ran.map(|response| response.after_dry_run(&input.consent, &how)) {
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

    /// The presence that joins `room`, forgetting everyone modman knew
    /// there: who an occupant is must come from presence received on this
    /// join. An occupant map kept across a lost connection would let
    /// someone who takes an admin's nick meanwhile speak as the admin (in a
    /// room that shows participants' presence only to moderators, modman
    /// never hears of the newcomer).
    pub fn join(&self, config: &Config, room: &BareJid) -> Presence {
        self.occupants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|jid, _| jid.to_bare() != *room);
        self.rooms.set(room, InRoom::Asked);
        join(config, room)
    }

    /// Learns from a room presence who an occupant really is. Returns a
    /// fresh join when modman itself was kicked or its join failed, so it
    /// comes back.
    pub fn on_presence(&self, config: &Config, presence: &Presence) -> Option<RoomAction> {
        let from = presence.from.as_ref()?;
        let room = from.to_bare();
        if !config.chat.rooms.contains(&room) {
            return None;
        }
        let user = presence
            .payloads
            .iter()
            .find_map(|p| MucUser::try_from(p.clone()).ok());
        let is_self = user
            .as_ref()
            .is_some_and(|u| u.status.contains(&Status::SelfPresence))
            || from
                .resource()
                .is_some_and(|r| r.as_str() == config.chat.nick);
        let mut occupants = self.occupants.lock().unwrap_or_else(|e| e.into_inner());
        match presence.type_ {
            PresenceType::Unavailable | PresenceType::Error => {
                occupants.remove(from);
                if is_self {
                    // Kicked, banned, or the room went away: try again.
                    drop(occupants);
                    let condition = error_condition(presence);
                    self.rooms.set(&room, InRoom::Out { condition });
                    tracing::warn!("left room {room}; joining again");
                    return Some(RoomAction::Rejoin(self.join(config, &room)));
                }
            }
            _ => {
                if is_self {
                    let nick = from
                        .resource()
                        .map_or_else(|| config.chat.nick.clone(), |r| r.as_str().to_owned());
                    self.rooms.set(&room, InRoom::Joined { nick });
                }
                if is_self && created_by_this_join(presence) {
                    // modman made the room by joining it: Prosody keeps a
                    // new room locked until its owner configures it.
                    tracing::info!("created room {room}; configuring it (non-anonymous, unlocked)");
                    occupants.insert(from.clone(), None);
                    return Some(RoomAction::Configure(Box::new(room_configuration(
                        config, &room,
                    ))));
                }
                let real = real_jid(presence);
                occupants.insert(from.clone(), real);
            }
        }
        None
    }

    /// Whether a question waits for its answer in `conversation`.
    fn is_waiting(&self, conversation: &str) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(conversation)
            .is_some_and(|p| p.asked.elapsed() < ANSWER_WITHIN)
    }

    /// Whether this modman answers a fleet line in `room`: it does unless
    /// a peer modman in the room (by its real JID, as the room shows it)
    /// serves a server whose name sorts first, so each modman decides
    /// alone and the room gets one answer.
    pub(super) fn coordinates(&self, config: &Config, room: &BareJid) -> bool {
        let Some(mine) = fleet::server_of(&config.component.jid) else {
            return false;
        };
        let occupants = self.occupants.lock().unwrap_or_else(|e| e.into_inner());
        !occupants
            .iter()
            .filter(|(occupant, _)| occupant.to_bare() == *room)
            .filter_map(|(_, real)| real.as_ref())
            .filter(|real| config.fleet.peers.contains(*real))
            .filter_map(fleet::server_of)
            .any(|theirs| theirs.as_str() < mine.as_str())
    }

    /// Who says `asked`: the occupant's real JID in a room (as learnt
    /// from presence), the sender's bare JID in a direct chat.
    fn speaker(&self, config: &Config, asked: &Asked) -> Speaker {
        let jid = match asked {
            Asked::Room { occupant, .. } => {
                let real = self
                    .occupants
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(*occupant)
                    .cloned()
                    .flatten();
                match real {
                    Some(jid) => jid,
                    None => return Speaker::Unknown((*occupant).clone()),
                }
            }
            Asked::Direct { sender, .. } => sender.clone(),
        };
        match Actor::admit(config, &jid) {
            Some(_) => Speaker::Admin(jid),
            None => Speaker::Other(jid),
        }
    }

    /// Who `message` would cost modman an answer for, if anyone: decided
    /// before any work is done for it, so a non-admin's flood can be
    /// dropped unread (see [`super::budget`]).
    pub fn caller(&self, config: &Config, message: &Message) -> Caller {
        let Some(asked) = asked(config, message) else {
            return Caller::Unanswered;
        };
        let room = match &asked {
            Asked::Room {
                addressed: false, ..
            } => None,
            Asked::Room { room, .. } => Some(Some(room.clone())),
            Asked::Direct { .. } => Some(None),
        };
        match (self.speaker(config, &asked), room) {
            (Speaker::Admin(_), _) => Caller::Admin,
            // A bare "yes" from anyone but an admin is room talk.
            (_, None) => Caller::Unanswered,
            (Speaker::Other(jid), Some(room)) => Caller::Other {
                sender: Jid::from(jid),
                room,
            },
            (Speaker::Unknown(occupant), Some(room)) => Caller::Other {
                sender: occupant,
                room,
            },
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
            if !self.coordinates(config, room) {
                return None;
            }
        }
        let said: Said = match (&asked, self.speaker(config, &asked)) {
            (Asked::Direct { sender, text }, _) => self.reply(ctx, link, AskedIn::Private, sender.as_str(), sender, text).await,
            (Asked::Room { addressed: false, .. }, Speaker::Unknown(_) | Speaker::Other(_)) => return None,
            (Asked::Room { .. }, Speaker::Unknown(_)) => "I cannot tell who you are: I have not seen your real JID in this room since I joined it, and a nick proves nothing. Make the room non-anonymous, or talk to me in a direct chat.".to_owned().into(),
            // Said to the whole room: a semi-anonymous room shows real
            // JIDs only to moderators, so this never names one.
            (Asked::Room { .. }, Speaker::Other(_)) => "you are not a modman admin, so I run nothing for you. The server's admin can add your JID to `admins` in modman.toml.".to_owned().into(),
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

/// Who says a command, as far as modman can tell.
enum Speaker {
    /// An admin, by real bare JID.
    Admin(BareJid),
    /// Someone else, by real bare JID.
    Other(BareJid),
    /// A room occupant whose real JID modman has not seen, by occupant JID.
    Unknown(Jid),
}

/// The occupant's real bare JID the room tells in a presence, read from
/// the raw `<item jid=.../>`: xmpp-parsers wants a full JID there, and
/// refuses the bare one a room gives for a component occupant (a peer
/// modman), so [`MucUser`] would lose it.
fn real_jid(presence: &Presence) -> Option<BareJid> {
    presence
        .payloads
        .iter()
        .filter(|p| p.is("x", "http://jabber.org/protocol/muc#user"))
        .flat_map(|x| x.children())
        .filter(|child| child.name() == "item")
        .find_map(|item| item.attr("jid")?.parse::<Jid>().ok())
        .map(|jid| jid.to_bare())
}

/// The defined condition of a presence error (`forbidden`, `conflict`,
/// ...), by its element's name, which is stable whatever the text.
fn error_condition(presence: &Presence) -> Option<String> {
    const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
    presence
        .payloads
        .iter()
        .find(|p| p.name() == "error")?
        .children()
        .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

/// Whether a self-presence says the join created the room (status 201).
/// Read from the raw element: xmpp-parsers refuses the `<x/>` Prosody
/// sends to a new room's owner, so [`MucUser`] cannot be relied on here.
fn created_by_this_join(presence: &Presence) -> bool {
    presence
        .payloads
        .iter()
        .filter(|p| p.is("x", "http://jabber.org/protocol/muc#user"))
        .flat_map(|x| x.children())
        .any(|child| child.name() == "status" && child.attr("code") == Some("201"))
}

/// What modman does about a presence from one of its rooms.
pub enum RoomAction {
    /// It was kicked or its join failed: join again (after a pause).
    Rejoin(Presence),
    /// Its join created the room: submit this configuration at once.
    Configure(Box<xmpp_parsers::iq::Iq>),
}

/// The owner's configuration of a room modman created: non-anonymous (so
/// modman can tell who speaks, and refuse others by real JID), persistent,
/// and submitted, which unlocks it for everyone else.
fn room_configuration(config: &Config, room: &BareJid) -> xmpp_parsers::iq::Iq {
    use minidom::Element;
    const NS_DATA: &str = "jabber:x:data";
    let field = |var: &str, value: &str| {
        Element::builder("field", NS_DATA)
            .attr(super::name("var"), var)
            .append(Element::builder("value", NS_DATA).append(value).build())
            .build()
    };
    let form = Element::builder("x", NS_DATA)
        .attr(super::name("type"), "submit")
        .append(field(
            "FORM_TYPE",
            "http://jabber.org/protocol/muc#roomconfig",
        ))
        .append(field("muc#roomconfig_whois", "anyone"))
        .append(field("muc#roomconfig_persistentroom", "1"))
        .build();
    let query = Element::builder("query", "http://jabber.org/protocol/muc#owner")
        .append(form)
        .build();
    xmpp_parsers::iq::Iq::Set {
        from: Some(Jid::from(config.component.jid.clone())),
        to: Some(Jid::from(room.clone())),
        id: "modman-room-configuration".into(),
        payload: query,
    }
}

/// A message that is a command for modman: who sent it, where, and the
/// command's text.
enum Asked<'a> {
    /// Addressed to modman's nick in one of its rooms, or (not
    /// `addressed`) a bare yes or no there, which answers its sender's
    /// question if one waits.
    Room {
        room: BareJid,
        nick: &'a str,
        occupant: &'a Jid,
        text: &'a str,
        addressed: bool,
        /// Addressed to several servers of the fleet (`fleet: ...`): one
        /// modman in the room answers for all.
        for_fleet: bool,
    },
    /// A direct chat with the component.
    Direct { sender: BareJid, text: &'a str },
}

/// Whether `message` is a command at all. Errors, headlines, messages
/// without a body, room talk not addressed to modman, history (delayed)
/// and modman's own messages are not, and get no answer of any kind.
fn asked<'a>(config: &Config, message: &'a Message) -> Option<Asked<'a>> {
    let from = message.from.as_ref()?;
    let (_, body) = message.get_best_body(vec!["en", ""])?;
    match message.type_ {
        MessageType::Error | MessageType::Headline => None,
        MessageType::Groupchat => {
            let room = from.to_bare();
            let nick = from.resource()?.as_str();
            let delayed = message
                .payloads
                .iter()
                .any(|p| p.is("delay", xmpp_parsers::ns::DELAY));
            if !config.chat.rooms.contains(&room) || nick == config.chat.nick || delayed {
                return None;
            }
            let for_fleet = fleet::chat::for_the_room(config, body);
            let (text, addressed) = match addressed_to(body, &config.chat.nick) {
                _ if for_fleet => (body.trim(), true),
                Some(text) => (text, true),
                None if is_bare_answer(body) => (body.trim(), false),
                None => return None,
            };
            Some(Asked::Room {
                room,
                nick,
                occupant: from,
                text,
                addressed,
                for_fleet,
            })
        }
        MessageType::Chat | MessageType::Normal => {
            let sender = from.to_bare();
            (sender.domain() != config.component.jid.domain())
                .then_some(Asked::Direct { sender, text: body })
        }
    }
}

/// `text` as the answer to `message`: in the room, addressed to the nick;
/// or in the same direct chat and thread.
fn answer(asked: &Asked, message: &Message, text: String) -> Message {
    let reply = match asked {
        Asked::Room { room, nick, .. } => Message::groupchat(Jid::from(room.clone()))
            .with_body(Default::default(), format!("{nick}: {text}")),
        Asked::Direct { .. } => {
            let mut reply = Message::chat(message.from.clone()).with_body(Default::default(), text);
            reply.thread = message.thread.clone();
            reply
        }
    };
    addressed_from(reply, message)
}

/// The answer to a command modman will not run now (busy, or stopping),
/// saying why; none for a room message not addressed to modman.
pub fn refusal(config: &Config, message: &Message, why: Refused) -> Option<Message> {
    let asked = asked(config, message)?;
    if matches!(
        asked,
        Asked::Room {
            addressed: false,
            ..
        }
    ) {
        return None;
    }
    let text = match why {
        Refused::Busy => "Busy: modman is handling many requests; send this again in a moment.",
        Refused::Stopping => super::shutdown::REFUSAL,
        Refused::Reloading => super::shutdown::RELOAD_REFUSAL,
    };
    Some(answer(&asked, message, text.to_owned()))
}

/// The text after `nick:`, `nick,` or `nick ` (any case), if addressed.
fn addressed_to<'a>(body: &'a str, nick: &str) -> Option<&'a str> {
    let body = body.trim_start();
    let head = body.get(..nick.len())?;
    if !head.eq_ignore_ascii_case(nick) {
        return None;
    }
    let rest = &body[nick.len()..];
    let rest = rest
        .strip_prefix([':', ','])
        .or_else(|| rest.starts_with(char::is_whitespace).then_some(rest))?;
    Some(rest.trim())
}

/// A lone `yes` or `no` (or `y`, `n`), nothing else on the line.
fn is_bare_answer(body: &str) -> bool {
    body.split_whitespace().count() == 1 && matches!(parse_line(body), Ok(Line::Answer(_)))
}

/// A reply comes from the address the message was sent to.
fn addressed_from(mut reply: Message, request: &Message) -> Message {
    reply.from = request.to.clone();
    reply
}

/// The presence that joins `room` as the configured nick, without history.
/// modman's presence leaving `room`, at a stop.
pub fn leave(config: &Config, room: &BareJid) -> Presence {
    Presence::unavailable()
        .with_from(Jid::from(config.component.jid.clone()))
        .with_to(occupant(config, room))
}

/// modman's occupant JID in `room`.
fn occupant(config: &Config, room: &BareJid) -> Jid {
    format!("{room}/{}", config.chat.nick)
        .parse()
        .unwrap_or_else(|_| Jid::from(room.clone()))
}

fn join(config: &Config, room: &BareJid) -> Presence {
    let occupant = occupant(config, room);
    let muc = Muc {
        password: None,
        history: Some(History::new().with_maxstanzas(0)),
    };
    Presence::available()
        .with_from(Jid::from(config.component.jid.clone()))
        .with_to(occupant)
        .with_payloads(vec![muc.into()])
}

fn help() -> String {
    let lines: Vec<String> = ops::all()
        .iter()
        .map(|op| format!("{} - {}", usage(*op), op.spec().name))
        .collect();
    format!(
        "Commands:\n{}\nModule names may be written with or without mod_. Put {PLAN} before a command that changes things to see what it would do, with nothing changed (plan update all). When I ask a question, answer yes or no.",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str) -> (&'static str, Vec<(&'static str, Vec<String>)>) {
        match parse_line(text).unwrap() {
            Line::Command { op, raw } => (op.spec().node, raw),
            _ => panic!("{text}: not a command"),
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_the_lines_admins_type() {
        assert_eq!(command("list"), ("list", vec![]));
        assert_eq!(
            command("list updates"),
            ("list", vec![("show", v(&["updates"]))])
        );
        assert_eq!(
            command("list installed smacks"),
            (
                "list",
                vec![("show", v(&["installed"])), ("query", v(&["smacks"]))]
            )
        );
        assert_eq!(
            command("list push notifications"),
            ("list", vec![("query", v(&["push notifications"]))])
        );
        assert_eq!(
            command("info mod_cloud_notify"),
            ("info", vec![("module", v(&["mod_cloud_notify"]))])
        );
        assert_eq!(
            command("install cloud_notify smacks on example.org"),
            (
                "install",
                vec![
                    ("enable", v(&["true"])),
                    ("modules", v(&["cloud_notify", "smacks"])),
                    ("hosts", v(&["example.org"]))
                ]
            )
        );
        assert_eq!(
            command("Install x enable"),
            (
                "install",
                vec![("enable", v(&["true"])), ("modules", v(&["x"]))]
            )
        );
        assert_eq!(command("update all"), ("update", vec![]));
        assert_eq!(
            command("plan update all"),
            ("update", vec![(DRY_RUN_FIELD, v(&["true"]))])
        );
        assert!(parse_line("plan list").is_err());
        // The reason is the rest of the line, `on` and flag names too.
        assert_eq!(
            command("hold mod_lastlog because \"breaks on our LDAP\""),
            (
                "hold",
                vec![
                    ("because", v(&["\"breaks on our LDAP\""])),
                    ("modules", v(&["mod_lastlog"]))
                ]
            )
        );
        assert!(parse_line("plan").is_err());
        assert_eq!(
            command("enable x on a.org b.org"),
            (
                "enable",
                vec![("modules", v(&["x"])), ("hosts", v(&["a.org", "b.org"]))]
            )
        );
        assert!(matches!(parse_line("YES"), Ok(Line::Answer(true))));
        assert!(matches!(parse_line("n"), Ok(Line::Answer(false))));
        assert!(matches!(parse_line("  "), Ok(Line::Help)));
    }

    #[test]
    fn says_what_it_did_not_understand() {
        let unknown = parse_line("frobnicate x").unwrap_err();
        assert!(
            unknown.starts_with("I do not know `frobnicate`"),
            "{unknown}"
        );
        let hosts = parse_line("remove x on example.org").unwrap_err();
        assert!(
            hosts.starts_with("`remove` takes no hosts. Usage: remove MODULE..."),
            "{hosts}"
        );
        let extra = parse_line("refresh now please").unwrap_err();
        assert!(
            extra.contains("I did not understand `now please`"),
            "{extra}"
        );
    }

    #[test]
    fn a_peer_modmans_real_jid_is_read_though_it_is_a_bare_domain() {
        let presence = |jid: &str| -> Presence {
            let xml = format!(
                "<presence xmlns='jabber:component:accept' from='ops@conference.a.test/b.test' to='modman.c.test'>\
                 <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' {jid} role='participant'/></x></presence>"
            );
            xml.parse::<minidom::Element>().unwrap().try_into().unwrap()
        };
        assert_eq!(
            real_jid(&presence("jid='modman.b.test'")).map(|j| j.to_string()),
            Some("modman.b.test".to_owned())
        );
        assert_eq!(
            real_jid(&presence("jid='admin@b.test/phone'")).map(|j| j.to_string()),
            Some("admin@b.test".to_owned())
        );
        assert_eq!(real_jid(&presence("")), None);
    }

    #[test]
    fn only_lines_addressed_to_the_nick_count() {
        assert_eq!(addressed_to("modman: list", "modman"), Some("list"));
        assert_eq!(
            addressed_to("ModMan, install x", "modman"),
            Some("install x")
        );
        assert_eq!(addressed_to("modman list", "modman"), Some("list"));
        assert_eq!(addressed_to("modmanager: list", "modman"), None);
        assert_eq!(addressed_to("hey modman: list", "modman"), None);
        assert_eq!(addressed_to("mo", "modman"), None);
    }

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

    #[test]
    fn only_commands_get_answers_even_when_busy() {
        let toml = include_str!("../../modman.example.toml")
            .replace("rooms = []", "rooms = [\"ops@conference.example.org\"]");
        let config = Config::parse(&toml, std::path::Path::new("/etc/modman")).unwrap();
        let message =
            |xml: &str| Message::try_from(xml.parse::<minidom::Element>().unwrap()).unwrap();
        let room = "<message xmlns='jabber:component:accept' type='groupchat' from='ops@conference.example.org/alice' to='modman.example.org'>";
        let answered = [
            format!("{room}<body>modman: list</body></message>"),
            "<message xmlns='jabber:component:accept' type='chat' from='admin@example.org/x' to='modman.example.org'><body>list</body></message>".to_owned(),
        ];
        for xml in answered {
            for why in [Refused::Busy, Refused::Stopping, Refused::Reloading] {
                assert!(refusal(&config, &message(&xml), why).is_some(), "{xml}");
            }
        }
        let ignored = [
            format!("{room}<body>modman: list</body><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>"),
            format!("{room}<body>lunch?</body></message>"),
            "<message xmlns='jabber:component:accept' type='groupchat' from='ops@conference.example.org/modman' to='modman.example.org'><body>modman: x</body></message>".to_owned(),
            "<message xmlns='jabber:component:accept' type='chat' from='modman.example.org' to='modman.example.org'><body>list</body></message>".to_owned(),
            "<message xmlns='jabber:component:accept' type='error' from='admin@example.org/x' to='modman.example.org'><body>list</body></message>".to_owned(),
        ];
        for xml in ignored {
            for why in [Refused::Busy, Refused::Stopping, Refused::Reloading] {
                assert!(refusal(&config, &message(&xml), why).is_none(), "{xml}");
            }
        }
    }

    #[test]
    fn who_a_message_costs_is_decided_before_any_work() {
        let toml = include_str!("../../modman.example.toml")
            .replace("rooms = []", "rooms = [\"ops@conference.example.org\"]");
        let config = Config::parse(&toml, std::path::Path::new("/etc/modman")).unwrap();
        let chat = Chat::default();
        let message =
            |xml: &str| Message::try_from(xml.parse::<minidom::Element>().unwrap()).unwrap();
        let caller = |xml: &str| chat.caller(&config, &message(xml));
        let direct = |from: &str, body: &str| {
            format!("<message xmlns='jabber:component:accept' type='chat' from='{from}' to='modman.example.org'><body>{body}</body></message>")
        };
        let room = |nick: &str, body: &str| {
            format!("<message xmlns='jabber:component:accept' type='groupchat' from='ops@conference.example.org/{nick}' to='modman.example.org'><body>{body}</body></message>")
        };
        let admin = config.admins.iter().next().unwrap().to_string();
        assert_eq!(
            caller(&direct(&format!("{admin}/phone"), "list")),
            Caller::Admin
        );
        assert_eq!(
            caller(&direct("mallory@evil.example/x", "list")),
            Caller::Other {
                sender: "mallory@evil.example".parse().unwrap(),
                room: None
            }
        );
        // In a room, by real JID once known; by occupant JID until then.
        let occupant: Jid = "ops@conference.example.org/m".parse().unwrap();
        assert_eq!(
            caller(&room("m", "modman: list")),
            Caller::Other {
                sender: occupant.clone(),
                room: Some("ops@conference.example.org".parse().unwrap())
            }
        );
        chat.occupants
            .lock()
            .unwrap()
            .insert(occupant, Some(admin.parse().unwrap()));
        assert_eq!(caller(&room("m", "modman: list")), Caller::Admin);
        // What gets no answer costs nothing.
        assert_eq!(caller(&room("x", "lunch?")), Caller::Unanswered);
        assert_eq!(caller(&room("x", "yes")), Caller::Unanswered);
        assert_eq!(
            caller("<message xmlns='jabber:component:accept' type='chat' from='mallory@evil.example/x' to='modman.example.org'/>"),
            Caller::Unanswered
        );
    }

    #[test]
    fn usage_comes_from_the_declared_parameters() {
        assert_eq!(
            usage(ops::find("install").unwrap()),
            "install MODULE[@VERSION]... [enable] [on HOST...]"
        );
        assert_eq!(
            usage(ops::find("list").unwrap()),
            "list [all|installed|available|updates] [QUERY]"
        );
        assert_eq!(
            usage(ops::find("hold").unwrap()),
            "hold MODULE... [because \"...\"]"
        );
    }
}
