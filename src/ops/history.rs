//! `history`: the audit log, newest first: who changed which module from
//! which version to which, and how it ended. Times are shown to the
//! second in the server's local time with its zone, as an admin reads a
//! clock; the log itself keeps UTC.

use super::Consent;
use super::{params, Field, Module, Params};
use super::{Access, Command, Context, OpError, ParamKind, Response, Spec, Table};
use crate::access::Actor;

/// Shows the last entries, optionally only those about one module.
#[derive(Debug)]
pub struct History {
    module: Option<String>,
}

/// Entries shown at most.
const LIMIT: usize = 50;

params! {
    /// What `History` takes.
    pub struct HistoryParams {
        module: Option<Module> = Field {
            label: "Module",
            help: "Only changes to this module; leave empty for all.",
            kind: ParamKind::Text,
            required: false,
        },
    }
}

impl Command for History {
    type Params = HistoryParams;

    const SPEC: Spec = Spec {
        access: Access::Read,
        node: "history",
        name: "Change history",
        instructions:
            "Show the latest changes: when, who, what, from which version to which, and the result.",
        params: HistoryParams::FIELDS,
    };

    fn new(HistoryParams { module }: HistoryParams, _consent: Consent) -> Result<Self, OpError> {
        Ok(History {
            module: module.map(|m| m.0),
        })
    }

    async fn apply(self, ctx: &Context, _actor: &Actor) -> Result<Response, OpError> {
        let entries = ctx.engine.history()?;
        let entries: Vec<_> = entries
            .iter()
            .rev()
            .filter(|e| {
                self.module
                    .as_ref()
                    .is_none_or(|m| e.changes.iter().any(|c| &c.module == m))
            })
            .take(LIMIT)
            .collect();
        let times = super::times::local_times(entries.iter().map(|e| e.time.as_str())).await;
        let rows: Vec<Vec<String>> = entries
            .iter()
            .zip(times)
            .map(|(e, time)| {
                let changes: Vec<String> = e
                    .changes
                    .iter()
                    .map(|c| match (&c.from, &c.to) {
                        (Some(from), Some(to)) if from != to => {
                            format!("{} {from} -> {to}", c.module)
                        }
                        (None, Some(to)) => format!("{} {to} new", c.module),
                        (Some(from), None) => format!("{} {from} removed", c.module),
                        _ => c.module.clone(),
                    })
                    .collect();
                let mut changes = changes.join(", ");
                if !e.hosts.is_empty() {
                    changes += &format!(" on {}", e.hosts.join(", "));
                }
                if let Some(reason) = &e.reason {
                    changes += &format!(" because {reason}");
                }
                vec![
                    time,
                    e.actor.clone(),
                    e.operation.clone(),
                    changes,
                    e.result.clone(),
                    e.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let note = match rows.len() {
            0 => "No changes recorded.".to_owned(),
            n => format!(
                "The latest {n} change{} (at most {LIMIT} shown).",
                if n == 1 { "" } else { "s" }
            ),
        };
        Ok(Response::Table(Table {
            title: "History".into(),
            columns: vec![
                ("time", "Time"),
                ("actor", "Who"),
                ("operation", "Operation"),
                ("changes", "Changes"),
                ("result", "Result"),
                ("reason", "Why"),
            ],
            rows,
            note,
        }))
    }
}
