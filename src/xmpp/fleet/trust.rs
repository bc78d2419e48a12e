//! Who may ask this modman, on behalf of whom. Trust stays per server: a
//! peer's relayed request names the admin who asked, and is accepted only
//! from a modman listed in this server's `[fleet] peers` (its JID stamped
//! by Prosody after s2s authenticated the link) and only for an admin in
//! this server's own `admins`. Configuring one server can never make
//! anyone an admin of another.

use minidom::Element;
use xmpp_parsers::jid::BareJid;

use crate::access::Actor;
use crate::config::Config;

/// The namespace of modman's fleet extension.
pub const NS: &str = "urn:modman:fleet:0";

/// The child of a relayed `<command/>` naming the admin who asked:
/// `<relayed xmlns='urn:modman:fleet:0' admin='alice@a.example.org'/>`.
pub const RELAYED: &str = "relayed";

/// What the gate decided for one command request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// An admin of this server asked.
    Direct(Actor),
    /// A configured peer relayed the request of an admin of this server.
    Relayed(Actor),
}

impl Admission {
    /// Who acts.
    pub fn actor(&self) -> &Actor {
        match self {
            Admission::Direct(actor) | Admission::Relayed(actor) => actor,
        }
    }
}

/// Why a command request was refused: each is `forbidden`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} is not a modman admin of this server; only the JIDs in `admins` of its modman.toml may run commands")]
    NotAdmin(BareJid),
    #[error("{0} relayed a request but is not one of this server's `[fleet] peers`; nothing was run. Add it there to accept its requests")]
    NotAPeer(BareJid),
    #[error("{peer} relayed a request of {admin}, who is not an admin of this server; nothing was run. Each server trusts only its own `admins`")]
    NotOurAdmin { peer: BareJid, admin: BareJid },
    #[error("{0} relayed a request without a valid admin JID; nothing was run")]
    Unnamed(BareJid),
}

/// The gate for a `<command/>` from `from` (its bare JID as Prosody
/// stamped it).
pub fn admit(config: &Config, from: &BareJid, command: &Element) -> Result<Admission, Refusal> {
    let Some(relayed) = command.get_child(RELAYED, NS) else {
        return Actor::admit(config, from)
            .map(Admission::Direct)
            .ok_or_else(|| Refusal::NotAdmin(from.clone()));
    };
    if !config.fleet.peers.contains(from) {
        return Err(Refusal::NotAPeer(from.clone()));
    }
    let admin: BareJid = relayed
        .attr("admin")
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Refusal::Unnamed(from.clone()))?;
    Actor::admit(config, &admin)
        .map(Admission::Relayed)
        .ok_or(Refusal::NotOurAdmin {
            peer: from.clone(),
            admin,
        })
}

/// The marker a relayed request carries for `admin`.
pub fn relayed_for(admin: &BareJid) -> Element {
    Element::builder(RELAYED, NS)
        .attr(super::super::name("admin"), admin.to_string())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            r#"
admins = ["alice@b.example.org"]
state_dir = "/tmp/modman-trust-test"
[component]
jid = "modman.b.example.org"
server = "127.0.0.1:5347"
secret = "s"
[prosody]
config = "/etc/prosody/prosody.cfg.lua"
modules_dir = "/tmp/m"
managed_config = "/tmp/m.cfg.lua"
admin_socket = "/tmp/prosody.sock"
[fleet]
peers = ["modman.a.example.org"]
"#,
            std::path::Path::new("/"),
        )
        .unwrap()
    }

    fn command(relayed: Option<&str>) -> Element {
        let mut command = Element::builder("command", crate::xmpp::command::NS)
            .attr(crate::xmpp::name("node"), "list")
            .build();
        if let Some(admin) = relayed {
            command.append_child(relayed_for(&admin.parse().unwrap()));
        }
        command
    }

    fn jid(text: &str) -> BareJid {
        text.parse().unwrap()
    }

    #[test]
    fn a_listed_peer_relays_for_this_servers_own_admin_only() {
        let config = config();
        let peer = jid("modman.a.example.org");
        assert_eq!(
            admit(&config, &peer, &command(Some("alice@b.example.org")))
                .unwrap()
                .actor()
                .jid(),
            Some(&jid("alice@b.example.org"))
        );
        assert_eq!(
            admit(&config, &peer, &command(Some("mallory@a.example.org"))),
            Err(Refusal::NotOurAdmin {
                peer: peer.clone(),
                admin: jid("mallory@a.example.org")
            })
        );
        let mut unnamed = command(None);
        unnamed.append_child(
            Element::builder(RELAYED, NS)
                .attr(crate::xmpp::name("admin"), "@@")
                .build(),
        );
        assert_eq!(admit(&config, &peer, &unnamed), Err(Refusal::Unnamed(peer)));
    }

    #[test]
    fn nobody_else_can_relay_and_a_peer_is_no_admin_itself() {
        let config = config();
        let stranger = jid("modman.c.example.org");
        assert_eq!(
            admit(&config, &stranger, &command(Some("alice@b.example.org"))),
            Err(Refusal::NotAPeer(stranger))
        );
        // An admin cannot pass a request off as relayed either.
        let admin = jid("alice@b.example.org");
        assert_eq!(
            admit(&config, &admin, &command(Some("alice@b.example.org"))),
            Err(Refusal::NotAPeer(admin.clone()))
        );
        assert!(matches!(
            admit(&config, &admin, &command(None)),
            Ok(Admission::Direct(_))
        ));
        let peer = jid("modman.a.example.org");
        assert_eq!(
            admit(&config, &peer, &command(None)),
            Err(Refusal::NotAdmin(peer))
        );
    }
}
