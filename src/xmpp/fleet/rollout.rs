//! A change for several servers, rolled out in stages as Salt's
//! `--batch-size` and Ansible's `serial` do: one server first (the
//! canary), then the rest a batch at a time. Every server of a stage makes
//! its own change (one transaction there, whole or undone) and is then
//! checked; the next stage starts only when the whole stage is healthy.
//! On the first failure the rollout stops: a server whose change failed
//! has undone it itself, a server found unhealthy after its change is
//! rolled back, and the servers after it are not asked at all. The answer
//! is one table saying where every server stands.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;

use futures::stream::{self, StreamExt};
use minidom::Element;
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::Message;

use super::merge::{self, Row};
use super::relay::{Link, PeerFailure, CONCURRENCY};
use super::trust;
use crate::access::Actor;
use crate::ops::confirm::PLANNED;
use crate::ops::response::OUTCOME;
use crate::ops::{
    Consent, Context, Input, OpError, Outcome, Response, Table, CONFIRM_FIELD, REPLY_BYTES,
};
use crate::xmpp::command::{NS, NS_DATA};

/// The ad-hoc field (and chat word, `batch=N`) that sets how many servers
/// change together after the canary, for one request.
pub const BATCH_FIELD: &str = "batch";

/// One server of a rollout, by its domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its domain, as the table names it.
    pub name: String,
    /// Its modman, or `None` for this server itself.
    pub peer: Option<BareJid>,
}

/// The order of a rollout: the first server by name alone (the canary),
/// then the others by name, `batch` at a time. Sorting makes the canary
/// the same server every time, whoever asks.
pub fn stages(mut servers: Vec<Server>, batch: NonZeroUsize) -> Vec<Vec<Server>> {
    servers.sort_by(|a, b| a.name.cmp(&b.name));
    if servers.is_empty() {
        return vec![];
    }
    let rest = servers.split_off(1);
    std::iter::once(servers)
        .chain(rest.chunks(batch.get()).map(<[Server]>::to_vec))
        .collect()
}

/// What a change across servers is to do, decided once from its fields
/// as this server's operation reads them (so a dry run outranks a yes,
/// as everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Make the change (`confirm` = true).
    Change,
    /// Only each server's plan: nothing changes, so nothing is checked or
    /// undone, and no server's answer stops the others.
    DryRun,
    /// Neither: nothing runs anywhere, as no question can be asked of each
    /// server.
    Unconfirmed,
}

/// The [`Intent`] of `node` with `fields`; `Err` if this server's
/// operation refuses the fields.
pub fn intent(node: &str, fields: &[(String, Vec<String>)]) -> Result<Intent, OpError> {
    let op = crate::ops::find(node)
        .ok_or_else(|| OpError::bad_input(format!("no command {node}; nothing was run")))?;
    let raw = fields
        .iter()
        .map(|(var, values)| (var.as_str(), values.clone()));
    Ok(match Input::check(op.spec().params, raw)?.consent {
        Consent::DryRun => Intent::DryRun,
        Consent::Given => Intent::Change,
        Consent::NotAsked | Consent::Approved(_) => Intent::Unconfirmed,
    })
}

/// How a server that failed was left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone {
    /// The change never ran there: its server or modman could not be
    /// reached, or its modman refused the request.
    NeverRan,
    /// Its modman ran the change, which failed and was undone whole
    /// there: nothing changed.
    ByItsChange,
    /// The change was made but the check after it failed: rolled back.
    RolledBack,
    /// The change was made, the check failed, and so did the rollback:
    /// that server needs its admin.
    RollbackFailed(PeerFailure),
    /// It did not answer, so whether it changed anything is not known.
    Unknown,
}

/// Where one server stands when the rollout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Changed and healthy: the rows of its change.
    Done(Vec<Row>),
    /// Its change or the check after it failed, and how it was left.
    Failed { why: PeerFailure, undone: Undone },
    /// A dry run's plan there: nothing was changed.
    Planned(Vec<Row>),
    /// The rollout stopped before its stage.
    NotReached,
}

impl Standing {
    /// The table cell: `done`, `planned`, `failed, unchanged`, `failed,
    /// undone`, `failed, rolled back`, `failed, rollback failed`, `failed,
    /// unknown` or `not reached`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Standing::Done(_) => "done",
            Standing::Planned(_) => "planned",
            Standing::Failed { undone, .. } => match undone {
                Undone::NeverRan => "failed, unchanged",
                Undone::ByItsChange => "failed, undone",
                Undone::RolledBack => "failed, rolled back",
                Undone::RollbackFailed(_) => "failed, rollback failed",
                Undone::Unknown => "failed, unknown",
            },
            Standing::NotReached => "not reached",
        }
    }
}

/// Whether a server is healthy after its change, from the rows of its
/// change and its `list` of installed modules read afterwards: each
/// module changed is installed, Prosody's admin socket answered (the
/// `loaded` column is known), and it is loaded on every host it is
/// enabled on. `Err` says what is wrong.
pub fn health(changed: &[Row], installed: &[Row]) -> Result<(), String> {
    let modules: BTreeSet<&str> = changed
        .iter()
        .filter_map(|row| row.get("module").map(String::as_str))
        .filter(|m| !m.is_empty())
        .collect();
    for module in modules {
        let row = installed
            .iter()
            .find(|row| row.get("module").map(String::as_str) == Some(module))
            .ok_or_else(|| format!("{module} is not installed after the change"))?;
        let hosts = |var: &str| -> BTreeSet<&str> {
            row.get(var)
                .map(|cell| cell.split(", ").filter(|h| !h.is_empty()).collect())
                .unwrap_or_default()
        };
        if hosts("loaded").contains("?") {
            return Err(format!(
                "Prosody did not say which modules it has loaded (its admin socket did not answer) after the change of {module}"
            ));
        }
        let not_loaded: Vec<&str> = hosts("enabled")
            .difference(&hosts("loaded"))
            .copied()
            .collect();
        if !not_loaded.is_empty() {
            return Err(format!(
                "{module} is enabled but not loaded on {}",
                not_loaded.join(", ")
            ));
        }
    }
    Ok(())
}

/// The fields of a submitted form or a chat line, by var.
pub type Fields = Vec<(String, Vec<String>)>;

/// Runs commands on the servers of a rollout: the operation itself here,
/// a relayed `execute` on a peer; the same for a request from an ad-hoc
/// form and from a chat line.
pub struct Runner<'a> {
    pub ctx: &'a Context,
    pub link: Link<'a>,
    pub actor: &'a Actor,
    pub admin: &'a BareJid,
    /// The change's node (`install`, `update`, `enable`).
    pub node: &'static str,
    /// Its fields, `confirm` = true or `dry_run` = true among them.
    pub fields: Fields,
    /// What they ask for: [`Intent::Change`] or [`Intent::DryRun`].
    pub intent: Intent,
}

impl Runner<'_> {
    /// Rolls the change out over `stages`, stopping after the first
    /// stage with a failure; every server's standing, in stage order.
    pub async fn roll_out(&self, stages: Vec<Vec<Server>>) -> Vec<(Server, Standing)> {
        let mut standings = Vec::new();
        let mut stopped = false;
        for stage in stages {
            if stopped {
                standings.extend(stage.into_iter().map(|s| (s, Standing::NotReached)));
                continue;
            }
            let mut done: Vec<(Server, Standing)> = stream::iter(stage)
                .map(|server| async move {
                    let standing = self.step(&server).await;
                    (server, standing)
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            done.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            // A plan changes nothing, so no plan stops the others.
            stopped = self.intent != Intent::DryRun
                && done
                    .iter()
                    .any(|(_, s)| matches!(s, Standing::Failed { .. }));
            standings.extend(done);
        }
        standings
    }

    /// One server: its change, then the check, then a rollback if the
    /// check fails.
    async fn step(&self, server: &Server) -> Standing {
        let changed = match self.run(server, self.node, &self.fields).await {
            Ok(rows) => rows,
            Err(why) => {
                let undone = match why {
                    PeerFailure::Refused { .. }
                    | PeerFailure::Unreachable { .. }
                    | PeerFailure::NotSent => Undone::NeverRan,
                    PeerFailure::FailedThere { .. } | PeerFailure::Failed(_) => Undone::ByItsChange,
                    PeerFailure::Timeout(_) | PeerFailure::Unreadable(_) => Undone::Unknown,
                };
                return Standing::Failed { why, undone };
            }
        };
        if self.intent == Intent::DryRun {
            return Standing::Planned(changed);
        }
        let modules: BTreeSet<String> = changed
            .iter()
            .filter_map(|row| row.get("module").cloned())
            .filter(|m| !m.is_empty())
            .collect();
        let Err(problem) = self.check(server, &modules, &changed).await else {
            return Standing::Done(changed);
        };
        let rollback = [
            ("modules".to_owned(), modules.into_iter().collect()),
            (CONFIRM_FIELD.to_owned(), vec!["true".to_owned()]),
        ];
        let undone = match self.run(server, "rollback", &rollback).await {
            Ok(_) => Undone::RolledBack,
            Err(e) => Undone::RollbackFailed(e),
        };
        Standing::Failed {
            why: PeerFailure::Failed(problem),
            undone,
        }
    }

    /// The check after `server` changed `modules` ([`health`]), from its
    /// `list` of each: one per module, so a server with more installed
    /// modules than one list shows cannot hide one of them.
    async fn check(
        &self,
        server: &Server,
        modules: &BTreeSet<String>,
        changed: &[Row],
    ) -> Result<(), String> {
        let mut installed = Vec::new();
        for module in modules {
            let list = [
                ("show".to_owned(), vec!["installed".to_owned()]),
                ("query".to_owned(), vec![module.clone()]),
            ];
            let rows = self
                .run(server, "list", &list)
                .await
                .map_err(|e| format!("it did not answer the check after the change: {e}"))?;
            installed.extend(rows);
        }
        health(changed, &installed)
    }

    /// `node` with `fields` on `server`: the rows of its answer.
    async fn run(
        &self,
        server: &Server,
        node: &str,
        fields: &[(String, Vec<String>)],
    ) -> Result<Vec<Row>, PeerFailure> {
        match &server.peer {
            None => self.here(node, fields).await,
            Some(peer) => self.relay(peer, node, fields).await,
        }
    }

    async fn here(
        &self,
        node: &str,
        fields: &[(String, Vec<String>)],
    ) -> Result<Vec<Row>, PeerFailure> {
        let failed =
            |e: &dyn std::fmt::Display| PeerFailure::Failed(crate::clean::one_line(&e.to_string()));
        let op = crate::ops::find(node).ok_or_else(|| failed(&format!("no command {node}")))?;
        let raw = fields
            .iter()
            .map(|(var, values)| (var.as_str(), values.clone()));
        let input = Input::check(op.spec().params, raw).map_err(|e| failed(&e))?;
        match op.run(self.ctx, self.actor, &input).await {
            Ok(Response::Table(table)) => Ok(merge::rows_of_table(&table)),
            Ok(_) => Err(failed(&format!(
                "{node} answered without a table of what it did"
            ))),
            Err(e) => Err(failed(&e)),
        }
    }

    async fn relay(
        &self,
        peer: &BareJid,
        node: &str,
        fields: &[(String, Vec<String>)],
    ) -> Result<Vec<Row>, PeerFailure> {
        let mut command = Element::builder("command", NS)
            .attr(crate::xmpp::name("node"), node)
            .attr(crate::xmpp::name("action"), "execute")
            .build();
        command.append_child(form(fields));
        command.append_child(trust::relayed_for(self.admin));
        let config = &self.ctx.config;
        let answer = self
            .link
            .relay
            .ask(
                &config.component.jid,
                peer,
                command,
                self.link.replies,
                config.fleet.answer_within,
            )
            .await?;
        merge::rows_of(&answer)
    }
}

/// A submitted form with `fields`, as a peer reads it.
pub fn form(fields: &[(String, Vec<String>)]) -> Element {
    let mut form = Element::builder("x", NS_DATA)
        .attr(crate::xmpp::name("type"), "submit")
        .build();
    for (var, values) in fields {
        let mut field = Element::builder("field", NS_DATA)
            .attr(crate::xmpp::name("var"), var.as_str())
            .build();
        for value in values {
            field.append_child(
                Element::builder("value", NS_DATA)
                    .append(value.as_str())
                    .build(),
            );
        }
        form.append_child(field);
    }
    form
}

/// The table of a rollout: per server, in the order it was reached, each
/// module it changed (`done`), or why it failed and how it was left, or
/// `not reached`; the note says where the rollout stopped, and after a
/// dry run how to carry it out in the words of the front end that asked
/// (`carry_out`, as for one server's dry run).
pub fn table(
    intent: Intent,
    stages: usize,
    batch: NonZeroUsize,
    standings: &[(Server, Standing)],
    carry_out: &str,
) -> Table {
    let mut rows = Vec::new();
    for (server, standing) in standings {
        let cells =
            |module: &str, version: &str, outcome: Outcome, failure: &str, problem: String| {
                vec![
                    server.name.clone(),
                    module.to_owned(),
                    version.to_owned(),
                    standing.as_str().to_owned(),
                    outcome.as_str().to_owned(),
                    failure.to_owned(),
                    problem,
                ]
            };
        match standing {
            Standing::Done(changed) | Standing::Planned(changed) => {
                rows.extend(changed.iter().map(|row| {
                    let cell = |vars: &[&str]| {
                        vars.iter()
                            .find_map(|var| row.get(*var))
                            .cloned()
                            .unwrap_or_default()
                    };
                    cells(
                        &cell(&["module"]),
                        &cell(&["to", "version", "state", PLANNED.0]),
                        Outcome::Ok,
                        "",
                        String::new(),
                    )
                }))
            }
            Standing::Failed { why, undone } => {
                let problem = match undone {
                    Undone::RollbackFailed(e) => format!("{why}; the rollback failed too: {e}"),
                    _ => why.to_string(),
                };
                rows.push(cells("", "", Outcome::Failed, why.kind(), problem));
            }
            Standing::NotReached => rows.push(cells("", "", Outcome::Failed, "", String::new())),
        }
    }
    let count = |f: fn(&Standing) -> bool| standings.iter().filter(|(_, s)| f(s)).count();
    let done = count(|s| matches!(s, Standing::Done(_)));
    let planned = count(|s| matches!(s, Standing::Planned(_)));
    let names = |f: fn(&Standing) -> bool| {
        standings
            .iter()
            .filter(|(_, s)| f(s))
            .map(|(server, s)| format!("{} ({})", server.name, s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let canary = standings.first().map_or("", |(s, _)| s.name.as_str());
    let mut note = format!(
        "Done on {done} of {} servers: {canary} first, then {} batch{} of up to {batch}, each checked (modules installed and loaded where enabled, Prosody answering) before the next.",
        standings.len(),
        stages.saturating_sub(1),
        if stages == 2 { "" } else { "es" },
    );
    let failed = names(|s| matches!(s, Standing::Failed { .. }));
    if intent == Intent::DryRun {
        note = format!(
            "A dry run: {planned} of {} servers answered their plan, and nothing was changed anywhere. To roll it out, {carry_out}.",
            standings.len()
        );
        if !failed.is_empty() {
            note += &format!(" No plan from {failed}: their rows say why.");
        }
    } else if !failed.is_empty() {
        note += &format!(" Stopped at {failed}: their rows say why.");
        let unreached = names(|s| matches!(s, Standing::NotReached));
        if !unreached.is_empty() {
            note += &format!(
                " Not reached, unchanged: {}; run the change again for them once the failure is fixed.",
                unreached.replace(" (not reached)", "")
            );
        }
    }
    let table = Table {
        title: "Rollout across the fleet".into(),
        columns: vec![
            ("server", "Server"),
            ("module", "Module"),
            ("version", "Version or state"),
            ("standing", "Standing"),
            OUTCOME,
            ("failure", "Failure"),
            ("problem", "Problem"),
        ],
        rows,
        note,
    };
    let Response::Table(table) = Response::Table(table).fit(REPLY_BYTES) else {
        unreachable!("fitting a table leaves a table")
    };
    table
}

/// Where a change across servers was asked, deciding which rooms are
/// told how it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskedIn<'a> {
    /// In this room of `[chat] rooms`, which is answered there already.
    Room(&'a BareJid),
    /// In an ad-hoc form or a direct chat, which only the asker sees.
    Private,
}

/// Tells each room of `[chat] rooms` where every server stands after a
/// rollout, as one message: the people who meet there see what changed on
/// their servers, whoever changed it and however. The room it was asked
/// in has its answer already and is not told twice.
pub async fn tell_rooms(
    ctx: &Context,
    replies: &mpsc::Sender<Stanza>,
    asked_in: AskedIn<'_>,
    table: &Table,
) {
    let text = crate::text::render(&Response::Table(table.clone()));
    let me = Jid::from(ctx.config.component.jid.clone());
    let rooms = ctx.config.chat.rooms.iter();
    for room in rooms.filter(|room| asked_in != AskedIn::Room(room)) {
        let mut message =
            Message::groupchat(Jid::from(room.clone())).with_body(Default::default(), text.clone());
        message.from = Some(me.clone());
        if replies.send(message.into()).await.is_err() {
            tracing::warn!(
                "cannot tell {room} how the rollout went: the connection to Prosody is gone"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str) -> Server {
        Server {
            name: name.to_owned(),
            peer: Some(format!("modman.{name}").parse().unwrap()),
        }
    }

    fn names(stages: &[Vec<Server>]) -> Vec<Vec<&str>> {
        stages
            .iter()
            .map(|stage| stage.iter().map(|s| s.name.as_str()).collect())
            .collect()
    }

    #[test]
    fn the_canary_is_alone_and_the_rest_go_in_batches() {
        let servers = ["e.test", "b.test", "a.test", "d.test", "c.test"].map(server);
        let two = NonZeroUsize::new(2).unwrap();
        assert_eq!(
            names(&stages(servers.to_vec(), two)),
            [
                vec!["a.test"],
                vec!["b.test", "c.test"],
                vec!["d.test", "e.test"]
            ]
        );
        let one = NonZeroUsize::new(1).unwrap();
        assert_eq!(
            names(&stages(vec![server("a.test")], one)),
            [vec!["a.test"]]
        );
        assert!(stages(vec![], one).is_empty());
    }

    fn row(cells: &[(&str, &str)]) -> Row {
        cells
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn healthy_means_installed_answering_and_loaded_where_enabled() {
        let changed = [row(&[("module", "lastlog"), ("version", "1")])];
        let listed = |enabled: &str, loaded: &str| {
            [row(&[
                ("module", "lastlog"),
                ("enabled", enabled),
                ("loaded", loaded),
            ])]
        };
        assert_eq!(
            health(&changed, &listed("a.test", "a.test, b.test")),
            Ok(())
        );
        assert_eq!(health(&changed, &listed("", "")), Ok(()));
        assert!(health(&changed, &listed("a.test, b.test", "a.test"))
            .unwrap_err()
            .contains("b.test"));
        assert!(health(&changed, &listed("a.test", "?")).is_err());
        assert!(health(&changed, &[]).is_err());
    }
}
