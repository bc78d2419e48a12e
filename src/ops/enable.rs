//! `enable`: add modules to hosts in the managed config (loaded at every
//! start) and load them now through the admin socket, without a restart.
//! If Prosody refuses one, the engine undoes the whole change and the
//! error carries Prosody's words.

use super::configure;
use super::confirm::{Consent, Proposal, Why};
use super::{params, Field, Hosts, Params};
use super::{Access, Command, Context, ModuleChoice, OpError, ParamKind, Response, Spec, Table};
use crate::access::Actor;
use crate::engine::{ChangeSet, Placement};

/// The `hosts` field of the commands that enable.
pub const HOSTS: Field = Field {
    label: "Hosts (empty: every VirtualHost)",
    help: "Where to enable them; leave empty for every VirtualHost.",
    kind: ParamKind::Hosts,
    required: false,
};

/// Enables `modules` on `hosts` (every VirtualHost when empty).
#[derive(Debug)]
pub struct Enable {
    modules: Vec<String>,
    hosts: Vec<String>,
    consent: Consent,
}

params! {
    /// What `Enable` takes.
    pub struct EnableParams {
        modules: Vec<String> = Field {
            label: "Modules",
            help: "Modules to enable: installed ones, or Prosody's own (such as mam or carbons).",
            kind: ParamKind::Modules(ModuleChoice::Enableable),
            required: true,
        },
        hosts: Hosts = HOSTS,
    }
}

impl Command for Enable {
    type Params = EnableParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "enable",
        name: "Enable modules",
        instructions: "Enable modules on hosts: written to modman's config file (loaded at every start) and loaded now, without a restart.",
        params: EnableParams::FIELDS,
    };

    fn new(
        EnableParams { modules, hosts }: EnableParams,
        consent: Consent,
    ) -> Result<Self, OpError> {
        Ok(Enable {
            modules,
            hosts: hosts.0,
            consent,
        })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        for module in &self.modules {
            if let Some(library) = guard
                .installed
                .modules
                .get(module)
                .and_then(|r| r.library.as_ref())
            {
                return Err(OpError::bad_input(format!(
                    "{module} is the Lua library `{library}` that other modules load with module:require (installed as {}), not a module Prosody loads: there is nothing to enable; enable the module that needs it",
                    ctx.engine.modules_dir().join(library).display()
                )));
            }
            let findable = crate::prosody::has_module(ctx.engine.modules_dir(), module)
                || crate::prosody::has_module(&ctx.config.prosody.builtin_modules, module);
            if !findable {
                return Err(OpError::not_found(format!(
                    "mod_{module} is not installed; install it first"
                )));
            }
        }
        let mut live = ctx.engine.live().await?;
        let hosts = live.targets(&self.hosts)?;
        for module in &self.modules {
            for host in &hosts {
                let missing = configure::missing_required(ctx, module, host, &mut live).await?;
                if !missing.is_empty() {
                    return Err(super::required::refusal(module, host, &missing));
                }
            }
        }
        drop(live);
        let placements = Placement::all(&self.modules, &hosts);
        let mut proposal = Proposal::new("Enable");
        for p in &placements {
            let text = format!("{} on {}", p.module, p.host);
            proposal.step(text.clone(), text);
        }
        for host in ctx.engine.hosts_with_own_list(&hosts) {
            proposal.concern(Why::OwnModulesList, own_list_concern(ctx, &host));
        }
        if let Err(question) = proposal.decide(&self.consent) {
            return Ok(question);
        }
        let change = ChangeSet {
            operation: "enable",
            settings: vec![],
            files: vec![],
            disable: vec![],
            enable: placements.clone(),
        };
        let applied = guard.commit(actor, change).await?;
        drop(guard);
        let watched = ctx.watches.after(&ctx.engine, actor, &applied);
        Ok(Response::Table(placement_table(
            "Enabled",
            &placements,
            &applied.loaded,
            ("loaded now", "was loaded already"),
            format!(
                "Enabled in {}; Prosody loads them at every start.{watched}",
                ctx.config.prosody.managed_config.display()
            ),
        )))
    }
}

/// Why enabling on `host` needs a yes: prosody.cfg.lua sets its own
/// `modules_enabled` there.
pub fn own_list_concern(ctx: &Context, host: &str) -> String {
    format!(
        "{} sets its own modules_enabled for {host}; modman's section for {host} comes later and would replace that list at the next start (Prosody keeps the last one). Move those modules to the global modules_enabled first.",
        ctx.config.prosody.config.display()
    )
}

/// One row per placement, with `states.0` for those in `acted` and
/// `states.1` for the others.
pub fn placement_table(
    title: &str,
    placements: &[Placement],
    acted: &[Placement],
    states: (&str, &str),
    note: String,
) -> Table {
    let rows = placements
        .iter()
        .map(|p| {
            let state = match acted.contains(p) {
                true => states.0,
                false => states.1,
            };
            vec![p.module.clone(), p.host.clone(), state.to_owned()]
        })
        .collect();
    Table {
        title: title.into(),
        columns: vec![("module", "Module"), ("host", "Host"), ("state", "State")],
        rows,
        note,
    }
}

/// What a change unloaded because nothing needs it any more (modules the
/// ones it took away had pulled in), as a sentence; empty when nothing.
pub fn released_note(released: &[Placement]) -> String {
    if released.is_empty() {
        return String::new();
    }
    let each: Vec<String> = released
        .iter()
        .map(|p| match p.host.as_str() {
            crate::engine::GLOBAL => format!("{} (global)", p.module),
            host => format!("{} on {host}", p.module),
        })
        .collect();
    let (them, dependencies) = match released.len() {
        1 => ("it", "a dependency"),
        _ => ("them", "dependencies"),
    };
    format!(
        " Also unloaded {}: Prosody had loaded {them} only as {dependencies}, and nothing needs {them} now.",
        each.join(", ")
    )
}
