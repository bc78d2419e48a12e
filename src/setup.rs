//! `modman setup`: the exact lines prosody.cfg.lua needs and a ready
//! modman.toml for one domain, with a fresh component secret. It prints
//! them; with `--write` it applies them, after backing up prosody.cfg.lua,
//! and never overwrites an existing modman.toml.
//!
//! prosody.cfg.lua is Lua, and Prosody 0.12 keeps the last assignment of
//! an option, so the edits are placed with care: global options go before
//! the first VirtualHost or Component (after it they would belong to that
//! host), existing lists are extended rather than replaced, and the
//! Component and the Include go at the end.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::engine::prosody_cfg::{ProsodyCfg, Value};

pub mod undo;

/// What to set up.
pub struct Options {
    /// The XMPP domain, such as `example.org`.
    pub domain: String,
    /// The first admin; `admin@DOMAIN` when not given.
    pub admin: Option<String>,
    pub prosody_config: PathBuf,
    pub modman_config: PathBuf,
    /// Prosody's data directory (admin socket, modules).
    pub data_dir: PathBuf,
    /// modman's own state.
    pub state_dir: PathBuf,
    /// Where modules come from at first.
    pub source: Source,
    /// The fleet this server's modman joins, if any.
    pub fleet: Fleet,
}

/// A modman among others, one per Prosody server: the room they meet in
/// and the peer modmans this one asks and accepts relayed requests from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    /// The team's room, such as `ops@conference.a.example.org`.
    pub room: Option<String>,
    /// Peer modmans' component JIDs, such as `modman.b.example.org`.
    pub peers: Vec<String>,
}

/// The repository a new modman.toml names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A LuaRocks server, by default Prosody's community repository.
    LuaRocks(String),
    /// None yet: the admin adds one.
    None,
}

/// Prosody's community repository, the source every module page names.
pub const COMMUNITY: &str = "https://modules.prosody.im/rocks/";

/// Where setup puts modman's files under Prosody's data directory.
pub struct Paths {
    /// Where modman installs modules (in Prosody's plugin_paths).
    pub modules_dir: PathBuf,
    /// The config file modman writes, Included by prosody.cfg.lua.
    pub managed_config: PathBuf,
    /// Prosody's admin socket (mod_admin_shell).
    pub admin_socket: PathBuf,
}

impl Paths {
    /// The places under `data_dir`.
    pub fn under(data_dir: &Path) -> Paths {
        Paths {
            modules_dir: data_dir.join("modman"),
            managed_config: data_dir.join("modman.cfg.lua"),
            admin_socket: data_dir.join("prosody.sock"),
        }
    }
}

/// The set-up, decided.
#[derive(Debug)]
pub struct Setup {
    pub component: String,
    /// The component secret, in both files; never printed.
    pub secret: String,
    pub modules_dir: PathBuf,
    pub managed_config: PathBuf,
    /// prosody.cfg.lua after the edits.
    pub prosody_cfg: String,
    /// Each edit, as a line for the admin to read.
    pub changes: Vec<String>,
    pub modman_toml: String,
}

impl Setup {
    /// The lines of prosody.cfg.lua after the edits that `old` (the file
    /// before) does not have, the secret hidden: what an admin reads.
    pub fn added_lines(&self, old: &str) -> Vec<String> {
        let old_lines: std::collections::HashSet<&str> = old.lines().collect();
        (self.prosody_cfg.lines())
            .filter(|line| !old_lines.contains(line))
            .map(|line| self.hidden(line))
            .collect()
    }

    /// `text` with the component secret replaced, for printing.
    pub fn hidden(&self, text: &str) -> String {
        text.replace(&self.secret, "(secret)")
    }

    /// What setup changed (`backup` is where prosody.cfg.lua was backed
    /// up) or, without one, would change, as facts for scripts
    /// (`setup --json`): the files, the component, the lines added to
    /// prosody.cfg.lua (`old` is the file before) and whether anything
    /// was written. The secret is never in it.
    pub fn to_json(
        &self,
        options: &Options,
        old: &str,
        backup: Option<&Path>,
    ) -> serde_json::Value {
        serde_json::json!({
            "kind": "setup",
            "written": backup.is_some(),
            "backup": backup,
            "domain": options.domain,
            "component": self.component,
            "prosody_config": options.prosody_config,
            "modman_config": options.modman_config,
            "modules_dir": self.modules_dir,
            "managed_config": self.managed_config,
            "prosody_config_added": self.added_lines(old),
            "changes": self.changes,
        })
    }
}

/// Decides the set-up from prosody.cfg.lua as it is now.
pub fn plan(options: &Options) -> Result<Setup, String> {
    let domain = options.domain.trim().to_lowercase();
    if domain.is_empty()
        || !domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
    {
        return Err(format!("`{}` is not a domain name", options.domain));
    }
    let component = format!("modman.{domain}");
    let admin = options
        .admin
        .clone()
        .unwrap_or_else(|| format!("admin@{domain}"));
    let original = std::fs::read_to_string(&options.prosody_config)
        .map_err(|e| format!("cannot read {}: {e}", options.prosody_config.display()))?;
    let cfg = ProsodyCfg::parse(&original).map_err(|e| {
        format!(
            "cannot read {}, {e}; nothing was changed (prosodyctl check config says more)",
            options.prosody_config.display()
        )
    })?;
    if cfg.has_section(&component) {
        return Err(format!(
            "{} already has Component \"{component}\": modman looks set up; run modman check",
            options.prosody_config.display()
        ));
    }
    let Paths {
        modules_dir,
        managed_config,
        admin_socket,
    } = Paths::under(&options.data_dir);
    let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 24]>());

    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let mut changes = Vec::new();
    let first_host = cfg.first_section_line().unwrap_or(lines.len());

    // Global options, before the first host section.
    let mut global_lines = Vec::new();
    let dir = modules_dir.display().to_string();
    match cfg.global("plugin_paths") {
        Some((paths, at)) => {
            add_to_list(&mut lines, paths, at, &dir)?;
            changes.push(format!("added \"{dir}\" to plugin_paths"));
        }
        None => {
            global_lines.push(format!(
                "plugin_paths = {{ \"{dir}\" }} -- modman installs modules here"
            ));
            changes.push(format!("set plugin_paths = {{ \"{dir}\" }}"));
        }
    }
    for module in ["admin_shell", "version"] {
        match cfg.global("modules_enabled") {
            Some((enabled, _)) if enabled.strings().contains(&module) => {}
            Some((enabled, at)) => {
                add_to_list(&mut lines, enabled, at, module)?;
                changes.push(format!("added \"{module}\" to the global modules_enabled"));
            }
            None => return Err("prosody.cfg.lua has no global modules_enabled; add one before the first VirtualHost".into()),
        }
    }
    let port = match cfg.global("component_ports") {
        Some((ports, _)) => ports.first_number().unwrap_or("5347").to_owned(),
        None => {
            global_lines.push("component_ports = { 5347 } -- modman connects here".into());
            global_lines.push("component_interface = \"127.0.0.1\" -- only from this host".into());
            changes.push("set component_ports = { 5347 } on 127.0.0.1".into());
            "5347".into()
        }
    };
    if cfg.global("network_settings").is_none() {
        global_lines.push(format!(
            "{} -- replies leave at once: with Nagle's algorithm on (Prosody's default) a reply sent in pieces waits about 40 ms for the client's delayed ACK",
            crate::prosody::Nagle::OFF_SETTING
        ));
        changes.push(format!(
            "set {} (no 40 ms wait on each reply sent in pieces)",
            crate::prosody::Nagle::OFF_SETTING
        ));
    }
    if !global_lines.is_empty() {
        let mut block = vec![undo::BEGIN.to_owned()];
        block.extend(global_lines);
        block.extend([undo::END.to_owned(), String::new()]);
        lines.splice(first_host..first_host, block);
    }
    // The component and the managed file, last.
    lines.extend([
        String::new(),
        undo::BEGIN.into(),
        "-- The module manager, as an XEP-0114 component.".into(),
        format!("Component \"{component}\""),
        format!("    component_secret = \"{secret}\""),
        String::new(),
        "-- modman's managed config; keep this last. A missing file is skipped.".into(),
        crate::engine::include::line(&managed_config),
        undo::END.into(),
    ]);
    changes.push(format!("added Component \"{component}\" with a new secret"));
    changes.push(format!(
        "added {} as the last line (a pattern that matches only {}, so Prosody starts without it)",
        crate::engine::include::line(&managed_config),
        managed_config.display()
    ));

    let modman_toml = format!(
        r#"# Written by modman setup for {domain}. Reference: modman.example.toml.
admins = ["{admin}"]
state_dir = "{state}"

[component]
jid = "{component}"
server = "127.0.0.1:{port}"
secret = "{secret}"

[prosody]
config = "{prosody}"
modules_dir = "{dir}"
managed_config = "{managed}"
admin_socket = "{socket}"

{repositories}{fleet}"#,
        repositories = repositories(&options.source),
        fleet = fleet_sections(&options.fleet, &domain),
        prosody = options.prosody_config.display(),
        managed = managed_config.display(),
        socket = admin_socket.display(),
        state = options.state_dir.display(),
    );
    // What setup writes, modman must accept: a room or a peer that is not
    // a JID is refused here, naming its key, before anything is written.
    let base = options.modman_config.parent().unwrap_or(Path::new("/"));
    crate::config::Config::parse(&modman_toml, base)
        .map_err(|e| format!("the modman.toml setup would write is refused: {e}"))?;
    if let Some(room) = &options.fleet.room {
        changes.push(format!(
            "modman.toml: joins the fleet's room {room} as {domain}"
        ));
    }
    if !options.fleet.peers.is_empty() {
        changes.push(format!(
            "modman.toml: asks, and takes requests relayed from, {}; each must list modman.{domain} among its own peers",
            options.fleet.peers.join(", ")
        ));
    }
    Ok(Setup {
        component,
        secret,
        modules_dir,
        managed_config,
        prosody_cfg: lines.join("\n") + "\n",
        changes,
        modman_toml,
    })
}

/// The `[chat]` and `[fleet]` parts of a new modman.toml for a modman
/// of a fleet: its nick in the room is its server's domain, which is how
/// people address it there.
fn fleet_sections(fleet: &Fleet, domain: &str) -> String {
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let mut out = String::new();
    if let Some(room) = &fleet.room {
        out += &format!(
            "\n[chat]\nrooms = [{}]\nnick = {}\n",
            quoted(room),
            quoted(domain)
        );
    }
    if !fleet.peers.is_empty() {
        let peers: Vec<String> = fleet.peers.iter().map(|p| quoted(p)).collect();
        out += &format!(
            "\n# Each peer is another server's modman. It answers this one only if it\n\
             # lists modman.{domain} among its own peers, and only for admins in its\n\
             # own `admins`: configuring this server makes nobody an admin elsewhere.\n\
             [fleet]\npeers = [{}]\n",
            peers.join(", ")
        );
    }
    out
}

/// The `[[repositories]]` part of a new modman.toml, saying what trust a
/// source implies.
fn repositories(source: &Source) -> String {
    let own =
        "# Your own signed repository (modman repo build or repo mirror; keygen prints the key):\n\
               # [[repositories]]\n\
               # name = \"local\"\n\
               # url = \"https://modules.example.org/\"\n\
               # public_key = \"...\"\n";
    match source {
        Source::None => own.to_owned(),
        Source::LuaRocks(url) => format!(
            "# Prosody's community repository, a LuaRocks server. Nothing there is\n\
             # signed: HTTPS and modman's pin of each rock's SHA-256 on first use are\n\
             # all that protect it. For production, mirror it with a key of your own\n\
             # (modman repo mirror) and use the mirror instead.\n\
             [[repositories]]\n\
             name = \"community\"\n\
             url = \"{url}\"\n\
             kind = \"luarocks\"\n\n{own}"
        ),
    }
}

/// Adds `"item";` right after the `{` of `list`, the value assigned at
/// line `at`, and names it in the mark of the line the `{` is on, for
/// `--undo` ([`undo::mark_added`]).
fn add_to_list(lines: &mut [String], list: &Value, at: usize, item: &str) -> Result<(), String> {
    let Value::Table { open, .. } = list else {
        return Err(format!(
            "cannot read the list on line {}: `{}`; edit it by hand",
            at + 1,
            lines[at]
        ));
    };
    let line = &mut lines[open.line];
    line.insert_str(open.column + 1, &undo::list_item(item));
    undo::mark_added(line, item);
    Ok(())
}

/// Applies a set-up: backs up and rewrites prosody.cfg.lua, keeping its
/// owner, group and mode (and the backup's the same), creates modman's
/// state directory, the module directory and the managed file, and writes
/// modman.toml. Returns the backup's path.
///
/// What setup creates belongs to the prosody user when there is one, as
/// both Prosody and modman run as that user: the directories 0750 and the
/// managed config 0640 (it may hold a module's secret, so not readable by
/// every local user). With no prosody user, root keeps them, readable by
/// whatever user Prosody runs as (0755 and 0644).
///
/// setup runs as root and works under Prosody's data directory, which the
/// prosody user owns: a symbolic link that user planted where a directory
/// or file is expected would make root create or chown whatever it points
/// to. So every path it creates or chowns is checked not to be a link
/// (before anything is changed), created without following one, and
/// chowned with `lchown`, which never follows.
pub fn write(options: &Options, setup: &Setup) -> Result<PathBuf, String> {
    if std::fs::symlink_metadata(&options.modman_config).is_ok() {
        return Err(format!(
            "{} exists; modman setup never overwrites it: move it away, or merge the printed one by hand",
            options.modman_config.display()
        ));
    }
    for path in [
        &setup.modules_dir,
        &setup.managed_config,
        &options.state_dir,
    ] {
        refuse_link(path)?;
    }
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let backup = PathBuf::from(format!(
        "{}.modman-setup-{stamp}.bak",
        options.prosody_config.display()
    ));
    crate::fsutil::copy_keeping_owner(&options.prosody_config, &backup).map_err(|e| {
        format!(
            "cannot back up {}: {e}; nothing was changed",
            options.prosody_config.display()
        )
    })?;
    let owner = crate::fsutil::Account::named("prosody").map(|a| (a.uid, a.gid));
    let (dir_mode, file_mode) = match owner {
        Some(_) => (0o750, 0o640),
        None => (0o755, 0o644),
    };
    for dir in [&setup.modules_dir, &options.state_dir] {
        if create_dir_no_follow(dir, dir_mode)? {
            chown(dir, owner)?;
        }
    }
    if std::fs::symlink_metadata(&setup.managed_config).is_err() {
        create_private(&setup.managed_config, file_mode, owner)?;
        crate::engine::managed_config::ManagedConfig::default()
            .save(&setup.managed_config)
            .map_err(|e| format!("cannot create {}: {e}", setup.managed_config.display()))?;
    }
    if let Some(dir) = options.modman_config.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    write_private(&options.modman_config, &setup.modman_toml)?;
    chown(&options.modman_config, owner)?;
    crate::fsutil::atomic_write(&options.prosody_config, setup.prosody_cfg.as_bytes()).map_err(
        |e| {
            format!(
                "cannot write {}: {e}; it is unchanged (backup: {})",
                options.prosody_config.display(),
                backup.display()
            )
        },
    )?;
    Ok(backup)
}

/// Refuses a symbolic link at `path` (see [`write`]), saying what to do.
fn refuse_link(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(format!(
            "{} is a symbolic link where modman setup expects its own directory or file; it may have been planted to redirect setup (which runs as root): remove it, check where it pointed, and run setup again; nothing was changed",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// Creates `dir` (with `mode`) and its missing parents, refusing a link
/// at any of them: `create_dir_all` would follow one. Whether it created
/// `dir`: one that was there is the admin's, and keeps its owner.
fn create_dir_no_follow(dir: &Path, mode: u32) -> Result<bool, String> {
    use std::os::unix::fs::DirBuilderExt;
    let mut missing = Vec::new();
    let mut cursor = dir;
    loop {
        match std::fs::symlink_metadata(cursor) {
            Ok(metadata) if metadata.file_type().is_symlink() && cursor == dir => {
                return refuse_link(cursor).map(|()| false)
            }
            // An existing ancestor is the admin's: a link there is theirs.
            Ok(_) if std::fs::metadata(cursor).is_ok_and(|m| m.is_dir()) => break,
            Ok(_) => {
                return Err(format!(
                    "{} exists and is not a directory; move it away and run setup again",
                    cursor.display()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(cursor);
                match cursor.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => cursor = parent,
                    _ => break,
                }
            }
            Err(e) => return Err(format!("cannot look at {}: {e}", cursor.display())),
        }
    }
    let created = missing.first() == Some(&dir);
    for path in missing.into_iter().rev() {
        // `create_dir` never follows a link: one planted meanwhile makes
        // it fail with "exists", and it is refused below.
        let mut builder = std::fs::DirBuilder::new();
        if path == dir {
            builder.mode(mode);
        }
        if let Err(e) = builder.create(path) {
            refuse_link(path)?;
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(format!("cannot create {}: {e}", path.display()));
            }
        }
    }
    refuse_link(dir)?;
    Ok(created)
}

/// Creates the empty file `path` with `mode`, given to `owner` through
/// the open file: `create_new` never follows a link, and nothing can be
/// swapped in between creating and chowning.
fn create_private(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    match owner {
        Some((uid, gid)) => std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .map_err(|e| format!("cannot give {} to the prosody user: {e}", path.display())),
        None => Ok(()),
    }
}

/// modman.toml holds the secret: readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Gives `path` itself (never what a link there points to) to `owner`.
fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<(), String> {
    match owner {
        Some((uid, gid)) => std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| format!("cannot give {} to the prosody user: {e}", path.display())),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const DEBIAN_LIKE: &str = "admins = { }\nmodules_enabled = {\n\t\"roster\";\n\t\"disco\";\n}\nVirtualHost \"localhost\"\nComponent \"conference.localhost\" \"muc\"\n";

    pub(crate) fn options(dir: &Path) -> Options {
        std::fs::write(dir.join("prosody.cfg.lua"), DEBIAN_LIKE).unwrap();
        Options {
            domain: "localhost".into(),
            admin: None,
            prosody_config: dir.join("prosody.cfg.lua"),
            modman_config: dir.join("modman/modman.toml"),
            data_dir: dir.join("data"),
            state_dir: dir.join("state"),
            source: Source::LuaRocks(COMMUNITY.into()),
            fleet: Fleet::default(),
        }
    }

    #[test]
    fn a_fleet_member_joins_the_room_under_its_domain_and_lists_its_peers() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Options {
            fleet: Fleet {
                room: Some("ops@conference.a.example.org".into()),
                peers: vec!["modman.b.example.org".into(), "modman.c.example.org".into()],
            },
            ..options(dir.path())
        };
        let setup = plan(&fleet).unwrap();
        let config = crate::config::Config::parse(&setup.modman_toml, dir.path()).unwrap();
        assert_eq!(
            config.chat.rooms[0].as_str(),
            "ops@conference.a.example.org"
        );
        assert_eq!(config.chat.nick, "localhost");
        assert_eq!(config.fleet.peers.len(), 2);
        for (room, peers) in [
            (Some("not a room"), vec![]),
            (None, vec!["admin@b.example.org".to_owned()]),
            (None, vec!["modman.localhost".to_owned()]),
        ] {
            let bad = Options {
                fleet: Fleet {
                    room: room.map(str::to_owned),
                    peers,
                },
                ..options(dir.path())
            };
            let error = plan(&bad).unwrap_err();
            assert!(
                error.contains("chat.rooms") || error.contains("fleet.peers"),
                "{error}"
            );
        }
        assert!(!dir.path().join("modman").exists());
    }

    #[test]
    fn the_community_repository_is_offered_saying_what_protects_it() {
        let dir = tempfile::tempdir().unwrap();
        let setup = plan(&options(dir.path())).unwrap();
        let config = crate::config::Config::parse(&setup.modman_toml, dir.path()).unwrap();
        let community = &config.repositories[0];
        assert_eq!(community.kind, crate::config::RepositoryKind::LuaRocks);
        assert_eq!(community.url.as_str(), COMMUNITY);
        assert!(setup
            .modman_toml
            .contains("HTTPS and modman's pin of each rock"));
        assert!(setup.modman_toml.contains("modman repo mirror"));
        let none = Options {
            source: Source::None,
            ..options(dir.path())
        };
        let setup = plan(&none).unwrap();
        let config = crate::config::Config::parse(&setup.modman_toml, dir.path()).unwrap();
        assert!(config.repositories.is_empty());
    }

    /// Shapes the line scanners before got wrong: a commented-out
    /// modman Component made setup refuse, a `--[[ ]]` block mentioning
    /// a VirtualHost had the global options written into the comment, a
    /// list whose `{` is on the next line could not be extended, and of
    /// two global assignments the first (which Prosody overrides) was.
    #[test]
    fn prosody_cfg_is_read_as_lua_before_it_is_edited() {
        let dir = tempfile::tempdir().unwrap();
        let options = options(dir.path());
        let original = "--[[ Retired:\nVirtualHost \"old.localhost\"\n]]\n--Component \"modman.localhost\"\nplugin_paths = { \"/old\" }\nplugin_paths = { \"/usr/local/lib/prosody/modules\" }\nmodules_enabled =\n{\n\t\"roster\"; -- \"version\";\n}\nVirtualHost \"localhost\"\n";
        std::fs::write(&options.prosody_config, original).unwrap();
        let setup = plan(&options).unwrap();
        let cfg = ProsodyCfg::parse(&setup.prosody_cfg).unwrap();
        let dir = setup.modules_dir.display().to_string();
        let global = |name: &str| cfg.global(name).unwrap().0.strings();
        assert_eq!(
            global("plugin_paths"),
            [dir.as_str(), "/usr/local/lib/prosody/modules"]
        );
        assert_eq!(
            global("modules_enabled"),
            ["version", "admin_shell", "roster"]
        );
        assert_eq!(
            cfg.global("component_ports").unwrap().0.first_number(),
            Some("5347")
        );
        assert!(cfg.global("network_settings").is_some());
        assert!(cfg.has_section("modman.localhost"));
        let (undone, _) = undo::strip(&setup.prosody_cfg).unwrap();
        assert_eq!(undone, original);
    }

    #[test]
    fn global_options_go_before_the_first_host_and_the_rest_last() {
        let dir = tempfile::tempdir().unwrap();
        let setup = plan(&options(dir.path())).unwrap();
        let cfg = &setup.prosody_cfg;
        let at = |needle: &str| {
            cfg.find(needle)
                .unwrap_or_else(|| panic!("{needle} not in {cfg}"))
        };
        assert!(at("plugin_paths") < at("VirtualHost \"localhost\""));
        assert!(at("component_ports = { 5347 }") < at("VirtualHost \"localhost\""));
        let global_part = &cfg[..at("VirtualHost \"localhost\"")];
        assert_eq!(
            crate::prosody::Nagle::from_network_settings(global_part),
            crate::prosody::Nagle::Off
        );
        assert!(
            cfg.contains("modules_enabled = { \"version\"; \"admin_shell\"; -- modman setup added: \"admin_shell\" \"version\"\n\t\"roster\";"),
            "{cfg}"
        );
        assert!(at("Component \"modman.localhost\"") > at("Component \"conference.localhost\""));
        assert!(cfg.trim_end().ends_with(&format!(
            "{}\n{}",
            crate::engine::include::line(&setup.managed_config),
            undo::END
        )));
        let secret = cfg
            .split("component_secret = \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(secret.len(), 32);
        assert!(setup
            .modman_toml
            .contains(&format!("secret = \"{secret}\"")));
        assert!(
            crate::config::Config::parse(&setup.modman_toml, dir.path()).is_ok(),
            "{}",
            setup.modman_toml
        );
    }

    #[test]
    fn a_planted_link_is_refused_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let options = options(dir.path());
        let setup = plan(&options).unwrap();
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::create_dir_all(&options.data_dir).unwrap();
        for planted in [&setup.modules_dir, &setup.managed_config] {
            std::os::unix::fs::symlink(&victim, planted).unwrap();
            let before = std::fs::read_dir(dir.path()).unwrap().count();
            let error = write(&options, &setup).unwrap_err();
            assert!(
                error.contains(&format!("{} is a symbolic link", planted.display()))
                    && error.contains("nothing was changed"),
                "{error}"
            );
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
            assert_eq!(
                std::fs::read_to_string(&options.prosody_config).unwrap(),
                DEBIAN_LIKE
            );
            assert!(!options.modman_config.exists());
            assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
            std::fs::remove_file(planted).unwrap();
        }
        // A dangling link where modman.toml goes is not overwritten either.
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &options.modman_config)
            .unwrap_or_else(|_| {
                std::fs::create_dir_all(options.modman_config.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(dir.path().join("nowhere"), &options.modman_config)
                    .unwrap()
            });
        assert!(write(&options, &setup)
            .unwrap_err()
            .contains("never overwrites"));
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn writing_backs_up_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let options = options(dir.path());
        let setup = plan(&options).unwrap();
        let backup = write(&options, &setup).unwrap();
        assert_eq!(std::fs::read_to_string(backup).unwrap(), DEBIAN_LIKE);
        assert_eq!(
            std::fs::read_to_string(&options.prosody_config).unwrap(),
            setup.prosody_cfg
        );
        assert!(setup.modules_dir.is_dir() && setup.managed_config.is_file());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&options.modman_config)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert!(plan(&options)
            .unwrap_err()
            .contains("already has Component"));
        std::fs::write(&options.prosody_config, DEBIAN_LIKE).unwrap();
        let again = plan(&options).unwrap();
        assert!(write(&options, &again)
            .unwrap_err()
            .contains("never overwrites"));
        assert_eq!(
            std::fs::read_to_string(&options.prosody_config).unwrap(),
            DEBIAN_LIKE
        );
    }
}
