//! `history`: the audit log, newest first: who changed which module from
//! which version to which, and how it ended. Times are shown to the
//! second in the server's local time with its zone, as an admin reads a
//! clock; the log itself keeps UTC.

use super::{Access, Command, Context, Input, OpError, Param, ParamKind, Response, Spec, Table};
use crate::access::Actor;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Shows the last entries, optionally only those about one module.
#[derive(Debug)]
pub struct History {
    module: Option<String>,
}

/// Entries shown at most.
const LIMIT: usize = 50;

impl Command for History {
    const SPEC: Spec = Spec {
        access: Access::Read,
        node: "history",
        name: "Change history",
        instructions:
            "Show the latest changes: when, who, what, from which version to which, and the result.",
        params: &[Param {
            var: "module",
            label: "Module",
            help: "Only changes to this module; leave empty for all.",
            kind: ParamKind::Text,
            required: false,
        }],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(History {
            module: input
                .text("module")
                .map(|m| m.strip_prefix("mod_").unwrap_or(m).to_owned()),
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
        let times = local_times(entries.iter().map(|e| e.time.as_str())).await;
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
            ],
            rows,
            note,
        }))
    }
}

/// RFC 3339 UTC `times` in the server's local time zone, to the second:
/// `2026-11-24 16:37:49 CET`. The zone (with its summer time) comes from
/// the system's own `date`, which reads the zone database; if that fails,
/// the times are shown in UTC, labelled so.
async fn local_times<'a>(times: impl Iterator<Item = &'a str>) -> Vec<String> {
    let parsed: Vec<Option<OffsetDateTime>> = times
        .map(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .collect();
    let stamps: String = parsed
        .iter()
        .map(|t| match t {
            Some(t) => format!("@{}\n", t.unix_timestamp()),
            None => "@0\n".to_owned(),
        })
        .collect();
    let local = match in_local_zone(&stamps).await {
        Ok(lines) if lines.len() == parsed.len() => Some(lines),
        Ok(lines) => {
            tracing::warn!(
                "date answered {} lines for {} times; showing UTC",
                lines.len(),
                parsed.len()
            );
            None
        }
        Err(e) => {
            tracing::warn!("cannot ask date for the local time zone ({e}); showing UTC");
            None
        }
    };
    parsed
        .iter()
        .enumerate()
        .map(|(i, t)| match (t, &local) {
            (None, _) => "unknown time".to_owned(),
            (Some(_), Some(local)) => local[i].clone(),
            (Some(t), None) => format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        })
        .collect()
}

/// `date -f -` over `@UNIX` lines: one local time per line.
async fn in_local_zone(stamps: &str) -> std::io::Result<Vec<String>> {
    use tokio::io::AsyncWriteExt;
    let mut date = tokio::process::Command::new("date")
        .args(["-f", "-", "+%Y-%m-%d %H:%M:%S %Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = date
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    stdin.write_all(stamps.as_bytes()).await?;
    drop(stdin);
    let output = date.wait_with_output().await?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "date exited with {}",
            output.status
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}
