//! Plain-text rendering of a [`Response`], shared by the command line and
//! the chat front end: no markup, since many clients show it raw.

use crate::ops::{Details, FieldKind, Form, Response, Table};

/// Renders a response as plain text lines. A confirmation renders as its
/// question; how to answer it is the front end's to say.
pub fn render(response: &Response) -> String {
    match response {
        Response::Table(table) => render_table(table),
        Response::Details(details) => render_details(details),
        Response::Confirm(question) => question.text.clone(),
        Response::Form(form) => render_form(form),
    }
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

/// Columns padded to their widest cell, a header line, then the note.
fn render_table(table: &Table) -> String {
    let mut out = String::new();
    if !table.rows.is_empty() {
        let widths: Vec<usize> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, label))| {
                table
                    .rows
                    .iter()
                    .filter_map(|row| row.get(i))
                    .map(|cell| cell.chars().count())
                    .chain([label.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            padded.join("  ").trim_end().to_owned() + "\n"
        };
        out += &line(table.columns.iter().map(|(_, label)| *label).collect());
        for row in &table.rows {
            out += &line(row.iter().map(String::as_str).collect());
        }
    }
    out += &table.note;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_ends_with_the_note() {
        let table = Table {
            title: "Modules".into(),
            columns: vec![("module", "Module"), ("files", "Files")],
            rows: vec![
                vec!["firewall".into(), "12".into()],
                vec!["ping_muc".into(), "1".into()],
            ],
            note: "2 modules.".into(),
        };
        assert_eq!(
            render(&Response::Table(table)),
            "Module    Files\nfirewall  12\nping_muc  1\n2 modules."
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
