//! What happens on the host. The engine owns every change to it, whole:
//! module files ([`transaction`]: journaled, crash-safe), the managed
//! config ([`managed_config`]: what Prosody loads at its next start), the
//! running server ([`live`]: load, unload, reload through the admin
//! socket), backups for rollback ([`backups`]) and the history
//! ([`audit`]). One entry point, [`ChangeGuard::commit`] in [`change`],
//! runs a whole change and undoes the steps done, in reverse, whichever
//! step fails; its error says truthfully what state things are in.
//!
//! Operations above plan and word; they never open a socket, write a file
//! or write an undo themselves. Start-up [`recovery`] finishes or undoes a
//! change a crash cut short, from its [`journal`].

pub mod admin_socket;
pub mod audit;
mod backups;
pub mod change;
pub mod copy;
#[cfg(test)]
pub(crate) mod fake;
pub mod faults;
pub mod health;
pub mod hold;
pub mod include;
mod journal;
pub mod live;
pub mod managed_config;
pub mod manifest;
pub mod modules_dir;
mod placement;
pub mod policy;
pub mod prosody_cfg;
pub mod records;
mod recovery;
pub mod scope;
mod stage;
pub mod state;
#[cfg(test)]
mod tests;
pub mod transaction;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::repo::luarocks::installed::{self, InstalledRock};
use crate::store::Store;
use admin_socket::AdminError;
use live::{Connect, Live, LoadedCache, LoadedMap, ServerInfo, Sessions, SocketConnector, Status};
use managed_config::{ManagedConfig, ManagedConfigError};
use manifest::Transaction;
use state::{Installed, InstalledModule};

pub use change::{ChangeError, ChangeSet, Outcome};
pub use placement::Placement;
pub use scope::GLOBAL;

/// A failure of the engine, saying what and where.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is in {} but was not installed by modman, so nothing was put over it; remove it by hand first, or leave it alone", dir.display())]
    Unmanaged {
        /// `mod_x`, or a library's directory and whose it is.
        what: String,
        dir: PathBuf,
    },
    #[error("another modman process is changing modules right now (state lock {0} is held); try again when it has finished")]
    Busy(PathBuf),
    #[error(transparent)]
    Prosody(#[from] AdminError),
    #[error(transparent)]
    ManagedConfig(#[from] ManagedConfigError),
    #[error("Prosody serves no host `{name}` (it serves: {})", known.join(", "))]
    NoSuchHost { name: String, known: Vec<String> },
    #[error("{0} is an external component; Prosody loads no modules for it")]
    ExternalComponent(String),
    /// Prosody refused to load, unload or reload, in its own words.
    #[error("{0}")]
    Refused(String),
    /// A file change whose undo failed too: the journal stays, and the
    /// next start finishes the undo.
    #[error("{0}")]
    Stuck(String),
    #[error("the change stopped unexpectedly: {0}")]
    Internal(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_owned();
    move |source| EngineError::Io { what, path, source }
}

/// Where everything lives, derived from the config.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    modules_dir: PathBuf,
    state_dir: PathBuf,
    staging: PathBuf,
    backups: PathBuf,
    journal: PathBuf,
    lock: PathBuf,
}

impl Paths {
    fn new(config: &Config) -> Paths {
        Paths::at(config.prosody.modules_dir.clone(), config.state_dir.clone())
    }

    /// Where everything lives for a module directory and a state
    /// directory.
    fn at(modules_dir: PathBuf, state_dir: PathBuf) -> Paths {
        Paths {
            staging: modules_dir.join(".modman-staging"),
            backups: state_dir.join("backups"),
            journal: state_dir.join("journal.json"),
            lock: state_dir.join("lock"),
            modules_dir,
            state_dir,
        }
    }

    /// Where module `name` with `record` lives (see
    /// [`InstalledModule::directory`]).
    fn live(&self, name: &str, record: &state::InstalledModule) -> PathBuf {
        self.modules_dir.join(record.directory(name))
    }
}

/// What an engine is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Changes: recovery runs first, missing state is created.
    ToChange,
    /// Reading alone, by a user who does not own the state: nothing is
    /// written.
    ToRead,
}

/// modman's side of the host. One per process; cheap to share.
pub struct Engine {
    config: Arc<Config>,
    paths: Paths,
    /// What the repository layer keeps in `state_dir`, handed down to it.
    store: Store,
    change: tokio::sync::Mutex<()>,
    sessions: Sessions,
    /// What modman knows of the running Prosody.
    pub server: ServerInfo,
    loaded: LoadedCache,
    faults: Arc<faults::Faults>,
    /// A change cut short, undone on disk at open, whose undo in the
    /// running server and history line wait for [`Engine::settle`].
    interrupted: std::sync::Mutex<Option<journal::ChangeJournal>>,
    /// A change in this process could not be wholly undone: recovery runs
    /// again before the next change.
    unfinished: std::sync::atomic::AtomicBool,
    /// Told after each change, for [`Engine::tidy_while_idle`].
    changed: tokio::sync::Notify,
}

/// How long after a change (or the start) [`Engine::tidy_while_idle`]
/// waits before its work: the change's answer has gone out and been read
/// by then, so the work takes no CPU from it.
const IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// Held while a change is planned and applied: no other change can start,
/// in this process or another (the CLI), until it is dropped.
pub struct ChangeGuard<'a> {
    engine: &'a Engine,
    _in_process: tokio::sync::MutexGuard<'a, ()>,
    _across_processes: std::fs::File,
    _no_trims: crate::allocator::ChangeInProgress,
    /// The state as it was when the lock was taken.
    pub installed: Installed,
    /// The session with the running Prosody that the change was planned
    /// on, which its commit goes on: one trip to Prosody for the hosts
    /// per change, not one for the plan and another for the commit.
    live: Option<Live>,
    /// What Prosody had loaded, read by [`ChangeGuard::read_loaded_ahead`]
    /// for the commit that follows, which needs it first.
    loaded_ahead: Option<LoadedMap>,
}

impl ChangeGuard<'_> {
    /// Whether a commit that places new files for the modules `placed`
    /// (and removes some, if `removes`), and neither enables, disables
    /// nor configures anything, must ask the running Prosody what it has
    /// loaded: when a copy it replaces or removes may be loaded (to
    /// reload or unload it: modman's, or one of that name in Prosody's
    /// own module directory, which a community copy shadows), or modules
    /// that earlier enables pulled in wait to be unloaded once nothing
    /// needs them. New modules' files alone change nothing Prosody runs,
    /// so their install asks nothing: the round trip to the admin socket
    /// was the longest wait of an install, 0.4 to 3.5 ms in a profile
    /// where its download took 0.7.
    pub fn asks_prosody<'n>(
        &self,
        mut placed: impl Iterator<Item = &'n str>,
        removes: bool,
    ) -> Result<bool, EngineError> {
        let paths = &self.engine.paths;
        let builtin = &self.engine.config.prosody.builtin_modules;
        Ok(removes
            || placed.any(|name| {
                self.installed.modules.contains_key(name)
                    || crate::prosody::has_module(builtin, name)
            })
            || !state::PulledIn::load(&paths.state_dir)
                .map_err(io("cannot read the state in", &paths.state_dir))?
                .0
                .is_empty())
    }

    /// Reads what the running Prosody has loaded now, for this guard's
    /// next commit, which placing the files of `modules` (and enabling
    /// them, if `enabling`) would otherwise ask first thing: an operation
    /// asks it while it does something else (downloads), and the commit
    /// starts without the round trip. Nothing loads or unloads meanwhile,
    /// as the change lock is held. Unanswered, the commit asks itself;
    /// not asked when the commit will not ask ([`ChangeGuard::asks_prosody`]).
    pub async fn read_loaded_ahead<'n>(
        &mut self,
        modules: impl Iterator<Item = &'n str>,
        enabling: bool,
    ) {
        if !enabling && matches!(self.asks_prosody(modules, false), Ok(false)) {
            return;
        }
        let read = match self.live().await {
            Ok(live) => live.loaded().await.map_err(EngineError::from),
            Err(e) => Err(e),
        };
        match read {
            Ok(loaded) => self.loaded_ahead = Some(loaded),
            Err(e) => tracing::debug!("what is loaded, read ahead: {e}"),
        }
    }

    /// What the running Prosody cannot change without a restart, for a
    /// plan's checks: from this change's session if it has one, else
    /// from the connection kept since the last session if that is still
    /// open (the same Prosody process: nothing asked, where a session's
    /// first question, the hosts, cost an install 0.4 to 0.6 ms with
    /// Prosody idle before it), else from a new session.
    pub async fn server_facts(
        &mut self,
        builtin_dir: &Path,
    ) -> Result<crate::prosody::ServerFacts, EngineError> {
        if let Some(live) = &self.live {
            return Ok(live.server_facts(builtin_dir));
        }
        if let Some(lasting) = self.engine.sessions.kept_lasting() {
            return Ok(live::facts_of(&lasting, builtin_dir));
        }
        Ok(self.live().await?.server_facts(builtin_dir))
    }

    /// The session with the running Prosody for this change, opened on
    /// first use ([`Engine::live`]) and kept for its commit.
    pub async fn live(&mut self) -> Result<&mut Live, EngineError> {
        let live = match self.live.take() {
            Some(live) => live,
            None => self.engine.live().await?,
        };
        Ok(self.live.insert(live))
    }

    /// The session kept by [`ChangeGuard::live`] if its last question was
    /// answered whole, else a new one.
    async fn session(&mut self) -> Result<Live, EngineError> {
        match self.live.take().filter(Live::answered_whole) {
            Some(live) => Ok(live),
            None => self.engine.live().await,
        }
    }
}

impl Engine {
    /// Opens the engine on the running Prosody's admin socket: creates
    /// `state_dir`, finishes or undoes a change interrupted by a crash,
    /// removes leftover staging, forgets modules that vanished from disk,
    /// and creates an empty managed config if there is none. Returns a
    /// note per thing it did.
    pub fn open(
        config: Arc<Config>,
        opening: Opening,
    ) -> Result<(Engine, Vec<String>), EngineError> {
        let connector = SocketConnector(config.prosody.admin_socket.clone());
        Engine::open_with(config, Box::new(connector), opening)
    }

    /// [`Engine::open`] with another way to reach the running server.
    pub fn open_with(
        config: Arc<Config>,
        connector: Box<dyn Connect>,
        opening: Opening,
    ) -> Result<(Engine, Vec<String>), EngineError> {
        let paths = Paths::new(&config);
        let mut notes = Vec::new();
        let mut interrupted = None;
        let faults = Arc::<faults::Faults>::default();
        if opening == Opening::ToRead {
            // Someone else's state (root reading prosody's): nothing may be
            // written, not even by recovery.
        } else if paths.modules_dir.is_dir() {
            std::fs::create_dir_all(&paths.backups).map_err(io("cannot create", &paths.backups))?;
            let lock = lock_file(&paths, LOCK_PATIENCE)?;
            (notes, interrupted) =
                recovery::recover(&paths, &config.prosody.managed_config, &faults)?;
            if let Err(e) = backups::prune(&paths) {
                notes.push(format!(
                    "cannot remove the oldest backups in {}: {e}; they stay until modman can",
                    paths.backups.display()
                ));
            }
            drop(lock);
            notes.extend(health::stood_unchecked(&paths.state_dir));
        } else {
            // Nothing can have been installed there; `check` and every
            // change report it, with the fix.
            notes.push(format!(
                "the module directory {} does not exist; create it, writable by modman and listed in Prosody's plugin_paths",
                paths.modules_dir.display()
            ));
        }
        // prosody.cfg.lua Includes this file; Prosody will not start if
        // it is missing. Read back now, so a hand edit is reported at
        // start, not at the next enable.
        let managed = &config.prosody.managed_config;
        if opening == Opening::ToRead {
        } else if !managed.exists() {
            match ManagedConfig::default().save(managed) {
                Ok(()) => notes.push(format!("created the empty managed config {}", managed.display())),
                Err(e) => notes.push(format!(
                    "cannot create the managed config {}: {e}; Prosody will not start while prosody.cfg.lua Includes a missing file",
                    managed.display()
                )),
            }
        } else if let Err(e) = ManagedConfig::load(managed) {
            notes.push(format!(
                "{e}; enable and disable refuse to run until it is fixed"
            ));
        }
        let engine = Engine {
            store: Store::at(&paths.state_dir),
            config,
            paths,
            change: tokio::sync::Mutex::new(()),
            sessions: Sessions::new(connector),
            server: ServerInfo::default(),
            loaded: LoadedCache::default(),
            faults,
            interrupted: std::sync::Mutex::new(interrupted),
            unfinished: Default::default(),
            changed: tokio::sync::Notify::new(),
        };
        Ok((engine, notes))
    }

    /// The files of `state_dir` that the repository layer keeps (its
    /// indexes, rock cache and pins), for the calls that keep them: the
    /// engine owns `state_dir`, `repo` may not reach up to it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The managed modules, as last committed. Never waits for a change.
    pub fn installed(&self) -> Result<Installed, EngineError> {
        Installed::load(&self.paths.state_dir)
            .map_err(io("cannot read the state in", &self.paths.state_dir))
    }

    /// Installed module `name`'s files as they are on disk now.
    pub fn installed_copy(&self, name: &str, record: &InstalledModule) -> Vec<copy::CopyFile> {
        copy::read(&self.paths.modules_dir, name, record)
    }

    /// The module directory.
    pub fn modules_dir(&self) -> &Path {
        &self.paths.modules_dir
    }

    /// The audit log, oldest first. Never waits for a change.
    pub fn history(&self) -> Result<Vec<audit::Entry>, EngineError> {
        audit::read(&self.paths.state_dir)
            .map_err(io("cannot read the history in", &self.paths.state_dir))
    }

    /// Kept transactions, oldest first, for rollback.
    pub fn backups(&self) -> Result<Vec<Transaction>, EngineError> {
        backups::list(&self.paths)
    }

    /// The change that puts `change.name` back as it was before
    /// transaction `id`: its old files from the backup, or its removal.
    pub fn restoring(
        &self,
        id: &str,
        change: &manifest::RecordChange,
        actor: &crate::access::Actor,
    ) -> Result<manifest::Prepared, EngineError> {
        backups::restoring(&self.paths, id, change, &actor.to_string())
    }

    /// The modules `prosodyctl install` put in Prosody's
    /// `installer_plugin_path`: shown, never touched. None when that tree
    /// does not exist.
    pub fn prosodyctl_modules(&self) -> Result<Vec<InstalledRock>, String> {
        let tree = &self.config.prosody.installer_plugin_path;
        if !tree.join(installed::MANIFEST).is_file() {
            return Ok(vec![]);
        }
        installed::read(tree).map_err(|e| e.to_string())
    }

    /// Where `prosodyctl install` puts modules.
    pub fn prosodyctl_tree(&self) -> &Path {
        &self.config.prosody.installer_plugin_path
    }

    /// The managed config as it is now.
    pub fn managed_config(&self) -> Result<ManagedConfig, EngineError> {
        Ok(ManagedConfig::load(&self.config.prosody.managed_config)?)
    }

    /// A session with the running Prosody; also learns its hosts and
    /// version.
    pub async fn live(&self) -> Result<Live, EngineError> {
        Ok(Live::connect(&self.sessions, &self.server).await?)
    }

    /// Where modules are enabled and loaded, each half possibly unknown.
    /// What is loaded is asked at most once a second.
    pub async fn status(&self) -> Status {
        let enabled =
            ManagedConfig::load(&self.config.prosody.managed_config).map_err(|e| e.to_string());
        let loaded = self.loaded.get(&self.sessions, &self.server).await;
        Status { enabled, loaded }
    }

    /// The hosts, among `hosts`, for which prosody.cfg.lua sets its own
    /// `modules_enabled`: a section of modman's for them would replace
    /// that list at the next start.
    pub fn hosts_with_own_list(&self, hosts: &[String]) -> Vec<String> {
        let own = prosody_cfg::ProsodyCfg::read(&self.config.prosody.config)
            .map(|cfg| cfg.hosts_setting("modules_enabled"))
            .unwrap_or_default();
        hosts.iter().filter(|h| own.contains(*h)).cloned().collect()
    }

    /// Does what no change needs to wait for, for as long as the daemon
    /// runs, at start and [`IDLE_AFTER`] after each change, while
    /// no change is under way: keeps the stage of the next large change
    /// made ahead (see [`stage::make_ready`]) and removes the backups
    /// beyond those kept ([`backups::prune`]). A change that comes
    /// meanwhile waits for it (milliseconds: empty directories, an old
    /// backup); one under way, here or in the CLI, is let be, and the
    /// next change here asks again.
    pub async fn tidy_while_idle(self: Arc<Self>) {
        self.changed.notify_one();
        loop {
            self.changed.notified().await;
            tokio::time::sleep(IDLE_AFTER).await;
            let Ok(in_process) = self.change.try_lock() else {
                continue;
            };
            let paths = self.paths.clone();
            let made = tokio::task::spawn_blocking(move || {
                // Never waits: a change in another process is let be.
                let _across_processes = lock_file(&paths, std::time::Duration::ZERO)?;
                let installed = Installed::load(&paths.state_dir)
                    .map_err(io("cannot read the state in", &paths.state_dir))?;
                let names = installed.modules.into_keys().collect();
                backups::set_aside(&paths)
                    .map_err(io("cannot set the oldest backups aside in", &paths.backups))?;
                stage::make_ready(&paths.staging, &names).map_err(io(
                    "cannot make the directories of the next change ahead in",
                    &paths.staging,
                ))
            })
            .await;
            drop(in_process);
            match made {
                Ok(Ok(())) | Ok(Err(EngineError::Busy(_))) => {}
                Ok(Err(e)) => {
                    tracing::warn!("{e}; tried again after the next change (a large change makes its directories itself, only slower)")
                }
                Err(e) => tracing::warn!("the work done while idle stopped: {e}"),
            }
            // Their removal holds no lock: a change that comes meanwhile
            // waited for renames only.
            let paths = self.paths.clone();
            let removed = tokio::task::spawn_blocking(move || backups::remove_set_aside(&paths));
            if let Ok(Err(e)) = removed.await {
                tracing::warn!(
                    "cannot remove the oldest backups set aside in {}: {e}; tried again after the next change",
                    self.paths.backups.display()
                );
            }
        }
    }

    /// Whether a change is being planned or applied in this process right
    /// now: then stopping the process would cut it short.
    pub fn changing(&self) -> bool {
        self.change.try_lock().is_err()
    }

    /// Ends the recovery of a change cut short, if open found one: undoes
    /// what the running server was told (or, if it cannot be reached,
    /// leaves it to load the restored managed config at its next start)
    /// and writes the change's history line. Run at start by the
    /// component; every change does it first too.
    pub async fn settle(&self) -> Result<(), EngineError> {
        self.lock().await.map(drop)
    }

    /// [`Engine::settle`], with both locks held. A change of this process
    /// that could not be wholly undone is recovered first, as at start.
    async fn settle_locked(&self) -> Result<(), EngineError> {
        if self
            .unfinished
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            let (paths, faults) = (self.paths.clone(), self.faults.clone());
            let managed_config = self.config.prosody.managed_config.clone();
            let recovered = tokio::task::spawn_blocking(move || {
                recovery::recover(&paths, &managed_config, &faults)
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .inspect_err(|_| {
                self.unfinished
                    .store(true, std::sync::atomic::Ordering::SeqCst)
            })?;
            let (notes, pending) = recovered;
            for note in notes {
                tracing::warn!("{note}");
            }
            *self.interrupted.lock().unwrap_or_else(|e| e.into_inner()) = pending;
        }
        let Some(found) = self
            .interrupted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return Ok(());
        };
        // Another process may have settled it since this one opened.
        match journal::ChangeJournal::load(&self.paths)? {
            Some(journal) if journal.id == found.id && journal.undone_on_disk => {
                let live = self.live().await.map_err(|e| e.to_string());
                let note = journal::settle(&self.paths, &journal, live)
                    .await
                    .inspect_err(|_| {
                        *self.interrupted.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(journal.clone())
                    })?;
                self.loaded.forget().await;
                tracing::warn!("{note}");
            }
            _ => {}
        }
        Ok(())
    }

    /// Waits for any change in this process, then takes the cross-process
    /// lock (waiting up to [`LOCK_PATIENCE`] if another process holds it),
    /// and ends the recovery of a change cut short first if there is one.
    pub async fn lock(&self) -> Result<ChangeGuard<'_>, EngineError> {
        let in_process = self.change.lock().await;
        let paths = self.paths.clone();
        let file = tokio::task::spawn_blocking(move || lock_file(&paths, LOCK_PATIENCE))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        self.settle_locked().await?;
        let installed = self.installed()?;
        Ok(ChangeGuard {
            engine: self,
            _in_process: in_process,
            _across_processes: file,
            _no_trims: crate::allocator::during_a_change(),
            installed,
            live: None,
            loaded_ahead: None,
        })
    }
}

/// How long a change waits for the cross-process lock before it says
/// another modman is changing modules: long enough for the daemon's
/// moments under it between changes ([`Engine::tidy_while_idle`]), so
/// a command given then is not refused; far shorter than a change.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes the cross-process lock (blocking), waiting up to `patience`
/// while another process holds it.
fn lock_file(paths: &Paths, patience: std::time::Duration) -> Result<std::fs::File, EngineError> {
    std::fs::create_dir_all(&paths.state_dir).map_err(io("cannot create", &paths.state_dir))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.lock)
        .map_err(io("cannot open the lock", &paths.lock))?;
    let deadline = std::time::Instant::now() + patience;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(EngineError::Busy(paths.lock.clone()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", &paths.lock)(e)),
        }
    }
}
