//! The fleet front end: one modman per Prosody server, each deciding for
//! itself. A request that names other servers (the ad-hoc `servers` field)
//! is fanned out to their modmans as XEP-0050 commands over s2s, and their
//! answers are merged into one table of module × server. Operations stay
//! per server and never know about peers; the peers check the admin who
//! asked against their own `admins` ([`trust`]).

pub mod chat;
pub mod merge;
pub mod relay;
pub mod request;
pub mod trust;

use xmpp_parsers::jid::BareJid;

/// The ad-hoc field naming the servers a request is for: server domains
/// (`b.example.org`), or `fleet` for this server and every peer.
pub const SERVERS_FIELD: &str = "servers";

/// The value of [`SERVERS_FIELD`] that names the whole fleet.
pub const WHOLE_FLEET: &str = "fleet";

/// The Prosody host a modman serves, from its component JID: the domain
/// after the first label (`modman.b.example.org` serves `b.example.org`),
/// the same rule by which modman finds its own server.
pub fn server_of(component: &BareJid) -> Option<BareJid> {
    let (_, host) = component.domain().as_str().split_once('.')?;
    host.parse().ok()
}
