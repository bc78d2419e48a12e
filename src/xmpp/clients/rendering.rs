//! What each client shows of a command's replies ([`Rendering`]),
//! decided from what the client says of itself.

use xmpp_parsers::disco::DiscoInfoResult;

use super::super::command::{CommandReply, Status};
use super::super::forms::xml::form_has_field;
use super::dialog::fits_psi_dialog;
use crate::ops::CONFIRM_FIELD;

/// XEP-0461 message replies: Gajim announces it since 1.9.0 (together
/// with reactions), so a Gajim that has it is past 1.8.2, the first to
/// draw tables well.
const NS_REPLY: &str = "urn:xmpp:reply:0";

/// How much of a result form the requester's client shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// Multi-item tables render, with a note beside them: Movim,
    /// Cheogram, and bots (slixmpp), which read the cells by column.
    Tables,
    /// Tables, with the outcome as the form's title (in lines that fit
    /// its window, as are long cells) and no `<note>` beside it: Gajim 2. Its "Completed" page packs notes above the
    /// form in a box that does not expand, and the form in a scrolled
    /// window that does; a wrapping note label reserves its height as if
    /// each character were a line, so even a one-line note leaves an
    /// empty gap and squeezes the table into a strip at the bottom. A
    /// table's title is shown as a heading above it (its instructions are
    /// not shown). Gajim 1.8.2 and later.
    TitledTables,
    /// Only single-item forms are known to render. Gajim 1.7 hangs on a
    /// table, Psi 1.5 and Profanity 0.13 show nothing of one; a client
    /// that does not say what it is gets this too.
    SingleItem,
    /// Single-item forms, and only the reply to the first `execute` is
    /// shown: Psi 1.5 closes its dialog on any later reply. What comes
    /// after a form also goes to it as a chat message.
    FirstReplyOnly,
    /// Single-item forms whose multi-line fields are hard to read:
    /// Poezio shows a `text-multi` value one line at a time, cut at the
    /// edge. Every result and question also goes to it as a chat
    /// message, which it wraps.
    WithChatCopy,
}

impl Rendering {
    /// What the client that answered XEP-0092 with `name` and `version`
    /// shows.
    pub fn of_client(name: &str, version: &str) -> Rendering {
        let name = name.trim().to_lowercase();
        match name.as_str() {
            "gajim" if version_at_least(version, &[1, 8, 2]) => Rendering::TitledTables,
            "movim" | "cheogram" | "slixmpp" => Rendering::Tables,
            "psi" => Rendering::FirstReplyOnly,
            "poezio" => Rendering::WithChatCopy,
            _ => Rendering::SingleItem,
        }
    }

    /// What a client shows, known from its disco#info answer: the name
    /// of its `client` identity, and for Gajim whether it is 1.9 or later
    /// (it announces message replies). Gajim answers disco#info to anyone,
    /// unlike XEP-0092, which it answers only to contacts it shares
    /// presence with, so this is how a Gajim that has not subscribed to
    /// modman is known. `None` when the answer names no client known here.
    pub fn of_disco(info: &DiscoInfoResult) -> Option<Rendering> {
        let name = info
            .identities
            .iter()
            .filter(|identity| identity.category == "client")
            .find_map(|identity| identity.name.as_deref())?;
        if name.trim().eq_ignore_ascii_case("gajim") {
            return Some(match info.features.contains(NS_REPLY) {
                true => Rendering::TitledTables,
                false => Rendering::SingleItem,
            });
        }
        match Rendering::of_client(name, "") {
            Rendering::SingleItem => None,
            known => Some(known),
        }
    }

    /// What a client shows known only by its XEP-0115 caps node (its
    /// home page, by convention), which names the client but not its
    /// version: Gajim 1.7 and 2 share theirs, so a Gajim known this way
    /// gets single-item forms until it tells its version.
    pub fn of_caps_node(node: &str) -> Rendering {
        let node = node.trim().trim_end_matches('/').to_lowercase();
        let host = node
            .split("://")
            .nth(1)
            .unwrap_or(&node)
            .split('/')
            .next()
            .unwrap_or_default();
        match host.trim_start_matches("www.") {
            "movim.eu" | "cheogram.com" | "slixmpp.com" => Rendering::Tables,
            "psi-im.org" | "psi-plus.com" => Rendering::FirstReplyOnly,
            "poez.io" => Rendering::WithChatCopy,
            _ => Rendering::SingleItem,
        }
    }

    /// Whether a reply also goes to the client as a chat message: after
    /// a form for Psi, and a first result that its dialog cuts or
    /// squeezes into a scrolling box; every result and question for
    /// Poezio.
    pub fn copies_to_chat(self, later_stage: bool, reply: &CommandReply) -> bool {
        match self {
            Rendering::FirstReplyOnly => {
                later_stage
                    || (reply.status == Status::Completed
                        && reply.form.as_ref().is_some_and(|f| !fits_psi_dialog(f)))
            }
            Rendering::WithChatCopy => {
                reply.status == Status::Completed
                    || reply
                        .form
                        .as_ref()
                        .is_some_and(|form| form_has_field(form, CONFIRM_FIELD))
            }
            Rendering::Tables | Rendering::TitledTables | Rendering::SingleItem => false,
        }
    }

    /// Whether a result's outcome goes in its form's title rather than
    /// in a note beside the form.
    pub fn note_in_title(self) -> bool {
        self == Rendering::TitledTables
    }
}

/// Whether the dotted `version` (`1.8.2`, `2.0.1-dev`) is `min` or later;
/// a version that does not start with a number is not.
fn version_at_least(version: &str, min: &[u32]) -> bool {
    let parts: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .map_while(|p| p.parse().ok())
        .collect();
    !parts.is_empty() && parts.as_slice() >= min
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_shows_follows_its_own_name_and_version() {
        for (name, version, expected) in [
            ("Gajim", "1.7.3", Rendering::SingleItem),
            ("Gajim", "1.8.1", Rendering::SingleItem),
            ("Gajim", "1.8.2", Rendering::TitledTables),
            ("Gajim", "2.0.1-dev", Rendering::TitledTables),
            ("Movim", "0.28", Rendering::Tables),
            ("Slixmpp", "1.8.3", Rendering::Tables),
            ("Psi", "1.5-dev (2021-08-22)", Rendering::FirstReplyOnly),
            ("Profanity", "0.13.1", Rendering::SingleItem),
            ("Gajim", "unknown", Rendering::SingleItem),
            ("Gajim", "2.1.1", Rendering::TitledTables),
            ("Poezio", "0.15.1", Rendering::WithChatCopy),
            ("", "", Rendering::SingleItem),
        ] {
            assert_eq!(
                Rendering::of_client(name, version),
                expected,
                "{name} {version}"
            );
        }
    }

    #[test]
    fn a_caps_node_names_the_client_but_not_gajims_version() {
        for (node, expected) in [
            ("https://gajim.org", Rendering::SingleItem),
            ("http://gajim.org/", Rendering::SingleItem),
            ("https://poez.io", Rendering::WithChatCopy),
            ("https://psi-im.org", Rendering::FirstReplyOnly),
            ("https://movim.eu/", Rendering::Tables),
            ("http://cheogram.com", Rendering::Tables),
            ("http://slixmpp.com/ver/1.8.3", Rendering::Tables),
            ("http://conversations.im", Rendering::SingleItem),
            ("", Rendering::SingleItem),
        ] {
            assert_eq!(Rendering::of_caps_node(node), expected, "{node}");
        }
    }

    #[test]
    fn a_disco_answer_names_the_client_and_gajims_replies_tell_1_9_from_1_7() {
        let info = |identity: &str, features: &[&str]| {
            let features: String = features
                .iter()
                .map(|var| format!("<feature var='{var}'/>"))
                .collect();
            let xml = format!(
                "<query xmlns='http://jabber.org/protocol/disco#info'>{identity}{features}</query>"
            );
            DiscoInfoResult::try_from(xml.parse::<minidom::Element>().unwrap()).unwrap()
        };
        let gajim = "<identity category='client' type='pc' name='Gajim'/>";
        for (identity, features, expected) in [
            (gajim, &[NS_REPLY][..], Some(Rendering::TitledTables)),
            (
                gajim,
                &["http://jabber.org/protocol/commands"][..],
                Some(Rendering::SingleItem),
            ),
            (
                "<identity category='client' type='console' name='Poezio'/>",
                &[][..],
                Some(Rendering::WithChatCopy),
            ),
            (
                "<identity category='client' type='pc' name='Psi'/>",
                &[][..],
                Some(Rendering::FirstReplyOnly),
            ),
            // A server, or a client named nothing known, says nothing.
            (
                "<identity category='server' type='im' name='Gajim'/>",
                &[NS_REPLY][..],
                None,
            ),
            (
                "<identity category='client' type='pc' name='Profanity'/>",
                &[][..],
                None,
            ),
            (
                "<identity category='client' type='pc'/>",
                &[NS_REPLY][..],
                None,
            ),
        ] {
            assert_eq!(
                Rendering::of_disco(&info(identity, features)),
                expected,
                "{identity}"
            );
        }
    }
}
