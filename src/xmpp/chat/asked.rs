//! Which messages are commands for modman, who says them, and how an
//! answer is addressed: decided before any work is done, so room talk,
//! history and errors get no answer of any kind, and a non-admin's flood
//! can be dropped unread.

use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Message, MessageType};

use super::line::{parse_line, Line};
use super::rooms::Membership;
use crate::access::Actor;
use crate::config::Config;
use crate::xmpp::budget::Caller;
use crate::xmpp::fleet;
use crate::xmpp::shutdown::{self, Refused};

/// Who says a command, as far as modman can tell.
pub(super) enum Speaker {
    /// An admin, by real bare JID.
    Admin(BareJid),
    /// Someone else, by real bare JID.
    Other(BareJid),
    /// A room occupant whose real JID modman has not seen, by occupant JID.
    Unknown(Jid),
}

/// Who says `asked`: the occupant's real JID in a room (as learnt from
/// presence), the sender's bare JID in a direct chat.
pub(super) fn speaker(config: &Config, members: &Membership, asked: &Asked) -> Speaker {
    let jid = match asked {
        Asked::Room { occupant, .. } => match members.real_jid_of(occupant) {
            Some(jid) => jid,
            None => return Speaker::Unknown((*occupant).clone()),
        },
        Asked::Direct { sender, .. } => sender.clone(),
    };
    match Actor::admit(config, &jid) {
        Some(_) => Speaker::Admin(jid),
        None => Speaker::Other(jid),
    }
}

/// Who `message` would cost modman an answer for, if anyone (see
/// [`crate::xmpp::budget`]).
pub(super) fn caller(config: &Config, members: &Membership, message: &Message) -> Caller {
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
    match (speaker(config, members, &asked), room) {
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

/// A message that is a command for modman: who sent it, where, and the
/// command's text.
pub(super) enum Asked<'a> {
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
pub(super) fn asked<'a>(config: &Config, message: &'a Message) -> Option<Asked<'a>> {
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
pub(super) fn answer(asked: &Asked, message: &Message, text: String) -> Message {
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
        Refused::Stopping => shutdown::REFUSAL,
        Refused::Reloading => shutdown::RELOAD_REFUSAL,
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn only_commands_get_answers_even_when_busy() {
        let toml = include_str!("../../../modman.example.toml")
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
        let toml = include_str!("../../../modman.example.toml")
            .replace("rooms = []", "rooms = [\"ops@conference.example.org\"]");
        let config = Config::parse(&toml, std::path::Path::new("/etc/modman")).unwrap();
        let members = Membership::default();
        let message =
            |xml: &str| Message::try_from(xml.parse::<minidom::Element>().unwrap()).unwrap();
        let caller = |xml: &str| super::caller(&config, &members, &message(xml));
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
        members
            .occupants
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
}
