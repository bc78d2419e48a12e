//! `enable`: add modules to hosts in the managed config (loaded at every
//! start) and load them now through the admin socket, without a restart.
//! If Prosody refuses one, nothing stays changed and its words are shown.

use super::activation::{self, Live};
use super::{Command, Context, Input, ModuleChoice, OpError, Param, ParamKind, Response, Spec};

/// Enables `modules` on `hosts` (every VirtualHost when empty).
#[derive(Debug)]
pub struct Enable {
    modules: Vec<String>,
    hosts: Vec<String>,
    confirmed: bool,
}

impl Command for Enable {
    const SPEC: Spec = Spec {
        node: "enable",
        name: "Enable modules",
        instructions: "Enable modules on hosts: written to modman's config file (loaded at every start) and loaded now, without a restart.",
        params: &[
            Param {
                var: "modules",
                label: "Modules",
                help: "Modules to enable: installed ones, or Prosody's own.",
                kind: ParamKind::Modules(ModuleChoice::Installed),
                required: true,
            },
            activation::ENABLE_HOSTS,
        ],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(Enable {
            modules: input.modules("modules"),
            hosts: input.modules("hosts"),
            confirmed: input.confirmed,
        })
    }

    async fn apply(self, ctx: &Context, actor: &str) -> Result<Response, OpError> {
        let _guard = ctx.engine.lock().await?;
        for module in &self.modules {
            let findable = crate::prosody::has_module(ctx.engine.modules_dir(), module)
                || crate::prosody::has_module(&ctx.config.prosody.builtin_modules, module);
            if !findable {
                return Err(OpError::not_found(format!(
                    "mod_{module} is not installed; install it first; nothing was changed"
                )));
            }
        }
        let mut live = Live::connect(ctx).await?;
        let hosts = live.targets(&self.hosts)?;
        let concerns = activation::own_list_concerns(ctx, &hosts);
        if !concerns.is_empty() && !self.confirmed {
            return Ok(Response::Confirm(format!(
                "{}\nEnable anyway?",
                concerns.join("\n")
            )));
        }
        let pairs = activation::pairs(&self.modules, &hosts);
        let newly = live.enable(ctx, &pairs).await?;
        activation::log(ctx, actor, "enable", &self.modules, &hosts)?;
        Ok(Response::Table(activation::table(
            "Enabled",
            &pairs,
            &newly,
            ("loaded now", "was loaded already"),
            format!(
                "Enabled in {}; Prosody loads them at every start.",
                ctx.config.prosody.managed_config.display()
            ),
        )))
    }
}
