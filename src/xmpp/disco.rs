//! Service discovery (XEP-0030) and software version (XEP-0092): what a
//! client sees before running anything. The command list is filtered by
//! the requester's rights, so a non-admin sees no commands at all.

use std::collections::BTreeSet;

use minidom::Element;
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::ns;
use xmpp_parsers::version::VersionResult;

use super::command::{NS as NS_COMMANDS, NS_DATA};
use crate::ops;

/// Why a disco request gets an error instead of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoError {
    /// The node does not exist.
    UnknownNode,
    /// The node is a command the requester may not run.
    Forbidden,
}

/// disco#info on the component itself, on the command list, or on one
/// command node.
pub fn info(node: Option<&str>, is_admin: bool) -> Result<Element, DiscoError> {
    let (identity, features): (Identity, &[&str]) = match node {
        None => (
            Identity::new(
                "component",
                "generic",
                "en",
                "modman (Prosody module manager)",
            ),
            &[
                ns::DISCO_INFO,
                ns::DISCO_ITEMS,
                NS_COMMANDS,
                ns::VERSION,
                ns::PING,
            ],
        ),
        Some(NS_COMMANDS) => (
            Identity::new("automation", "command-list", "en", "Commands"),
            &[ns::DISCO_ITEMS],
        ),
        Some(node) => {
            let op = ops::find(node).ok_or(DiscoError::UnknownNode)?;
            if !is_admin {
                return Err(DiscoError::Forbidden);
            }
            (
                Identity::new("automation", "command-node", "en", op.spec().name),
                &[NS_COMMANDS, NS_DATA],
            )
        }
    };
    Ok(DiscoInfoResult {
        node: node.map(str::to_owned),
        identities: vec![identity],
        features: features
            .iter()
            .map(|f| f.to_string())
            .collect::<BTreeSet<_>>(),
        extensions: vec![],
    }
    .into())
}

/// disco#items: the commands `is_admin` allows on the command node,
/// nothing elsewhere.
pub fn items(
    component: &BareJid,
    node: Option<&str>,
    is_admin: bool,
) -> Result<Element, DiscoError> {
    let items = match node {
        None => vec![],
        Some(NS_COMMANDS) if is_admin => ops::all()
            .iter()
            .map(|op| Item {
                jid: Jid::from(component.clone()),
                node: Some(op.spec().node.to_owned()),
                name: Some(op.spec().name.to_owned()),
            })
            .collect(),
        Some(NS_COMMANDS) => vec![],
        Some(_) => return Err(DiscoError::UnknownNode),
    };
    Ok(DiscoItemsResult {
        node: node.map(str::to_owned),
        items,
        rsm: None,
    }
    .into())
}

/// The software version reply.
pub fn version() -> Element {
    VersionResult {
        name: "modman".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        os: None,
    }
    .into()
}
