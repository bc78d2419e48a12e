//! `disable`: take modules out of the managed config and unload them now.
//! The files stay installed.

use super::confirm::{Consent, Proposal};
use super::enable::placement_table;
use super::{params, Field, Hosts, Params};
use super::{Access, Command, Context, ModuleChoice, OpError, ParamKind, Response, Spec, Table};
use crate::access::Actor;
use crate::engine::{ChangeSet, Placement};

/// Disables `modules` on `hosts` (everywhere modman enabled them when empty).
#[derive(Debug)]
pub struct Disable {
    modules: Vec<String>,
    hosts: Vec<String>,
    consent: Consent,
}

params! {
    /// What `Disable` takes.
    pub struct DisableParams {
        modules: Vec<String> = Field {
            label: "Modules",
            help: "Modules to disable: those modman enabled, installed or Prosody's own.",
            kind: ParamKind::Modules(ModuleChoice::Enabled),
            required: true,
        },
        hosts: Hosts = Field {
            label: "Hosts (empty: everywhere modman enabled them)",
            help: "Where to disable them; leave empty for everywhere modman enabled them.",
            kind: ParamKind::Hosts,
            required: false,
        },
    }
}

impl Command for Disable {
    type Params = DisableParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "disable",
        name: "Disable modules",
        instructions: "Disable modules: removed from modman's config file and unloaded now. Their files stay installed.",
        params: DisableParams::FIELDS,
    };

    fn new(
        DisableParams { modules, hosts }: DisableParams,
        consent: Consent,
    ) -> Result<Self, OpError> {
        Ok(Disable {
            modules,
            hosts: hosts.0,
            consent,
        })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        let config = ctx.engine.managed_config()?;
        let named = match self.hosts.is_empty() {
            true => None,
            false => Some(ctx.engine.live().await?.targets(&self.hosts)?),
        };
        let mut placements = Vec::new();
        for module in &self.modules {
            let hosts = named.clone().unwrap_or_else(|| config.hosts_of(module));
            placements.extend(Placement::all(std::slice::from_ref(module), &hosts));
        }
        if placements.is_empty() {
            return Ok(Response::Table(Table {
                title: "Disabled".into(),
                columns: vec![("module", "Module"), ("host", "Host"), ("state", "State")],
                rows: vec![],
                note: format!(
                    "Nothing to do: modman has not enabled {} anywhere.",
                    self.modules.join(", ")
                ),
            }));
        }
        // Asks nothing, but a dry run shows it.
        let mut proposal = Proposal::new("Disable");
        for p in &placements {
            let text = format!("{} on {}", p.module, p.host);
            proposal.step(text.clone(), text);
        }
        if let Err(plan) = proposal.decide(&self.consent) {
            return Ok(plan);
        }
        let change = ChangeSet {
            operation: "disable",
            settings: vec![],
            files: vec![],
            disable: placements.clone(),
            enable: vec![],
        };
        let applied = guard.commit(actor, change).await?;
        let mut table = placement_table(
            "Disabled",
            &placements,
            &applied.unloaded,
            ("unloaded now", "was not loaded"),
            format!(
                "Disabled; the files stay installed (remove deletes them).{}",
                super::enable::released_note(&applied.released)
            ),
        );
        let released = super::released::rows(&table.columns, &applied.released);
        table.rows.extend(released);
        Ok(Response::Table(table))
    }
}
