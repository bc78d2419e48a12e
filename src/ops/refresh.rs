//! `refresh`: fetch each repository's index, check its signature, and use
//! it. A repository that is down, or serves a bad signature, keeps its
//! last good index, and the table says so.

use super::{Access, Command, Context, Input, OpError, Response, Spec, Table};
use crate::access::Actor;

/// Fetches every configured repository's index.
#[derive(Debug)]
pub struct Refresh;

impl Command for Refresh {
    const SPEC: Spec = Spec {
        // It changes modman's own state (the cached indexes).
        access: Access::Change,
        node: "refresh",
        name: "Refresh repositories",
        instructions:
            "Fetch the module index of every configured repository and check its signature.",
        params: &[],
    };

    fn parse(_input: &Input) -> Result<Self, OpError> {
        Ok(Refresh)
    }

    async fn apply(self, ctx: &Context, _actor: &Actor) -> Result<Response, OpError> {
        if ctx.config.repositories.is_empty() {
            return Err(OpError::bad_input(
                "no repositories are configured; add a [[repositories]] section to modman.toml and restart modman",
            ));
        }
        let (catalog, report) = ctx.catalog().refresh(&ctx.config, &ctx.fetcher).await;
        let installed = ctx.engine.installed()?;
        let updates = installed
            .modules
            .iter()
            .filter(|(name, record)| {
                catalog
                    .find(name)
                    .is_some_and(|(_, e)| e.sha256 != record.sha256)
            })
            .count();
        let offered = catalog.modules().len();
        ctx.set_catalog(catalog);
        let rows = report
            .into_iter()
            .map(|r| {
                let mut result = match (r.result, r.fetched) {
                    (Ok(()), _) => "ok".to_owned(),
                    (Err(e), Some(fetched)) => {
                        format!("failed, still using the index fetched {fetched}: {e}")
                    }
                    (Err(e), None) => format!("failed, no index yet: {e}"),
                };
                // What a LuaRocks server offers that modman refused.
                if !r.warnings.is_empty() {
                    result += &format!("; left out: {}", r.warnings.join("; "));
                }
                vec![
                    r.repository,
                    result,
                    r.modules.map(|n| n.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        Ok(Response::Table(Table {
            title: "Repositories".into(),
            columns: vec![
                ("repository", "Repository"),
                ("result", "Result"),
                ("modules", "Modules"),
            ],
            rows,
            note: format!(
                "{offered} modules on offer; {updates} installed module{} with an update.",
                if updates == 1 { "" } else { "s" }
            ),
        }))
    }
}
