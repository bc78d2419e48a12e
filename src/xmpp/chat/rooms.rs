//! modman in its MUC rooms: joining and leaving, configuring a room its
//! join created, and who each occupant really is.
//!
//! Who is speaking in a room is the occupant's real JID from its
//! presence; a room that hides real JIDs cannot prove anyone is an admin,
//! and a nick proves nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::muc::user::{MucUser, Status};
use xmpp_parsers::muc::{muc::History, Muc};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use crate::config::Config;
use crate::ops::routes::{InRoom, Rooms};
use crate::xmpp::fleet;

/// Where modman stands in its rooms and who is who there.
#[derive(Default)]
pub struct Membership {
    /// Real JIDs by occupant JID (room/nick); `None` when the room hides it.
    pub(super) occupants: Mutex<HashMap<Jid, Option<BareJid>>>,
    /// Where modman stands in each room, shared with `check`.
    rooms: Arc<Rooms>,
}

impl Membership {
    /// Membership that records where modman stands in its rooms in
    /// `rooms` (the context's, which `check` reads).
    pub fn sharing(rooms: Arc<Rooms>) -> Membership {
        Membership {
            rooms,
            ..Membership::default()
        }
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

    /// Whether this modman answers a fleet line in `room`: it does unless
    /// a peer modman in the room (by its real JID, as the room shows it)
    /// serves a server whose name sorts first, so each modman decides
    /// alone and the room gets one answer.
    pub(in crate::xmpp) fn coordinates(&self, config: &Config, room: &BareJid) -> bool {
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

    /// The real JID of `occupant` as learnt from presence since modman
    /// joined its room; `None` when the room hid it or has not said.
    pub(super) fn real_jid_of(&self, occupant: &Jid) -> Option<BareJid> {
        self.occupants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(occupant)
            .cloned()
            .flatten()
    }
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
            .attr(crate::xmpp::name("var"), var)
            .append(Element::builder("value", NS_DATA).append(value).build())
            .build()
    };
    let form = Element::builder("x", NS_DATA)
        .attr(crate::xmpp::name("type"), "submit")
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

/// The presence that joins `room` as the configured nick, without history.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
