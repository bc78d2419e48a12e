//! `rollback`: put back what a module was before its last change, from the
//! backup modman kept; without names, undo the last change as a whole.
//! A rollback is itself a change, kept and undoable like any other.

use super::{
    Command, Context, Input, ModuleChoice, OpError, Param, ParamKind, Response, Spec, Table,
};
use crate::engine::{audit, Change, Prepared};

/// Rolls back `modules`, or the last change when empty.
#[derive(Debug)]
pub struct Rollback {
    modules: Vec<String>,
    confirmed: bool,
}

impl Command for Rollback {
    const SPEC: Spec = Spec {
        node: "rollback",
        name: "Roll back",
        instructions: "Put back the copy a module had before its last change (install, update, remove or rollback). Leave the modules empty to undo the last change as a whole.",
        params: &[Param {
            var: "modules",
            label: "Modules",
            help: "Which modules to roll back; leave empty to undo the last change.",
            kind: ParamKind::Modules(ModuleChoice::Installed),
            required: false,
        }],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(Rollback {
            modules: input.modules("modules"),
            confirmed: input.confirmed,
        })
    }

    async fn apply(self, ctx: &Context, actor: &str) -> Result<Response, OpError> {
        let guard = ctx.engine.lock().await?;
        let backups = ctx.engine.backups()?;
        // (transaction, change) pairs to undo.
        let targets: Vec<(&str, &Change)> = if self.modules.is_empty() {
            let last = backups
                .last()
                .ok_or_else(|| OpError::not_found("nothing to roll back: no change is recorded"))?;
            last.changes.iter().map(|c| (last.id.as_str(), c)).collect()
        } else {
            self.modules
                .iter()
                .map(|name| {
                    backups
                        .iter()
                        .rev()
                        .find_map(|t| {
                            t.changes
                                .iter()
                                .find(|c| &c.name == name)
                                .map(|c| (t.id.as_str(), c))
                        })
                        .ok_or_else(|| {
                            OpError::not_found(format!(
                                "no earlier copy of {name} is kept; nothing was changed"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let version = |record: Option<&crate::engine::state::InstalledModule>| {
            record.map_or_else(|| "(not installed)".to_owned(), |r| r.version.clone())
        };
        let mut rows = Vec::new();
        let mut prepared = Vec::new();
        for (id, change) in targets {
            let current = guard.installed.modules.get(&change.name);
            if current.map(|r| &r.sha256) == change.before.as_ref().map(|r| &r.sha256) {
                continue;
            }
            let after = match &change.before {
                Some(record) => {
                    let files = ctx.engine.backup_files(id, &change.name)?;
                    let mut record = record.clone();
                    record.installed_at = audit::now();
                    record.installed_by = actor.to_owned();
                    Some((record, files))
                }
                None => None,
            };
            rows.push(vec![
                change.name.clone(),
                version(current),
                version(change.before.as_ref()),
            ]);
            prepared.push(Prepared {
                name: change.name.clone(),
                after,
            });
        }
        let columns = vec![("module", "Module"), ("from", "From"), ("to", "To")];
        if rows.is_empty() {
            return Ok(Response::Table(Table {
                title: "Rollback".into(),
                columns,
                rows,
                note: "Nothing to do: the modules are already as they were before that change."
                    .into(),
            }));
        }
        if !self.confirmed {
            let lines: Vec<String> = rows
                .iter()
                .map(|r| format!("{}: {} -> {}", r[0], r[1], r[2]))
                .collect();
            return Ok(Response::Confirm(format!(
                "Roll back:\n{}\nGo ahead?",
                lines.join("\n")
            )));
        }
        guard.apply(actor, "rollback", prepared).await?;
        Ok(Response::Table(Table {
            title: "Rolled back".into(),
            columns,
            rows,
            note: "Rolled back; the copies replaced are kept too, so rollback again undoes this."
                .into(),
        }))
    }
}
