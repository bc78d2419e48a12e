//! `install`: fetch modules from the repositories, verified against the
//! signed index, with the community modules they depend on, and put them
//! in place in one transaction.

use super::plan;
use super::{
    Command, Context, Input, ModuleChoice, OpError, Param, ParamKind, Response, Spec, Table,
};

/// Installs `modules` and their community dependencies.
#[derive(Debug)]
pub struct Install {
    modules: Vec<String>,
    confirmed: bool,
}

impl Command for Install {
    const SPEC: Spec = Spec {
        node: "install",
        name: "Install modules",
        instructions: "Install modules from the configured repositories, with the community modules they need. Every archive is checked against the signed index before it is used.",
        params: &[Param {
            var: "modules",
            label: "Modules",
            help: "One or more module names, such as cloud_notify (mod_ prefix optional).",
            kind: ParamKind::Modules(ModuleChoice::Available),
            required: true,
        }],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(Install {
            modules: input.modules("modules"),
            confirmed: input.confirmed,
        })
    }

    async fn apply(self, ctx: &Context, actor: &str) -> Result<Response, OpError> {
        let guard = ctx.engine.lock().await?;
        let catalog = ctx.catalog();
        let mut notes = Vec::new();
        let mut requested = Vec::new();
        for name in self.modules {
            if let Some(record) = guard.installed.modules.get(&name) {
                notes.push(format!(
                    "{name} is installed already ({}); use update for a newer copy.",
                    record.version
                ));
            } else if crate::prosody::has_module(ctx.engine.modules_dir(), &name) {
                return Err(OpError::conflict(format!(
                    "mod_{name} is in {} but was not installed by modman; remove it by hand first, or leave it alone; nothing was changed",
                    ctx.engine.modules_dir().display()
                )));
            } else {
                requested.push((name, "requested".to_owned()));
            }
        }
        let plan = plan::resolve(ctx, &catalog, &guard.installed, requested)?;
        if let Some(question) = plan.question("Install") {
            if !self.confirmed {
                return Ok(Response::Confirm(question));
            }
        }
        let prepared = plan.download(ctx, actor).await?;
        let rows: Vec<Vec<String>> = plan
            .steps
            .iter()
            .map(|s| {
                vec![
                    s.entry.name.clone(),
                    s.entry.version.clone(),
                    s.repository.name.clone(),
                    s.reason.clone(),
                    s.entry.files.len().to_string(),
                ]
            })
            .collect();
        if !prepared.is_empty() {
            guard.apply(actor, "install", prepared).await?;
        }
        notes.extend(plan.notes);
        let summary = match rows.len() {
            0 => "Nothing was installed.".to_owned(),
            n => format!(
                "Installed {n} module{} into {}.",
                if n == 1 { "" } else { "s" },
                ctx.engine.modules_dir().display()
            ),
        };
        Ok(Response::Table(Table {
            title: "Installed".into(),
            columns: vec![
                ("module", "Module"),
                ("version", "Version"),
                ("repository", "Repository"),
                ("reason", "Why"),
                ("files", "Files"),
            ],
            rows,
            note: std::iter::once(summary)
                .chain(notes)
                .collect::<Vec<_>>()
                .join(" "),
        }))
    }
}
