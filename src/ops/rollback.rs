//! `rollback`: put back what a module was before its last change, from the
//! backup modman kept; without names, undo the last change as a whole.
//! A rollback is itself a change, kept and undoable like any other; it
//! reloads what it replaces and unloads what it takes away.

use super::activation::Around;
use super::{
    Command, Context, Input, ModuleChoice, OpError, Param, ParamKind, Response, Spec, Table,
};
use crate::engine::state::InstalledModule;
use crate::engine::Change;

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
        let mut guard = ctx.engine.lock().await?;
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
        let version = |record: Option<&InstalledModule>| {
            record.map_or_else(|| "(not installed)".to_owned(), |r| r.version.clone())
        };
        let (mut rows, mut prepared, mut replaced, mut taken) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, change) in targets {
            let current = guard.installed.modules.get(&change.name);
            if current.map(|r| &r.sha256) == change.before.as_ref().map(|r| &r.sha256) {
                continue;
            }
            rows.push(vec![
                change.name.clone(),
                version(current),
                version(change.before.as_ref()),
            ]);
            prepared.push(ctx.engine.restoring(id, change, actor)?);
            if change.before.is_some() {
                &mut replaced
            } else {
                &mut taken
            }
            .push(change.name.clone());
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
        let mut around = Around::connect(ctx).await;
        let disabled = around.before_removal(ctx, &taken).await?;
        let transaction = match guard.apply(actor, "rollback", prepared).await {
            Ok(transaction) => transaction,
            Err(e) => {
                around.restore(ctx, &disabled).await;
                return Err(e.into());
            }
        };
        if let Err(why) = around.after_replacement(&replaced).await {
            guard.revert(actor, "undo rollback", &transaction).await?;
            around.restore(ctx, &disabled).await;
            let _ = around.after_replacement(&replaced).await;
            return Err(OpError::conflict(format!("{why}; the rollback was undone")));
        }
        let mut note =
            "Rolled back; the copies replaced are kept too, so rollback again undoes this."
                .to_owned();
        note.extend(around.note().map(|n| format!(" {n}")));
        Ok(Response::Table(Table {
            title: "Rolled back".into(),
            columns,
            rows,
            note,
        }))
    }
}
