//! `list`: every module on offer or on disk in one table: what is
//! installed at which version, what the repositories offer, where an
//! update waits. Modules in the module directory that modman did not
//! install are shown as unmanaged, and the modules of Prosody's directory
//! that modman enabled by whose they are (Prosody's own, or Debian's
//! prosody-modules), as info and the enable form say.

use super::input::Chosen;
use super::Consent;
use super::{params, Field, Params};
use std::collections::BTreeSet;

use super::{advisories, updates};
use super::{Access, Command, Context, OpError, ParamKind, Response, Spec, Table};
use crate::access::Actor;
use crate::engine::modules_dir;

/// Lists modules matching `query`, narrowed by `show`.
#[derive(Debug)]
pub struct List {
    query: Option<String>,
    show: Show,
}

/// Which modules a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Show {
    All,
    Installed,
    /// On offer and not installed.
    Available,
    /// Installed, with an update on offer.
    Updates,
}

impl Show {
    /// Every filter, the default first, as forms offer them.
    const EVERY: [Show; 4] = [Show::All, Show::Installed, Show::Available, Show::Updates];

    /// The choice's value: the form field's, the chat word, the CLI's.
    const fn value(self) -> &'static str {
        match self {
            Show::All => "all",
            Show::Installed => "installed",
            Show::Available => "available",
            Show::Updates => "updates",
        }
    }

    const fn label(self) -> &'static str {
        match self {
            Show::All => "All modules",
            Show::Installed => "Installed",
            Show::Available => "Available, not installed",
            Show::Updates => "With an update",
        }
    }
}

impl Chosen for Show {
    fn chosen(choice: &'static str) -> Option<Show> {
        (Show::EVERY.into_iter()).find(|show| show.value() == choice)
    }
}

/// Rows in one reply at most: a catalog of 20,000 modules would make a
/// reply over Prosody's stanza limit (512 KiB for a component), and no
/// admin reads that many; a search narrows it.
const MAX_ROWS: usize = 200;

/// The choices of the `show` parameter, from [`Show`].
const SHOW: &[(&str, &str)] = &{
    let mut choices = [("", ""); Show::EVERY.len()];
    let mut i = 0;
    while i < Show::EVERY.len() {
        choices[i] = (Show::EVERY[i].value(), Show::EVERY[i].label());
        i += 1;
    }
    choices
};

params! {
    /// What `List` takes.
    pub struct ListParams {
        show: Option<Show> = Field {
            label: "Show",
            help: "Which modules to list.",
            kind: ParamKind::Choice(SHOW),
            required: false,
        },
        query: Option<String> = Field {
            label: "Search",
            help: "Only modules whose name or summary contains this text (case does not matter).",
            kind: ParamKind::Text,
            required: false,
        },
    }
}

impl Command for List {
    type Params = ListParams;

    const SPEC: Spec = Spec {
        access: Access::Read,
        node: "list",
        name: "List modules",
        instructions: "List modules: installed, on offer in the repositories, and those with an update. Leave the search empty to see all.",
        params: ListParams::FIELDS,
    };

    fn new(ListParams { show, query }: ListParams, _consent: Consent) -> Result<Self, OpError> {
        Ok(List {
            query: query.map(|q| q.to_lowercase()),
            show: show.unwrap_or(Show::All),
        })
    }

    async fn apply(self, ctx: &Context, _actor: &Actor) -> Result<Response, OpError> {
        let installed = ctx.engine.installed()?;
        let dir = ctx.engine.modules_dir().to_owned();
        let on_disk = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || modules_dir::scan(&dir)
        })
        .await
        .map_err(|e| OpError::unavailable(format!("listing {} stopped: {e}", dir.display())))?
        .map_err(|e| {
            OpError::unavailable(format!(
                "cannot read the module directory {}: {e}; create it (writable by modman, in Prosody's plugin_paths) or fix prosody.modules_dir in modman.toml",
                dir.display()
            ))
        })?;
        let catalog = ctx.catalog();
        let status = ctx.engine.status().await;
        let (by_prosodyctl, prosodyctl_problem) = match ctx.engine.prosodyctl_modules() {
            Ok(rocks) => (rocks, None),
            Err(e) => (vec![], Some(e)),
        };
        let mut problems: Vec<String> = status.problems();
        let enabled: BTreeSet<String> = match ctx.engine.managed_config() {
            Ok(config) => config.hosts.into_values().flat_map(|h| h.modules).collect(),
            Err(e) => {
                problems.push(e.to_string());
                BTreeSet::new()
            }
        };
        let builtin: BTreeSet<String> = enabled
            .into_iter()
            .filter(|name| {
                !installed.modules.contains_key(name)
                    && crate::prosody::has_module(&ctx.config.prosody.builtin_modules, name)
            })
            .collect();
        let names: BTreeSet<String> = catalog
            .modules()
            .into_iter()
            .map(|(_, entry)| entry.name.clone())
            .chain(installed.modules.keys().cloned())
            .chain(on_disk.iter().map(|m| m.name.clone()))
            .chain(by_prosodyctl.iter().map(|r| r.name.clone()))
            .chain(builtin.iter().cloned())
            .collect();

        let (mut shown_installed, mut shown_updates) = (0, 0);
        let mut rows = Vec::new();
        for name in names {
            let record = installed.modules.get(&name);
            // An installed module's updates come from its own repository.
            let entry = match record {
                Some(r) => catalog.find_in(&r.repository, &name),
                None => catalog.find(&name),
            }
            .map(|(_, entry)| entry);
            let rock = by_prosodyctl.iter().find(|r| r.name == name);
            let unmanaged =
                record.is_none() && (rock.is_some() || on_disk.iter().any(|m| m.name == name));
            let own = record.is_none() && !unmanaged && builtin.contains(&name);
            let update = record.is_some_and(|r| {
                updates::status(&catalog, &ctx.config.repositories, &name, r).is_available()
            });
            let advisory = record
                .map(|r| {
                    advisories::kinds(&advisories::concerning(
                        &catalog,
                        &ctx.config.repositories,
                        &name,
                        r,
                    ))
                })
                .unwrap_or_default();
            let wanted = match self.show {
                Show::Installed => record.is_some() || unmanaged || own,
                Show::Available => record.is_none() && !unmanaged && !own && entry.is_some(),
                Show::Updates => update,
                Show::All => true,
            };
            let summary = entry.map(|e| e.summary.as_str()).unwrap_or_default();
            let matches = self.query.as_deref().is_none_or(|q| {
                name.to_lowercase().contains(q) || summary.to_lowercase().contains(q)
            });
            if !wanted || !matches {
                continue;
            }
            shown_installed += usize::from(record.is_some());
            shown_updates += usize::from(update);
            let installed_version = match (record, rock, unmanaged, own) {
                (Some(r), Some(_), _, _) => {
                    format!("{} (shadowed by prosodyctl's copy)", r.version)
                }
                (Some(r), None, _, _) => r.version.clone(),
                (None, Some(rock), _, _) => format!("prosodyctl {}", rock.version),
                (None, None, true, _) => "unmanaged".to_owned(),
                (None, None, false, true) => {
                    crate::prosody::shipped_in(&ctx.config.prosody.builtin_modules, &name)
                        .whose()
                        .to_owned()
                }
                (None, None, false, false) => String::new(),
            };
            rows.push(vec![
                name.clone(),
                installed_version,
                entry.map(|e| e.version.clone()).unwrap_or_default(),
                if update { "yes".into() } else { String::new() },
                advisory,
                record
                    .and_then(|r| r.held.as_ref())
                    .map(super::hold::describe)
                    .unwrap_or_default(),
                hosts_or_unknown(status.enabled_on(&name)),
                hosts_or_unknown(status.loaded_on(&name)),
                entry.and_then(|e| e.stage.clone()).unwrap_or_default(),
                summary.to_owned(),
            ]);
        }
        let mut note = format!(
            "{} module{}: {shown_installed} installed by modman, {shown_updates} with an update.",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        );
        if rows.len() > MAX_ROWS {
            note += &format!(
                " Only the first {MAX_ROWS} are shown: search for a name or a word of the summary, or show installed or updates only."
            );
            rows.truncate(MAX_ROWS);
        }
        if ctx.config.repositories.is_empty() {
            note += " No repository is configured: add a [[repositories]] section to modman.toml and restart modman.";
        }
        for stale in catalog.stale(&ctx.config.repositories) {
            note += &format!(" Stale: {stale}.");
        }
        if let Some(problem) = prosodyctl_problem {
            note += &format!(" Modules installed by prosodyctl are not shown: {problem}.");
        }
        for problem in problems {
            note += &format!(" ? = unknown: {problem}.");
        }
        Ok(Response::Table(Table {
            title: "Modules".into(),
            columns: vec![
                ("module", "Module"),
                ("installed", "Installed"),
                ("available", "Available"),
                ("update", "Update"),
                ("advisory", "Advisory"),
                ("held", "Held"),
                ("enabled", "Enabled on"),
                ("loaded", "Loaded on"),
                ("stage", "Stage"),
                ("summary", "Summary"),
            ],
            rows,
            note,
        }))
    }
}

/// Hosts, comma-separated; `?` when unknown (the note says why).
pub(super) fn hosts_or_unknown(hosts: Option<Vec<String>>) -> String {
    hosts.map_or_else(|| "?".to_owned(), |hosts| hosts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_is_offered_and_read_back_and_unset_is_all() {
        assert_eq!(SHOW.len(), Show::EVERY.len());
        assert_eq!(SHOW[0], ("all", "All modules"));
        for show in Show::EVERY {
            assert_eq!(Show::chosen(show.value()), Some(show));
        }
    }
}
