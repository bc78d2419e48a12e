//! What every operation may use: the config, the engine (the host side),
//! the catalog of modules on offer, and the fetcher for repositories.

use std::sync::{Arc, RwLock};

use super::check::ComponentProbe;
use super::input::ModuleChoice;
use super::updates::{self, UpdateStatus};
use crate::config::Config;
use crate::engine::{Engine, EngineError, Opening};
use crate::repo::catalog::Catalog;
use crate::repo::fetch::Fetcher;

/// Between a module's name and what is said of it in an option label
/// (`name - summary`); module names never contain it.
pub const LABEL_SEPARATOR: &str = " - ";

/// Everything an operation may use. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub engine: Arc<Engine>,
    /// Replaced whole by `refresh`; readers keep the one they took.
    catalog: Arc<RwLock<Arc<Catalog>>>,
    pub fetcher: Fetcher,
    /// The verified downloads of the last plan that asked, for its "yes".
    pub kept: Arc<super::kept::KeptDownloads>,
    /// How `check` tries the component handshake; set by the front end
    /// that can speak XMPP.
    pub component_probe: Option<Arc<dyn ComponentProbe>>,
    /// The health watches after changes, and the clock they run on.
    pub watches: Arc<super::health::Watches>,
    /// Where modman stands in each room it joins, for `check`; written by
    /// the chat front end.
    pub rooms: Arc<super::routes::Rooms>,
}

impl Context {
    /// Opens the engine (finishing or undoing a change a crash interrupted)
    /// and loads the cached repository indexes. Returns the context and
    /// what it found worth telling the admin.
    pub fn open(
        config: Arc<Config>,
        opening: Opening,
    ) -> Result<(Context, Vec<String>), EngineError> {
        let (engine, notes) = Engine::open(config.clone(), opening)?;
        Ok(Context::with_engine(config, engine, notes))
    }

    /// [`Context::open`] around an engine already opened.
    pub fn with_engine(
        config: Arc<Config>,
        engine: Engine,
        mut notes: Vec<String>,
    ) -> (Context, Vec<String>) {
        let (catalog, warnings) = Catalog::load(&config, engine.store());
        notes.extend(warnings);
        let watches = super::health::Watches::new(config.clone(), crate::clock::of_process());
        let ctx = Context {
            watches: Arc::new(watches),
            config,
            engine: Arc::new(engine),
            catalog: Arc::new(RwLock::new(Arc::new(catalog))),
            fetcher: Fetcher::default(),
            kept: Arc::default(),
            component_probe: None,
            rooms: Arc::default(),
        };
        (ctx, notes)
    }

    /// The catalog as of now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn set_catalog(&self, catalog: Catalog) {
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog);
    }

    /// The modules a `Modules` parameter offers, as (name, label) pairs
    /// sorted by name, for clients that show options: `name - summary`.
    pub fn module_choices(&self, choice: ModuleChoice) -> Vec<(String, String)> {
        let installed = self.engine.installed().unwrap_or_default();
        let catalog = self.catalog();
        let summary = |name: &str| catalog.find(name).map(|(_, e)| e.summary.clone());
        let labelled = |name: String, fallback: &str| {
            let about = summary(&name)
                .map(|s| crate::clean::one_line(&s))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| fallback.to_owned());
            let label = match about.is_empty() {
                true => name.clone(),
                false => format!("{name}{LABEL_SEPARATOR}{about}"),
            };
            (name, label)
        };
        let mut choices: Vec<(String, String)> = match choice {
            ModuleChoice::Available => catalog
                .modules()
                .into_iter()
                .map(|(_, entry)| entry.name.clone())
                .filter(|name| !installed.modules.contains_key(name))
                .map(|name| labelled(name, ""))
                .collect(),
            // A held module says so (and why) wherever it is picked:
            // unhold, remove, rollback and policy alike.
            ModuleChoice::Installed => installed
                .modules
                .iter()
                .map(|(name, record)| match &record.held {
                    Some(hold) => (
                        name.clone(),
                        format!(
                            "{name}{LABEL_SEPARATOR}held {}",
                            super::hold::describe(hold)
                        ),
                    ),
                    None => labelled(name.clone(), "installed"),
                })
                .collect(),
            ModuleChoice::Updatable => installed
                .modules
                .iter()
                .map(|(name, record)| {
                    match updates::status(&catalog, &self.config.repositories, name, record) {
                        UpdateStatus::Available { from, to, .. } => (
                            name.clone(),
                            format!("{name}{LABEL_SEPARATOR}update: {from} -> {}", to.version),
                        ),
                        _ => (name.clone(), format!("{name}{LABEL_SEPARATOR}no update")),
                    }
                })
                .collect(),
            ModuleChoice::Enableable => installed
                .modules
                .keys()
                .map(|name| labelled(name.clone(), "installed"))
                .chain(
                    self.builtin_modules()
                        .into_iter()
                        .filter(|name| !installed.modules.contains_key(name))
                        .map(|name| {
                            let dir = &self.config.prosody.builtin_modules;
                            let whose = crate::prosody::shipped_in(dir, &name).whose();
                            (name.clone(), format!("{name}{LABEL_SEPARATOR}{whose}"))
                        }),
                )
                .collect(),
            ModuleChoice::Enabled => {
                let enabled = self.engine.managed_config().unwrap_or_default();
                let names: std::collections::BTreeSet<String> = enabled
                    .hosts
                    .values()
                    .flat_map(|h| h.modules.iter().cloned())
                    .collect();
                names
                    .into_iter()
                    .map(|name| {
                        let hosts = enabled.hosts_of(&name).join(", ");
                        (
                            name.clone(),
                            format!("{name}{LABEL_SEPARATOR}enabled on {hosts}"),
                        )
                    })
                    .collect()
            }
        };
        choices.sort();
        choices.dedup_by(|a, b| a.0 == b.0);
        choices
    }

    /// The versions a [`ParamKind::Versioned`](super::ParamKind::Versioned)
    /// parameter offers to choose, as (`name@version`, label) pairs: each
    /// version on offer of the modules `choice` names, from an installed
    /// module's own repository, but the installed copy's; only modules
    /// with more than one version on offer, since for the others the
    /// name alone says it.
    pub fn version_choices(&self, choice: ModuleChoice) -> Vec<(String, String)> {
        let installed = self.engine.installed().unwrap_or_default();
        let catalog = self.catalog();
        let mut choices = Vec::new();
        for (name, _) in self.module_choices(choice) {
            let record = installed.modules.get(&name);
            let found = match record {
                Some(record) => catalog.find_in(&record.repository, &name),
                None => catalog.find(&name),
            };
            let Some((repository, entry)) = found.filter(|(_, e)| e.versions().nth(1).is_some())
            else {
                continue;
            };
            for (at, version) in entry.versions().enumerate() {
                if record.is_some_and(|r| r.version == version) {
                    continue;
                }
                let age = if at == 0 { "newest" } else { "earlier" };
                let value = format!("{name}{}{version}", super::VERSION_SEPARATOR);
                let label = format!("{value}{LABEL_SEPARATOR}{age}, from {}", repository.name);
                choices.push((value, label));
            }
        }
        choices
    }

    /// The names of Prosody's own modules, from its module directory
    /// (`prosody.builtin_modules`); none when it cannot be read.
    pub fn builtin_modules(&self) -> Vec<String> {
        crate::engine::modules_dir::scan(&self.config.prosody.builtin_modules)
            .map(|found| found.into_iter().map(|m| m.name).collect())
            .unwrap_or_default()
    }
}
