//! `update`: replace installed modules whose repository copy changed
//! (a different SHA-256, whatever the version says), after the admin has
//! seen `from -> to` for each. The old copies are kept for rollback.

use super::activation::Around;
use super::plan;
use super::{
    Command, Context, Input, ModuleChoice, OpError, Param, ParamKind, Response, Spec, Table,
};

/// Updates `modules`, or every installed module when empty.
#[derive(Debug)]
pub struct Update {
    modules: Vec<String>,
    confirmed: bool,
}

impl Command for Update {
    const SPEC: Spec = Spec {
        node: "update",
        name: "Update modules",
        instructions: "Update installed modules to the copies the repositories offer now. You will see each change before it is made; the old copies are kept for rollback.",
        params: &[Param {
            var: "modules",
            label: "Modules",
            help: "Which installed modules to update; leave empty to update all.",
            kind: ParamKind::Modules(ModuleChoice::Installed),
            required: false,
        }],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(Update {
            modules: input.modules("modules"),
            confirmed: input.confirmed,
        })
    }

    async fn apply(self, ctx: &Context, actor: &str) -> Result<Response, OpError> {
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
            match catalog.find(&name) {
                Some((_, entry)) if entry.sha256 != record.sha256 => {
                    wanted.push((name, "update".to_owned()))
                }
                Some(_) => {}
                None => notes.push(format!(
                    "{name} is not offered by any configured repository any more."
                )),
            }
        }
        plan::learn_version(ctx).await;
        let plan = plan::resolve(ctx, &catalog, &guard.installed, wanted)?;
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
        if !self.confirmed {
            let changes: Vec<String> = rows
                .iter()
                .map(|r| {
                    if r[1].is_empty() {
                        format!("{}: install {}", r[0], r[2])
                    } else {
                        format!("{}: {} -> {}", r[0], r[1], r[2])
                    }
                })
                .collect();
            let mut question = changes.join("\n");
            if let Some(concerns) = plan.question("Update") {
                question = format!("{question}\n{concerns}");
            } else {
                question += "\nUpdate?";
            }
            return Ok(Response::Confirm(question));
        }
        let prepared = plan.download(ctx, actor).await?;
        let mut around = Around::connect(ctx).await;
        let transaction = guard.apply(actor, "update", prepared).await?;
        let names: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();
        if let Err(why) = around.after_replacement(&names).await {
            guard.revert(actor, "undo update", &transaction).await?;
            let _ = around.after_replacement(&names).await;
            return Err(OpError::conflict(format!(
                "{why}; the previous copies were put back and reloaded"
            )));
        }
        notes.extend(plan.notes);
        notes.extend(around.note());
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
