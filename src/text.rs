//! Plain-text rendering of a [`Response`], shared by the command line and
//! the chat front end: no markup, since many clients show it raw.

use std::borrow::Cow;

use crate::ops::{Details, FieldKind, Form, Response, Table};

/// What stands in for a character that may not be shown.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` is a control character: XML 1.0 forbids the C0 ones (but
/// tab, newline and carriage return), and a terminal acts on C0, DEL and
/// C1 (ESC clears the screen or retitles the window, BEL rings). A lone
/// carriage return counts too: on a terminal it overwrites the line. The
/// two noncharacters XML also forbids go with them.
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// Whether `text` holds nothing [`clean`] would change.
pub fn is_clean(text: &str) -> bool {
    !text.chars().any(is_control)
}

/// `text` safe to put in a stanza or print on a terminal: CRLF becomes a
/// newline and every other control character [`REPLACEMENT`]. Text from a
/// repository (a README, a summary) reaches admins through chat, forms
/// and the shell; one ESC or NUL would make Prosody close modman's stream
/// (the character is not XML) or drive the admin's terminal. Borrowed when
/// nothing changes, which is almost always.
pub fn clean(text: &str) -> Cow<'_, str> {
    if is_clean(text) {
        return Cow::Borrowed(text);
    }
    let text = text.replace("\r\n", "\n");
    Cow::Owned(
        text.chars()
            .map(|c| if is_control(c) { REPLACEMENT } else { c })
            .collect(),
    )
}

/// Cleans `text` in place; returns whether anything changed.
pub fn clean_in_place(text: &mut String) -> bool {
    match clean(text) {
        Cow::Borrowed(_) => false,
        Cow::Owned(cleaned) => {
            *text = cleaned;
            true
        }
    }
}

/// Renders a response as plain text lines. A confirmation renders as its
/// question; how to answer it is the front end's to say. The text is
/// [`clean`]: it goes to chats and terminals as it is.
pub fn render(response: &Response) -> String {
    let mut text = match response {
        Response::Table(table) => render_table(table),
        Response::Details(details) => render_details(details),
        Response::Confirm(question) => question.text.clone(),
        Response::Form(form) => render_form(form),
    };
    clean_in_place(&mut text);
    text
}

/// A form as a listing: each field with its value now (a secret only as
/// set or not) and what it is, then how to fill it in.
fn render_form(form: &Form) -> String {
    let mut out = format!("{}\n", form.title);
    for field in &form.fields {
        let value = match (field.kind, field.values.is_empty()) {
            (FieldKind::Secret, _) | (_, true) => String::new(),
            (_, false) => format!(" = {}", field.values.join(", ")),
        };
        let required = if field.required { " (required)" } else { "" };
        out += &format!("- {}{value}{required}: {}\n", field.var, field.help);
    }
    out + &form.instructions
}

/// `Label: value`, with multi-line values indented below their label.
fn render_details(details: &Details) -> String {
    let lines: Vec<String> = details
        .fields
        .iter()
        .map(|(_, label, value)| {
            if value.contains('\n') {
                let indented: Vec<String> = value
                    .lines()
                    .map(|l| format!("  {l}").trim_end().to_owned())
                    .collect();
                format!("{label}:\n{}", indented.join("\n"))
            } else {
                format!("{label}: {value}")
            }
        })
        .collect();
    format!("{}\n{}", details.title, lines.join("\n"))
}

/// The title, one line per row, then the note. Nothing relies on column
/// alignment: chat clients such as Gajim and Conversations use
/// proportional fonts and wrap long lines where they like.
fn render_table(table: &Table) -> String {
    let mut lines = Vec::new();
    if !table.rows.is_empty() {
        lines.push(format!("{}:", table.title));
        lines.extend(row_lines(table));
    }
    if !table.note.is_empty() {
        lines.push(table.note.clone());
    }
    lines.join("\n")
}

/// Each row on one line of its own: the first cell, the other non-empty
/// cells as `label: value` in brackets, and a summary last, after a dash:
/// `lastlog (installed: 0.3, enabled on: example.org) - Log last login`.
pub fn row_lines(table: &Table) -> Vec<String> {
    table
        .rows
        .iter()
        .map(|row| {
            let mut cells = table.columns.iter().zip(row);
            let first = cells
                .next()
                .map(|(_, cell)| one_line(cell))
                .unwrap_or_default();
            let has_update = table
                .columns
                .iter()
                .zip(row)
                .any(|((var, _), cell)| *var == "update" && !cell.is_empty());
            let mut described = Vec::new();
            let mut summary = None;
            for ((var, label), cell) in cells {
                let cell = one_line(cell);
                match (cell.is_empty(), *var) {
                    (true, _) => {}
                    (false, "summary") => summary = Some(cell),
                    // The version on offer says something in a line only
                    // as an update; info tells it otherwise. Leaving it out
                    // keeps the whole list of a repository in one short
                    // reply (under 8 KB, past which Prosody's relay with
                    // Nagle's algorithm adds about 40 ms).
                    (false, "available") if !has_update => {}
                    (false, _) => described.push(format!("{}: {cell}", label.to_lowercase())),
                }
            }
            let mut line = first;
            if !described.is_empty() {
                line += &format!(" ({})", described.join(", "));
            }
            if let Some(summary) = summary {
                line += &format!(" - {summary}");
            }
            line
        })
        .collect()
}

/// `text` on one line: line breaks and runs of blanks become one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_pass_and_clean_text_is_not_copied() {
        let hostile = "a\u{1b}[2Jb\u{7}c\u{0}d\u{9b}e\u{7f}f\rg\u{FFFE}h";
        assert!(!is_clean(hostile));
        let cleaned = clean(hostile);
        assert!(is_clean(&cleaned), "{cleaned:?}");
        assert_eq!(
            cleaned,
            "a\u{FFFD}[2Jb\u{FFFD}c\u{FFFD}d\u{FFFD}e\u{FFFD}f\u{FFFD}g\u{FFFD}h"
        );
        assert_eq!(clean("line\r\nnext\ttab"), "line\nnext\ttab");
        assert!(matches!(clean("plain text, ünïcode ✓\n"), Cow::Borrowed(_)));
        let response = Response::Details(Details {
            title: "x\u{1b}]0;pwned\u{7}".into(),
            fields: vec![],
            whole_at: vec![],
        });
        assert_eq!(render(&response), "x\u{FFFD}]0;pwned\u{FFFD}\n");
    }

    #[test]
    fn one_line_per_row_without_alignment_then_the_note() {
        let table = Table {
            title: "Modules".into(),
            columns: vec![
                ("module", "Module"),
                ("files", "Files"),
                ("stage", "Stage"),
                ("summary", "Summary"),
            ],
            rows: vec![
                vec![
                    "firewall".into(),
                    "12".into(),
                    "".into(),
                    "A rule\nbased   firewall".into(),
                ],
                vec!["ping_muc".into(), "1".into(), "beta".into(), "".into()],
            ],
            note: "2 modules.".into(),
        };
        assert_eq!(
            render(&Response::Table(table)),
            "Modules:\nfirewall (files: 12) - A rule based firewall\nping_muc (files: 1, stage: beta)\n2 modules."
        );
    }

    #[test]
    fn details_indent_multi_line_values() {
        let details = Details {
            title: "mod_x".into(),
            fields: vec![
                ("stage", "Stage", "beta".into()),
                ("files", "Files", "a.lua\nb.lua".into()),
            ],
            whole_at: vec![],
        };
        assert_eq!(
            render(&Response::Details(details)),
            "mod_x\nStage: beta\nFiles:\n  a.lua\n  b.lua"
        );
    }

    #[test]
    fn an_empty_table_is_just_its_note() {
        let table = Table {
            title: "M".into(),
            columns: vec![("a", "A")],
            rows: vec![],
            note: "None.".into(),
        };
        assert_eq!(render(&Response::Table(table)), "None.");
    }
}
