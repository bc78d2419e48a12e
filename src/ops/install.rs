//! `install`: fetch modules from the repositories, verified against the
//! signed index, with the community modules they depend on, and put them
//! in place in one transaction. With `enable`, also enable and load them:
//! if Prosody refuses, the install is undone and Prosody's words shown.

use super::activation::{self, Live};
use super::plan;
use super::{
    Command, Context, Input, ModuleChoice, OpError, Param, ParamKind, Response, Spec, Table,
};

/// Installs `modules` and their community dependencies, and with `enable`
/// enables them on `hosts`.
#[derive(Debug)]
pub struct Install {
    modules: Vec<String>,
    enable: bool,
    hosts: Vec<String>,
    confirmed: bool,
}

impl Command for Install {
    const SPEC: Spec = Spec {
        node: "install",
        name: "Install modules",
        instructions: "Install modules from the configured repositories, with the community modules they need. Every archive is checked against the signed index before it is used.",
        params: &[
            Param {
                var: "modules",
                label: "Modules",
                help: "One or more module names, such as cloud_notify (mod_ prefix optional).",
                kind: ParamKind::Modules(ModuleChoice::Available),
                required: true,
            },
            Param {
                var: "enable",
                label: "Enable and load them",
                help: "Also enable them in modman's config file and load them now, without a restart.",
                kind: ParamKind::Boolean,
                required: false,
            },
            activation::ENABLE_HOSTS,
        ],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(Install {
            modules: input.modules("modules"),
            enable: input.flag("enable"),
            hosts: input.modules("hosts"),
            confirmed: input.confirmed,
        })
    }

    async fn apply(self, ctx: &Context, actor: &str) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        // Reach Prosody before changing anything, when it will be needed.
        let mut live = match self.enable {
            true => {
                let live = Live::connect(ctx).await?;
                let hosts = live.targets(&self.hosts)?;
                Some((live, hosts))
            }
            false => None,
        };
        let catalog = ctx.catalog();
        let mut notes = Vec::new();
        let mut requested = Vec::new();
        for name in &self.modules {
            if let Some(record) = guard.installed.modules.get(name) {
                notes.push(format!(
                    "{name} is installed already ({}); use update for a newer copy.",
                    record.version
                ));
            } else if crate::prosody::has_module(ctx.engine.modules_dir(), name) {
                return Err(OpError::conflict(format!(
                    "mod_{name} is in {} but was not installed by modman; remove it by hand first, or leave it alone; nothing was changed",
                    ctx.engine.modules_dir().display()
                )));
            } else {
                requested.push((name.clone(), "requested".to_owned()));
            }
        }
        plan::learn_version(ctx).await;
        let mut plan = plan::resolve(ctx, &catalog, &guard.installed, requested)?;
        if let Some((_, hosts)) = &live {
            plan.concerns
                .extend(activation::own_list_concerns(ctx, hosts));
        }
        if let Some(question) = plan.question("Install") {
            if !self.confirmed {
                return Ok(Response::Confirm(question));
            }
        }
        let prepared = plan.download(ctx, actor).await?;
        let mut rows: Vec<Vec<String>> = plan
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
        let transaction = match prepared.is_empty() {
            true => None,
            false => Some(guard.apply(actor, "install", prepared).await?),
        };
        let mut columns = vec![
            ("module", "Module"),
            ("version", "Version"),
            ("repository", "Repository"),
            ("reason", "Why"),
            ("files", "Files"),
        ];
        if let Some((live, hosts)) = &mut live {
            let pairs = activation::pairs(&self.modules, hosts);
            if let Err(e) = live.enable(ctx, &pairs).await {
                if let Some(transaction) = &transaction {
                    guard.revert(actor, "undo install", transaction).await?;
                }
                return Err(OpError::conflict(format!(
                    "{}; the install was undone: nothing was changed",
                    e.text
                )));
            }
            activation::log(ctx, actor, "enable", &self.modules, hosts)?;
            columns.push(("enabled", "Enabled on"));
            for row in &mut rows {
                // Dependencies are not enabled: their dependents load them.
                let requested = self.modules.contains(&row[0]);
                row.push(if requested {
                    hosts.join(", ")
                } else {
                    String::new()
                });
            }
            notes.push(format!("Enabled and loaded on {}.", hosts.join(", ")));
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
            columns,
            rows,
            note: std::iter::once(summary)
                .chain(notes)
                .collect::<Vec<_>>()
                .join(" "),
        }))
    }
}
