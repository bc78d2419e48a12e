//! `check`'s rows for a fleet: whether XMPP federation (s2s) reaches each
//! modman of `[fleet] peers`, asked of this server's Prosody through its
//! admin socket (`xmpp:ping` from this server's domain to the peer's
//! component). A pong proves what a relayed request needs: the peer's
//! name resolves, its Prosody takes our s2s link (dialback or
//! certificates) and its modman is connected there.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::stream::{self, StreamExt};
use xmpp_parsers::jid::BareJid;

use super::response::Outcome;
use super::Context;

/// Peers pinged at once: a fleet of 100 answers in a few rounds of the
/// slowest, each over its own admin socket session.
const PEERS_AT_ONCE: usize = 16;

/// Why a peer was not reached, read from Prosody's answer to the ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreached {
    /// `remote-server-not-found`: the peer's name does not resolve, or
    /// nothing takes s2s connections there.
    NotFound,
    /// No answer in time (`remote-server-timeout`, or Prosody's own).
    Timeout,
    /// `service-unavailable`: its server answers, but no modman is
    /// connected there as that component.
    NoModman,
    /// This server cannot send from its domain: it is not one of its
    /// hosts, or the peer is on this server itself.
    NoRoute,
    /// Anything else Prosody said.
    Other,
}

impl Unreached {
    /// The kind of `prosody`'s words (its error conditions are stable
    /// names, whatever the text around them).
    pub fn of(prosody: &str) -> Unreached {
        let said = prosody.to_lowercase();
        let has = |word: &str| said.contains(word);
        if has("remote-server-not-found") {
            Unreached::NotFound
        } else if has("timeout") || has("timed out") {
            Unreached::Timeout
        } else if has("service-unavailable") {
            Unreached::NoModman
        } else if has("no such local host") || has("both hosts are local") {
            Unreached::NoRoute
        } else {
            Unreached::Other
        }
    }

    /// What to do about it.
    fn fix(self, peer: &str, server: &str) -> String {
        let host = peer.split_once('.').map_or(peer, |(_, host)| host);
        match self {
            Unreached::NotFound => format!(
                "check that {peer} resolves from here (an SRV record _xmpp-server._tcp.{peer}, or an A/AAAA record), that {host}'s Prosody runs and takes s2s connections (port 5269 open), and that {peer} is a Component there"
            ),
            Unreached::Timeout => format!(
                "{host}'s Prosody did not answer in time: check that it runs, and that no firewall drops s2s (port 5269) between {server} and it"
            ),
            Unreached::NoModman => format!(
                "{host}'s Prosody answers, but no modman is connected as {peer}: start modman there (`systemctl status modman` on {host})"
            ),
            Unreached::NoRoute => format!(
                "{server} is not a host of this Prosody, or {peer} is on this server: fix [component] jid or [fleet] peers in modman.toml"
            ),
            Unreached::Other => format!(
                "see Prosody's log on {server} and on {host} for the s2s link to {peer}"
            ),
        }
    }
}

/// One row per peer: `peer <jid>`, whether s2s reaches it (with the
/// round trip) or why not and the fix. A peer out of reach is
/// [`Outcome::Unavailable`], as a repository is: modman runs without it,
/// so the check at service start accepts it and a check by hand fails.
pub async fn rows(ctx: &Context) -> Vec<(String, Outcome, String)> {
    let config = &ctx.config;
    let server = config.server_host().map(|s| s.to_string());
    let peers: Vec<String> = config.fleet.peers.iter().map(ToString::to_string).collect();
    let mut rows: Vec<(String, Outcome, String)> = stream::iter(peers)
        .map(|peer| row(ctx, server.as_deref(), peer))
        .buffer_unordered(PEERS_AT_ONCE)
        .collect()
        .await;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// The row of `peer`, pinged from `server`.
async fn row(ctx: &Context, server: Option<&str>, peer: String) -> (String, Outcome, String) {
    let check = format!("peer {peer}");
    let Some(server) = server else {
        return (check, Outcome::Failed, "not checked: the component's JID names no server to send from; fix [component] jid in modman.toml".to_owned());
    };
    let pinged = match ctx.engine.live().await {
        Ok(mut live) => {
            live.ping(server, &peer, ctx.config.fleet.answer_within)
                .await
        }
        Err(e) => Err(e),
    };
    match pinged {
        Ok(Ok(took)) => (
            check,
            Outcome::Ok,
            format!(
                "reached over s2s: a ping from {server} answered in {} ms",
                took.as_millis()
            ),
        ),
        Ok(Err(said)) => {
            let why = Unreached::of(&said);
            let said = crate::clean::one_line(&said);
            (
                check,
                Outcome::Unavailable,
                format!(
                    "not reached over s2s from {server} ({said}); fleet requests get no answer from it until this is fixed: {}",
                    why.fix(&peer, server)
                ),
            )
        }
        Err(e) => (
            check,
            Outcome::Failed,
            format!("not checked: it needs Prosody's admin socket ({e})"),
        ),
    }
}

/// Where modman stands in one room of `[chat] rooms` (the fleet's room),
/// as the room's presence answered its join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InRoom {
    /// The join was sent; the room has not answered yet.
    Asked,
    /// In the room, under `nick`.
    Joined { nick: String },
    /// The room refused the join or put modman out, with the XMPP
    /// condition it gave (`forbidden`, `registration-required`,
    /// `conflict`, `remote-server-not-found`, ...) or none (kicked, the
    /// room went away); modman is joining again.
    Out { condition: Option<String> },
}

impl InRoom {
    /// The outcome and the words of `check`'s row for `room`, with what
    /// to do when modman is not in it.
    fn row(&self, room: &BareJid, me: &str, nick: &str) -> (Outcome, String) {
        let service = room.domain();
        match self {
            InRoom::Joined { nick } => (Outcome::Ok, format!("in the room as {nick}")),
            InRoom::Asked => (
                Outcome::Unavailable,
                format!(
                    "asked to join as {nick}, and the room has not answered: check that {service} resolves and that s2s reaches its server (the peer rows say whether s2s works), then check again"
                ),
            ),
            InRoom::Out { condition } => {
                let fix = match condition.as_deref() {
                    Some("forbidden") => format!("{me} is banned there: ask an owner of {room} to lift the ban"),
                    Some("registration-required") => format!("the room is members-only: ask an owner of {room} to make {me} a member"),
                    Some("not-authorized") => format!("the room has a password: ask an owner of {room} to make {me} a member"),
                    Some("conflict") => format!("someone else uses the nick {nick} there: set another [chat] nick in modman.toml, or free that nick"),
                    Some("item-not-found") | Some("remote-server-not-found") | Some("service-unavailable") => format!("{service} does not serve rooms, or s2s does not reach it: check [chat] rooms in modman.toml and the s2s route to {service}"),
                    _ => format!("see the log of {service}'s Prosody and modman's log for why {me} is out of {room}"),
                };
                let said = condition.as_deref().map_or("put out".to_owned(), |c| format!("refused ({c})"));
                (
                    Outcome::Unavailable,
                    format!("not in the room: {said}; modman is joining again. Fleet lines there get no answer from it until this is fixed: {fix}"),
                )
            }
        }
    }
}

/// Where modman stands in each of its rooms, written by the chat front
/// end as presence arrives and read by `check`; empty in a process that
/// is not the connected component (the command line).
#[derive(Debug, Default)]
pub struct Rooms(Mutex<BTreeMap<BareJid, InRoom>>);

impl Rooms {
    /// Records where modman stands in `room` now.
    pub fn set(&self, room: &BareJid, standing: InRoom) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(room.clone(), standing);
    }

    /// Where modman stands in `room`, if this process has asked it.
    pub fn get(&self, room: &BareJid) -> Option<InRoom> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(room)
            .cloned()
    }
}

/// One row per room of `[chat] rooms`: `room <jid>`, whether modman is in
/// it (and as which nick) or why not and the fix. Out of the room is
/// [`Outcome::Unavailable`], as a peer is: modman runs without it.
pub fn room_rows(ctx: &Context) -> Vec<(String, Outcome, String)> {
    let config = &ctx.config;
    let me = config.component.jid.to_string();
    config
        .chat
        .rooms
        .iter()
        .map(|room| {
            let (outcome, text) = match ctx.rooms.get(room) {
                Some(standing) => standing.row(room, &me, &config.chat.nick),
                None => (
                    Outcome::Warning,
                    format!(
                        "not known to this process: only the running modman sees the room's answer to its join; run `check` as an ad-hoc command of {me}, or look for {} among the occupants of {room}",
                        config.chat.nick
                    ),
                ),
            };
            (format!("room {room}"), outcome, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_room_rows_say_ok_only_when_joined() {
        let room: BareJid = "ops@conference.a.test".parse().unwrap();
        let rooms = Rooms::default();
        assert_eq!(rooms.get(&room), None);
        let outcome = |standing: InRoom| standing.row(&room, "modman.b.test", "b.test").0;
        rooms.set(&room, InRoom::Asked);
        assert_eq!(rooms.get(&room), Some(InRoom::Asked));
        assert_eq!(outcome(InRoom::Asked), Outcome::Unavailable);
        let joined = InRoom::Joined {
            nick: "b.test".into(),
        };
        assert_eq!(outcome(joined), Outcome::Ok);
        for condition in [Some("forbidden"), Some("conflict"), Some("new-one"), None] {
            let out = InRoom::Out {
                condition: condition.map(str::to_owned),
            };
            assert_eq!(outcome(out), Outcome::Unavailable, "{condition:?}");
        }
    }

    #[test]
    fn prosodys_conditions_say_why_a_peer_was_not_reached() {
        for (said, why) in [
            ("error: cancel/remote-server-not-found", Unreached::NotFound),
            ("cancel/remote-server-timeout", Unreached::Timeout),
            ("request timed out", Unreached::Timeout),
            ("cancel/service-unavailable", Unreached::NoModman),
            ("No such local host", Unreached::NoRoute),
            ("something new", Unreached::Other),
        ] {
            assert_eq!(Unreached::of(said), why, "{said}");
        }
    }
}
