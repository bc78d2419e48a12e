//! `remove`: take modules out of the module directory. Refuses, unless
//! confirmed, while other installed modules depend on them. They are
//! unloaded and dropped from the managed config first; the files go to a
//! backup, so `rollback` can put them back.

use super::activation::Around;
use super::{
    Command, Context, Input, ModuleChoice, OpError, Param, ParamKind, Response, Spec, Table,
};
use crate::engine::Prepared;

/// Removes `modules`.
#[derive(Debug)]
pub struct Remove {
    modules: Vec<String>,
    confirmed: bool,
}

impl Command for Remove {
    const SPEC: Spec = Spec {
        node: "remove",
        name: "Remove modules",
        instructions: "Remove modules that modman installed: unloaded, disabled, and their files kept in a backup for rollback.",
        params: &[Param {
            var: "modules",
            label: "Modules",
            help: "One or more installed module names.",
            kind: ParamKind::Modules(ModuleChoice::Installed),
            required: true,
        }],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(Remove {
            modules: input.modules("modules"),
            confirmed: input.confirmed,
        })
    }

    async fn apply(self, ctx: &Context, actor: &str) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        let installed = guard.installed.modules.clone();
        for name in &self.modules {
            if !installed.contains_key(name) {
                return Err(
                    if crate::prosody::has_module(ctx.engine.modules_dir(), name) {
                        OpError::conflict(format!("mod_{name} was not installed by modman, so modman leaves it alone; nothing was changed"))
                    } else {
                        OpError::not_found(format!(
                            "{name} is not installed; see list installed; nothing was changed"
                        ))
                    },
                );
            }
        }
        let mut concerns = Vec::new();
        for name in &self.modules {
            let dependents: Vec<&str> = installed
                .iter()
                .filter(|(other, record)| {
                    !self.modules.contains(other) && record.dependencies.contains(name)
                })
                .map(|(other, _)| other.as_str())
                .collect();
            if !dependents.is_empty() {
                concerns.push(format!(
                    "{name} is needed by {}, which will fail to load without it.",
                    dependents.join(", ")
                ));
            }
        }
        if !concerns.is_empty() && !self.confirmed {
            return Ok(Response::Confirm(format!(
                "{}\nRemove anyway?",
                concerns.join("\n")
            )));
        }
        let rows: Vec<Vec<String>> = self
            .modules
            .iter()
            .map(|name| vec![name.clone(), installed[name].version.clone()])
            .collect();
        let mut around = Around::connect(ctx).await;
        let disabled = around.before_removal(ctx, &self.modules).await?;
        let prepared = self
            .modules
            .iter()
            .map(|name| Prepared {
                name: name.clone(),
                after: None,
            })
            .collect();
        if let Err(e) = guard.apply(actor, "remove", prepared).await {
            around.restore(ctx, &disabled).await;
            return Err(e.into());
        }
        let unloaded = if disabled.is_empty() {
            String::new()
        } else {
            " Unloaded and disabled first.".to_owned()
        };
        Ok(Response::Table(Table {
            title: "Removed".into(),
            columns: vec![("module", "Module"), ("version", "Version")],
            rows,
            note: format!(
                "Removed; the files are kept in a backup (rollback puts them back).{unloaded}"
            ),
        }))
    }
}
