//! What every operation may use: the config, the engine (the host side),
//! the catalog of modules on offer, and the fetcher for repositories.

use std::sync::{Arc, RwLock};

use super::check::ComponentProbe;
use super::input::ModuleChoice;
use crate::config::Config;
use crate::engine::{Engine, EngineError, Opening};
use crate::repo::catalog::Catalog;
use crate::repo::fetch::Fetcher;

/// Everything an operation may use. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub engine: Arc<Engine>,
    /// Replaced whole by `refresh`; readers keep the one they took.
    catalog: Arc<RwLock<Arc<Catalog>>>,
    pub fetcher: Fetcher,
    /// How `check` tries the component handshake; set by the front end
    /// that can speak XMPP.
    pub component_probe: Option<Arc<dyn ComponentProbe>>,
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
        let (catalog, warnings) = Catalog::load(&config);
        notes.extend(warnings);
        let ctx = Context {
            config,
            engine: Arc::new(engine),
            catalog: Arc::new(RwLock::new(Arc::new(catalog))),
            fetcher: Fetcher::default(),
            component_probe: None,
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

    /// Module names a `Modules` parameter offers, for clients that show
    /// options.
    pub fn module_choices(&self, choice: ModuleChoice) -> Vec<String> {
        let installed = self.engine.installed().unwrap_or_default();
        let catalog = self.catalog();
        match choice {
            ModuleChoice::Available => catalog
                .modules()
                .into_iter()
                .map(|(_, entry)| entry.name.clone())
                .filter(|name| !installed.modules.contains_key(name))
                .collect(),
            ModuleChoice::Installed => installed.modules.keys().cloned().collect(),
        }
    }
}
