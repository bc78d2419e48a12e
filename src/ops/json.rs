//! A [`Response`] or an [`OpError`] as JSON, for scripts and bots: the same facts the text
//! says, keyed by the field and column names the data forms use, so no
//! reader parses English. Cells stay the strings the forms carry.

use serde_json::{json, Map, Value};

use super::{FieldKind, OpError, Response};

impl Response {
    /// The response as one JSON object; `kind` says which shape it is.
    pub fn to_json(&self) -> Value {
        match self {
            Response::Table(table) => json!({
                "kind": "table",
                "title": table.title,
                "rows": table.rows.iter().map(|row| {
                    let cells = table.columns.iter().zip(row);
                    Value::Object(cells.map(|((var, _), cell)| (var.to_string(), json!(cell))).collect())
                }).collect::<Vec<_>>(),
                "note": table.note,
            }),
            Response::Details(details) => {
                let fields: Map<String, Value> = (details.fields.iter())
                    .map(|(var, _, value)| (var.to_string(), json!(value)))
                    .collect();
                let whole_at: Map<String, Value> = (details.whole_at.iter())
                    .map(|(var, at)| (var.to_string(), json!(at)))
                    .collect();
                json!({
                    "kind": "details",
                    "title": details.title,
                    "fields": fields,
                    "whole_at": whole_at,
                })
            }
            Response::Confirm(question) => json!({
                "kind": "confirm",
                "question": question.text,
                "why": question.why.iter().map(|why| why.as_str()).collect::<Vec<_>>(),
                "changes": question.changes.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
            }),
            Response::Form(form) => json!({
                "kind": "form",
                "title": form.title,
                "instructions": form.instructions,
                "fields": form.fields.iter().map(|field| json!({
                    "var": field.var,
                    "label": field.label,
                    "kind": match field.kind {
                        FieldKind::Text => "text",
                        FieldKind::Secret => "secret",
                        FieldKind::Boolean => "boolean",
                        FieldKind::Lines => "lines",
                    },
                    "values": field.values,
                    "help": field.help,
                    "required": field.needed,
                })).collect::<Vec<_>>(),
            }),
        }
    }
}

impl OpError {
    /// The failure as one JSON object: what kind, what state the host is
    /// in now (`outcome`, with what is `left` when part of a change could
    /// not be undone), why where that matters (`cause`), and the whole
    /// text a person would read.
    pub fn to_json(&self) -> Value {
        let (outcome, left) = self.state_name();
        json!({
            "kind": "error",
            "error": self.kind_name(),
            "cause": self.cause.map(|cause| cause.as_str()),
            "outcome": outcome,
            "left": left,
            "text": self.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::admin_socket::AdminError;
    use crate::engine::{EngineError, Outcome};
    use crate::ops::{Details, Table};
    use crate::repo::fetch::FetchError;

    #[test]
    fn a_table_is_rows_keyed_by_column() {
        let table = Response::Table(Table {
            title: "Checks".into(),
            columns: vec![("check", "Check"), ("outcome", "Outcome")],
            rows: vec![vec!["admins".into(), "ok".into()]],
            note: "All checks passed.".into(),
        });
        assert_eq!(
            table.to_json(),
            json!({
                "kind": "table",
                "title": "Checks",
                "rows": [{"check": "admins", "outcome": "ok"}],
                "note": "All checks passed.",
            })
        );
    }

    #[test]
    fn an_error_says_its_kind_and_what_is_left_as_facts() {
        let mut error = OpError::conflict("mod_x is not installed");
        assert_eq!(error.to_json()["error"], "conflict");
        assert_eq!(error.to_json()["outcome"], "nothing_changed");
        assert_eq!(error.to_json()["left"], Value::Null);
        assert_eq!(error.to_json()["cause"], Value::Null);
        error.outcome = Outcome::PartlyChanged("mod_x.lua is still there".into());
        assert_eq!(error.to_json()["outcome"], "partly_changed");
        assert_eq!(error.to_json()["left"], "mod_x.lua is still there");
    }

    #[test]
    fn an_errors_cause_is_named_from_the_failure_it_came_from() {
        let refused = OpError::from(EngineError::Refused("Prosody could not load".into()));
        assert_eq!(refused.to_json()["cause"], "prosody_refused");
        let missing = OpError::from(EngineError::Prosody(AdminError::Missing("x.sock".into())));
        assert_eq!(missing.to_json()["cause"], "admin_socket_missing");
        let archive = OpError::from(FetchError::Archive {
            url: "http://127.0.0.1/x.tar".into(),
            reason: "sha256 differs".into(),
        });
        assert_eq!(archive.to_json()["cause"], "invalid");
        assert_eq!(archive.to_json()["error"], "unavailable");
    }

    #[test]
    fn details_are_fields_keyed_by_var() {
        let details = Response::Details(Details {
            title: "mod_x".into(),
            fields: vec![("stage", "Stage", "beta".into())],
            whole_at: vec![("readme", "modman info x --readme".into())],
        });
        assert_eq!(details.to_json()["fields"], json!({"stage": "beta"}));
        assert_eq!(
            details.to_json()["whole_at"],
            json!({"readme": "modman info x --readme"})
        );
    }
}
