//! Live activation, shared by `enable`, `disable`, `install`, `update`,
//! `remove` and `rollback`: the managed config (what Prosody loads at its
//! next start) and the admin socket (what it runs now) are changed
//! together, and put back together when Prosody refuses.

use std::collections::{BTreeMap, BTreeSet};

use super::{Context, OpError, Table};
use crate::engine::admin_socket::{AdminError, AdminSocket, Host, ModuleAction};
use crate::engine::audit;
use crate::engine::managed_config::{HostModules, ManagedConfig, ManagedConfigError};

/// The `hosts` field of the commands that enable.
pub const ENABLE_HOSTS: super::Param = super::Param {
    var: "hosts",
    label: "Hosts",
    help: "Where to enable them; leave empty for every VirtualHost.",
    kind: super::ParamKind::Hosts,
    required: false,
};

/// (module, host) pairs.
pub type Pairs = Vec<(String, String)>;

/// A connection to the running Prosody and what it serves.
pub struct Live {
    socket: AdminSocket,
    pub hosts: Vec<Host>,
}

impl From<AdminError> for OpError {
    fn from(error: AdminError) -> Self {
        OpError::unavailable(format!("{error}; nothing was changed"))
    }
}

impl From<ManagedConfigError> for OpError {
    fn from(error: ManagedConfigError) -> Self {
        OpError::conflict(format!("{error}; nothing was changed"))
    }
}

impl Live {
    /// Connects to the admin socket and learns the hosts and the version
    /// (which also serves the compatibility checks).
    pub async fn connect(ctx: &Context) -> Result<Live, OpError> {
        let mut socket = AdminSocket::connect(&ctx.config.prosody.admin_socket).await?;
        let hosts = socket.hosts().await?;
        if ctx.server.version().is_none() {
            ctx.server.set_version(Some(socket.version().await?));
        }
        ctx.server.set_hosts(
            hosts
                .iter()
                .filter(|h| can_host_modules(h))
                .map(|h| h.name.clone())
                .collect(),
        );
        Ok(Live { socket, hosts })
    }

    /// The hosts to act on: those named (each must exist and take modules),
    /// or every VirtualHost when none are.
    pub fn targets(&self, requested: &[String]) -> Result<Vec<String>, OpError> {
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
                Some(_) => Err(OpError::bad_input(format!(
                    "{name} is an external component; Prosody loads no modules for it; nothing was changed"
                ))),
                None => {
                    let known: Vec<&str> = self.hosts.iter().filter(|h| can_host_modules(h)).map(|h| h.name.as_str()).collect();
                    Err(OpError::bad_input(format!(
                        "Prosody serves no host `{name}` (it serves: {}); nothing was changed",
                        known.join(", ")
                    )))
                }
            })
            .collect()
    }

    /// Prosody's `plugin_paths`, as it runs (the Lua table's text).
    pub async fn plugin_paths(&mut self) -> Result<String, OpError> {
        let reply = self
            .socket
            .run("config:get(\"*\", \"plugin_paths\")")
            .await?;
        Ok(reply.result)
    }

    /// The modules loaded now, per host that takes modules.
    pub async fn loaded(&mut self) -> Result<BTreeMap<String, BTreeSet<String>>, OpError> {
        let mut loaded = BTreeMap::new();
        for host in self.hosts.iter().filter(|h| can_host_modules(h)) {
            let modules = self.socket.loaded(&host.name).await?;
            loaded.insert(host.name.clone(), modules.into_iter().collect());
        }
        Ok(loaded)
    }

    /// Adds `pairs` to the managed config and loads each live. If Prosody
    /// refuses one, unloads what this call loaded (dependencies pulled in
    /// with it too), restores the config, and returns Prosody's words.
    /// Returns the pairs that were not loaded before.
    pub async fn enable(&mut self, ctx: &Context, pairs: &Pairs) -> Result<Pairs, OpError> {
        let path = &ctx.config.prosody.managed_config;
        let old = ManagedConfig::load(path)?;
        let mut new = self.pruned(&old);
        for (module, host) in pairs {
            let component = self
                .hosts
                .iter()
                .find(|h| &h.name == host)
                .and_then(|h| h.component.clone());
            new.hosts
                .entry(host.clone())
                .or_insert_with(|| HostModules {
                    component,
                    ..HostModules::default()
                })
                .modules
                .insert(module.clone());
        }
        self.write(ctx, &new)?;
        ctx.loaded.forget().await;
        let before = self.loaded().await?;
        let mut newly = Vec::new();
        for (module, host) in pairs {
            if before.get(host).is_some_and(|m| m.contains(module)) {
                continue;
            }
            match self.act(ModuleAction::Load, module, host).await {
                Ok(()) => newly.push((module.clone(), host.clone())),
                Err(why) => {
                    self.unload_all_but(&before).await;
                    self.write(ctx, &old)?;
                    return Err(OpError::conflict(format!(
                        "{why}; modman unloaded what it had loaded and restored the config"
                    )));
                }
            }
        }
        Ok(newly)
    }

    /// Removes `pairs` from the managed config and unloads each where it is
    /// loaded. If Prosody refuses, reloads what was unloaded and restores
    /// the config.
    pub async fn disable(&mut self, ctx: &Context, pairs: &Pairs) -> Result<Pairs, OpError> {
        let path = &ctx.config.prosody.managed_config;
        let old = ManagedConfig::load(path)?;
        let mut new = self.pruned(&old);
        for (module, host) in pairs {
            if let Some(section) = new.hosts.get_mut(host) {
                section.modules.remove(module);
            }
        }
        new.hosts.retain(|_, h| !h.modules.is_empty());
        self.write(ctx, &new)?;
        ctx.loaded.forget().await;
        let before = self.loaded().await?;
        let mut unloaded: Pairs = Vec::new();
        for (module, host) in pairs {
            if !before.get(host).is_some_and(|m| m.contains(module)) {
                continue;
            }
            match self.act(ModuleAction::Unload, module, host).await {
                Ok(()) => unloaded.push((module.clone(), host.clone())),
                Err(why) => {
                    for (module, host) in &unloaded {
                        let _ = self.act(ModuleAction::Load, module, host).await;
                    }
                    self.write(ctx, &old)?;
                    return Err(OpError::conflict(format!(
                        "{why}; modman loaded again what it had unloaded and restored the config"
                    )));
                }
            }
        }
        Ok(unloaded)
    }

    /// Reloads `module` on `hosts` so new code runs; `Err` carries the host
    /// and Prosody's words for the first refusal.
    pub async fn reload(&mut self, module: &str, hosts: &[String]) -> Result<(), String> {
        for host in hosts {
            self.act(ModuleAction::Reload, module, host).await?;
        }
        Ok(())
    }

    /// One module action; `Err` is a sentence with Prosody's own words.
    async fn act(&mut self, action: ModuleAction, module: &str, host: &str) -> Result<(), String> {
        let verb = match action {
            ModuleAction::Load => "load",
            ModuleAction::Unload => "unload",
            ModuleAction::Reload => "reload",
        };
        match self.socket.module(action, module, host).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(prosody_says)) => Err(format!(
                "Prosody could not {verb} mod_{module} on {host}: {prosody_says}"
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Unloads every module loaded now that was not in `before`.
    async fn unload_all_but(&mut self, before: &BTreeMap<String, BTreeSet<String>>) {
        let Ok(now) = self.loaded().await else { return };
        for (host, modules) in now {
            for module in modules.difference(before.get(&host).unwrap_or(&BTreeSet::new())) {
                let _ = self.act(ModuleAction::Unload, module, &host).await;
            }
        }
    }

    /// `config` without sections for hosts Prosody no longer serves: a
    /// `VirtualHost` line would create them at the next start.
    fn pruned(&self, config: &ManagedConfig) -> ManagedConfig {
        let mut pruned = config.clone();
        pruned.hosts.retain(|name, _| {
            self.hosts
                .iter()
                .any(|h| &h.name == name && can_host_modules(h))
        });
        pruned
    }

    fn write(&self, ctx: &Context, config: &ManagedConfig) -> Result<(), OpError> {
        let path = &ctx.config.prosody.managed_config;
        config.save(path).map_err(|e| {
            OpError::unavailable(format!(
                "cannot write {}: {e}; nothing was changed",
                path.display()
            ))
        })
    }
}

/// VirtualHosts and internal components take modules; external components
/// (such as modman itself) do not.
fn can_host_modules(host: &Host) -> bool {
    host.component.as_deref() != Some("component")
}

/// The hosts in prosody.cfg.lua that set their own `modules_enabled`,
/// among `hosts`: a section of ours for them would replace that list.
pub fn own_list_concerns(ctx: &Context, hosts: &[String]) -> Vec<String> {
    let own = std::fs::read_to_string(&ctx.config.prosody.config)
        .map(|text| crate::engine::managed_config::hosts_with_own_list(&text))
        .unwrap_or_default();
    hosts
        .iter()
        .filter(|h| own.contains(*h))
        .map(|h| {
            format!(
                "{} sets its own modules_enabled for {h}; modman's section for {h} comes later and would replace that list at the next start (Prosody keeps the last one). Move those modules to the global modules_enabled first.",
                ctx.config.prosody.config.display()
            )
        })
        .collect()
}

/// Every module on every host.
pub fn pairs(modules: &[String], hosts: &[String]) -> Pairs {
    modules
        .iter()
        .flat_map(|m| hosts.iter().map(move |h| (m.clone(), h.clone())))
        .collect()
}

/// Logs an enable or disable in the history.
pub fn log(
    ctx: &Context,
    actor: &str,
    operation: &str,
    modules: &[String],
    hosts: &[String],
) -> Result<(), OpError> {
    let mut hosts = hosts.to_vec();
    hosts.sort();
    hosts.dedup();
    let entry = audit::Entry {
        time: audit::now(),
        actor: actor.to_owned(),
        operation: operation.to_owned(),
        changes: modules
            .iter()
            .map(|m| audit::ModuleChange {
                module: m.clone(),
                from: None,
                to: None,
            })
            .collect(),
        result: "ok".into(),
        transaction: String::new(),
        hosts,
    };
    Ok(ctx.engine.log(&entry)?)
}

/// One row per pair, with `states.0` for pairs in `acted` and `states.1`
/// for the others.
pub fn table(
    title: &str,
    pairs: &Pairs,
    acted: &Pairs,
    states: (&str, &str),
    note: String,
) -> Table {
    let rows = pairs
        .iter()
        .map(|pair| {
            let state = if acted.contains(pair) {
                states.0
            } else {
                states.1
            };
            vec![pair.0.clone(), pair.1.clone(), state.to_owned()]
        })
        .collect();
    Table {
        title: title.into(),
        columns: vec![("module", "Module"), ("host", "Host"), ("state", "State")],
        rows,
        note,
    }
}

/// The running server around a change of files: unloads before files go
/// away, reloads after they change. Works without the admin socket too,
/// saying what could not be done, except where that would leave Prosody
/// running code whose files are gone.
pub struct Around {
    live: Result<Live, String>,
    loaded: BTreeMap<String, BTreeSet<String>>,
}

impl Around {
    pub async fn connect(ctx: &Context) -> Around {
        let mut live = Live::connect(ctx).await.map_err(|e| e.text);
        let loaded = match &mut live {
            Ok(live) => live.loaded().await.unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        Around { live, loaded }
    }

    /// Where `module` is loaded now.
    fn hosts_loading(&self, module: &str) -> Vec<String> {
        self.loaded
            .iter()
            .filter(|(_, m)| m.contains(module))
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// Before `modules` lose their files: drops them from the managed config
    /// and unloads them everywhere. Returns what it did, for [`Around::restore`].
    pub async fn before_removal(
        &mut self,
        ctx: &Context,
        modules: &[String],
    ) -> Result<Pairs, OpError> {
        let config = ManagedConfig::load(&ctx.config.prosody.managed_config)?;
        let mut pairs: Pairs = Vec::new();
        for module in modules {
            let mut hosts = config.hosts_of(module);
            hosts.extend(self.hosts_loading(module));
            hosts.sort();
            hosts.dedup();
            pairs.extend(hosts.into_iter().map(|h| (module.clone(), h)));
        }
        if pairs.is_empty() {
            return Ok(pairs);
        }
        let live = self.live.as_mut().map_err(|e| {
            OpError::unavailable(format!(
                "{} enabled or loaded, and modman must unload it before removing its files, but: {e}",
                pairs.iter().map(|(m, h)| format!("mod_{m} on {h}")).collect::<Vec<_>>().join(", ")
            ))
        })?;
        live.disable(ctx, &pairs).await?;
        Ok(pairs)
    }

    /// Puts back what [`Around::before_removal`] did, after the file change failed.
    pub async fn restore(&mut self, ctx: &Context, pairs: &Pairs) {
        if let (Ok(live), false) = (&mut self.live, pairs.is_empty()) {
            if let Err(e) = live.enable(ctx, pairs).await {
                tracing::error!(
                    "could not enable again what was disabled before a failed change: {e}"
                );
            }
        }
    }

    /// After `modules` got new files: reloads each where it was loaded.
    pub async fn after_replacement(&mut self, modules: &[String]) -> Result<(), String> {
        let reloads: Vec<(String, Vec<String>)> = modules
            .iter()
            .map(|m| (m.clone(), self.hosts_loading(m)))
            .collect();
        let Ok(live) = &mut self.live else {
            return Ok(());
        };
        for (module, hosts) in reloads {
            live.reload(&module, &hosts).await?;
        }
        Ok(())
    }

    /// What could not be done live, if anything.
    pub fn note(&self) -> Option<String> {
        self.live.as_ref().err().map(|e| {
            format!("Not done live: {e}. The new files take effect when Prosody restarts.")
        })
    }
}

/// How long an answer to "what is loaded?" is reused. `list` and `info`
/// ask it on every call, and Prosody's admin shell answers one session at
/// a time; only enable and disable change it, and they drop it.
const LOADED_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);

type Loaded = Result<BTreeMap<String, BTreeSet<String>>, String>;

/// The modules Prosody has loaded, asked at most once per
/// [`LOADED_FRESH_FOR`] however many ask at once: the first asks Prosody,
/// the others wait for its answer.
#[derive(Default)]
pub struct LoadedCache {
    last: tokio::sync::Mutex<Option<(std::time::Instant, Loaded)>>,
}

impl LoadedCache {
    async fn get(&self, ctx: &Context) -> Loaded {
        let mut last = self.last.lock().await;
        if let Some((asked, loaded)) = last.as_ref() {
            if asked.elapsed() < LOADED_FRESH_FOR {
                return loaded.clone();
            }
        }
        let loaded = match Live::connect(ctx).await {
            Ok(mut live) => live.loaded().await.map_err(|e| e.text),
            Err(e) => Err(e.text),
        };
        *last = Some((std::time::Instant::now(), loaded.clone()));
        loaded
    }

    /// Forgets the last answer: something was loaded or unloaded.
    async fn forget(&self) {
        *self.last.lock().await = None;
    }
}

/// Where modules are enabled (managed config) and loaded (live), for
/// `list` and `info`. Either half may be unknown, with the reason.
pub struct Status {
    enabled: Result<ManagedConfig, String>,
    loaded: Loaded,
}

impl Status {
    pub async fn read(ctx: &Context) -> Status {
        let enabled =
            ManagedConfig::load(&ctx.config.prosody.managed_config).map_err(|e| e.to_string());
        Status {
            enabled,
            loaded: ctx.loaded.get(ctx).await,
        }
    }

    /// Hosts `module` is enabled on, comma-separated; `?` when unknown.
    pub fn enabled_on(&self, module: &str) -> String {
        match &self.enabled {
            Ok(config) => config.hosts_of(module).join(", "),
            Err(_) => "?".into(),
        }
    }

    /// Hosts `module` is loaded on, comma-separated; `?` when unknown.
    pub fn loaded_on(&self, module: &str) -> String {
        match &self.loaded {
            Ok(loaded) => loaded
                .iter()
                .filter(|(_, m)| m.contains(module))
                .map(|(h, _)| h.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            Err(_) => "?".into(),
        }
    }

    /// Why a `?` was shown, if one was.
    pub fn problems(&self) -> Vec<String> {
        let strip = |e: &String| e.trim_end_matches("; nothing was changed").to_owned();
        [
            self.enabled.as_ref().err().map(strip),
            self.loaded.as_ref().err().map(strip),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}
