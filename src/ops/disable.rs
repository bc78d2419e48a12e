//! `disable`: take modules out of the managed config and unload them now.
//! The files stay installed.

use super::activation::{self, Live};
use super::{
    Command, Context, Input, ModuleChoice, OpError, Param, ParamKind, Response, Spec, Table,
};
use crate::engine::managed_config::ManagedConfig;

/// Disables `modules` on `hosts` (everywhere modman enabled them when empty).
#[derive(Debug)]
pub struct Disable {
    modules: Vec<String>,
    hosts: Vec<String>,
}

impl Command for Disable {
    const SPEC: Spec = Spec {
        node: "disable",
        name: "Disable modules",
        instructions: "Disable modules: removed from modman's config file and unloaded now. Their files stay installed.",
        params: &[
            Param {
                var: "modules",
                label: "Modules",
                help: "Modules to disable.",
                kind: ParamKind::Modules(ModuleChoice::Installed),
                required: true,
            },
            Param {
                var: "hosts",
                label: "Hosts",
                help: "Where to disable them; leave empty for everywhere modman enabled them.",
                kind: ParamKind::Hosts,
                required: false,
            },
        ],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(Disable {
            modules: input.modules("modules"),
            hosts: input.modules("hosts"),
        })
    }

    async fn apply(self, ctx: &Context, actor: &str) -> Result<Response, OpError> {
        let _guard = ctx.engine.lock().await?;
        let mut live = Live::connect(ctx).await?;
        let config = ManagedConfig::load(&ctx.config.prosody.managed_config)?;
        let mut pairs = Vec::new();
        for module in &self.modules {
            let hosts = if self.hosts.is_empty() {
                config.hosts_of(module)
            } else {
                live.targets(&self.hosts)?
            };
            pairs.extend(hosts.into_iter().map(|host| (module.clone(), host)));
        }
        if pairs.is_empty() {
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
        let unloaded = live.disable(ctx, &pairs).await?;
        let hosts: Vec<String> = pairs.iter().map(|(_, h)| h.clone()).collect();
        activation::log(ctx, actor, "disable", &self.modules, &hosts)?;
        Ok(Response::Table(activation::table(
            "Disabled",
            &pairs,
            &unloaded,
            ("unloaded now", "was not loaded"),
            "Disabled; the files stay installed (remove deletes them).".into(),
        )))
    }
}
