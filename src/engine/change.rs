//! One change, whole or undone: the engine's single entry point for
//! everything that alters the host.
//!
//! A [`ChangeSet`] names the module files to swap, the placements (module
//! on host) to disable and to enable, and the operation for the history.
//! [`ChangeGuard::commit`] runs it in this order:
//!
//! 1. disable: take placements (and every placement of a module whose
//!    files go away) out of the managed config, and unload them;
//! 2. files: the journaled swap of [`super::transaction`];
//!    2b. options: module options written to the managed config, read
//!    by Prosody, and the modules concerned reloaded where loaded;
//! 3. enable: add placements to the managed config, and load them;
//! 4. reload: modules given new files, where they were loaded (an update,
//!    or a copy of a module Prosody had loaded from elsewhere, which then
//!    runs from modman's copy);
//! 5. release: note what the loads pulled in with `module:depends`, and
//!    unload what was pulled in earlier and nothing needs any more;
//! 6. history: one line for the whole change.
//!
//! Whatever step fails, the steps already done are undone in reverse
//! order: files, config and live state. The error carries an [`Outcome`]
//! that says what is true afterwards, so no message has to guess.
//!
//! Each step is first recorded in the change journal ([`super::journal`]),
//! so a change that modman cannot finish (killed, crashed, or still
//! running when a stop's grace ran out) is undone at the next start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::admin_socket::ModuleAction;
use super::faults::Step;
use super::journal::{Begun, ChangeJournal};
use super::live::{Live, LoadedMap};
use super::managed_config::{HostModules, LuaValue, ManagedConfig, Scope};
use super::manifest::{Prepared, SettingChange, Transaction};
use super::placement::Placement;
use super::scope::GLOBAL;
use super::stage::Stage;
use super::state::PulledIn;
use super::transaction::{self, Backup, Meta};
use super::{audit, io, ChangeGuard, EngineError};
use crate::access::Actor;

/// One module option to set (`Some`) or unset (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The module it is for: reloaded where loaded, so it takes effect.
    pub module: String,
    pub scope: Scope,
    pub name: String,
    pub value: Option<LuaValue>,
    /// Never shown, logged or put in the history.
    pub secret: bool,
}

/// A whole change, as planned by an operation.
pub struct ChangeSet {
    /// The history's name for it: install, update, remove...
    pub operation: &'static str,
    /// Module directories to put in place (or remove, with no files).
    pub files: Vec<Prepared>,
    /// Placements to take out of the managed config and unload, first.
    pub disable: Vec<Placement>,
    /// Module options to write, after the files and before enabling.
    pub settings: Vec<Setting>,
    /// Placements to add to the managed config and load, after the files.
    pub enable: Vec<Placement>,
}

/// What is true after a change failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It failed before changing anything.
    NothingChanged,
    /// It changed things, then undid every one of them.
    Undone,
    /// Some of it could not be undone: what is left, and what to do.
    PartlyChanged(String),
}

/// A change that failed, and what that left.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ChangeError {
    pub error: EngineError,
    pub outcome: Outcome,
}

impl From<EngineError> for ChangeError {
    /// An error before the first step: nothing was changed.
    fn from(error: EngineError) -> Self {
        let outcome = match error {
            EngineError::Stuck(ref what) => Outcome::PartlyChanged(what.clone()),
            _ => Outcome::NothingChanged,
        };
        ChangeError { error, outcome }
    }
}

/// What a committed change did beyond its files.
#[derive(Debug, Default)]
pub struct Applied {
    /// Placements loaded now that were not loaded before.
    pub loaded: Vec<Placement>,
    /// Placements unloaded.
    pub unloaded: Vec<Placement>,
    /// Modules reloaded with their new files or options.
    pub reloaded: Vec<Placement>,
    /// Modules unloaded because nothing needs them any more: those a
    /// module that is gone now had pulled in (`module:depends`).
    pub released: Vec<Placement>,
    /// The options as they were and are now.
    pub settings: Vec<SettingChange>,
    /// Why the running server was not told (its admin socket could not
    /// be reached): the new files take effect when Prosody restarts.
    pub not_live: Option<String>,
    /// The transaction that kept the files replaced, for putting them
    /// back; `None` when no file changed.
    pub transaction: Option<String>,
}

/// A step done, and so a step to undo if a later one fails.
enum Done {
    /// The managed config was written; this was the text before.
    Config(ManagedConfig),
    Unloaded(Placement),
    Files(Arc<Transaction>),
    /// Modules were loaded; this was what was loaded before.
    Loaded(LoadedMap),
    /// A reload of new files or options was attempted here.
    Reloaded(Placement),
    /// Prosody read its config again (its undo: read it again once the
    /// config is back).
    ConfigReloaded,
    /// The record kept for rollback, by transaction id.
    Record(String),
    /// The record of pulled-in modules was written; this was it before.
    PulledIn(PulledIn),
}

impl ChangeGuard<'_> {
    /// Runs `change` for `actor`; see the module documentation.
    pub async fn commit(
        &mut self,
        actor: &Actor,
        change: ChangeSet,
    ) -> Result<Applied, ChangeError> {
        self.commit_because(actor, change, None).await
    }

    /// [`ChangeGuard::commit`] of a change modman makes on its own, with
    /// the `reason` its history line keeps.
    pub async fn commit_because(
        &mut self,
        actor: &Actor,
        change: ChangeSet,
        reason: Option<String>,
    ) -> Result<Applied, ChangeError> {
        let ChangeSet {
            operation,
            files,
            disable,
            settings,
            enable,
        } = change;
        if files.is_empty() && disable.is_empty() && settings.is_empty() && enable.is_empty() {
            return Ok(Applied::default());
        }
        let removed: Vec<String> = files
            .iter()
            .filter(|p| p.after.is_none())
            .map(|p| p.name.clone())
            .collect();
        let placed: Vec<String> = files
            .iter()
            .filter(|p| p.after.is_some())
            .map(|p| p.name.clone())
            .collect();
        let replaced = placed
            .iter()
            .any(|name| self.installed.modules.contains_key(name));
        let config_path = self.engine.config.prosody.managed_config.clone();
        let config = ManagedConfig::load(&config_path).map_err(EngineError::from)?;
        let touches_placements = !enable.is_empty()
            || !disable.is_empty()
            || !settings.is_empty()
            || removed.iter().any(|m| !config.hosts_of(m).is_empty());
        let placed_names = placed.iter().map(String::as_str);
        let asks = touches_placements || self.asks_prosody(placed_names, !removed.is_empty())?;
        let (live, not_live) = match asks {
            false => (None, None),
            true => match self.session().await {
                Ok(live) => (Some(live), None),
                Err(e) if touches_placements => return Err(e.into()),
                // Nothing loaded can be affected, or nothing is known to
                // be: the files change, and Prosody sees them at its next
                // start.
                Err(e) => (None, Some(e.to_string())),
            },
        };
        let mut run = Run {
            guard: self,
            actor,
            operation,
            live,
            done: Vec::new(),
            applied: Applied {
                not_live: not_live.filter(|_| !removed.is_empty() || replaced),
                ..Applied::default()
            },
            modules: named_modules(&files, &disable, &enable, &settings),
            hosts: disable
                .iter()
                .chain(&enable)
                .map(|p| p.host.clone())
                .chain(settings.iter().filter_map(|s| match &s.scope {
                    Scope::Host(host) => Some(host.clone()),
                    Scope::Global => None,
                }))
                .collect(),
            transaction: None,
            journal: None,
            reason,
        };
        let plan = Plan {
            files,
            disable,
            settings,
            enable,
            removed,
            placed,
        };
        let result = match run.steps(plan, config).await {
            Ok(()) => run
                .keep_settings_record()
                .and_then(|()| run.log("ok".into())),
            Err(e) => Err(e),
        };
        run.guard.engine.loaded.forget().await;
        // Done or undone, it may have taken the stage made ahead.
        run.guard.engine.changed.notify_one();
        match result {
            Ok(()) => {
                run.close();
                run.applied.transaction = run.transaction.as_ref().map(|t| t.id.clone());
                Ok(run.applied)
            }
            Err(error) => Err(run.fail(error).await),
        }
    }
}

/// The parts of a change set, with what the engine derived from it.
struct Plan {
    files: Vec<Prepared>,
    disable: Vec<Placement>,
    settings: Vec<Setting>,
    enable: Vec<Placement>,
    /// Modules whose files go away.
    removed: Vec<String>,
    /// Modules that get new files.
    placed: Vec<String>,
}

/// A change in progress.
struct Run<'g, 'e> {
    guard: &'g mut ChangeGuard<'e>,
    actor: &'g Actor,
    operation: &'static str,
    live: Option<Live>,
    done: Vec<Done>,
    applied: Applied,
    /// Modules and hosts the history line names.
    modules: Vec<String>,
    hosts: BTreeSet<String>,
    transaction: Option<Arc<Transaction>>,
    /// The change journal, once the first step is about to start.
    journal: Option<ChangeJournal>,
    /// Why modman makes this change on its own, for the history.
    reason: Option<String>,
}

impl Run<'_, '_> {
    async fn steps(&mut self, plan: Plan, config: ManagedConfig) -> Result<(), EngineError> {
        let ahead = self.guard.loaded_ahead.take();
        let before: LoadedMap = match (&mut self.live, ahead) {
            (Some(_), Some(ahead)) => ahead,
            (Some(live), None) => live.loaded().await?,
            (None, _) => LoadedMap::new(),
        };
        self.open_journal(&before, &plan.files)?;
        tracing::debug!("change: journal opened, what is loaded read");

        // 1. disable, and everything of modules whose files go away.
        let mut disable: BTreeSet<Placement> = plan.disable.into_iter().collect();
        for module in &plan.removed {
            let hosts = config
                .hosts_of(module)
                .into_iter()
                .chain(loaded_hosts(&before, module));
            disable.extend(hosts.map(|host| Placement {
                module: module.clone(),
                host,
            }));
        }
        let mut config = config;
        if !disable.is_empty() {
            let mut without = self.live()?.pruned(&config);
            for p in &disable {
                if let Some(section) = without.hosts.get_mut(&p.host) {
                    section.modules.remove(&p.module);
                }
            }
            without.hosts.retain(|_, h| !h.is_empty());
            self.write_config(&without, config)?;
            config = without;
            for p in &disable {
                if !loaded_hosts(&before, &p.module).any(|h| h == p.host) {
                    continue;
                }
                self.begin(Begun::Unload {
                    placement: p.clone(),
                })?;
                self.act(ModuleAction::Unload, p).await?;
                self.done.push(Done::Unloaded(p.clone()));
                self.applied.unloaded.push(p.clone());
            }
        }

        // The config and loads of an enable after new files are
        // journaled now, with no sync of their own: the files' barrier
        // makes them durable before anything moves.
        let only_loads = self.applied.unloaded.is_empty() && plan.settings.is_empty();
        if !plan.files.is_empty() && !plan.enable.is_empty() && only_loads {
            let steps = enable_steps(&loads(&before, &plan.enable));
            let paths = &self.guard.engine.paths.clone();
            if let Some(journal) = &mut self.journal {
                journal
                    .ahead(paths, steps)
                    .map_err(io("cannot write the change journal in", &paths.state_dir))?;
            }
        }

        // 2. files.
        if !plan.files.is_empty() {
            self.files(plan.files).await?;
            tracing::debug!("change: files in place");
        }

        // 2b. module options, read by Prosody and the modules concerned.
        if !plan.settings.is_empty() {
            config = self.settings(&plan.settings, config).await?;
        }

        // 3. enable.
        if !plan.enable.is_empty() {
            let live = self.live()?;
            let mut with = live.pruned(&config);
            for p in &plan.enable {
                let component = live.component_of(&p.host);
                with.hosts
                    .entry(p.host.clone())
                    .or_insert_with(|| HostModules {
                        component,
                        ..HostModules::default()
                    })
                    .modules
                    .insert(p.module.clone());
            }
            // Nothing was loaded or unloaded since `before` was read,
            // unless a module was disabled or options reloaded.
            let now = match only_loads {
                true => before.clone(),
                false => self.live()?.loaded().await?,
            };
            let loads = loads(&now, &plan.enable);
            // The config and every load journaled with one sync (none if
            // journaled before the files).
            self.begin_all(enable_steps(&loads))?;
            self.write_config(&with, config)?;
            config = with;
            self.done.push(Done::Loaded(now));
            for p in loads {
                self.act(ModuleAction::Load, p).await?;
                self.applied.loaded.push(p.clone());
            }
        }

        // 4. reload what got new files, where it was loaded and stays.
        // All journaled at once: reloading a module that had not been
        // reloaded yet, with its old files back, changes nothing.
        if self.live.is_some() {
            let reloads: Vec<Placement> = (plan.placed.iter())
                .flat_map(|module| {
                    loaded_hosts(&before, module).map(|host| Placement {
                        module: module.clone(),
                        host,
                    })
                })
                .filter(|p| !disable.contains(p))
                .collect();
            self.begin_all(
                (reloads.iter())
                    .map(|p| Begun::Reload {
                        placement: p.clone(),
                    })
                    .collect(),
            )?;
            for p in reloads {
                self.done.push(Done::Reloaded(p.clone()));
                self.act(ModuleAction::Reload, &p).await?;
                self.applied.reloaded.push(p);
            }
        }

        // 5. what the loads pulled in, and what nothing needs any more.
        if self.live.is_some() {
            self.release(&before, &plan.enable, &config).await?;
        }
        Ok(())
    }

    /// Step 5: adds to the record what is loaded now that was not before
    /// and that this change did not enable itself (Prosody loaded it for
    /// a `module:depends`), then unloads every recorded module that
    /// nothing needs any more ([`Live::needed`]), again until none is
    /// left, since one may have pulled in another. A recorded module that
    /// is no longer loaded, or that this change enabled, leaves the record.
    async fn release(
        &mut self,
        before: &LoadedMap,
        enabled: &[Placement],
        config: &ManagedConfig,
    ) -> Result<(), EngineError> {
        let state_dir = self.guard.engine.paths.state_dir.clone();
        let record =
            PulledIn::load(&state_dir).map_err(io("cannot read the state in", &state_dir))?;
        // Nothing was loaded that could pull a module in, and nothing
        // pulled in earlier waits to go: no need to ask Prosody.
        let loaded_any = !enabled.is_empty() || !self.applied.reloaded.is_empty();
        if !loaded_any && record.0.is_empty() {
            return Ok(());
        }
        let mut pulled = record.clone();
        let now = self.live()?.loaded().await?;
        let empty = BTreeSet::new();
        // What this change enabled itself leaves the record below.
        for (host, modules) in &now {
            let was = before.get(host).unwrap_or(&empty);
            pulled
                .0
                .entry(host.clone())
                .or_default()
                .extend(modules.difference(was).cloned());
        }
        let mut loaded = now;
        loop {
            let mut released = false;
            // Hosts before the global context: a shared module's global
            // instance is needed while a host still has it.
            let hosts: Vec<String> = (pulled.0.keys().filter(|h| *h != GLOBAL))
                .chain(pulled.0.keys().filter(|h| *h == GLOBAL))
                .cloned()
                .collect();
            for host in hosts {
                let modules = pulled.0.entry(host.clone()).or_default();
                let loaded_here = loaded.get(&host).unwrap_or(&empty);
                modules
                    .retain(|m| loaded_here.contains(m) && !enabled.iter().any(|p| &p.module == m));
                if modules.is_empty() {
                    continue;
                }
                let candidates = modules.clone();
                let mut needed = self.live()?.needed(&host).await?;
                // The managed config as this change wrote it: Prosody reads
                // it again only at its next start or config reload.
                needed.extend(
                    candidates
                        .iter()
                        .filter(|m| {
                            let hosts = config.hosts_of(m);
                            hosts.contains(&host) || (host == GLOBAL && !hosts.is_empty())
                        })
                        .cloned(),
                );
                for module in candidates.into_iter().filter(|m| !needed.contains(m)) {
                    let p = Placement {
                        module,
                        host: host.clone(),
                    };
                    self.begin(Begun::Unload {
                        placement: p.clone(),
                    })?;
                    self.act(ModuleAction::Unload, &p).await?;
                    self.done.push(Done::Unloaded(p.clone()));
                    if let Some(modules) = pulled.0.get_mut(&host) {
                        modules.remove(&p.module);
                    }
                    self.applied.released.push(p);
                    released = true;
                }
            }
            if !released {
                break;
            }
            loaded = self.live()?.loaded().await?;
        }
        pulled.0.retain(|_, modules| !modules.is_empty());
        if pulled != record {
            self.begin(Begun::PulledIn)?;
            pulled
                .save(&state_dir)
                .map_err(io("cannot write the state in", &state_dir))?;
            self.done.push(Done::PulledIn(record));
        }
        Ok(())
    }

    /// Step 2b: writes `settings` into `config`, has Prosody read it, and
    /// reloads each module concerned where it is loaded. Returns the
    /// config as written.
    async fn settings(
        &mut self,
        settings: &[Setting],
        config: ManagedConfig,
    ) -> Result<ManagedConfig, EngineError> {
        let live = self.live()?;
        let mut with = live.pruned(&config);
        let mut changes = Vec::new();
        for setting in settings {
            let before = with.options(&setting.scope).get(&setting.name).cloned();
            let component = match &setting.scope {
                Scope::Host(host) => live.component_of(host),
                Scope::Global => None,
            };
            with.set_option(
                &setting.scope,
                &setting.name,
                setting.value.clone(),
                component,
            );
            changes.push(SettingChange {
                module: setting.module.clone(),
                scope: setting.scope.clone(),
                name: setting.name.clone(),
                before,
                after: setting.value.clone(),
                secret: setting.secret,
            });
        }
        self.applied.settings = changes;
        self.write_config(&with, config)?;
        // Before the config's own entry, so its undo comes once the
        // config is back.
        let config_written = self.done.len() - 1;
        self.done.insert(config_written, Done::ConfigReloaded);
        self.begin(Begun::ConfigReload)?;
        self.live()?
            .config_reload()
            .await
            .map_err(EngineError::Refused)?;
        let loaded = self.live()?.loaded().await?;
        let mut modules: Vec<&str> = settings.iter().map(|s| s.module.as_str()).collect();
        modules.dedup();
        for module in modules {
            for host in loaded_hosts(&loaded, module) {
                let p = Placement {
                    module: module.to_owned(),
                    host,
                };
                self.begin(Begun::Reload {
                    placement: p.clone(),
                })?;
                self.done.push(Done::Reloaded(p.clone()));
                self.act(ModuleAction::Reload, &p).await?;
                self.applied.reloaded.push(p);
            }
        }
        Ok(with)
    }

    /// Keeps the options as they were, so `rollback` can put them back.
    fn keep_settings_record(&mut self) -> Result<(), EngineError> {
        if self.applied.settings.is_empty() {
            return Ok(());
        }
        let engine = self.guard.engine;
        let record = Transaction {
            id: transaction::transaction_id(),
            time: audit::now(),
            actor: self.actor.to_string(),
            operation: self.operation.to_owned(),
            changes: vec![],
            settings: self.applied.settings.clone(),
        };
        self.begin(Begun::Record {
            id: record.id.clone(),
        })?;
        super::backups::keep_record(&engine.paths, &record).map_err(io(
            "cannot keep the record for rollback in",
            &engine.paths.backups,
        ))?;
        self.done.push(Done::Record(record.id));
        Ok(())
    }

    /// Writes the change journal with what is true before the first step:
    /// the managed config, the pulled-in record and what is loaded, and
    /// each module's versions before and after, for the history line of an
    /// undo at start.
    fn open_journal(&mut self, before: &LoadedMap, files: &[Prepared]) -> Result<(), EngineError> {
        let engine = self.guard.engine;
        let config_path = &engine.config.prosody.managed_config;
        let config_before = match std::fs::read_to_string(config_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("cannot read the managed config", config_path)(e)),
        };
        let state_dir = &engine.paths.state_dir;
        // By name: an update of every module looks each one up.
        let files: BTreeMap<&str, &Prepared> = files.iter().map(|p| (p.name.as_str(), p)).collect();
        let version = |module: &str| {
            let before = self.guard.installed.modules.get(module);
            let after = files
                .get(module)
                .map(|p| p.after.as_ref().map(|(record, _)| record));
            audit::ModuleChange {
                module: module.to_owned(),
                from: before
                    .filter(|_| after.is_some())
                    .map(|r| r.version.clone()),
                to: after.flatten().map(|r| r.version.clone()),
            }
        };
        let mut journal = ChangeJournal {
            id: transaction::transaction_id(),
            actor: self.actor.to_string(),
            operation: self.operation.to_owned(),
            modules: self.modules.iter().map(|m| version(m)).collect(),
            hosts: self.hosts.iter().cloned().collect(),
            config_before,
            pulled_in_before: PulledIn::load(state_dir)
                .map_err(io("cannot read the state in", state_dir))?,
            loaded_before: self.live.is_some().then(|| before.clone()),
            steps: vec![],
            undone_on_disk: false,
            entry_synced: false,
        };
        journal
            .start(&engine.paths)
            .map_err(io("cannot write the change journal in", state_dir))?;
        self.journal = Some(journal);
        Ok(())
    }

    /// Records, durably, that `step` begins.
    fn begin(&mut self, step: Begun) -> Result<(), EngineError> {
        self.begin_all(vec![step])
    }

    /// Records, durably and with one sync, that each of `steps` begins.
    fn begin_all(&mut self, steps: Vec<Begun>) -> Result<(), EngineError> {
        let paths = &self.guard.engine.paths.clone();
        match &mut self.journal {
            Some(journal) => journal
                .begin_all(paths, steps)
                .map_err(io("cannot write the change journal in", &paths.state_dir)),
            None => Ok(()),
        }
    }

    /// Leaves the journal of a change that could not be wholly undone for
    /// recovery to finish the undo: before the next change, or at the next
    /// start. Its history line then does not carry the change's id, so
    /// recovery does not take it for the end of the change.
    fn leave_unfinished(&mut self) {
        if self.journal.take().is_some() {
            self.guard.engine.unfinished.store(true, Ordering::SeqCst);
        }
    }

    /// The end of the change, done or undone: its journal goes.
    fn close(&mut self) {
        let engine = self.guard.engine;
        let paths = &engine.paths;
        if self.journal.take().is_some() {
            if let Err(e) = ChangeJournal::remove(paths) {
                tracing::error!(
                    "cannot remove the change journal in {}: {e}; the next start will take the finished change for an interrupted one",
                    paths.state_dir.display()
                );
            }
        }
    }

    fn live(&mut self) -> Result<&mut Live, EngineError> {
        self.live.as_mut().ok_or_else(|| {
            EngineError::Internal("the running server is needed but not connected".into())
        })
    }

    async fn act(&mut self, action: ModuleAction, p: &Placement) -> Result<(), EngineError> {
        self.live()?
            .act(action, &p.module, &p.host)
            .await
            .map_err(EngineError::Refused)
    }

    /// Writes `config`, remembering `previous` for the undo.
    fn write_config(
        &mut self,
        config: &ManagedConfig,
        previous: ManagedConfig,
    ) -> Result<(), EngineError> {
        self.begin(Begun::Config)?;
        self.save_config(config)?;
        self.done.push(Done::Config(previous));
        Ok(())
    }

    fn save_config(&self, config: &ManagedConfig) -> Result<(), EngineError> {
        let path = &self.guard.engine.config.prosody.managed_config;
        self.guard
            .engine
            .faults
            .check(Step::ConfigWrite)
            .and_then(|()| config.save(path))
            .map_err(io("cannot write the managed config", path))
    }

    /// Step 2: the journaled file transaction, off the async threads.
    async fn files(&mut self, files: Vec<Prepared>) -> Result<(), EngineError> {
        let engine = self.guard.engine;
        let paths = engine.paths.clone();
        let installed = self.guard.installed.clone();
        let faults = engine.faults.clone();
        let actor = self.actor.to_string();
        let operation = self.operation;
        let id = transaction::transaction_id();
        self.begin(Begun::Files {
            transaction: id.clone(),
        })?;
        let durable_with = ChangeJournal::durable_paths(&paths);
        let committed = tokio::task::spawn_blocking(move || {
            let stage = Stage::open(&paths.staging, id, &files)
                .map_err(io("cannot stage the change in", &paths.staging))?;
            let meta = Meta {
                stage,
                actor: &actor,
                operation,
                durable_with,
            };
            transaction::apply(&paths, installed, meta, files, Backup::Keep, &faults)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        if let Some(journal) = &mut self.journal {
            journal.synced();
        }
        // As committed: no need to read it back.
        let (transaction, installed) = committed;
        self.guard.installed = installed;
        let transaction = Arc::new(transaction);
        self.transaction = Some(transaction.clone());
        self.done.push(Done::Files(transaction));
        Ok(())
    }

    /// Step 6: the history line, with `result`.
    fn log(&self, result: String) -> Result<(), EngineError> {
        let engine = self.guard.engine;
        let (changes, id) = match &self.transaction {
            Some(t) => (t.module_changes(), t.id.clone()),
            None => (
                self.modules
                    .iter()
                    .cloned()
                    .map(|module| audit::ModuleChange {
                        module,
                        from: None,
                        to: None,
                    })
                    .collect(),
                String::new(),
            ),
        };
        let entry = audit::Entry {
            time: audit::now(),
            actor: self.actor.to_string(),
            operation: self.operation.to_owned(),
            changes,
            result,
            transaction: id,
            change: self
                .journal
                .as_ref()
                .map(|j| j.id.clone())
                .unwrap_or_default(),
            hosts: self.hosts.iter().cloned().collect(),
            settings: self
                .applied
                .settings
                .iter()
                .map(SettingChange::describe)
                .collect(),
            reason: self.reason.clone(),
        };
        tracing::info!(
            "{} by {}: {}: {}",
            entry.operation,
            entry.actor,
            entry
                .changes
                .iter()
                .map(|c| c.module.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            entry.result
        );
        engine
            .faults
            .check(Step::Audit)
            .and_then(|()| audit::append(&engine.paths.state_dir, &entry))
            .map_err(io("cannot write the history in", &engine.paths.state_dir))
    }

    /// Undoes every step done, newest first, and says what is left.
    async fn fail(mut self, error: EngineError) -> ChangeError {
        if let EngineError::Stuck(what) = &error {
            let outcome = Outcome::PartlyChanged(what.clone());
            self.leave_unfinished();
            return ChangeError { error, outcome };
        }
        if self.done.is_empty() {
            self.close();
            return ChangeError {
                error,
                outcome: Outcome::NothingChanged,
            };
        }
        let mut left: Vec<String> = Vec::new();
        let mut reload_after_files: Vec<Placement> = Vec::new();
        while let Some(step) = self.done.pop() {
            if let Err(why) = self.undo(step, &mut reload_after_files).await {
                left.push(why);
            }
        }
        // Modules reloaded for new options: again, now that the old ones
        // are back.
        for p in reload_after_files {
            if let Err(e) = self.act(ModuleAction::Reload, &p).await {
                left.push(format!(
                    "mod_{} runs with the new options on {} ({e})",
                    p.module, p.host
                ));
            }
        }
        self.guard.engine.loaded.forget().await;
        let outcome = match left.is_empty() {
            true => Outcome::Undone,
            false => Outcome::PartlyChanged(left.join("; ")),
        };
        let result = match &outcome {
            Outcome::PartlyChanged(what) => format!("failed: {error}; partly undone: {what}"),
            _ => format!("failed: {error}; undone"),
        };
        if let Outcome::PartlyChanged(_) = outcome {
            self.leave_unfinished();
        }
        if let Err(e) = self.log(result) {
            tracing::error!("{e}");
        }
        self.close();
        ChangeError { error, outcome }
    }

    /// Undoes one step; `Err` says what stays changed.
    async fn undo(
        &mut self,
        step: Done,
        reload_after_files: &mut Vec<Placement>,
    ) -> Result<(), String> {
        match step {
            Done::Reloaded(p) => {
                reload_after_files.push(p);
                Ok(())
            }
            Done::Loaded(before) => {
                let live = self.live().map_err(|e| e.to_string())?;
                let now = live.loaded().await.map_err(|e| {
                    format!("modules loaded by this change may still be loaded ({e})")
                })?;
                let mut stuck = Vec::new();
                for (host, modules) in &now {
                    let empty = BTreeSet::new();
                    for module in modules.difference(before.get(host).unwrap_or(&empty)) {
                        if let Err(why) = live.act(ModuleAction::Unload, module, host).await {
                            stuck.push(format!("mod_{module} is still loaded on {host} ({why})"));
                        }
                    }
                }
                match stuck.is_empty() {
                    true => Ok(()),
                    false => Err(stuck.join("; ")),
                }
            }
            Done::ConfigReloaded => self
                .live()
                .map_err(|e| e.to_string())?
                .config_reload()
                .await
                .map_err(|e| {
                    format!("Prosody still holds the new options until it reloads its config ({e})")
                }),
            Done::PulledIn(previous) => {
                let state_dir = &self.guard.engine.paths.state_dir;
                previous.save(state_dir).map_err(|e| {
                    format!(
                        "{} keeps this change's record of pulled-in modules ({e})",
                        state_dir.display()
                    )
                })
            }
            Done::Record(id) => {
                let dir = self.guard.engine.paths.backups.join(&id);
                crate::fsutil::remove_dir_if_present(&dir)
                    .map_err(|e| format!("the rollback record {} stays ({e})", dir.display()))
            }
            Done::Config(previous) => self.save_config(&previous).map_err(|e| {
                format!("the managed config still has this change ({e}); fix it by hand")
            }),
            Done::Unloaded(p) => self
                .act(ModuleAction::Load, &p)
                .await
                .map_err(|e| format!("mod_{} stays unloaded on {} ({e})", p.module, p.host)),
            Done::Files(transaction) => {
                self.unapply(&transaction).await.map_err(|e| {
                    format!(
                        "the new files stay in place ({e}); use rollback to put back the old ones"
                    )
                })?;
                let mut stuck = Vec::new();
                for p in reload_after_files.drain(..) {
                    let reloaded = self.act(ModuleAction::Reload, &p).await;
                    if reloaded.is_err() {
                        if let Err(e) = self.act(ModuleAction::Load, &p).await {
                            stuck.push(format!(
                                "mod_{} is not loaded on {} ({e})",
                                p.module, p.host
                            ));
                        }
                    }
                }
                match stuck.is_empty() {
                    true => Ok(()),
                    false => Err(stuck.join("; ")),
                }
            }
        }
    }

    async fn unapply(&mut self, transaction: &Transaction) -> Result<(), EngineError> {
        let engine = self.guard.engine;
        let paths = engine.paths.clone();
        let installed = engine.installed()?;
        let faults = engine.faults.clone();
        let actor = self.actor.to_string();
        let transaction = transaction.clone();
        tokio::task::spawn_blocking(move || {
            transaction::unapply(&paths, installed, &transaction, &actor, &faults)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        if let Some(journal) = &mut self.journal {
            journal.synced();
        }
        self.guard.installed = engine.installed()?;
        Ok(())
    }
}

/// The modules a change concerns, for its history line: those whose
/// files change, else those enabled or disabled.
fn named_modules(
    files: &[Prepared],
    disable: &[Placement],
    enable: &[Placement],
    settings: &[Setting],
) -> Vec<String> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let names = files
        .iter()
        .map(|p| &p.name)
        .chain(disable.iter().chain(enable).map(|p| &p.module))
        .chain(settings.iter().map(|s| &s.module));
    names
        .filter(|name| seen.insert(name.as_str()))
        .cloned()
        .collect()
}

/// The placements of `enable` not loaded in `loaded`: those to load.
fn loads<'a>(loaded: &LoadedMap, enable: &'a [Placement]) -> Vec<&'a Placement> {
    (enable.iter())
        .filter(|p| !loaded_hosts(loaded, &p.module).any(|h| h == p.host))
        .collect()
}

/// The journal's lines for an enable: the managed config, then each
/// load. The undo of a load unloads what was not loaded before, so a
/// line for a load not yet made undoes nothing.
fn enable_steps(loads: &[&Placement]) -> Vec<Begun> {
    let each = loads.iter().map(|p| Begun::Load {
        placement: (*p).clone(),
    });
    std::iter::once(Begun::Config).chain(each).collect()
}

/// The hosts `module` is loaded on in `loaded`.
fn loaded_hosts<'a>(loaded: &'a LoadedMap, module: &'a str) -> impl Iterator<Item = String> + 'a {
    loaded
        .iter()
        .filter(move |(_, modules)| modules.contains(module))
        .map(|(host, _)| host.clone())
}
