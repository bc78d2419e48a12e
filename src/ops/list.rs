//! `list`: the modules present in modman's module directory (the one
//! listed in Prosody's `plugin_paths`), with an optional text filter.

use super::{Command, Context, Input, OpError, Param, ParamKind, Response, Spec, Table};
use crate::engine::modules_dir;

/// Lists modules whose name contains `query` (all when `None`).
#[derive(Debug)]
pub struct List {
    query: Option<String>,
}

impl Command for List {
    const SPEC: Spec = Spec {
        node: "list",
        name: "List modules",
        instructions:
            "List the modules in modman's module directory. Leave the search empty to see all.",
        params: &[Param {
            var: "query",
            label: "Search",
            help: "Only modules whose name contains this text (case does not matter).",
            kind: ParamKind::Text,
            required: false,
        }],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        Ok(List {
            query: input.text("query").map(str::to_lowercase),
        })
    }

    async fn apply(self, ctx: &Context) -> Result<Response, OpError> {
        let dir = ctx.config.prosody.modules_dir.clone();
        let scanned = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || modules_dir::scan(&dir)
        })
        .await
        .map_err(|e| OpError::unavailable(format!("listing {} stopped: {e}", dir.display())))?;
        let modules = scanned.map_err(|e| {
            OpError::unavailable(format!(
                "cannot read the module directory {}: {e}; create it (writable by modman, in Prosody's plugin_paths) or fix prosody.modules_dir in modman.toml",
                dir.display()
            ))
        })?;
        let rows: Vec<Vec<String>> = modules
            .into_iter()
            .filter(|m| {
                self.query
                    .as_deref()
                    .is_none_or(|q| m.name.to_lowercase().contains(q))
            })
            .map(|m| {
                vec![
                    m.name,
                    m.files.len().to_string(),
                    m.path.display().to_string(),
                ]
            })
            .collect();
        let note = match (&self.query, rows.len()) {
            (Some(q), 0) => format!("No module in {} matches \"{q}\".", dir.display()),
            (None, 0) => format!("No modules in {}.", dir.display()),
            (_, n) => format!(
                "{n} module{} in {}.",
                if n == 1 { "" } else { "s" },
                dir.display()
            ),
        };
        Ok(Response::Table(Table {
            title: "Modules".into(),
            columns: vec![("module", "Module"), ("files", "Files"), ("path", "Path")],
            rows,
            note,
        }))
    }
}
