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
}

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
#[derive(Debug, Clone)]
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
}

/// A module repository: static files over HTTP, with a signed index.
#[derive(Debug, Clone)]
pub struct Repository {
    pub name: String,
    pub url: url::Url,
    pub public_key: ed25519_dalek::VerifyingKey,
    /// Longest a download from it may take.
    pub timeout: std::time::Duration,
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
}

fn default_builtin_modules() -> PathBuf {
    PathBuf::from("/usr/lib/prosody/modules")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepository {
    name: String,
    url: String,
    public_key: String,
    #[serde(default = "default_timeout_seconds")]
    timeout_seconds: u64,
}

fn default_timeout_seconds() -> u64 {
    30
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let fail = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read the file: {e}")))?;
        Config::parse(&text, path.parent().unwrap_or(Path::new("."))).map_err(fail)
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
            (Some(secret), None) => secret,
            (None, Some(file)) => {
                let file = base.join(file);
                std::fs::read_to_string(&file)
                    .map_err(|e| {
                        format!("key `component.secret_file`: cannot read {}: {e}", file.display())
                    })?
                    .trim()
                    .to_owned()
            }
        };
        if secret.is_empty() {
            return Err(
                "key `component.secret`: empty; use the component_secret from prosody.cfg.lua"
                    .into(),
            );
        }

        let mut repositories: Vec<Repository> = Vec::new();
        for (i, repo) in raw.repositories.into_iter().enumerate() {
            let key = format!("repositories[{i}]");
            let name_ok = !repo.name.is_empty()
                && repo.name.len() <= 64
                && repo
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
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
            let public_key = parse_public_key(&repo.public_key)
                .map_err(|e| format!("key `{key}.public_key`: {e}"))?;
            if !(1..=3600).contains(&repo.timeout_seconds) {
                return Err(format!(
                    "key `{key}.timeout_seconds`: {} is not between 1 and 3600",
                    repo.timeout_seconds
                ));
            }
            repositories.push(Repository {
                name: repo.name,
                url,
                public_key,
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

        Ok(Config {
            chat: ChatConfig {
                rooms,
                nick,
                check_updates,
                notify_admins: raw.chat.notify_admins,
            },
            admins,
            state_dir: base.join(raw.state_dir),
            component: ComponentConfig {
                jid,
                server: raw.component.server,
                secret,
            },
            prosody: ProsodyConfig {
                config: base.join(raw.prosody.config),
                modules_dir: base.join(raw.prosody.modules_dir),
                managed_config: base.join(raw.prosody.managed_config),
                admin_socket: base.join(raw.prosody.admin_socket),
                builtin_modules: base.join(raw.prosody.builtin_modules),
            },
            repositories,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
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
    fn secret_file_is_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "from-file\n").unwrap();
        let text = GOOD.replacen("secret = \"s3cret\"", "secret_file = \"secret\"", 1);
        let config = Config::parse(&text, dir.path()).unwrap();
        assert_eq!(config.component.secret, "from-file");
    }
}
