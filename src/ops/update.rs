//! `update`: replace installed modules whose copy in the repository they
//! came from changed (a different SHA-256, whatever the version says),
//! after the admin has seen `from -> to` for each and what it changes (the
//! commits, files, dependencies, options and compatibility; see
//! [`super::changes`]). A module never moves to
//! another repository by itself. The old copies are kept for rollback, and
//! modules loaded in Prosody are reloaded with the new code. A version
//! named (`update lastlog@20240601`) is taken from the versions the
//! repository offers, an earlier one too: a downgrade, which the question
//! says before anything changes. Held modules are left alone.

use super::confirm::{Consent, Proposal, Why};
use super::standing::Standing;
use super::updates::{self, Direction, Unknown, UpdateStatus};
use super::{chosen, hold, plan};
use super::{params, Field, Params};
use super::{
    Access, Command, Context, ModuleChoice, OpError, ParamKind, Response, Spec, Table, Wanted,
    VERSION_SEPARATOR,
};
use crate::access::Actor;
use crate::engine::ChangeSet;

/// The reason of a module updated to a version the admin named.
const CHOSEN: &str = "version chosen";

/// Updates `modules`, or every installed module when empty.
#[derive(Debug)]
pub struct Update {
    modules: Vec<Wanted>,
    consent: Consent,
}

params! {
    /// What `Update` takes.
    pub struct UpdateParams {
        modules: Vec<Wanted> = Field {
            label: "Modules (empty: all)",
            help: "Which installed modules to update; leave empty to update all. name@VERSION takes a version the repository offers, an earlier one too (asked first).",
            kind: ParamKind::Versioned(ModuleChoice::Updatable),
            required: false,
        },
    }
}

impl Command for Update {
    type Params = UpdateParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "update",
        name: "Update modules",
        instructions: "Update installed modules to the copies their repositories offer now. You will see each change before it is made; the old copies are kept for rollback. Leave the modules empty to update all.",
        params: UpdateParams::FIELDS,
    };

    fn new(UpdateParams { modules }: UpdateParams, consent: Consent) -> Result<Self, OpError> {
        Ok(Update { modules, consent })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        let catalog = ctx.catalog();
        let names: Vec<Wanted> = if self.modules.is_empty() {
            let all = guard.installed.modules.keys();
            all.map(|name| Wanted {
                name: name.clone(),
                version: None,
            })
            .collect()
        } else {
            for Wanted { name, .. } in &self.modules {
                let Some(record) = guard.installed.modules.get(name) else {
                    return Err(OpError::not_found(format!(
                        "{name} is not installed by modman; install it instead"
                    )));
                };
                // Named, so said at once, whatever else is asked.
                if let Some(hold) = &record.held {
                    return Err(hold::refusal("update", name, &record.version, hold));
                }
            }
            self.modules
        };
        let mut notes = Vec::new();
        let mut wanted = Vec::new();
        // The modules left as they are, each with why, after those updated.
        let mut left = Vec::new();
        let left_row = |name: &str, version: &str, standing: Standing| {
            let cells = [name, version, "", "", standing.as_str()];
            cells.map(str::to_owned).to_vec()
        };
        for Wanted { name, version } in names {
            let record = &guard.installed.modules[&name];
            if let Some(version) = version {
                match version == record.version {
                    true => {
                        left.push(left_row(&name, &version, Standing::AtVersion));
                        notes.push(format!("{name} is at {version} already."))
                    }
                    false => {
                        let chosen = Wanted {
                            name,
                            version: Some(version),
                        };
                        wanted.push((chosen, CHOSEN.to_owned()));
                    }
                }
                continue;
            }
            let status = updates::status(&catalog, &ctx.config.repositories, &name, record);
            if let Some(standing) = Standing::left(&status) {
                left.push(left_row(&name, &record.version, standing));
            }
            match status {
                UpdateStatus::Available { .. } => {
                    wanted.push((Wanted { name, version: None }, "update".to_owned()))
                }
                UpdateStatus::UpToDate => {}
                UpdateStatus::Held(hold) => notes.push(format!(
                    "{name} is held at {} ({}), so it was left as it is.",
                    record.version,
                    hold::describe(hold)
                )),
                // Never back to an older copy unasked: that is rollback's
                // job, or update's with the version named.
                UpdateStatus::Older {
                    installed,
                    offered,
                    repository,
                } => notes.push(format!(
                    "{name}: {} offers {}, older than the {installed} installed, so it was left as it is; rollback puts back an earlier copy, and update {name}{VERSION_SEPARATOR}VERSION a version you choose.",
                    repository.name, offered.version
                )),
                UpdateStatus::OnlyElsewhere { own, elsewhere, .. } => notes.push(format!(
                    "{name} is not offered by {own} any more, so it was left as it is. {} offers it; to move it there, remove it and install it again.",
                    elsewhere.name
                )),
                UpdateStatus::NotOffered { own } => notes.push(format!(
                    "{name} is not offered by {own} any more, so it was left as it is."
                )),
                UpdateStatus::Unknown { own, why: Unknown::NoIndex } => notes.push(format!(
                    "{name} was left as it is: there is no index of {own}, the repository it came from; run refresh, then update again."
                )),
                UpdateStatus::Unknown { own, why: Unknown::NotConfigured } => notes.push(format!(
                    "{name} was left as it is: {own}, the repository it came from, is not in modman.toml any more; to take it from another, remove it and install it again."
                )),
            }
        }
        tracing::debug!(
            "update: {} of {} installed modules to update",
            wanted.len(),
            guard.installed.modules.len()
        );
        let server = plan::learn_server(ctx, &mut guard).await;
        let catalog = chosen::read_listed(ctx, catalog, &guard.installed, &wanted).await?;
        let plan = plan::resolve(ctx, &catalog, &guard.installed, wanted, server.as_ref())?;
        let columns = vec![
            ("module", "Module"),
            ("from", "From"),
            ("to", "To"),
            ("reason", "Why"),
            ("standing", "Standing"),
        ];
        let mut rows: Vec<Vec<String>> = plan
            .steps
            .iter()
            .map(|s| {
                let from = guard
                    .installed
                    .modules
                    .get(&s.entry.name)
                    .map(|r| r.version.clone());
                let standing = match from {
                    Some(_) => Standing::Updated,
                    None => Standing::Installed,
                };
                vec![
                    s.entry.name.clone(),
                    from.unwrap_or_default(),
                    s.entry.version.clone(),
                    s.reason.clone(),
                    standing.as_str().to_owned(),
                ]
            })
            .collect();
        if rows.is_empty() {
            // "Up to date" only as far as current indexes say so.
            let stale = catalog.stale(&ctx.config.repositories);
            let verdict = match stale.is_empty() {
                true => "Everything is up to date.".to_owned(),
                false => format!(
                    "No update in the indexes at hand, but not all of them are current: {}.",
                    stale.join("; ")
                ),
            };
            notes.insert(0, verdict);
            return Ok(Response::Table(Table {
                title: "Updates".into(),
                columns,
                rows: left,
                note: notes.join(" "),
            }));
        }
        let mut proposal = Proposal::always_asked("Update");
        plan.propose(&mut proposal, &guard.installed);
        for step in &plan.steps {
            let Some(record) = guard.installed.modules.get(&step.entry.name) else {
                continue;
            };
            let newest = catalog.find_in(&record.repository, &step.entry.name);
            let offered = newest.map(|(_, e)| e);
            if updates::direction(offered, &step.entry.version, &record.version)
                == Direction::Downgrade
            {
                proposal.concern(Why::Downgrade, format!(
                    "{}: {} -> {} is a downgrade, to an earlier version than installed; what the newer one fixed goes with it.",
                    step.entry.name, record.version, step.entry.version
                ));
            }
        }
        // Fetched and verified before the question, which shows what the
        // new copies change against those on disk; a dry run shows the
        // plan alone, fetching nothing.
        let goes_ahead = proposal.goes_ahead(&self.consent);
        let files = match self.consent {
            Consent::DryRun => vec![],
            // Going ahead without a question, as install does.
            _ if goes_ahead => {
                plan.download_for_commit(ctx, actor, &mut guard, false)
                    .await?
            }
            _ => plan.download(ctx, actor).await?,
        };
        if !goes_ahead {
            for changes in plan.changes(ctx, &guard.installed, &files) {
                proposal.changes(changes);
            }
        }
        if let Err(question) = proposal.decide(&self.consent) {
            // The "yes" to it applies these very copies.
            ctx.kept.keep(files);
            return Ok(question);
        }
        let change = ChangeSet {
            operation: "update",
            settings: vec![],
            files,
            disable: vec![],
            enable: vec![],
        };
        let applied = guard.commit(actor, change).await?;
        notes.extend(plan.notes);
        if let Some(why) = &applied.not_live {
            notes.push(format!(
                "Not reloaded live ({why}); the new code runs when Prosody restarts."
            ));
        }
        let watched = ctx.watches.after(&ctx.engine, actor, &applied);
        if !watched.is_empty() {
            notes.push(watched.trim_start().to_owned());
        }
        let released = super::enable::released_note(&applied.released);
        if !released.is_empty() {
            notes.push(released.trim_start().to_owned());
        }
        notes.insert(
            0,
            format!(
                "Updated {} module{}; the previous copies are kept for rollback.",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            ),
        );
        rows.extend(left);
        Ok(Response::Table(Table {
            title: "Updated".into(),
            columns,
            rows,
            note: notes.join(" "),
        }))
    }
}
