//! The forms that answer: a table (multi-item for the clients that
//! render one, else one line per row), labelled details, a short
//! message, and a failure as a completed command with its facts.

use minidom::Element;

use super::xml::{append_text_field, field_element, form_element, text_element};
use crate::engine::Outcome as HostState;
use crate::ops::{Details, OpError, Outcome, Table};
use crate::xmpp::clients::rendering::Rendering;
use crate::xmpp::command::{CommandReply, Note, Status, NOTE_WIDTH, NS_DATA};
use crate::xmpp::name;

/// A failed command as a completed `result` every client shows (Poezio
/// and Profanity 0.13 show nothing of a stanza error after a form): one
/// short error note, and the facts as fields a bot reads. `outcome` is
/// `failed` (as a failed row's cell says), `condition` the stanza error
/// it would have been, `error`, `state` and `cause` (where one is known)
/// the words `--json` uses, `text` the whole account and `left` what
/// could not be undone.
pub fn failed_reply(
    node: &str,
    session_id: String,
    title: &str,
    condition: &str,
    error: &OpError,
) -> CommandReply {
    let text = error.to_string();
    let (state, left) = error.state_name();
    let mut form = form_element("result", title);
    // The stanza error condition, for bots: hidden, since beside the kind
    // it would say the same twice to a person.
    let mut hidden = field_element("condition", "hidden", "Condition");
    hidden.append_child(text_element("value", condition));
    form.append_child(hidden);
    for (var, label, value) in [
        ("outcome", "Outcome", Outcome::Failed.as_str()),
        ("text", "What failed", text.as_str()),
        ("error", "Kind", error.kind_name()),
        ("state", "State now", state),
    ]
    .into_iter()
    .chain(error.cause.map(|cause| ("cause", "Cause", cause.as_str())))
    .chain(left.map(|left| ("left", "Left as it is", left)))
    {
        // Clients show a single value on one line, cut at the window's
        // edge (Gajim 2): an account of a failure goes in short lines.
        let lines = wrap(value, NOTE_WIDTH);
        append_text_field(&mut form, var, label, lines.iter().map(String::as_str));
    }
    let note = match error.outcome {
        HostState::NothingChanged => "Failed; nothing was changed. Why is below.",
        HostState::Undone => "Failed; everything it did was undone. Why is below.",
        HostState::PartlyChanged(_) => "Failed, and not wholly undone: see what is left below.",
    };
    CommandReply {
        node: node.to_owned(),
        session_id,
        status: Status::Completed,
        actions: vec![],
        notes: vec![Note::error(note)],
        form: Some(form),
    }
}

/// The longest line of a table cell sent to Gajim 2, in characters. Its
/// ad-hoc window opens 600 px wide (`Assistant(width=600)` in
/// gtk/adhoc.py) and draws a table as a plain `Gtk.TreeView` in a
/// scrolled window: a `CellRendererText` with neither wrapping nor
/// ellipsis, so each column is as wide as its longest line and whatever
/// passes the window's edge is hidden (seen: a check's fix cut after its
/// first 60 characters). The window holds about [`NOTE_WIDTH`] characters
/// of its default font; a detail beside a short name and an outcome gets
/// 40 of them. The renderer breaks lines at newlines, so a longer text
/// goes in lines of this width, whole, in its own row.
pub const CELL_WIDTH: usize = 40;

/// A cell's text in lines of at most [`CELL_WIDTH`] characters: broken
/// between words, and a longer word (a path) in pieces, since a cell's
/// column is as wide as its longest line.
fn cell_lines(text: &str) -> Vec<String> {
    wrap(text, CELL_WIDTH)
        .into_iter()
        .flat_map(|line| {
            let chars: Vec<char> = line.chars().collect();
            match chars.len() > CELL_WIDTH {
                true => chars
                    .chunks(CELL_WIDTH)
                    .map(|piece| piece.iter().collect())
                    .collect(),
                false => vec![line],
            }
        })
        .collect()
}

/// `text` in lines of at most `width` characters, broken between words
/// (a longer word, such as a path, keeps a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// Labelled values as a `result` form, one field each; a multi-line value
/// becomes a `text-multi` field with one value per line.
pub fn details_form(details: &Details) -> Element {
    let mut form = form_element("result", &details.title);
    for (var, label, value) in &details.fields {
        append_text_field(&mut form, var, label, value.lines());
    }
    form
}

/// The label of the field holding a result's note in a single-item form.
pub const RESULT_LABEL: &str = "Result";

/// A short text as a single-item `result` form, for clients that show
/// notes apart from the form or not at all (Profanity, Psi).
pub fn message_form(title: &str, text: &str) -> Element {
    let mut form = form_element("result", title);
    append_text_field(&mut form, "note", RESULT_LABEL, text.lines());
    form
}

/// A table as a single-item `result` form every client shows: one line
/// per row (see [`crate::text::row_lines`]) in a `text-multi` field, then
/// the note.
pub fn table_text_form(table: &Table) -> Element {
    let mut form = form_element("result", &table.title);
    if !table.rows.is_empty() {
        let lines: Vec<String> = crate::text::row_lines(table);
        append_text_field(
            &mut form,
            "rows",
            &table.title,
            lines.iter().map(String::as_str),
        );
    }
    if !table.note.is_empty() {
        append_text_field(&mut form, "note", RESULT_LABEL, table.note.lines());
    }
    form
}

/// A table as a `result` form: one `<reported/>` naming the columns, one
/// `<item/>` per row.
pub fn table_form(table: &Table) -> Element {
    let mut form = form_element("result", &table.title);
    // Top-level fields beside items are not shown by table clients; the
    // instructions are, so a note too long for one line is whole there.
    if !Note::holds(&table.note) {
        form.append_child(text_element("instructions", &table.note));
    }
    let mut reported = Element::bare("reported", NS_DATA);
    for (var, label) in &table.columns {
        reported.append_child(field_element(var, "text-single", label));
    }
    form.append_child(reported);
    for row in &table.rows {
        let mut item = Element::bare("item", NS_DATA);
        for ((var, _), cell) in table.columns.iter().zip(row) {
            let mut field = Element::builder("field", NS_DATA)
                .attr(name("var"), *var)
                .build();
            field.append_child(text_element("value", cell));
            item.append_child(field);
        }
        form.append_child(item);
    }
    form
}

/// A table as the result form `rendering` shows: multi-item where
/// tables render, one line per row elsewhere.
pub fn table_result(table: &Table, rendering: Rendering) -> Element {
    match rendering {
        Rendering::Tables => table_form(table),
        Rendering::TitledTables => {
            let mut narrow = table.clone();
            for cell in narrow.rows.iter_mut().flatten() {
                if cell.lines().any(|line| line.chars().count() > CELL_WIDTH) {
                    *cell = cell_lines(cell).join("\n");
                }
            }
            let mut form = table_form(&narrow);
            let title = wrap(&table.note, NOTE_WIDTH).join("\n");
            if !title.is_empty() {
                if let Some(element) = form.children_mut().find(|child| child.is("title", NS_DATA))
                {
                    *element = text_element("title", &title);
                }
            }
            form
        }
        Rendering::SingleItem | Rendering::FirstReplyOnly | Rendering::WithChatCopy => {
            table_text_form(table)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Response, REPLY_BYTES};
    use crate::xmpp::forms::plain::plain_text;

    /// Bytes `form` takes written as XML.
    fn written(form: &Element) -> usize {
        let mut bytes = Vec::new();
        form.write_to(&mut bytes).unwrap();
        bytes.len()
    }

    #[test]
    fn every_rendering_of_a_fitted_response_stays_under_the_stanza_budget() {
        const STANZA: usize = 256 * 1024;
        let summary = "A summary & <its> \"quoted\" words. ".repeat(100);
        assert!(summary.len() > 3000);
        let columns = vec![
            ("module", "Module"),
            ("installed", "Installed"),
            ("available", "Available"),
            ("update", "Update"),
            ("enabled", "Enabled on"),
            ("loaded", "Loaded on"),
            ("stage", "Stage"),
            ("summary", "Summary"),
        ];
        let rows = (0..200)
            .map(|i| {
                let mut row = vec![format!("module_{i}")];
                row.extend(
                    ["1.0", "1.1", "1.1", "a.example", "a.example", "beta"].map(String::from),
                );
                row.push(summary.clone());
                row
            })
            .collect();
        let table = Table {
            title: "Modules".into(),
            columns,
            rows,
            note: "200 modules.".into(),
        };
        let Response::Table(table) = Response::Table(table).fit(REPLY_BYTES) else {
            unreachable!()
        };
        assert!(table.rows.len() < 200);
        let text_form = table_text_form(&table);
        for size in [
            written(&table_form(&table)),
            written(&text_form),
            plain_text(&text_form, false).len(),
            crate::text::render(&Response::Table(table.clone())).len(),
        ] {
            assert!(size < STANZA, "{size}");
        }

        let readme: Vec<String> = (0..12_000)
            .map(|i| format!("Line {i} of a README & its <markup>, \"quoted\"."))
            .collect();
        let details = Details {
            title: "mod_x".into(),
            fields: vec![("description", "Description", readme.join("\n"))],
            whole_at: vec![],
        };
        let Response::Details(details) = Response::Details(details).fit(REPLY_BYTES) else {
            unreachable!()
        };
        let form = details_form(&details);
        for size in [
            written(&form),
            plain_text(&form, false).len(),
            crate::text::render(&Response::Details(details.clone())).len(),
        ] {
            assert!(size < STANZA, "{size}");
        }
    }

    #[test]
    fn a_table_round_trips_through_reported_and_items() {
        let table = Table {
            title: "Modules".into(),
            columns: vec![("module", "Module"), ("files", "Files")],
            rows: vec![
                vec!["firewall".into(), "12".into()],
                vec!["lastlog".into(), "1".into()],
            ],
            note: String::new(),
        };
        let form = table_form(&table);
        assert_eq!(form.attr("type"), Some("result"));
        let labels: Vec<_> = form
            .get_child("reported", NS_DATA)
            .unwrap()
            .children()
            .map(|f| f.attr("label").unwrap().to_owned())
            .collect();
        assert_eq!(labels, ["Module", "Files"]);
        let rows: Vec<Vec<String>> = form
            .children()
            .filter(|c| c.is("item", NS_DATA))
            .map(|item| {
                item.children()
                    .map(|f| f.get_child("value", NS_DATA).unwrap().text())
                    .collect()
            })
            .collect();
        assert_eq!(rows, table.rows);
    }

    #[test]
    fn a_failure_is_a_completed_command_with_an_error_note_and_its_facts() {
        let mut error = OpError::conflict("Prosody could not load mod_x");
        error.outcome = HostState::Undone;
        let reply = failed_reply("install", "s".into(), "Install modules", "conflict", &error);
        assert_eq!(reply.status, Status::Completed);
        assert_eq!(reply.notes.len(), 1);
        assert_eq!(reply.notes[0].kind, crate::xmpp::command::NoteKind::Error);
        let form = reply.form.unwrap();
        let value = |var: &str| {
            form.children()
                .find(|f| f.attr("var") == Some(var))
                .and_then(|f| f.get_child("value", NS_DATA))
                .map(Element::text)
        };
        assert_eq!(value("outcome").as_deref(), Some("failed"));
        assert_eq!(value("condition").as_deref(), Some("conflict"));
        assert_eq!(value("state").as_deref(), Some("undone"));
        let text: Vec<String> = form
            .children()
            .filter(|f| f.attr("var") == Some("text"))
            .flat_map(|f| f.children().map(Element::text))
            .collect();
        assert_eq!(text.join(" "), error.to_string());
        assert!(text.iter().all(|l| l.chars().count() <= NOTE_WIDTH));
        assert_eq!(value("left"), None);
    }

    #[test]
    fn a_table_note_longer_than_a_line_is_whole_in_the_instructions() {
        let mut table = Table {
            title: "Installed".into(),
            columns: vec![("module", "Module")],
            rows: vec![vec!["x".into()]],
            note: "Installed x.".into(),
        };
        assert!(!table_form(&table).has_child("instructions", NS_DATA));
        table.note =
            "Installed x 1.0 on localhost. Enabled and loaded on localhost. It needs y.".into();
        assert_eq!(
            table_form(&table)
                .get_child("instructions", NS_DATA)
                .map(Element::text),
            Some(table.note.clone())
        );
    }

    #[test]
    fn gajim_2_gets_the_outcome_as_the_table_title_and_others_the_table_title() {
        let table = Table {
            title: "Installed".into(),
            columns: vec![("module", "Module")],
            rows: vec![vec!["x".into()]],
            note: "Installed x.".into(),
        };
        let title = |rendering| {
            table_result(&table, rendering)
                .get_child("title", NS_DATA)
                .map(Element::text)
        };
        assert_eq!(title(Rendering::TitledTables), Some("Installed x.".into()));
        assert_eq!(title(Rendering::Tables), Some("Installed".into()));
        assert!(Rendering::TitledTables.note_in_title());
        assert!(!Rendering::Tables.note_in_title());
        assert!(!Rendering::SingleItem.note_in_title());
    }

    #[test]
    fn gajim_2_gets_long_cells_and_a_long_outcome_in_lines_that_fit_its_window() {
        let fix = "Prosody cannot read /var/lib/modman/a-directory-deep-down/modman.cfg.lua: chown it to root:prosody or chmod 640 with group prosody, then run check again.";
        let note =
            "Failed: readable by prosody, secret, admin socket, plugin_paths, repository debian.";
        let table = Table {
            title: "Checks".into(),
            columns: vec![("check", "Check"), ("detail", "Detail")],
            rows: vec![vec!["readable by prosody".into(), fix.into()]],
            note: note.into(),
        };
        let cell = |form: &Element| -> String {
            let item = form.children().find(|c| c.is("item", NS_DATA)).unwrap();
            item.children()
                .nth(1)
                .unwrap()
                .children()
                .next()
                .unwrap()
                .text()
        };
        let gajim = table_result(&table, Rendering::TitledTables);
        let detail = cell(&gajim);
        assert!(detail.lines().count() > 1, "{detail}");
        assert!(
            detail.lines().all(|l| l.chars().count() <= CELL_WIDTH),
            "{detail}"
        );
        assert_eq!(
            detail.split_whitespace().collect::<String>(),
            fix.split_whitespace().collect::<String>()
        );
        let title = gajim.get_child("title", NS_DATA).unwrap().text();
        assert!(
            title.lines().all(|l| l.chars().count() <= NOTE_WIDTH),
            "{title}"
        );
        assert_eq!(
            title.split_whitespace().collect::<Vec<_>>(),
            note.split_whitespace().collect::<Vec<_>>()
        );
        // A bot, or Movim's HTML table, gets the cell whole.
        assert_eq!(cell(&table_result(&table, Rendering::Tables)), fix);
    }

    #[test]
    fn every_client_gets_a_table_as_one_line_per_row_and_the_note() {
        let table = Table {
            title: "Modules".into(),
            columns: vec![("module", "Module"), ("summary", "Summary")],
            rows: vec![
                vec!["firewall".into(), "A firewall".into()],
                vec!["lastlog".into(), String::new()],
            ],
            note: "2 modules.".into(),
        };
        let form = table_text_form(&table);
        assert_eq!(form.attr("type"), Some("result"));
        assert!(!form.has_child("reported", NS_DATA));
        assert!(!form.has_child("item", NS_DATA));
        assert_eq!(
            plain_text(&form, false),
            "Modules:\nfirewall - A firewall\nlastlog\n2 modules."
        );
    }
}
