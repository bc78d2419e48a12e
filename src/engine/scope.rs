//! Where a module is loaded or an option is set: Prosody's global context
//! or one host. One type for the managed config, the admin socket and the
//! live state, so "global" is written in one place.

/// The "host" Prosody's admin shell takes for its global context
/// (`module:list("*")`, `config:get("*", key)`).
pub const GLOBAL: &str = "*";

/// Prosody's global context or one host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// The whole server: global options, and modules loaded once for it
    /// (`module:set_global()`, such as host_guard or admin_socket), which
    /// are never listed under a host.
    Global,
    Host(String),
}

impl Scope {
    /// The name the admin shell takes for this scope.
    pub fn prosody_host(&self) -> &str {
        match self {
            Scope::Global => GLOBAL,
            Scope::Host(host) => host,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Global => f.write_str("the whole server"),
            Scope::Host(host) => f.write_str(host),
        }
    }
}
