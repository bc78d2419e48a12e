//! The XEP-0050 `<command/>` element, typed. xmpp-parsers 0.23 has no
//! module for it, so requests are parsed here once and replies built here
//! once; the rest of modman never touches the raw element.

use minidom::Element;

/// `http://jabber.org/protocol/commands`
pub const NS: &str = "http://jabber.org/protocol/commands";
/// `jabber:x:data`
pub const NS_DATA: &str = "jabber:x:data";

/// The action a requester asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Execute,
    Next,
    Prev,
    Complete,
    Cancel,
}

impl Action {
    fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "execute" => Action::Execute,
            "next" => Action::Next,
            "prev" => Action::Prev,
            "complete" => Action::Complete,
            "cancel" => Action::Cancel,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Execute => "execute",
            Action::Next => "next",
            Action::Prev => "prev",
            Action::Complete => "complete",
            Action::Cancel => "cancel",
        }
    }
}

/// A parsed `<command/>` request.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    pub node: String,
    pub session_id: Option<String>,
    pub action: Action,
    /// The `jabber:x:data` child, if any, not yet interpreted.
    pub form: Option<Element>,
}

/// Why a `<command/>` could not be read, mapped to XEP-0050's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the command has no node attribute")]
    MissingNode,
    #[error("unknown action `{0}`; use execute, next, prev, complete or cancel")]
    MalformedAction(String),
}

impl TryFrom<&Element> for CommandRequest {
    type Error = RequestError;

    fn try_from(element: &Element) -> Result<Self, RequestError> {
        let node = element
            .attr("node")
            .filter(|n| !n.is_empty())
            .ok_or(RequestError::MissingNode)?
            .to_owned();
        let action = match element.attr("action") {
            None => Action::Execute,
            Some(text) => Action::parse(text)
                .ok_or_else(|| RequestError::MalformedAction(text.chars().take(32).collect()))?,
        };
        Ok(CommandRequest {
            node,
            session_id: element.attr("sessionid").map(str::to_owned),
            action,
            form: element.get_child("x", NS_DATA).cloned(),
        })
    }
}

/// The state a reply announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Executing,
    Completed,
    Canceled,
}

/// The most characters a note may have: one line of Gajim 2's ad-hoc
/// window. That window opens 600 px wide (`set_default_size(600, ...)`)
/// and its notes are labels across it less the dialog margins, some
/// 550 px; Gajim's default interface font (11 pt at 96 dpi) averages
/// under 8 px a character in prose, so about 70 characters fit. A longer
/// note wraps, and Gajim 2 then reserves height as if each character were
/// a line (seen: a 400-character note made the window 4,455 px tall,
/// pushing the fields and buttons off-screen).
pub const NOTE_WIDTH: usize = 70;

/// What a note says of the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    Info,
    /// The command failed; its form says what and what state things are
    /// in.
    Error,
}

/// A note: one line of at most [`NOTE_WIDTH`] characters, the outcome.
/// Anything longer is cut here, at a word, so whoever makes a note puts
/// the whole text in a field as well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    text: String,
}

impl Note {
    pub fn info(text: &str) -> Note {
        Note::new(NoteKind::Info, text)
    }

    pub fn error(text: &str) -> Note {
        Note::new(NoteKind::Error, text)
    }

    fn new(kind: NoteKind, text: &str) -> Note {
        Note {
            kind,
            text: one_line(text),
        }
    }

    /// The note as shown.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `text` is wholly in a note, so nothing needs repeating
    /// elsewhere.
    pub fn holds(text: &str) -> bool {
        one_line(text) == text.trim()
    }
}

/// The first line of `text`, cut at a word with an ellipsis if it is
/// longer than [`NOTE_WIDTH`].
fn one_line(text: &str) -> String {
    let first = text.trim().lines().next().unwrap_or_default().trim();
    if first.chars().count() <= NOTE_WIDTH {
        return first.to_owned();
    }
    let room: String = first.chars().take(NOTE_WIDTH - 1).collect();
    let cut = match room.rfind(' ') {
        Some(space) if space > NOTE_WIDTH / 2 => &room[..space],
        _ => room.as_str(),
    };
    format!("{}…", cut.trim_end_matches([' ', ',', ';', ':', '.']))
}

/// A `<command/>` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandReply {
    pub node: String,
    pub session_id: String,
    pub status: Status,
    /// Allowed actions while executing; the first is the default
    /// (`execute` attribute).
    pub actions: Vec<Action>,
    /// Notes shown with the reply, each one short line.
    pub notes: Vec<Note>,
    pub form: Option<Element>,
}

impl From<CommandReply> for Element {
    fn from(reply: CommandReply) -> Element {
        let status = match reply.status {
            Status::Executing => "executing",
            Status::Completed => "completed",
            Status::Canceled => "canceled",
        };
        let mut command = Element::builder("command", NS)
            .attr(super::name("node"), reply.node)
            .attr(super::name("sessionid"), reply.session_id)
            .attr(super::name("status"), status)
            .build();
        if let Some(default) = reply.actions.first() {
            let mut actions = Element::builder("actions", NS)
                .attr(super::name("execute"), default.as_str())
                .build();
            for action in &reply.actions {
                actions.append_child(Element::bare(action.as_str(), NS));
            }
            command.append_child(actions);
        }
        for note in reply.notes {
            let kind = match note.kind {
                NoteKind::Info => "info",
                NoteKind::Error => "error",
            };
            command.append_child(
                Element::builder("note", NS)
                    .attr(super::name("type"), kind)
                    .append(note.text)
                    .build(),
            );
        }
        if let Some(form) = reply.form {
            command.append_child(form);
        }
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<CommandRequest, RequestError> {
        CommandRequest::try_from(&xml.parse::<Element>().unwrap())
    }

    #[test]
    fn reads_a_request_with_a_form() {
        let request = parse(
            "<command xmlns='http://jabber.org/protocol/commands' node='list' sessionid='s1' action='complete'>\
             <x xmlns='jabber:x:data' type='submit'/></command>",
        )
        .unwrap();
        assert_eq!(request.node, "list");
        assert_eq!(request.session_id.as_deref(), Some("s1"));
        assert_eq!(request.action, Action::Complete);
        assert!(request.form.is_some());
    }

    #[test]
    fn action_defaults_to_execute_and_bad_ones_are_named() {
        let ok =
            parse("<command xmlns='http://jabber.org/protocol/commands' node='list'/>").unwrap();
        assert_eq!(ok.action, Action::Execute);
        assert_eq!(
            parse(
                "<command xmlns='http://jabber.org/protocol/commands' node='list' action='jump'/>"
            ),
            Err(RequestError::MalformedAction("jump".into()))
        );
        assert_eq!(
            parse("<command xmlns='http://jabber.org/protocol/commands'/>"),
            Err(RequestError::MissingNode)
        );
    }

    #[test]
    fn reply_has_actions_with_default_and_notes() {
        let element: Element = CommandReply {
            node: "list".into(),
            session_id: "s1".into(),
            status: Status::Executing,
            actions: vec![Action::Complete, Action::Prev],
            notes: vec![Note::info("hello")],
            form: None,
        }
        .into();
        assert_eq!(element.attr("status"), Some("executing"));
        let actions = element.get_child("actions", NS).unwrap();
        assert_eq!(actions.attr("execute"), Some("complete"));
        assert!(actions.has_child("prev", NS));
        assert_eq!(element.get_child("note", NS).unwrap().text(), "hello");
    }

    #[test]
    fn a_note_is_one_short_line() {
        let long = "Installed csi_battery_saver 0.1 and track_muc_joins 0.2 on localhost. \
                    Enabled and loaded on localhost.\nMore.";
        let note = Note::error(long);
        assert!(note.text().chars().count() <= NOTE_WIDTH, "{}", note.text());
        assert!(!note.text().contains('\n'));
        assert!(
            note.text().starts_with("Installed csi_battery_saver 0.1")
                && note.text().ends_with('…')
        );
        assert!(!Note::holds(long));
        assert!(Note::holds("Done."));
        assert_eq!(
            Note::info(&"x".repeat(200)).text().chars().count(),
            NOTE_WIDTH
        );
    }
}
