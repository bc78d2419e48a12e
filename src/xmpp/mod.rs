//! How XMPP carries modman: the component connection, discovery, and the
//! two front ends, ad-hoc commands and chat (`chat/`: direct chats and
//! MUC rooms). Typed parsing of stanzas (`command`, `forms`) is kept apart
//! from the transport (`stream`, within the bounds of `limits`) and the
//! dispatch (`component/`).

pub mod adhoc;
pub mod advisory_notices;
pub mod budget;
pub mod chat;
pub mod clients;
pub mod command;
pub mod component;
pub mod disco;
pub mod fleet;
pub mod forms;
pub mod limits;
pub mod notices;
pub mod parser;
pub mod probe;
pub mod reload;
pub mod shutdown;
pub mod stream;

use minidom::rxml::NcName;

/// An attribute name for minidom's builder. Only called with literals,
/// which are all valid XML names.
fn name(text: &'static str) -> NcName {
    NcName::try_from(text).unwrap_or_else(|_| unreachable!("`{text}` is a valid XML name"))
}
