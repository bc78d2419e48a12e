//! The running server as an in-memory stand-in, for tests of the engine
//! and of the operations above it: no Prosody runs inside `cargo test
//! --lib`, and the integration tests run the same code against a real one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::admin_socket::{AdminError, Host, Lasting, LoadedModule, ModuleAction};
use super::live::{Connect, LiveServer};

/// The one host the stand-in serves.
pub(crate) const HOST: &str = "a.example";

/// What the stand-in server has loaded, and what it refuses.
#[derive(Default)]
pub(crate) struct Server {
    pub(crate) loaded: BTreeSet<String>,
    /// Refuse this action on this module, the next time it is asked.
    pub(crate) refuse: Option<(ModuleAction, String)>,
    /// Loading this module also loads that one, as Prosody loads a
    /// module's dependencies.
    pub(crate) pulls_in: Option<(String, String)>,
    /// What `config:get` answers, by (host, key).
    pub(crate) config: BTreeMap<(String, String), String>,
    pub(crate) config_reloads: usize,
    /// Not running: its admin socket cannot be reached, and a connection
    /// kept from before gets no answer.
    pub(crate) down: bool,
    /// Connections made to its admin socket.
    pub(crate) connections: usize,
    /// Times it was asked what a host has loaded.
    pub(crate) listings: usize,
    /// Times it was asked its hosts: every session's first question.
    pub(crate) host_listings: usize,
}

/// What a connection kept from before gets once the server is down.
fn closed() -> AdminError {
    AdminError::Protocol("the connection was closed".into())
}

/// The stand-in, shared between the engine and the test that looks at it.
#[derive(Clone, Default)]
pub(crate) struct Fake(pub(crate) Arc<Mutex<Server>>);

impl Connect for Fake {
    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn LiveServer>, AdminError>> {
        let session = self.clone();
        let mut server = self.0.lock().unwrap();
        server.connections += usize::from(!server.down);
        let down = server.down;
        Box::pin(async move {
            match down {
                true => Err(AdminError::Missing(PathBuf::from("prosody.sock"))),
                false => Ok(Box::new(session) as Box<dyn LiveServer>),
            }
        })
    }
}

impl LiveServer for Fake {
    fn still_open(&self) -> bool {
        !self.0.lock().unwrap().down
    }
    fn hosts(&mut self) -> BoxFuture<'_, Result<Vec<Host>, AdminError>> {
        let host = Host {
            name: HOST.into(),
            component: None,
        };
        let mut server = self.0.lock().unwrap();
        server.host_listings += 1;
        let down = server.down;
        Box::pin(async move {
            match down {
                true => Err(closed()),
                false => Ok(vec![host]),
            }
        })
    }
    fn lasting(&mut self) -> BoxFuture<'_, Result<Lasting, AdminError>> {
        Box::pin(async {
            Ok(Lasting {
                version: "13.0.1".into(),
                lua: "5.4".into(),
                features: BTreeSet::new(),
            })
        })
    }
    fn loaded<'a>(
        &'a mut self,
        _host: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LoadedModule>, AdminError>> {
        let mut server = self.0.lock().unwrap();
        server.listings += 1;
        let loaded = (server.loaded.iter())
            .map(|name| LoadedModule {
                name: name.clone(),
                status: None,
            })
            .collect();
        let down = server.down;
        Box::pin(async move {
            match down {
                true => Err(closed()),
                false => Ok(loaded),
            }
        })
    }
    fn act<'a>(
        &'a mut self,
        action: ModuleAction,
        module: &'a str,
        _host: &'a str,
    ) -> BoxFuture<'a, Result<Result<(), String>, AdminError>> {
        let mut server = self.0.lock().unwrap();
        // Dependencies load first, and stay when the module then fails.
        if let (ModuleAction::Load, Some((from, dependency))) = (action, server.pulls_in.clone()) {
            if from == module {
                server.loaded.insert(dependency);
            }
        }
        let result = if server.refuse == Some((action, module.to_owned())) {
            // Once, as a module refuses a bad option and takes the good
            // one back.
            server.refuse = None;
            Err(format!("{module} broken on purpose"))
        } else {
            match action {
                ModuleAction::Load => {
                    server.loaded.insert(module.to_owned());
                    Ok(())
                }
                ModuleAction::Unload => match server.loaded.remove(module) {
                    true => Ok(()),
                    false => Err(format!("{module} is not loaded")),
                },
                ModuleAction::Reload => match server.loaded.contains(module) {
                    true => Ok(()),
                    false => Err(format!("{module} is not loaded")),
                },
            }
        };
        Box::pin(async move { Ok(result) })
    }
    fn loaded_global(&mut self) -> BoxFuture<'_, Result<Vec<LoadedModule>, AdminError>> {
        Box::pin(async { Ok(vec![]) })
    }
    fn ping<'a>(
        &'a mut self,
        _from: &'a str,
        to: &'a str,
        _within: std::time::Duration,
    ) -> BoxFuture<'a, Result<Result<std::time::Duration, String>, AdminError>> {
        let unreached = format!("the in-memory server has no s2s to {to}");
        Box::pin(async move { Ok(Err(unreached)) })
    }
    fn config_get<'a>(
        &'a mut self,
        host: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<String, AdminError>> {
        let value = self
            .0
            .lock()
            .unwrap()
            .config
            .get(&(host.to_owned(), key.to_owned()))
            .cloned()
            .unwrap_or_else(|| "nil".into());
        Box::pin(async move { Ok(value) })
    }
    fn needed<'a>(
        &'a mut self,
        _host: &'a str,
    ) -> BoxFuture<'a, Result<BTreeSet<String>, AdminError>> {
        let server = self.0.lock().unwrap();
        let needed = match &server.pulls_in {
            Some((from, dependency)) if server.loaded.contains(from) => {
                BTreeSet::from([dependency.clone()])
            }
            _ => BTreeSet::new(),
        };
        Box::pin(async move { Ok(needed) })
    }
    fn config_reload(&mut self) -> BoxFuture<'_, Result<Result<(), String>, AdminError>> {
        let mut server = self.0.lock().unwrap();
        server.config_reloads += 1;
        Box::pin(async { Ok(Ok(())) })
    }
}

/// modman.toml of a host laid out in a temp dir for tests (`modules`,
/// `state`, `builtin` and `prosody.cfg.lua` under the dir it is parsed
/// against), on the stand-in's admin socket, followed by `more`.
pub(crate) fn config_text(more: &str) -> String {
    format!(
        r#"admins = ["admin@example.org"]
state_dir = "state"
[component]
jid = "modman.example.org"
server = "127.0.0.1:5347"
secret = "s"
[prosody]
config = "prosody.cfg.lua"
modules_dir = "modules"
managed_config = "modman.cfg.lua"
admin_socket = "prosody.sock"
builtin_modules = "builtin"
{more}"#
    )
}
