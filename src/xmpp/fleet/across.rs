//! Which requests go across servers ([`Across`]), and the fields that
//! name the servers in a command's parameters form.

use minidom::Element;

use super::rollout::BATCH_FIELD;
use super::{server_of, SERVERS_FIELD, WHOLE_FLEET};
use crate::ops::Context;
use crate::xmpp::forms::xml::{field_element, option_element, text_element};

/// The reading that goes across servers: its answers are merged into
/// one table of module × server.
pub const ACROSS: &str = "list";

/// The changes that go to the servers named, each server making its own
/// change whole or undoing it; only with `confirm` submitted, as no
/// question can be asked of each server.
pub const CHANGES: [&str; 3] = ["install", "update", "enable"];

/// What one request across servers is, deciding how answers merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Across {
    List,
    Change(&'static str),
}

impl Across {
    /// The kind of `node`, if it goes across servers.
    pub fn of(node: &str) -> Option<Across> {
        if node == ACROSS {
            return Some(Across::List);
        }
        CHANGES
            .iter()
            .find(|c| **c == node)
            .map(|c| Across::Change(c))
    }

    pub fn node(self) -> &'static str {
        match self {
            Across::List => ACROSS,
            Across::Change(node) => node,
        }
    }
}

/// The fleet's fields of `node`'s parameters form, when this modman has
/// peers and `node` can go across servers: the [`SERVERS_FIELD`] (as
/// ejabberd's node field picks a cluster node; left empty, the request is
/// for this server), and for a change the [`BATCH_FIELD`].
pub fn fleet_fields(ctx: &Context, node: &str) -> Vec<Element> {
    let config = &ctx.config;
    let Some(kind) = Across::of(node).filter(|_| !config.fleet.peers.is_empty()) else {
        return vec![];
    };
    let mut field = field_element(
        SERVERS_FIELD,
        "list-multi",
        "Servers (none: this server; fleet: all)",
    );
    field.append_child(option_element(WHOLE_FLEET, "the whole fleet"));
    let servers = server_of(&config.component.jid)
        .into_iter()
        .chain(config.fleet.peers.iter().filter_map(server_of));
    for server in servers {
        field.append_child(option_element(server.as_str(), server.as_str()));
    }
    let mut fields = vec![field];
    if matches!(kind, Across::Change(_)) {
        let mut batch = field_element(
            BATCH_FIELD,
            "text-single",
            "Batch size (servers changed together after the first)",
        );
        batch.append_child(text_element("value", &config.fleet.batch_size.to_string()));
        fields.push(batch);
    }
    fields
}
