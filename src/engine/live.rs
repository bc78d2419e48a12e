//! The running Prosody: what it serves and has loaded, and loading,
//! unloading and reloading modules without a restart, through its admin
//! socket. The engine's changes use it; `list`, `info` and `check` read it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;

use super::admin_socket::{
    lua_string, AdminError, AdminSocket, Host, Lasting, Listed, LoadedModule, ModuleAction,
    ModuleStatus,
};
use super::managed_config::ManagedConfig;
use super::scope::Scope;
use super::scope::GLOBAL;
use super::EngineError;
use crate::prosody::{ModuleDir, ServerFacts};

/// Modules loaded now, per host name.
pub type LoadedMap = BTreeMap<String, BTreeSet<String>>;

/// Modules loaded now, per host name, each with the warn or error status
/// Prosody lists for it (`None`: neither).
pub type LoadedStatuses = BTreeMap<String, BTreeMap<String, Option<ModuleStatus>>>;

/// One session with the running server. The admin socket is the real one;
/// the engine's unit tests put an in-memory server in its place, since no
/// Prosody runs inside `cargo test --lib`.
pub trait LiveServer: Send {
    /// The hosts Prosody serves, components included.
    fn hosts(&mut self) -> BoxFuture<'_, Result<Vec<Host>, AdminError>>;
    /// What Prosody cannot change without a restart: its version, its
    /// Lua, `core.features`.
    fn lasting(&mut self) -> BoxFuture<'_, Result<Lasting, AdminError>>;
    /// The hosts, then what lasts, as a new connection asks them: here
    /// one after the other; the admin socket asks both in one round trip.
    fn hosts_and_lasting(&mut self) -> BoxFuture<'_, Result<(Vec<Host>, Lasting), AdminError>> {
        Box::pin(async move { Ok((self.hosts().await?, self.lasting().await?)) })
    }
    /// The modules loaded on `host`, with their status.
    fn loaded<'a>(
        &'a mut self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LoadedModule>, AdminError>>;
    /// The modules loaded globally (`module:set_global()`, such as
    /// host_guard), which no host lists.
    fn loaded_global(&mut self) -> BoxFuture<'_, Result<Vec<LoadedModule>, AdminError>>;
    /// The modules loaded on each of `hosts` and globally, at once: what
    /// every change asks before it starts and again after its loads.
    /// Here one question per host and one for the global modules; the
    /// admin socket answers all in one round trip.
    fn loaded_everywhere<'a>(
        &'a mut self,
        hosts: &'a [String],
    ) -> BoxFuture<'a, Result<Listed, AdminError>> {
        Box::pin(async move {
            let mut listed = Vec::new();
            for host in hosts {
                listed.push((Scope::Host(host.clone()), self.loaded(host).await?));
            }
            listed.push((Scope::Global, self.loaded_global().await?));
            Ok(listed)
        })
    }
    /// Loads, unloads or reloads `module` on `host`; the inner `Err` is
    /// Prosody's refusal in its own words.
    fn act<'a>(
        &'a mut self,
        action: ModuleAction,
        module: &'a str,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Result<(), String>, AdminError>>;
    /// The value Prosody holds for option `key` on `host` (`*`: global),
    /// serialized as Lua; `nil` when unset.
    fn config_get<'a>(
        &'a mut self,
        host: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<String, AdminError>>;
    /// Makes Prosody read its config files again; the inner `Err` is its
    /// refusal (a syntax error, say) in its own words.
    fn config_reload(&mut self) -> BoxFuture<'_, Result<Result<(), String>, AdminError>>;
    /// The modules that must stay loaded on `host` (`*`: globally): the
    /// config loads them there or a loaded module depends on them.
    fn needed<'a>(
        &'a mut self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<String>, AdminError>>;
    /// Prosody's XMPP ping from its host `from` to the remote `to`, over
    /// s2s, waiting up to `within`: the round trip, or the inner `Err`
    /// with Prosody's words for why there was no answer.
    fn ping<'a>(
        &'a mut self,
        from: &'a str,
        to: &'a str,
        within: Duration,
    ) -> BoxFuture<'a, Result<Result<Duration, String>, AdminError>>;
    /// Whether the connection is still open with nothing unread, known
    /// without a question: Prosody stopping or restarting closes it,
    /// which shows at once.
    fn still_open(&self) -> bool;
}

/// The facts of [`ServerFacts::objections`] in what a connection learnt
/// (`lasting`), with Prosody's own modules in `builtin_dir`.
pub fn facts_of(lasting: &Lasting, builtin_dir: &Path) -> ServerFacts {
    ServerFacts {
        builtin: ModuleDir::new(builtin_dir),
        features: lasting.features.clone(),
        lua: lasting.lua.clone(),
    }
}

/// What the running server already has, for the install checks of
/// [`ServerFacts::objections`].
pub async fn server_facts(
    server: &mut dyn LiveServer,
    builtin_dir: &Path,
) -> Result<ServerFacts, AdminError> {
    Ok(facts_of(&server.lasting().await?, builtin_dir))
}

/// Opens sessions with the running server.
pub trait Connect: Send + Sync {
    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn LiveServer>, AdminError>>;
}

/// Connects through the admin socket at a path.
pub struct SocketConnector(pub PathBuf);

impl Connect for SocketConnector {
    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn LiveServer>, AdminError>> {
        Box::pin(async move {
            let socket = AdminSocket::connect(&self.0).await?;
            Ok(Box::new(socket) as Box<dyn LiveServer>)
        })
    }
}

impl LiveServer for AdminSocket {
    fn still_open(&self) -> bool {
        AdminSocket::still_open(self)
    }
    fn hosts(&mut self) -> BoxFuture<'_, Result<Vec<Host>, AdminError>> {
        Box::pin(AdminSocket::hosts(self))
    }
    fn lasting(&mut self) -> BoxFuture<'_, Result<Lasting, AdminError>> {
        Box::pin(AdminSocket::lasting(self))
    }
    fn hosts_and_lasting(&mut self) -> BoxFuture<'_, Result<(Vec<Host>, Lasting), AdminError>> {
        Box::pin(AdminSocket::hosts_and_lasting(self))
    }
    fn loaded<'a>(
        &'a mut self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LoadedModule>, AdminError>> {
        Box::pin(self.loaded_with_status(Scope::Host(host.to_owned())))
    }
    fn loaded_global(&mut self) -> BoxFuture<'_, Result<Vec<LoadedModule>, AdminError>> {
        Box::pin(self.loaded_with_status(Scope::Global))
    }
    fn loaded_everywhere<'a>(
        &'a mut self,
        _hosts: &'a [String],
    ) -> BoxFuture<'a, Result<Listed, AdminError>> {
        Box::pin(AdminSocket::loaded_everywhere(self))
    }
    fn act<'a>(
        &'a mut self,
        action: ModuleAction,
        module: &'a str,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Result<(), String>, AdminError>> {
        Box::pin(AdminSocket::module(self, action, module, host))
    }
    fn ping<'a>(
        &'a mut self,
        from: &'a str,
        to: &'a str,
        within: Duration,
    ) -> BoxFuture<'a, Result<Result<Duration, String>, AdminError>> {
        Box::pin(AdminSocket::ping(self, from, to, within))
    }
    fn config_get<'a>(
        &'a mut self,
        host: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<String, AdminError>> {
        Box::pin(async move {
            let command = format!("config:get({}, {})", lua_string(host), lua_string(key));
            let reply = self.run(&command).await?;
            Ok(reply.result.trim_start_matches("OK: ").to_owned())
        })
    }
    fn needed<'a>(
        &'a mut self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<String>, AdminError>> {
        Box::pin(AdminSocket::needed(self, host))
    }
    fn config_reload(&mut self) -> BoxFuture<'_, Result<Result<(), String>, AdminError>> {
        Box::pin(async move {
            let reply = self.run("config:reload()").await?;
            Ok(match reply.ok {
                true => Ok(()),
                false => Err(reply.error_text()),
            })
        })
    }
}

/// What modman knows of the Prosody it serves, learnt at run time.
#[derive(Debug, Default)]
pub struct ServerInfo {
    version: RwLock<Option<String>>,
    /// Hosts that take modules, as the admin socket last listed them.
    hosts: RwLock<Vec<String>>,
    /// This process is connected to Prosody as the component now.
    connected: AtomicBool,
}

impl ServerInfo {
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    pub fn hosts(&self) -> Vec<String> {
        self.hosts.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_hosts(&self, hosts: Vec<String>) {
        *self.hosts.write().unwrap_or_else(|e| e.into_inner()) = hosts;
    }

    pub fn version(&self) -> Option<String> {
        self.version
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_version(&self, version: Option<String>) {
        *self.version.write().unwrap_or_else(|e| e.into_inner()) = version;
    }
}

/// A connection kept for the next session, with what it learnt.
struct Kept {
    server: Box<dyn LiveServer>,
    lasting: Lasting,
}

/// The way to the running server, keeping one admin-socket connection
/// between sessions: an install's checks, its plan and its change each
/// open a session, and each new connection costs a stream header and its
/// answer. A kept connection is checked by the session's first question
/// (the hosts, which every session asks); if Prosody restarted meanwhile,
/// that fails and a new connection is made. A session cut short or
/// failed mid-question is not kept: its reply could still be on the way.
pub struct Sessions {
    connector: Box<dyn Connect>,
    kept: Arc<std::sync::Mutex<Option<Kept>>>,
}

impl Sessions {
    pub fn new(connector: Box<dyn Connect>) -> Sessions {
        Sessions {
            connector,
            kept: Default::default(),
        }
    }

    fn take(&self) -> Option<Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// What the Prosody of the connection kept from the last session
    /// cannot change without a restart, if that connection is still
    /// open: the same Prosody process, so the same facts, learnt with no
    /// question. A closed one is let go.
    pub fn kept_lasting(&self) -> Option<Lasting> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        match kept.as_mut() {
            Some(Kept { server, lasting }) if server.still_open() => Some(lasting.clone()),
            _ => {
                *kept = None;
                None
            }
        }
    }
}

/// A session with the running Prosody and the hosts it serves.
pub struct Live {
    /// Always there until the session ends and gives it back.
    server: Option<Box<dyn LiveServer>>,
    /// Whether the last question was answered whole: only then can the
    /// connection serve another session.
    clean: bool,
    /// Learnt when the connection was made.
    lasting: Lasting,
    kept: Arc<std::sync::Mutex<Option<Kept>>>,
    pub hosts: Vec<Host>,
}

impl Drop for Live {
    fn drop(&mut self) {
        if let (true, Some(server)) = (self.clean, self.server.take()) {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            // Two sessions at once: one connection is kept, the other closed.
            if kept.is_none() {
                *kept = Some(Kept {
                    server,
                    lasting: self.lasting.clone(),
                });
            }
        }
    }
}

/// Asks one question, noting whether it was answered whole.
async fn asked<T>(
    clean: &mut bool,
    question: BoxFuture<'_, Result<T, AdminError>>,
) -> Result<T, AdminError> {
    *clean = false;
    let answer = question.await;
    *clean = answer.is_ok();
    answer
}

impl Live {
    /// Opens a session (on the kept connection if it still answers),
    /// and learns the hosts. A new connection also learns what Prosody
    /// cannot change without a restart (its version, kept in `info` for
    /// the compatibility checks, its Lua and features), in the same round
    /// trip as the hosts and the stream header: a kept connection still
    /// answering is the same Prosody process, so what it learnt still
    /// holds.
    pub async fn connect(sessions: &Sessions, info: &ServerInfo) -> Result<Live, AdminError> {
        let mut reused = None;
        if let Some(Kept {
            mut server,
            lasting,
        }) = sessions.take()
        {
            if let Ok(hosts) = server.hosts().await {
                reused = Some((server, lasting, hosts));
            }
        }
        let (server, lasting, hosts) = match reused {
            Some(reused) => reused,
            None => {
                let mut server = sessions.connector.connect().await?;
                let (hosts, lasting) = server.hosts_and_lasting().await?;
                (server, lasting, hosts)
            }
        };
        info.set_version(Some(lasting.version.clone()));
        info.set_hosts(
            hosts
                .iter()
                .filter(|h| can_host_modules(h))
                .map(|h| h.name.clone())
                .collect(),
        );
        Ok(Live {
            server: Some(server),
            clean: true,
            lasting,
            kept: sessions.kept.clone(),
            hosts,
        })
    }

    /// Whether its last question was answered whole: only then can it
    /// ask another.
    pub fn answered_whole(&self) -> bool {
        self.clean
    }

    /// The connection, and whether its last question was answered whole.
    fn parts(&mut self) -> (&mut bool, &mut dyn LiveServer) {
        let server = (self.server.as_deref_mut())
            .unwrap_or_else(|| unreachable!("a session holds its connection until it ends"));
        (&mut self.clean, server)
    }

    /// The hosts to act on: those named (each must exist and take modules),
    /// or every VirtualHost when none are.
    pub fn targets(&self, requested: &[String]) -> Result<Vec<String>, EngineError> {
        if requested.is_empty() {
            return Ok(self
                .hosts
                .iter()
                .filter(|h| h.component.is_none())
                .map(|h| h.name.clone())
                .collect());
        }
        requested
            .iter()
            .map(|name| match self.hosts.iter().find(|h| &h.name == name) {
                Some(host) if can_host_modules(host) => Ok(name.clone()),
                Some(_) => Err(EngineError::ExternalComponent(name.clone())),
                None => Err(EngineError::NoSuchHost {
                    name: name.clone(),
                    known: self
                        .hosts
                        .iter()
                        .filter(|h| can_host_modules(h))
                        .map(|h| h.name.clone())
                        .collect(),
                }),
            })
            .collect()
    }

    /// The internal component module of `host` (`muc`...), if it is one.
    pub fn component_of(&self, host: &str) -> Option<String> {
        self.hosts
            .iter()
            .find(|h| h.name == host)
            .and_then(|h| h.component.clone())
    }

    /// `config` without sections for hosts Prosody no longer serves: a
    /// `VirtualHost` line would create them at the next start.
    pub fn pruned(&self, config: &ManagedConfig) -> ManagedConfig {
        let mut pruned = config.clone();
        pruned.hosts.retain(|name, _| {
            self.hosts
                .iter()
                .any(|h| &h.name == name && can_host_modules(h))
        });
        pruned
    }

    /// The value Prosody holds for option `key` in `scope`, as Lua;
    /// `None` when it holds none (Prosody says `nil`, or nothing).
    pub async fn config_get(
        &mut self,
        scope: &Scope,
        key: &str,
    ) -> Result<Option<String>, EngineError> {
        let (clean, server) = self.parts();
        let value = asked(clean, server.config_get(scope.prosody_host(), key)).await?;
        let value = value.trim();
        Ok((!value.is_empty() && value != "nil").then(|| value.to_owned()))
    }

    /// Prosody's XMPP ping from its host `from` to the remote `to`
    /// ([`LiveServer::ping`]): whether s2s reaches `to`, and how fast.
    pub async fn ping(
        &mut self,
        from: &str,
        to: &str,
        within: Duration,
    ) -> Result<Result<Duration, String>, EngineError> {
        let (clean, server) = self.parts();
        Ok(asked(clean, server.ping(from, to, within)).await?)
    }

    /// What the running server already has (its own modules, features,
    /// Lua), for the install checks: learnt with the connection.
    pub fn server_facts(&self, builtin_dir: &Path) -> ServerFacts {
        facts_of(&self.lasting, builtin_dir)
    }

    /// Makes Prosody read its config again.
    pub async fn config_reload(&mut self) -> Result<(), String> {
        let (clean, server) = self.parts();
        match asked(clean, server.config_reload()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(prosody_says)) => Err(format!(
                "Prosody could not reload its config: {prosody_says}"
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The modules loaded now, per host that takes modules, and under
    /// [`GLOBAL`] those loaded globally: a module removed from there is
    /// unloaded from there too.
    pub async fn loaded(&mut self) -> Result<LoadedMap, AdminError> {
        Ok(self
            .loaded_with_status()
            .await?
            .into_iter()
            .map(|(host, modules)| (host, modules.into_keys().collect()))
            .collect())
    }

    /// [`Live::loaded`], with the status Prosody lists for each module.
    pub async fn loaded_with_status(&mut self) -> Result<LoadedStatuses, AdminError> {
        let by_name = |modules: Vec<LoadedModule>| -> BTreeMap<String, Option<ModuleStatus>> {
            modules.into_iter().map(|m| (m.name, m.status)).collect()
        };
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| can_host_modules(h))
            .map(|h| h.name.clone())
            .collect();
        let (clean, server) = self.parts();
        let listed = asked(clean, server.loaded_everywhere(&hosts)).await?;
        // Every host of this session, with nothing loaded unless listed.
        let mut loaded: LoadedStatuses = (hosts.iter())
            .map(|host| (host.clone(), BTreeMap::new()))
            .collect();
        for (scope, modules) in listed {
            match scope {
                Scope::Host(host) => {
                    if let Some(here) = loaded.get_mut(&host) {
                        *here = by_name(modules);
                    }
                }
                Scope::Global if !modules.is_empty() => {
                    loaded.insert(GLOBAL.to_owned(), by_name(modules));
                }
                Scope::Global => {}
            }
        }
        Ok(loaded)
    }

    /// The modules that must stay loaded on `host` ([`GLOBAL`]: globally).
    pub async fn needed(&mut self, host: &str) -> Result<BTreeSet<String>, AdminError> {
        let (clean, server) = self.parts();
        asked(clean, server.needed(host)).await
    }

    /// One module action; `Err` is a sentence with Prosody's own words.
    pub async fn act(
        &mut self,
        action: ModuleAction,
        module: &str,
        host: &str,
    ) -> Result<(), String> {
        let verb = match action {
            ModuleAction::Load => "load",
            ModuleAction::Unload => "unload",
            ModuleAction::Reload => "reload",
        };
        let (clean, server) = self.parts();
        match asked(clean, server.act(action, module, host)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(prosody_says)) => Err(format!(
                "Prosody could not {verb} mod_{module} on {host}: {prosody_says}"
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// VirtualHosts and internal components take modules; external components
/// (such as modman itself) do not.
fn can_host_modules(host: &Host) -> bool {
    host.component.as_deref() != Some("component")
}

/// How long an answer to "what is loaded?" is reused. `list` and `info`
/// ask it on every call, and Prosody's admin shell answers one session at
/// a time; changes drop it.
const LOADED_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// What is loaded, with statuses, or why that is not known.
pub type Loaded = Result<LoadedStatuses, String>;

/// The modules Prosody has loaded, asked at most once per
/// [`LOADED_FRESH_FOR`] however many ask at once: the first asks Prosody,
/// the others wait for its answer.
#[derive(Default)]
pub struct LoadedCache {
    last: tokio::sync::Mutex<Option<(std::time::Instant, Loaded)>>,
}

impl LoadedCache {
    pub async fn get(&self, sessions: &Sessions, info: &ServerInfo) -> Loaded {
        let mut last = self.last.lock().await;
        if let Some((asked, loaded)) = last.as_ref() {
            if asked.elapsed() < LOADED_FRESH_FOR {
                return loaded.clone();
            }
        }
        let loaded = match Live::connect(sessions, info).await {
            Ok(mut live) => live.loaded_with_status().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        *last = Some((std::time::Instant::now(), loaded.clone()));
        loaded
    }

    /// Forgets the last answer: something was loaded or unloaded.
    pub async fn forget(&self) {
        *self.last.lock().await = None;
    }
}

/// Where modules are enabled (managed config) and loaded (live), for
/// `list` and `info`. Either half may be unknown, with the reason.
pub struct Status {
    pub(super) enabled: Result<ManagedConfig, String>,
    pub(super) loaded: Loaded,
}

impl Status {
    /// Hosts `module` is enabled on; `None` when unknown.
    pub fn enabled_on(&self, module: &str) -> Option<Vec<String>> {
        self.enabled.as_ref().ok().map(|c| c.hosts_of(module))
    }

    /// Hosts `module` is loaded on, each followed by the warn or error
    /// status Prosody reports for it there (`localhost (error: No 'dnsbls'
    /// in config file)`); `None` when unknown.
    pub fn loaded_on(&self, module: &str) -> Option<Vec<String>> {
        self.loaded.as_ref().ok().map(|loaded| {
            loaded
                .iter()
                .filter_map(|(host, modules)| Some((host, modules.get(module)?)))
                .map(|(host, status)| {
                    let host = match host.as_str() {
                        GLOBAL => "global (every host)",
                        _ => host,
                    };
                    match status {
                        Some(status) => format!("{host} ({status})"),
                        None => host.to_owned(),
                    }
                })
                .collect()
        })
    }

    /// Why a half is unknown, if one is.
    pub fn problems(&self) -> Vec<String> {
        [self.enabled.as_ref().err(), self.loaded.as_ref().err()]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}
