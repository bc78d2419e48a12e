//! `update`: replace installed modules whose copy in the repository they
//! came from changed (a different SHA-256, whatever the version says),
//! after the admin has seen `from -> to` for each. A module never moves to
//! another repository by itself. The old copies are kept for rollback, and
//! modules loaded in Prosody are reloaded with the new code.

use super::confirm::{Consent, Proposal};
use super::plan;
use super::{
    Access, Command, Context, Input, ModuleChoice, OpError, Param, ParamKind, Response, Spec, Table,
};
use crate::access::Actor;
use crate::engine::ChangeSet;
use crate::repo::compare_versions;

/// Updates `modules`, or every installed module when empty.
#[derive(Debug)]
pub struct Update {
    modules: Vec<String>,
    consent: Consent,
}

impl Command for Update {
    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "update",
        name: "Update modules",
        instructions: "Update installed modules to the copies their repositories offer now. You will see each change before it is made; the old copies are kept for rollback. Leave the modules empty to update all.",
        params: &[Param {
            var: "modules",
            label: "Modules (empty: all)",
            help: "Which installed modules to update; leave empty to update all.",
            kind: ParamKind::Modules(ModuleChoice::Installed),
            required: false,
        }],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(Update {
            modules: input.modules("modules"),
            consent: input.consent.clone(),
        })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        let catalog = ctx.catalog();
        let names: Vec<String> = if self.modules.is_empty() {
            guard.installed.modules.keys().cloned().collect()
        } else {
            for name in &self.modules {
                if !guard.installed.modules.contains_key(name) {
                    return Err(OpError::not_found(format!(
                        "{name} is not installed by modman; install it instead"
                    )));
                }
            }
            self.modules
        };
        let mut notes = Vec::new();
        let mut wanted = Vec::new();
        for name in names {
            let record = &guard.installed.modules[&name];
            match catalog.find_in(&record.repository, &name) {
                // Never back to an older copy: that is rollback's job, or
                // an explicit remove and install.
                Some((_, entry))
                    if entry.sha256 != record.sha256
                        && compare_versions(&entry.version, &record.version)
                            == Some(std::cmp::Ordering::Less) =>
                {
                    notes.push(format!(
                        "{name}: {} offers {}, older than the {} installed, so it was left as it is; rollback puts back an earlier copy.",
                        record.repository, entry.version, record.version
                    ));
                }
                Some((_, entry)) if entry.sha256 != record.sha256 => {
                    wanted.push((name, "update".to_owned()))
                }
                Some(_) => {}
                None => {
                    let elsewhere = catalog
                        .find(&name)
                        .map(|(other, _)| {
                            format!(
                                " {} offers it; to move it there, remove it and install it again.",
                                other.name
                            )
                        })
                        .unwrap_or_default();
                    notes.push(format!(
                        "{name} is not offered by {} any more, so it was left as it is.{elsewhere}",
                        record.repository
                    ));
                }
            }
        }
        let server = plan::learn_server(ctx).await;
        let plan = plan::resolve(ctx, &catalog, &guard.installed, wanted, server.as_ref())?;
        let columns = vec![
            ("module", "Module"),
            ("from", "From"),
            ("to", "To"),
            ("reason", "Why"),
        ];
        let rows: Vec<Vec<String>> = plan
            .steps
            .iter()
            .map(|s| {
                let from = guard
                    .installed
                    .modules
                    .get(&s.entry.name)
                    .map(|r| r.version.clone())
                    .unwrap_or_default();
                vec![
                    s.entry.name.clone(),
                    from,
                    s.entry.version.clone(),
                    s.reason.clone(),
                ]
            })
            .collect();
        if rows.is_empty() {
            notes.insert(0, "Everything is up to date.".into());
            return Ok(Response::Table(Table {
                title: "Updates".into(),
                columns,
                rows,
                note: notes.join(" "),
            }));
        }
        let mut proposal = Proposal::always_asked("Update");
        plan.propose(&mut proposal, &guard.installed);
        if let Err(question) = proposal.decide(&self.consent) {
            return Ok(question);
        }
        let files = plan.download(ctx, actor).await?;
        let change = ChangeSet {
            operation: "update",
            settings: vec![],
            files,
            disable: vec![],
            enable: vec![],
        };
        let applied = guard.commit(actor, change).await?;
        notes.extend(plan.notes);
        if let Some(why) = applied.not_live {
            notes.push(format!(
                "Not reloaded live ({why}); the new code runs when Prosody restarts."
            ));
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
        Ok(Response::Table(Table {
            title: "Updated".into(),
            columns,
            rows,
            note: notes.join(" "),
        }))
    }
}
