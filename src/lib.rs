//! modman: manage Prosody modules over XMPP.
//!
//! The crate is one library with one binary. Data flows one way:
//! [`xmpp`] (how requests arrive) -> [`ops`] (what a user can do) ->
//! [`engine`] (what happens on the host). [`config`] is read once at start.

pub mod access;
pub mod allocator;
pub mod clean;
pub mod clock;
pub mod config;
pub mod engine;
pub mod fsutil;
pub mod linediff;
pub mod local;
pub mod ops;
pub mod parallel;
pub mod policy;
pub mod prosody;
pub mod repo;
pub mod setup;
pub mod store;
pub mod text;
pub mod xmpp;
