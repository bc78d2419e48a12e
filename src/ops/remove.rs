//! `remove`: take modules out of the module directory. Refuses, unless
//! confirmed, while other installed modules depend on them. The files go
//! to a backup, so `rollback` can put them back.

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
        instructions:
            "Remove modules that modman installed. Their files are kept in a backup for rollback.",
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
        let guard = ctx.engine.lock().await?;
        let installed = &guard.installed.modules;
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
        let prepared = self
            .modules
            .iter()
            .map(|name| Prepared {
                name: name.clone(),
                after: None,
            })
            .collect();
        guard.apply(actor, "remove", prepared).await?;
        Ok(Response::Table(Table {
            title: "Removed".into(),
            columns: vec![("module", "Module"), ("version", "Version")],
            rows,
            note: "Removed; the files are kept in a backup (rollback puts them back).".into(),
        }))
    }
}
