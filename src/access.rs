//! Who may act. Every request, from any front end, passes this one gate
//! before anything runs, and what it hands back is an [`Actor`], which
//! every operation and every change takes. Only this file makes one: a
//! gate per front end (XMPP, the command line) and modman's own work (its
//! schedule, a health check's undo), each a public constructor here, so
//! every way to act is listed in one place; and the history names who
//! acted in one format.

use std::fmt;

use xmpp_parsers::jid::BareJid;

use crate::config::Config;

/// Someone modman acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor(Kind);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    /// A JID listed in `admins`, by its real bare JID.
    Admin(BareJid),
    /// A person at the host's shell, by login name: the operating system
    /// let them read modman's config and state, which is the permission.
    LocalUser(String),
    /// A person at the host's shell whose command was handed to the
    /// daemon over its local socket: by login name, and by the PID of
    /// that command (which the kernel vouches for), so that its health
    /// verdicts find their way back to it and to no other.
    HandedOver { name: String, pid: u32 },
    /// modman itself, on its schedule (the daily refresh).
    Schedule,
    /// modman itself, undoing a change that failed its health check.
    HealthCheck,
}

impl Actor {
    /// The gate for XMPP: `jid` (the sender's real bare JID, never a room
    /// nick) is admitted when it is one of the configured admins.
    pub fn admit(config: &Config, jid: &BareJid) -> Option<Actor> {
        config
            .admins
            .contains(jid)
            .then(|| Actor(Kind::Admin(jid.clone())))
    }

    /// The gate for the command line, for an operation that changes the
    /// host: the user running it must own modman's state directory. The
    /// daemon runs as that owner (prosody); a change made as another user,
    /// root above all, would leave files it cannot replace, and every later
    /// change would fail.
    pub fn local_changer(config: &Config) -> Result<Actor, NotTheOwner> {
        use std::os::unix::fs::MetadataExt;
        let me = std::fs::metadata("/proc/self").map(|m| m.uid());
        match (me, state_owner(config)) {
            (Ok(me), Some(owner)) if me != owner => Err(NotTheOwner::of(config, owner)),
            _ => Ok(Actor::local_user()),
        }
    }

    /// The gate for the command line: the user running it.
    pub fn local_user() -> Actor {
        use std::os::unix::fs::MetadataExt;
        let name = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| {
                std::fs::metadata("/proc/self")
                    .map_or("unknown".into(), |m| format!("uid {}", m.uid()))
            });
        Actor(Kind::LocalUser(name))
    }

    /// The gate for a command handed to the daemon over its local socket,
    /// by the user the kernel says connected (`uid`, from the socket's
    /// peer credentials, never from what the command says): the owner of
    /// modman's state directory, or root. Root may, unlike at
    /// [`Actor::local_changer`], because the daemon does the work as the
    /// owner: no file of root's is left behind.
    pub fn handed_over(config: &Config, uid: u32, pid: u32) -> Result<Actor, NotTheOwner> {
        owner_or_root(config, uid)?;
        Ok(Actor(Kind::HandedOver {
            name: user_name(uid),
            pid,
        }))
    }

    /// modman's own scheduled work.
    pub fn schedule() -> Actor {
        Actor(Kind::Schedule)
    }

    /// modman itself, putting back what failed its health check.
    pub fn health_check() -> Actor {
        Actor(Kind::HealthCheck)
    }

    /// The admin's JID, when an admin acts over XMPP.
    pub fn jid(&self) -> Option<&BareJid> {
        match &self.0 {
            Kind::Admin(jid) => Some(jid),
            _ => None,
        }
    }
}

/// Why the command line may not change anything as this user.
#[derive(Debug, thiserror::Error)]
#[error("modman's state {} belongs to {owner}, and changes must be made as that user so the daemon can go on making them; run it as {owner}: runuser -u {owner} -- modman ... (or sudo -u {owner} modman ...)", state_dir.display())]
pub struct NotTheOwner {
    pub state_dir: std::path::PathBuf,
    pub owner: String,
}

impl NotTheOwner {
    fn of(config: &Config, owner: u32) -> NotTheOwner {
        NotTheOwner {
            state_dir: config.state_dir.clone(),
            owner: user_name(owner),
        }
    }
}

/// The rule on both sides of the daemon's local socket: a command is
/// handed over only by the state directory's owner (whom the daemon runs
/// as) or root, and only to a daemon running as one of them. A state
/// directory whose owner cannot be read leaves it to the operating
/// system, as the socket inside it is then out of reach too.
pub fn owner_or_root(config: &Config, uid: u32) -> Result<(), NotTheOwner> {
    match state_owner(config) {
        Some(owner) if uid != owner && uid != 0 => Err(NotTheOwner::of(config, owner)),
        _ => Ok(()),
    }
}

/// The uid that owns modman's state directory, if it can be read.
fn state_owner(config: &Config) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(&config.state_dir).ok().map(|m| m.uid())
}

/// The login name of `uid`, from /etc/passwd; the number if it has none.
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.get(2) == Some(&uid.to_string().as_str())).then(|| fields[0].to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// As the history writes it: `admin@example.org`, `cli:alice`, `schedule`,
/// `health-check`.
impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Admin(jid) => write!(f, "{jid}"),
            Kind::LocalUser(name) | Kind::HandedOver { name, .. } => write!(f, "cli:{name}"),
            Kind::Schedule => f.write_str("schedule"),
            Kind::HealthCheck => f.write_str("health-check"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_admins_are_admitted() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("modman.example.toml"),
        )
        .unwrap();
        let config = Config::parse(&text, std::path::Path::new("/etc/modman")).unwrap();
        let admin = config.admins.iter().next().unwrap().clone();
        let actor = Actor::admit(&config, &admin).unwrap();
        assert_eq!(actor.jid(), Some(&admin));
        assert_eq!(actor.to_string(), admin.to_string());
        let stranger: BareJid = "mallory@example.net".parse().unwrap();
        assert!(Actor::admit(&config, &stranger).is_none());
        assert!(Actor::local_user().to_string().starts_with("cli:"));
    }
}
