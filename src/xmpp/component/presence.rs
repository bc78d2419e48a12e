//! The component's own presence: what it answers a subscription or a
//! probe addressed to it.

use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use crate::access::Actor;
use crate::config::Config;

/// What modman answers a presence addressed to the component itself: a
/// subscription request is accepted and followed by modman's presence, a
/// probe gets its presence, so rosters show modman online. Room
/// presences (from an occupant) are the chat front end's.
pub(super) fn presence_answers(config: &Config, presence: &Presence) -> Vec<Presence> {
    let (Some(from), Some(to)) = (&presence.from, &presence.to) else {
        return vec![];
    };
    let to_me = to.to_bare() == config.component.jid;
    if !to_me || config.chat.rooms.contains(&from.to_bare()) {
        return vec![];
    }
    let me = Jid::from(config.component.jid.clone());
    let them = Jid::from(from.to_bare());
    let answer = |type_| {
        Presence::new(type_)
            .with_from(me.clone())
            .with_to(them.clone())
    };
    match presence.type_ {
        // Back to an admin, so their client shares its presence (and
        // caps) and answers XEP-0092, which Gajim does only then.
        PresenceType::Subscribe if Actor::admit(config, &them.to_bare()).is_some() => vec![
            answer(PresenceType::Subscribed),
            answer(PresenceType::None),
            answer(PresenceType::Subscribe),
        ],
        PresenceType::Subscribe => {
            vec![answer(PresenceType::Subscribed), answer(PresenceType::None)]
        }
        PresenceType::Probe => vec![answer(PresenceType::None)],
        PresenceType::Unsubscribe => vec![answer(PresenceType::Unsubscribed)],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(xml: &str) -> Presence {
        Presence::try_from(xml.parse::<minidom::Element>().unwrap()).unwrap()
    }

    #[test]
    fn subscriptions_and_probes_get_modmans_presence() {
        let toml = include_str!("../../../modman.example.toml")
            .replace("rooms = []", "rooms = [\"ops@conference.example.org\"]");
        let config = Config::parse(&toml, std::path::Path::new("/etc/modman")).unwrap();
        let answers = |xml: &str| -> Vec<(PresenceType, String, String)> {
            presence_answers(&config, &presence(xml))
                .into_iter()
                .map(|p| {
                    (
                        p.type_,
                        p.from.map(|j| j.to_string()).unwrap_or_default(),
                        p.to.map(|j| j.to_string()).unwrap_or_default(),
                    )
                })
                .collect()
        };
        let from_admin = |type_: &str| {
            format!("<presence xmlns='jabber:component:accept' type='{type_}' from='admin@example.org/phone' to='modman.example.org'/>")
        };
        let me = "modman.example.org".to_owned();
        let admin = "admin@example.org".to_owned();
        // An admin is subscribed to in return, so their client tells
        // modman what it is.
        assert_eq!(
            answers(&from_admin("subscribe")),
            [
                (PresenceType::Subscribed, me.clone(), admin.clone()),
                (PresenceType::None, me.clone(), admin.clone()),
                (PresenceType::Subscribe, me.clone(), admin.clone())
            ]
        );
        let stranger = "someone@example.org".to_owned();
        assert_eq!(
            answers("<presence xmlns='jabber:component:accept' type='subscribe' from='someone@example.org/x' to='modman.example.org'/>"),
            [
                (PresenceType::Subscribed, me.clone(), stranger.clone()),
                (PresenceType::None, me.clone(), stranger)
            ]
        );
        assert_eq!(
            answers(&from_admin("probe")),
            [(PresenceType::None, me.clone(), admin.clone())]
        );
        assert_eq!(
            answers(&from_admin("unsubscribe")),
            [(PresenceType::Unsubscribed, me, admin)]
        );
        // Presence that asks nothing, and room presences, get no answer.
        assert!(answers(&from_admin("unavailable")).is_empty());
        assert!(answers("<presence xmlns='jabber:component:accept' from='ops@conference.example.org/alice' to='modman.example.org'/>").is_empty());
        assert!(answers("<presence xmlns='jabber:component:accept' type='probe' from='ops@conference.example.org/alice' to='modman.example.org'/>").is_empty());
    }
}
