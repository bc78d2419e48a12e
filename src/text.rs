//! Plain-text rendering of a [`Response`], shared by the command line and
//! the chat front end: no markup, since many clients show it raw.

use crate::clean::{clean_in_place, one_line};
use crate::ops::{Details, FieldKind, Form, Response, Table};

/// Renders a response as plain text lines. A confirmation renders as its
/// question; how to answer it is the front end's to say. The text is
/// [`clean`](crate::clean::clean)ed: it goes to chats and terminals as it is.
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
        let needed = if field.needed { " (needed)" } else { "" };
        out += &format!("- {}{value}{needed}: {}\n", field.var, field.help);
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

/// From this many rows on, a cell the same in every row is said once
/// ([`row_lines`]).
const SHARED_FROM: usize = 3;

/// Each row on one line of its own: the first cell, the other non-empty
/// cells as `label: value` in brackets, and a summary last, after a dash:
/// `lastlog (installed: 0.3, enabled on: example.org) - Log last login`.
/// In a table of [`SHARED_FROM`] rows or more, a cell that is the same in
/// every row is said once, on a line of its own before them (`All 250:
/// why: update, standing: updated`): an update of every module reads as
/// its versions, not as the same words 250 times (and its reply, a third
/// shorter, goes through the server sooner).
pub fn row_lines(table: &Table) -> Vec<String> {
    let shared = shared_columns(table);
    let mut lines = Vec::new();
    if !shared.is_empty() {
        let said: Vec<String> = shared
            .iter()
            .map(|&at| {
                let label = table.columns[at].1.to_lowercase();
                format!("{label}: {}", one_line(&table.rows[0][at]))
            })
            .collect();
        lines.push(format!("All {}: {}", table.rows.len(), said.join(", ")));
    }
    lines.extend(table.rows.iter().map(|row| {
        let first = row.first().map(|cell| one_line(cell)).unwrap_or_default();
        let has_update = table
            .columns
            .iter()
            .zip(row)
            .any(|((var, _), cell)| *var == "update" && !cell.is_empty());
        let mut described = Vec::new();
        let mut summary = None;
        for (at, ((var, label), cell)) in table.columns.iter().zip(row).enumerate().skip(1) {
            let cell = one_line(cell);
            match (cell.is_empty(), *var) {
                (true, _) => {}
                _ if shared.contains(&at) => {}
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
    }));
    lines
}

/// The columns of `table`, past the first, whose cell is the same and not
/// empty in every one of its rows, when it has [`SHARED_FROM`] or more. A
/// summary is each row's own, and the version on offer follows its own
/// rule ([`row_lines`]).
fn shared_columns(table: &Table) -> Vec<usize> {
    let Some(first) = table.rows.first() else {
        return vec![];
    };
    if table.rows.len() < SHARED_FROM {
        return vec![];
    }
    (1..table.columns.len())
        .filter(|&at| !matches!(table.columns[at].0, "summary" | "available"))
        .filter(|&at| {
            let cell = first.get(at).map(|cell| one_line(cell)).unwrap_or_default();
            !cell.is_empty()
                && table
                    .rows
                    .iter()
                    .all(|row| row.get(at).is_some_and(|other| one_line(other) == cell))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_cleans_control_characters() {
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

    /// A cell the same in every row of a longer table is said once, before
    /// the rows; one that differs stays in each, as in a shorter table.
    #[test]
    fn a_cell_the_same_in_every_row_is_said_once() {
        let updated = |name: &str, to: &str| -> Vec<String> {
            [name, "1", to, "update", "updated"]
                .map(str::to_owned)
                .to_vec()
        };
        let mut table = Table {
            title: "Updated".into(),
            columns: vec![
                ("module", "Module"),
                ("from", "From"),
                ("to", "To"),
                ("why", "Why"),
                ("standing", "Standing"),
            ],
            rows: vec![updated("a", "2"), updated("b", "3"), updated("c", "2")],
            note: String::new(),
        };
        assert_eq!(
            row_lines(&table),
            [
                "All 3: from: 1, why: update, standing: updated",
                "a (to: 2)",
                "b (to: 3)",
                "c (to: 2)"
            ]
        );
        table.rows[2][4] = "failed".into();
        assert_eq!(row_lines(&table)[0], "All 3: from: 1, why: update");
        assert_eq!(row_lines(&table)[3], "c (to: 2, standing: failed)");
        table.rows.pop();
        assert_eq!(
            row_lines(&table),
            [
                "a (from: 1, to: 2, why: update, standing: updated)",
                "b (from: 1, to: 3, why: update, standing: updated)"
            ],
            "two rows say each cell"
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
