//! `install`: fetch modules from the repositories, verified against the
//! signed index, with the community modules they depend on, and put them
//! in place in one change. With `enable`, also enable and load them: if
//! Prosody refuses, the engine undoes the whole change and says why.

use super::chosen;
use super::confirm::{Consent, Proposal, Why};
use super::plan::{self, REQUESTED};
use super::{
    enable, Access, Command, Context, ModuleChoice, OpError, ParamKind, Response, Spec, Table,
    Wanted, VERSION_SEPARATOR,
};
use super::{params, Field, Hosts, Params};
use crate::access::Actor;
use crate::engine::{ChangeSet, Placement};

/// Installs `modules` and their community dependencies, and with `enable`
/// enables them on `hosts`.
#[derive(Debug)]
pub struct Install {
    wanted: Vec<Wanted>,
    /// The names in `wanted`.
    modules: Vec<String>,
    enable: bool,
    hosts: Vec<String>,
    consent: Consent,
}

params! {
    /// What `Install` takes.
    pub struct InstallParams {
        modules: Vec<Wanted> = Field {
            label: "Modules",
            help: "One or more module names, such as cloud_notify (mod_ prefix optional); name@VERSION for a version the repository offers other than the newest.",
            kind: ParamKind::Versioned(ModuleChoice::Available),
            required: true,
        },
        enable: bool = Field {
            label: "Enable and load them",
            help: "Also enable them in modman's config file and load them now, without a restart.",
            kind: ParamKind::Boolean,
            required: false,
        },
        hosts: Hosts = enable::HOSTS,
    }
}

impl Command for Install {
    type Params = InstallParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "install",
        name: "Install modules",
        instructions: "Install modules from the configured repositories, with the community modules they need. Every archive is checked against the signed index before it is used.",
        params: InstallParams::FIELDS,
    };

    fn new(
        InstallParams {
            modules: wanted,
            enable,
            hosts,
        }: InstallParams,
        consent: Consent,
    ) -> Result<Self, OpError> {
        Ok(Install {
            modules: wanted.iter().map(|w| w.name.clone()).collect(),
            wanted,
            enable,
            hosts: hosts.0,
            consent,
        })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        // Reach Prosody before changing anything, when it will be needed.
        let hosts = match self.enable {
            true => Some(guard.live().await?.targets(&self.hosts)?),
            false => None,
        };
        let catalog = ctx.catalog();
        let mut notes = Vec::new();
        let mut requested = Vec::new();
        let by_prosodyctl = ctx.engine.prosodyctl_modules().unwrap_or_default();
        for wanted in &self.wanted {
            let name = &wanted.name;
            if let Some(record) = guard.installed.modules.get(name) {
                // A chosen version of an installed module is a change of
                // its copy: update's intent, with update's question (a
                // downgrade is asked) and its rollback, so install does
                // not do it behind another name. The version installed
                // already is said as a plain install of it is.
                if let Some(version) = wanted.version.as_ref().filter(|v| **v != record.version) {
                    return Err(OpError::conflict(format!(
                        "{name} is installed already, at {}; to change it to {version}, run `update {name}{VERSION_SEPARATOR}{version}`",
                        record.version
                    )));
                }
                notes.push(format!(
                    "{name} is installed already ({}); use update for another copy ({name}{VERSION_SEPARATOR}VERSION for a chosen one).",
                    record.version
                ));
            } else if let Some(rock) = by_prosodyctl.iter().find(|r| &r.name == name) {
                return Err(OpError::conflict(format!(
                    "mod_{name} is installed by prosodyctl ({}) in {}, which Prosody searches before modman's directory, so a copy from modman would never run; remove it with `prosodyctl remove mod_{name}` first, then install it with modman",
                    rock.version,
                    ctx.engine.prosodyctl_tree().display()
                )));
            } else if crate::prosody::has_module(ctx.engine.modules_dir(), name) {
                return Err(OpError::conflict(format!(
                    "mod_{name} is in {} but was not installed by modman; remove it by hand first, or leave it alone",
                    ctx.engine.modules_dir().display()
                )));
            } else {
                requested.push((wanted.clone(), REQUESTED.to_owned()));
            }
        }
        let server = plan::learn_server(ctx, &mut guard).await;
        let catalog = chosen::read_listed(ctx, catalog, &guard.installed, &requested).await?;
        let plan = plan::resolve(ctx, &catalog, &guard.installed, requested, server.as_ref())?;
        // A Lua library is for other modules' module:require: installed,
        // never enabled.
        let (libraries, modules): (Vec<String>, Vec<String>) =
            self.modules.iter().cloned().partition(|name| {
                plan.steps
                    .iter()
                    .any(|s| &s.entry.name == name && s.entry.library.is_some())
            });
        if hosts.is_some() {
            for library in &libraries {
                notes.push(format!(
                    "{library} is a Lua library that other modules load, not a module Prosody loads: installed, not enabled."
                ));
            }
        }
        let mut proposal = Proposal::new("Install");
        plan.propose(&mut proposal, &guard.installed);
        if let Some(hosts) = &hosts {
            for host in ctx.engine.hosts_with_own_list(hosts) {
                proposal.concern(Why::OwnModulesList, enable::own_list_concern(ctx, &host));
            }
            for placement in Placement::all(&modules, hosts) {
                let text = format!("enable {} on {}", placement.module, placement.host);
                proposal.step(text.clone(), text);
            }
            // The options a module needs are read from its code, which a
            // dry run does not download: the plan says the check is to come.
            for module in &modules {
                let text = format!(
                    "check that the options {module} requires are set on {}, once its code is downloaded and before anything changes",
                    hosts.join(", ")
                );
                proposal.step(text.clone(), text);
            }
        }
        if let Err(question) = proposal.decide(&self.consent) {
            return Ok(question);
        }
        let files = plan
            .download_for_commit(ctx, actor, &mut guard, hosts.is_some())
            .await?;
        if let Some(hosts) = &hosts {
            let live = guard.live().await?;
            refuse_missing_options(ctx, live, &plan, &files, &modules, hosts).await?;
        }
        let enabling = hosts
            .as_ref()
            .map(|hosts| Placement::all(&modules, hosts))
            .unwrap_or_default();
        let change = ChangeSet {
            operation: "install",
            settings: vec![],
            files,
            disable: vec![],
            enable: enabling,
        };
        let applied = guard.commit(actor, change).await?;
        drop(guard);
        let watched = ctx.watches.after(&ctx.engine, actor, &applied);
        let mut columns = vec![
            ("module", "Module"),
            ("version", "Version"),
            ("repository", "Repository"),
            ("reason", "Why"),
            ("files", "Files"),
        ];
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
        let installed = rows.len();
        if let Some(hosts) = &hosts {
            columns.push(("enabled", "Enabled on"));
            for (row, step) in rows.iter_mut().zip(&plan.steps) {
                // Dependencies are not enabled: their dependents load them.
                let requested = self.modules.contains(&step.entry.name);
                row.push(if requested {
                    hosts.join(", ")
                } else {
                    String::new()
                });
            }
            notes.push(format!(
                "Enabled and loaded on {}.{watched}",
                hosts.join(", ")
            ));
        }
        notes.extend(plan.notes);
        let summary = match installed {
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

/// As `enable` does, before anything changes: each module to enable is
/// read from the code just fetched, and refused if Prosody lacks an
/// option it will not load without on one of `hosts`.
async fn refuse_missing_options(
    ctx: &Context,
    live: &mut crate::engine::live::Live,
    plan: &plan::Plan<'_>,
    files: &[crate::engine::manifest::Prepared],
    modules: &[String],
    hosts: &[String],
) -> Result<(), OpError> {
    let catalog = ctx.catalog();
    for prepared in files.iter().filter(|p| modules.contains(&p.name)) {
        let Some((_, archive)) = &prepared.after else {
            continue;
        };
        let code: Vec<String> = archive
            .iter()
            .filter(|f| f.path.ends_with(".lua"))
            .map(|f| String::from_utf8_lossy(&f.data).into_owned())
            .collect();
        let readme = plan
            .steps
            .iter()
            .find(|s| s.entry.name == prepared.name)
            .map(|s| catalog.description(&s.repository.name, &s.entry.name))
            .unwrap_or_default();
        let options = crate::repo::options::module_options(&prepared.name, &code, &readme);
        for host in hosts {
            let missing = super::required::missing(&options, host, live).await?;
            if !missing.is_empty() {
                return Err(super::required::refusal(&prepared.name, host, &missing));
            }
        }
    }
    Ok(())
}
