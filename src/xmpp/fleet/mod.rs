//! The fleet front end: one modman per Prosody server, each deciding for
//! itself. A request that names other servers (the ad-hoc `servers` field)
//! is fanned out to their modmans as XEP-0050 commands over s2s, and their
//! answers are merged into one table of module × server. Operations stay
//! per server and never know about peers; the peers check the admin who
//! asked against their own `admins` ([`trust`]).

pub mod across;
pub mod chat;
pub mod drift;
pub mod merge;
pub mod relay;
pub mod request;
pub mod rollout;
pub mod trust;

/// The ad-hoc field naming the servers a request is for: server domains
/// (`b.example.org`), or `fleet` for this server and every peer.
pub const SERVERS_FIELD: &str = "servers";

/// The value of [`SERVERS_FIELD`] that names the whole fleet.
pub const WHOLE_FLEET: &str = "fleet";

pub use crate::config::server_of;
