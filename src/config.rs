//! `modman.toml`: read once at start and validated completely, so that a
//! mistake is reported in one line naming the key, before anything connects.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use xmpp_parsers::jid::BareJid;

/// A configuration problem, displayed as one line: the file, the key (or
/// line) and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("config {}: {message}", path.display())]
pub struct ConfigError {
    path: PathBuf,
    message: String,
}

/// The validated configuration. Every field has been checked: JIDs parse,
/// the secret is present, repository keys are real ed25519 keys.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bare JIDs allowed to run commands. Each has a local part, so that a
    /// stanza from a server domain can never be mistaken for an admin.
    pub admins: BTreeSet<BareJid>,
    /// Where modman keeps its state, backups and audit log.
    pub state_dir: PathBuf,
    pub component: ComponentConfig,
    pub prosody: ProsodyConfig,
    pub repositories: Vec<Repository>,
    pub chat: ChatConfig,
    pub fleet: FleetConfig,
    /// The watch after a change.
    pub health: crate::policy::HealthConfig,
    /// What updates found on schedule do.
    pub policy: crate::policy::PolicyConfig,
    /// The file this was read from (`None` when parsed from text).
    pub path: Option<PathBuf>,
    /// The SHA-256 of that file's bytes as read: a command handed to the
    /// daemon runs there only if the daemon read the same.
    pub sha256: Option<[u8; 32]>,
}

/// The other modmans of a fleet this one may ask, and accept requests
/// from on behalf of this server's own admins: empty for one server alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// Peer modmans' component JIDs (`modman.b.example.org`), authenticated
    /// by s2s: only these may relay a request, and only for an admin in
    /// this server's own `admins`.
    pub peers: BTreeSet<BareJid>,
    /// How long a fleet request waits for each peer's answer before that
    /// peer is reported as not answering.
    pub answer_within: std::time::Duration,
    /// How many servers a staged change changes together after its
    /// first server (the canary), unless the request says.
    pub batch_size: std::num::NonZeroUsize,
}

/// Servers a staged change changes together after the canary when
/// `[fleet] batch_size` is not set: small enough that a failure the
/// canary missed reaches few servers.
pub const DEFAULT_BATCH_SIZE: usize = 5;

/// Peers one modman asks at most: each is asked at once, so the bound
/// keeps one fleet request's memory and stanzas in proportion.
pub const MAX_PEERS: usize = 256;

/// The chat front end: rooms to serve and update notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatConfig {
    /// MUC rooms modman joins and answers in (when addressed by its nick).
    pub rooms: Vec<BareJid>,
    /// modman's nick in those rooms.
    pub nick: String,
    /// How often to refresh the repositories and announce updates: a day
    /// unless `check_updates_hours` says otherwise; `None` (set to 0) only
    /// refreshes when someone runs refresh, or at start with no index.
    pub check_updates: Option<std::time::Duration>,
    /// Also tell each admin directly about updates, once per new version.
    pub notify_admins: bool,
}

/// How modman reaches Prosody as an XEP-0114 component.
#[derive(Clone)]
pub struct ComponentConfig {
    /// The component's domain, as in `Component "modman.example.org"`.
    pub jid: BareJid,
    /// `host:port` of Prosody's component listener.
    pub server: String,
    /// The shared secret (`component_secret` in Prosody's config).
    pub secret: String,
    /// Where the secret was read from, if not from modman.toml itself.
    pub secret_file: Option<PathBuf>,
}

// The secret must never reach a log line through `{:?}`.
impl fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("jid", &self.jid)
            .field("server", &self.server)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Where Prosody's files are on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProsodyConfig {
    /// prosody.cfg.lua, read to check that modman is wired in.
    pub config: PathBuf,
    /// The directory modman installs modules into; listed in `plugin_paths`.
    pub modules_dir: PathBuf,
    /// The file modman owns, `Include`d at the end of prosody.cfg.lua.
    pub managed_config: PathBuf,
    /// Prosody's admin socket, for live loading.
    pub admin_socket: PathBuf,
    /// Prosody's own modules, where built-in dependencies must be found.
    pub builtin_modules: PathBuf,
    /// Where `prosodyctl install` puts modules (Prosody's
    /// `installer_plugin_path`), searched before every plugin path.
    /// modman shows what is there and never touches it.
    pub installer_plugin_path: PathBuf,
}

/// A module repository: static files over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    pub url: url::Url,
    pub kind: RepositoryKind,
    /// Longest a download from it may take.
    pub timeout: std::time::Duration,
}

/// What a repository is, and so what protects what modman fetches from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryKind {
    /// A modman repository (`repo build`, `repo mirror`): `index.json`
    /// signed by this key, and every archive checked against it.
    Signed {
        /// Keys an index may be signed with: more than one while the
        /// repository rotates its key (the new one signs, the old one is
        /// still trusted until every client has the new one). Never empty.
        public_keys: Vec<ed25519_dalek::VerifyingKey>,
    },
    /// A LuaRocks server such as Prosody's community repository
    /// (`kind = "luarocks"`): nothing is signed; HTTPS and pinning each
    /// rock's hash on first use are all that protect it.
    LuaRocks,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    admins: Vec<String>,
    state_dir: PathBuf,
    component: RawComponent,
    prosody: ProsodyRaw,
    #[serde(default)]
    repositories: Vec<RawRepository>,
    #[serde(default)]
    chat: RawChat,
    #[serde(default)]
    fleet: RawFleet,
    #[serde(default)]
    health: crate::policy::RawHealth,
    #[serde(default)]
    policy: crate::policy::RawPolicy,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    #[serde(default)]
    peers: Vec<String>,
    /// Seconds to wait for each peer's answer; 10 when not given.
    answer_seconds: Option<u64>,
    batch_size: Option<usize>,
}

/// Hours between scheduled refreshes when `check_updates_hours` is not
/// given: once a day, so a modman nobody tends still offers new versions.
const DEFAULT_CHECK_HOURS: u32 = 24;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawChat {
    #[serde(default)]
    rooms: Vec<String>,
    nick: Option<String>,
    /// Hours between update checks; 24 when not given, 0 turns them off.
    check_updates_hours: Option<u32>,
    #[serde(default)]
    notify_admins: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    jid: String,
    server: String,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProsodyRaw {
    config: PathBuf,
    modules_dir: PathBuf,
    managed_config: PathBuf,
    admin_socket: PathBuf,
    #[serde(default = "default_builtin_modules")]
    builtin_modules: PathBuf,
    /// Default: `custom_plugins` beside the admin socket, in Prosody's
    /// data directory, as Prosody's own default.
    installer_plugin_path: Option<PathBuf>,
}

fn default_builtin_modules() -> PathBuf {
    PathBuf::from("/usr/lib/prosody/modules")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepository {
    name: String,
    url: String,
    #[serde(default)]
    kind: RawKind,
    public_key: Option<String>,
    #[serde(default)]
    public_keys: Vec<String>,
    #[serde(default = "default_timeout_seconds")]
    timeout_seconds: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    #[default]
    Signed,
    LuaRocks,
}

fn default_timeout_seconds() -> u64 {
    30
}

impl Config {
    /// The server modman is a component of: the component's domain less
    /// its first label (`modman.example.org` -> `example.org`), where the
    /// server-version query goes and its answer comes from.
    pub fn server_host(&self) -> Option<xmpp_parsers::jid::Jid> {
        server_of(&self.component.jid).map(Into::into)
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let fail = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read the file: {e}")))?;
        let mut config =
            Config::parse(&text, path.parent().unwrap_or(Path::new("."))).map_err(fail)?;
        config.path = Some(path.to_owned());
        config.sha256 = Some(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()).into());
        Ok(config)
    }

    /// modman.toml and `secret_file` must not be readable by everyone: the
    /// secret lets any local user connect as the component (once modman
    /// is off) and receive the admins' commands. One line per exposed
    /// file, with the command that fixes it.
    pub fn exposed_secrets(&self) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        self.path
            .iter()
            .chain(self.component.secret_file.iter())
            .filter_map(|file| {
                let mode = std::fs::metadata(file).ok()?.permissions().mode() & 0o777;
                (mode & 0o007 != 0).then(|| {
                    format!(
                        "{} is readable by every local user (mode {mode:o}) and holds or names the component secret; run chmod 600 {} (or chmod 640 with group prosody)",
                        file.display(),
                        file.display()
                    )
                })
            })
            .collect()
    }

    /// Parses and validates TOML text. Relative paths (such as
    /// `secret_file`) are taken relative to `base`, the config's directory.
    pub fn parse(text: &str, base: &Path) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error_line(text, &e))?;

        if raw.admins.is_empty() {
            return Err(
                "key `admins`: empty; list at least one bare JID such as \"admin@example.org\""
                    .into(),
            );
        }
        let mut admins = BTreeSet::new();
        for admin in &raw.admins {
            let jid: BareJid = admin.parse().map_err(|e| {
                format!("key `admins`: `{admin}` is not a valid JID ({e}); write a bare JID such as \"admin@example.org\"")
            })?;
            if jid.node().is_none() {
                return Err(format!(
                    "key `admins`: `{admin}` is a domain, not an account; write user@{admin}"
                ));
            }
            admins.insert(jid);
        }

        let jid: BareJid = raw.component.jid.parse().map_err(|e| {
            format!(
                "key `component.jid`: `{}` is not a valid JID ({e})",
                raw.component.jid
            )
        })?;
        if jid.node().is_some() {
            return Err(format!(
                "key `component.jid`: `{jid}` has a local part; a component JID is a bare domain such as \"modman.example.org\""
            ));
        }
        if !raw.component.server.contains(':') {
            return Err(format!(
                "key `component.server`: `{}` has no port; write host:port such as \"127.0.0.1:5347\"",
                raw.component.server
            ));
        }
        let secret = match (raw.component.secret, raw.component.secret_file) {
            (Some(_), Some(_)) => {
                return Err("keys `component.secret` and `component.secret_file`: both set; keep one".into())
            }
            (None, None) => {
                return Err("key `component.secret`: missing; set `secret` or `secret_file` to the component_secret from prosody.cfg.lua".into())
            }
            (Some(secret), None) => (secret, None),
            (None, Some(file)) => {
                let file = base.join(file);
                let secret = std::fs::read_to_string(&file)
                    .map_err(|e| {
                        format!("key `component.secret_file`: cannot read {}: {e}", file.display())
                    })?
                    .trim()
                    .to_owned();
                (secret, Some(file))
            }
        };
        let (secret, secret_file) = secret;
        if secret.is_empty() {
            return Err(
                "key `component.secret`: empty; use the component_secret from prosody.cfg.lua"
                    .into(),
            );
        }

        let mut repositories: Vec<Repository> = Vec::new();
        for (i, repo) in raw.repositories.into_iter().enumerate() {
            let key = format!("repositories[{i}]");
            let name_ok = is_valid_repository_name(&repo.name);
            if !name_ok || repositories.iter().any(|r| r.name == repo.name) {
                return Err(format!(
                    "key `{key}.name`: `{}` must be unique, made of letters, digits, `-` and `_`",
                    repo.name
                ));
            }
            let url = url::Url::parse(&repo.url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| format!("key `{key}.url`: `{}` is not an http(s) URL", repo.url))?;
            let mut public_keys = Vec::new();
            for (field, text) in repo
                .public_key
                .iter()
                .map(|k| ("public_key".to_owned(), k))
                .chain(
                    repo.public_keys
                        .iter()
                        .enumerate()
                        .map(|(j, k)| (format!("public_keys[{j}]"), k)),
                )
            {
                public_keys
                    .push(parse_public_key(text).map_err(|e| format!("key `{key}.{field}`: {e}"))?);
            }
            let kind = match (repo.kind, public_keys.is_empty()) {
                (RawKind::Signed, false) => RepositoryKind::Signed { public_keys },
                (RawKind::Signed, true) => return Err(format!(
                    "key `{key}.public_key`: missing; paste the key `modman repo keygen` printed (or list several in `public_keys` while rotating keys), or set kind = \"luarocks\" for a LuaRocks server"
                )),
                (RawKind::LuaRocks, false) => return Err(format!(
                    "key `{key}.public_key`: a LuaRocks server signs nothing; remove the key, or mirror the server with `modman repo mirror` and use the mirror's key"
                )),
                (RawKind::LuaRocks, true) => {
                    check_luarocks_url(&url)
                        .map_err(|e| format!("key `{key}.url`: {e}"))?;
                    RepositoryKind::LuaRocks
                }
            };
            if !(1..=3600).contains(&repo.timeout_seconds) {
                return Err(format!(
                    "key `{key}.timeout_seconds`: {} is not between 1 and 3600",
                    repo.timeout_seconds
                ));
            }
            repositories.push(Repository {
                name: repo.name,
                url,
                kind,
                timeout: std::time::Duration::from_secs(repo.timeout_seconds),
            });
        }

        let mut rooms = Vec::new();
        for room in &raw.chat.rooms {
            let jid: BareJid = room
                .parse()
                .ok()
                .filter(|j: &BareJid| j.node().is_some())
                .ok_or_else(|| format!("key `chat.rooms`: `{room}` is not a room JID such as \"ops@conference.example.org\""))?;
            rooms.push(jid);
        }
        let nick = raw.chat.nick.unwrap_or_else(|| "modman".into());
        if nick.trim().is_empty() || nick.len() > 64 || nick.contains(char::is_control) {
            return Err(format!("key `chat.nick`: `{nick}` is not a usable nick"));
        }
        let check_updates = match raw.chat.check_updates_hours.unwrap_or(DEFAULT_CHECK_HOURS) {
            0 => None,
            hours => Some(std::time::Duration::from_secs(u64::from(hours) * 3600)),
        };

        let fleet = fleet_config(raw.fleet, &jid)?;
        let health = crate::policy::HealthConfig::from_raw(raw.health)?;
        let policy = crate::policy::PolicyConfig::from_raw(raw.policy)?;

        let admin_socket = base.join(&raw.prosody.admin_socket);
        Ok(Config {
            fleet,
            health,
            policy,
            chat: ChatConfig {
                rooms,
                nick,
                check_updates,
                notify_admins: raw.chat.notify_admins,
            },
            admins,
            path: None,
            sha256: None,
            state_dir: base.join(raw.state_dir),
            component: ComponentConfig {
                jid,
                server: raw.component.server,
                secret,
                secret_file,
            },
            prosody: ProsodyConfig {
                config: base.join(raw.prosody.config),
                modules_dir: base.join(raw.prosody.modules_dir),
                managed_config: base.join(raw.prosody.managed_config),
                admin_socket: admin_socket.clone(),
                builtin_modules: base.join(raw.prosody.builtin_modules),
                installer_plugin_path: match raw.prosody.installer_plugin_path {
                    Some(path) => base.join(path),
                    None => admin_socket
                        .parent()
                        .unwrap_or(base)
                        .join(DEFAULT_INSTALLER_PLUGIN_DIR),
                },
            },
            repositories,
        })
    }
}

/// The Prosody host a modman component serves: its domain less the first
/// label (`modman.b.example.org` -> `b.example.org`), for this modman and
/// for its peers alike.
pub fn server_of(component: &BareJid) -> Option<BareJid> {
    let (_, host) = component.domain().as_str().split_once('.')?;
    host.parse().ok()
}

/// Checks `[fleet]`: each peer is a component's domain (no local part, so
/// no account can pass for a peer), not this modman itself, and there are
/// at most [`MAX_PEERS`].
fn fleet_config(raw: RawFleet, me: &BareJid) -> Result<FleetConfig, String> {
    if raw.peers.len() > MAX_PEERS {
        return Err(format!(
            "key `fleet.peers`: {} peers; at most {MAX_PEERS} are supported",
            raw.peers.len()
        ));
    }
    let mut peers = BTreeSet::new();
    for peer in &raw.peers {
        let jid: BareJid = peer
            .parse()
            .ok()
            .filter(|j: &BareJid| j.node().is_none())
            .ok_or_else(|| format!("key `fleet.peers`: `{peer}` is not a component JID such as \"modman.b.example.org\""))?;
        if &jid == me {
            return Err(format!(
                "key `fleet.peers`: `{peer}` is this modman's own JID; list the other servers' modmans"
            ));
        }
        peers.insert(jid);
    }
    let seconds = raw.answer_seconds.unwrap_or(10);
    if !(1..=600).contains(&seconds) {
        return Err(format!(
            "key `fleet.answer_seconds`: {seconds}; use 1 to 600"
        ));
    }
    let batch_size = std::num::NonZeroUsize::new(raw.batch_size.unwrap_or(DEFAULT_BATCH_SIZE))
        .filter(|n| n.get() <= MAX_PEERS)
        .ok_or_else(|| format!("key `fleet.batch_size`: use 1 to {MAX_PEERS}"))?;
    Ok(FleetConfig {
        peers,
        answer_within: std::time::Duration::from_secs(seconds),
        batch_size,
    })
}

/// Decodes a public key as printed by `modman repo keygen`: base64 of the
/// 32 key bytes.
pub fn parse_public_key(text: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64 ({e}); paste the key `modman repo keygen` printed"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{} bytes, an ed25519 public key has 32", b.len()))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "not a valid ed25519 public key".to_owned())
}

/// Turns toml's multi-line report into one line with a line number.
fn toml_error_line(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", error.message().trim())
        }
        None => error.message().trim().to_owned(),
    }
}

/// `installer_plugin_path` when prosody.cfg.lua does not set it, relative
/// to Prosody's data directory.
pub const DEFAULT_INSTALLER_PLUGIN_DIR: &str = "custom_plugins";

/// A repository name as modman.toml's `[[repositories]]` `name` and the
/// index's `repository` take it: letters, digits, `-` and `_`, at most 64
/// bytes, since it also names files in `state_dir/indexes/`.
pub fn is_valid_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Refuses what is not HTTPS, except plain HTTP to this machine (a loopback
/// address or `localhost`), before anything connects: the rocks are not
/// signed, so TLS is all that tells the configured server from another.
pub fn check_luarocks_url(url: &url::Url) -> Result<(), String> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "{url}: plain HTTP to another machine; a LuaRocks server is unsigned, so modman reaches it over HTTPS only (write https://, or mirror it with `modman repo mirror` and serve the signed mirror)"
        )),
        other => Err(format!("{url}: `{other}` is not http(s)")),
    }
}

/// A part of modman.toml, as an admin names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Admins,
    StateDir,
    Component,
    Prosody,
    Repositories,
    Chat,
}

impl Part {
    /// Its name in modman.toml.
    pub fn name(self) -> &'static str {
        match self {
            Part::Admins => "admins",
            Part::StateDir => "state_dir",
            Part::Component => "[component]",
            Part::Prosody => "[prosody]",
            Part::Repositories => "[[repositories]]",
            Part::Chat => "[chat]",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "https://modules.example/rocks/",
            "http://127.0.0.1:8000/",
            "http://127.1.2.3/",
            "http://[::1]:8000/",
            "http://localhost/",
        ] {
            assert_eq!(
                check_luarocks_url(&url::Url::parse(ok).unwrap()),
                Ok(()),
                "{ok}"
            );
        }
        for bad in [
            "http://192.0.2.1/rocks/",
            "http://modules.example/",
            "http://[::2]/",
        ] {
            let error = check_luarocks_url(&url::Url::parse(bad).unwrap()).unwrap_err();
            assert!(error.contains("plain HTTP to another machine"), "{error}");
        }
    }

    /// A valid modman.toml, for tests anywhere in the crate.
    pub(crate) const GOOD: &str = r#"
admins = ["admin@example.org"]
state_dir = "/var/lib/modman"

[component]
jid = "modman.example.org"
server = "127.0.0.1:5347"
secret = "s3cret"

[prosody]
config = "/etc/prosody/prosody.cfg.lua"
modules_dir = "/var/lib/prosody/modman"
managed_config = "/etc/prosody/modman.cfg.lua"
admin_socket = "/var/lib/prosody/prosody.sock"

[[repositories]]
name = "local"
url = "http://127.0.0.1:8000/"
public_key = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="
"#;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/modman"))
    }

    #[test]
    fn the_documented_example_parses() {
        let config = parse(GOOD).unwrap();
        assert!(config
            .admins
            .contains(&"admin@example.org".parse::<BareJid>().unwrap()));
        assert!(!config
            .admins
            .contains(&"other@example.org".parse::<BareJid>().unwrap()));
        assert_eq!(config.component.jid.as_str(), "modman.example.org");
        assert_eq!(
            config.repositories[0].url.as_str(),
            "http://127.0.0.1:8000/"
        );
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn repositories_are_refreshed_daily_unless_told_otherwise() {
        let day = Some(std::time::Duration::from_secs(24 * 3600));
        assert_eq!(parse(GOOD).unwrap().chat.check_updates, day);
        let hours = |n: &str| {
            parse(&format!("{GOOD}\n[chat]\ncheck_updates_hours = {n}\n"))
                .unwrap()
                .chat
                .check_updates
        };
        assert_eq!(hours("6"), Some(std::time::Duration::from_secs(6 * 3600)));
        assert_eq!(hours("0"), None, "0 turns the schedule off");
    }

    #[test]
    fn each_mistake_names_its_key() {
        let cases = [
            ("secret = \"s3cret\"", "", "component.secret`: missing"),
            (
                "admins = [\"admin@example.org\"]",
                "admins = [\"not a jid@@\"]",
                "`admins`",
            ),
            (
                "admins = [\"admin@example.org\"]",
                "admins = [\"example.org\"]",
                "is a domain",
            ),
            (
                "admins = [\"admin@example.org\"]",
                "admins = []",
                "`admins`: empty",
            ),
            (
                "jid = \"modman.example.org\"",
                "jid = \"bot@modman.example.org\"",
                "component.jid",
            ),
            (
                "server = \"127.0.0.1:5347\"",
                "server = \"127.0.0.1\"",
                "has no port",
            ),
            (
                "url = \"http://127.0.0.1:8000/\"",
                "url = \"ftp://x/\"",
                "repositories[0].url",
            ),
            (
                "public_key = \"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"",
                "public_key = \"abc\"",
                "repositories[0].public_key",
            ),
            (
                "public_key = \"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"",
                "public_keys = [\"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\", \"abc\"]",
                "repositories[0].public_keys[1]",
            ),
            (
                "public_key = \"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"",
                "",
                "repositories[0].public_key`: missing",
            ),
            (
                "state_dir = \"/var/lib/modman\"",
                "state_dir = \"/x\"\ncolour = \"blue\"",
                "unknown field `colour`",
            ),
            (
                "secret = \"s3cret\"",
                "secret = \"a\"\nsecret_file = \"/x\"",
                "both set",
            ),
            (
                "secret = \"s3cret\"",
                "secret_file = \"/nonexistent/secret\"",
                "cannot read /nonexistent/secret",
            ),
            ("[prosody]", "[prosody]\nconfig = 3", "line"),
            (
                "name = \"local\"",
                "name = \"../up\"",
                "repositories[0].name",
            ),
            (
                "public_key = \"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"",
                "",
                "repositories[0].public_key`: missing",
            ),
            (
                "public_key = \"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"",
                "public_key = \"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"\nkind = \"luarocks\"",
                "a LuaRocks server signs nothing",
            ),
            (
                "url = \"http://127.0.0.1:8000/\"\npublic_key = \"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"",
                "url = \"http://modules.example/rocks/\"\nkind = \"luarocks\"",
                "repositories[0].url`: http://modules.example/rocks/: plain HTTP to another machine",
            ),
            (
                "public_key = \"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"",
                "kind = \"git\"",
                "unknown variant `git`",
            ),
        ];
        for (from, to, expected) in cases {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "case {expected} did not change the text");
            let error = parse(&text).unwrap_err();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
            assert!(!error.contains('\n'), "multi-line error: {error:?}");
        }
    }

    #[test]
    fn fleet_peers_are_other_components_and_nothing_else() {
        assert!(parse(GOOD).unwrap().fleet.peers.is_empty());
        let fleet = |section: &str| parse(&format!("{GOOD}\n[fleet]\n{section}\n"));
        let config = fleet("peers = [\"modman.b.example.org\"]").unwrap();
        assert!(config
            .fleet
            .peers
            .contains(&"modman.b.example.org".parse::<BareJid>().unwrap()));
        assert_eq!(
            config.fleet.answer_within,
            std::time::Duration::from_secs(10)
        );
        assert_eq!(config.fleet.batch_size.get(), DEFAULT_BATCH_SIZE);
        let batch = fleet("batch_size = 3").unwrap().fleet.batch_size;
        assert_eq!(batch.get(), 3);
        let own = format!("peers = [\"{}\"]", config.component.jid);
        for (section, key) in [
            ("peers = [\"admin@b.example.org\"]", "fleet.peers"),
            (own.as_str(), "fleet.peers"),
            ("answer_seconds = 0", "fleet.answer_seconds"),
            ("batch_size = 0", "fleet.batch_size"),
            ("batch_size = 100000", "fleet.batch_size"),
            ("peer = []", "peer"),
        ] {
            let error = fleet(section).unwrap_err();
            assert!(error.contains(key), "{section}: {error}");
        }
        let many: Vec<String> = (0..=MAX_PEERS).map(|i| format!("\"m.s{i}.org\"")).collect();
        assert!(fleet(&format!("peers = [{}]", many.join(","))).is_err());
    }

    #[test]
    fn a_repository_rotating_its_key_trusts_every_listed_key() {
        let text = GOOD.replacen(
            "public_key = ",
            "public_keys = [\"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]\npublic_key = ",
            1,
        );
        let config = parse(&text).unwrap();
        assert!(matches!(
            &config.repositories[0].kind,
            RepositoryKind::Signed { public_keys } if public_keys.len() == 2
        ));
    }

    #[test]
    fn a_luarocks_server_needs_no_key() {
        let text = GOOD.replacen(
            "url = \"http://127.0.0.1:8000/\"\npublic_key = \"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"",
            "url = \"https://modules.example/rocks/\"\nkind = \"luarocks\"",
            1,
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.repositories[0].kind, RepositoryKind::LuaRocks);
        assert!(matches!(
            parse(GOOD).unwrap().repositories[0].kind,
            RepositoryKind::Signed { .. }
        ));
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../modman.example.toml");
        let config = parse(text).unwrap();
        assert_eq!(config.component.jid.as_str(), "modman.example.org");
    }

    #[test]
    fn unknown_key_reports_its_line() {
        let text = GOOD.replacen("state_dir", "colour = 1\nstate_dir", 1);
        let error = parse(&text).unwrap_err();
        assert!(
            error.starts_with("line 3: unknown field `colour`"),
            "{error}"
        );
    }

    #[test]
    fn secrets_readable_by_everyone_are_named_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("modman.toml");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s\n").unwrap();
        std::fs::write(
            &toml,
            GOOD.replacen("secret = \"s3cret\"", "secret_file = \"secret\"", 1),
        )
        .unwrap();
        for (file, mode) in [(&toml, 0o640), (&secret, 0o600)] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let config = Config::load(&toml).unwrap();
        assert!(config.exposed_secrets().is_empty());
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = config.exposed_secrets();
        assert_eq!(exposed.len(), 1, "{exposed:?}");
        assert!(
            exposed[0].contains("mode 644")
                && exposed[0].contains(&format!("chmod 600 {}", secret.display())),
            "{exposed:?}"
        );
    }

    #[test]
    fn secret_file_is_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "from-file\n").unwrap();
        let text = GOOD.replacen("secret = \"s3cret\"", "secret_file = \"secret\"", 1);
        let config = Config::parse(&text, dir.path()).unwrap();
        assert_eq!(config.component.secret, "from-file");
    }
}
