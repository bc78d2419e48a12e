//! `check`: is everything modman relies on in place? One row per check,
//! each failure with the fix, in the spirit of `prosodyctl check`. The
//! command line exits non-zero when any check fails.

use super::Consent;
use super::{NoParams, Params};
use std::path::Path;

use futures::future::BoxFuture;

use super::advisories;
use super::response::{Outcome, OUTCOME};
use super::{Access, Command, Context, OpError, Response, Spec, Table};
use crate::access::Actor;
use crate::engine::managed_config::Scope;

/// Tries modman's component handshake with Prosody. The XMPP layer
/// provides it; `check` only asks, so ops need not know how XMPP is spoken.
pub trait ComponentProbe: Send + Sync {
    /// `Ok` with what was found, `Err` with what is wrong and the fix.
    fn probe(&self) -> BoxFuture<'_, Result<String, String>>;
}

/// Runs every check.
#[derive(Debug)]
pub struct Check;

/// What an admin reads when `repository` cannot be read: what failed,
/// what modman does meanwhile, and the two ways to a repository this host
/// can reach. The check and the daemon's start-up say the same.
fn unavailable(repository: &crate::config::Repository, error: &str) -> String {
    use crate::config::RepositoryKind;
    let url = &repository.url;
    let copy = match repository.kind {
        RepositoryKind::LuaRocks => format!(
            "mirror it from a host that can (`modman repo mirror --from {url} --out DIR --key KEY --name NAME`)"
        ),
        RepositoryKind::Signed { .. } => {
            "copy its files (index.json, index.json.sig and the archives) from a host that can"
                .to_owned()
        }
    };
    format!(
        "{error}; modman runs, manages what is installed, and offers nothing new from {name} until it can be read. \
         If this host cannot reach {url}, {copy} \
         or build a repository from Debian's prosody-modules (`modman repo build --from-debian --out DIR --key KEY --name NAME`), \
         serve DIR over HTTP, and name it (NAME) in a [[repositories]] section of modman.toml",
        name = repository.name,
    )
}

impl Command for Check {
    type Params = NoParams;

    const SPEC: Spec = Spec {
        access: Access::Read,
        node: "check",
        name: "Check the set-up",
        instructions: "Check that Prosody and modman are wired together: the component, the module directory, the managed config, the admin socket, the repositories.",
        params: NoParams::FIELDS,
    };

    fn new(_: NoParams, _consent: Consent) -> Result<Self, OpError> {
        Ok(Check)
    }

    async fn apply(self, ctx: &Context, _actor: &Actor) -> Result<Response, OpError> {
        let config = &ctx.config;
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut add = |check: &str, outcome: Outcome, text: String| {
            rows.push(vec![check.to_owned(), outcome.as_str().to_owned(), text])
        };
        let mut row = |check: &str, result: Result<String, String>| match result {
            Ok(text) => add(check, Outcome::Ok, text),
            Err(text) => add(check, Outcome::Failed, text),
        };
        let admins: Vec<String> = config.admins.iter().map(|a| a.to_string()).collect();
        row("admins", Ok(admins.join(", ")));
        let exposed = config.exposed_secrets();
        row(
            "secret",
            match exposed.is_empty() {
                true => Ok("modman.toml and the secret are not readable by everyone".into()),
                false => Err(exposed.join("; ")),
            },
        );
        row("component", component(ctx).await);
        let prosody_cfg = std::fs::read_to_string(&config.prosody.config);
        row(
            "prosody config",
            prosody_cfg
                .as_ref()
                .map(|_| config.prosody.config.display().to_string())
                .map_err(|e| {
                    format!(
                    "cannot read {}: {e}; fix prosody.config in modman.toml, or let modman read it",
                    config.prosody.config.display()
                )
                }),
        );
        let prosody_cfg = prosody_cfg.unwrap_or_default();
        row(
            "module directory",
            writable_dir(&config.prosody.modules_dir),
        );
        row("state directory", writable_dir(&config.state_dir));
        row(
            "managed config",
            included(&prosody_cfg, &config.prosody.managed_config),
        );
        if let Some(prosody) = prosody_account(&config.prosody.admin_socket) {
            row(
                "readable by prosody",
                readable_by(
                    &prosody,
                    &[
                        &config.prosody.config,
                        &config.prosody.managed_config,
                        &config.prosody.modules_dir,
                    ],
                ),
            );
        }
        let mut nagle = None;
        match ctx.engine.live().await {
            Ok(mut live) => {
                nagle = live
                    .config_get(&Scope::Global, "network_settings")
                    .await
                    .ok()
                    .map(|v| {
                        crate::prosody::Nagle::from_network_settings(
                            v.as_deref().unwrap_or_default(),
                        )
                    });
                let hosts: Vec<&str> = live.hosts.iter().map(|h| h.name.as_str()).collect();
                let version = ctx.engine.server.version().unwrap_or_default();
                row(
                    "admin socket",
                    Ok(format!("Prosody {version}, hosts {}", hosts.join(", "))),
                );
                let dir = config.prosody.modules_dir.display().to_string();
                let paths = live
                    .config_get(&Scope::Global, "plugin_paths")
                    .await
                    .map_err(|e| e.to_string());
                row(
                    "plugin_paths",
                    paths.and_then(|p| match p {
                        Some(p) if p.contains(&format!("\"{dir}\"")) => {
                            Ok(format!("Prosody searches {dir}"))
                        }
                        p => Err(format!(
                            "Prosody does not search {dir} for modules (plugin_paths is {}); add it to plugin_paths in prosody.cfg.lua and restart Prosody",
                            p.map_or("not set".into(), |p| p.replace(['\n', '\t'], " "))
                        )),
                    }),
                );
            }
            Err(e) => {
                row("admin socket", Err(e.to_string()));
                row(
                    "plugin_paths",
                    Err("not checked: it needs the admin socket".into()),
                );
            }
        }
        for (repository, found) in config.repositories.iter().zip(repositories(ctx).await) {
            let check = format!("repository {}", repository.name);
            match found {
                Ok(text) => add(&check, Outcome::Ok, text),
                Err(text) => add(&check, Outcome::Unavailable, text),
            }
        }
        for (check, outcome, text) in super::routes::rows(ctx).await {
            add(&check, outcome, text);
        }
        for (check, outcome, text) in super::routes::room_rows(ctx) {
            add(&check, outcome, text);
        }
        // An installed copy its repository marks as insecure or withdrawn.
        if let Ok(installed) = ctx.engine.installed() {
            let catalog = ctx.catalog();
            for (name, record) in &installed.modules {
                let concerns = advisories::concerning(&catalog, &config.repositories, name, record);
                for concern in concerns {
                    let outcome = match concern.fails_check() {
                        true => Outcome::Failed,
                        false => Outcome::Warning,
                    };
                    add(
                        &format!("advisory {name}"),
                        outcome,
                        concern.describe(name, &record.version),
                    );
                }
            }
        }
        if nagle == Some(crate::prosody::Nagle::On) {
            add(
                "nagle",
                Outcome::Warning,
                format!("Prosody holds back small writes (Nagle's algorithm, its default): each reply sent in pieces waits about 40 ms for the client's delayed ACK; add {} to prosody.cfg.lua and restart Prosody", crate::prosody::Nagle::OFF_SETTING),
            );
        }
        if config.repositories.is_empty() {
            add(
                "repositories",
                Outcome::Warning,
                "none configured: only modules already on disk can be managed; add a [[repositories]] section to modman.toml".into(),
            );
        }
        let mut table = Table {
            title: "Checks".into(),
            columns: vec![CHECK, OUTCOME, ("detail", "Detail")],
            rows,
            note: String::new(),
        };
        table.note = summary(&table);
        Ok(Response::Table(table))
    }
}

/// The column naming each check.
const CHECK: (&str, &str) = ("check", "Check");

/// The outcome of the checks in `table` in one line that names the
/// checks that did not pass, worst first, so the admin knows which rows
/// to read: "Failed: secret, admin socket. Unavailable: repository
/// debian. Warning: nagle." Each row says how to fix it.
fn summary(table: &Table) -> String {
    let named = |outcome: Outcome| -> Vec<&str> {
        table
            .cells(CHECK)
            .zip(table.cells(OUTCOME))
            .filter(|(_, said)| *said == outcome.as_str())
            .map(|(check, _)| check)
            .collect()
    };
    let parts: Vec<String> = [
        ("Failed", Outcome::Failed),
        ("Unavailable", Outcome::Unavailable),
        ("Warning", Outcome::Warning),
    ]
    .into_iter()
    .map(|(label, outcome)| (label, named(outcome)))
    .filter(|(_, names)| !names.is_empty())
    .map(|(label, names)| format!("{label}: {}.", names.join(", ")))
    .collect();
    match parts.is_empty() {
        true => "All checks passed.".to_owned(),
        false => parts.join(" "),
    }
}

/// Each configured repository asked now, as a refresh would ask it: `Ok`
/// with what it offers, `Err` with what failed and the way out
/// ([`unavailable`]).
async fn repositories(ctx: &Context) -> Vec<Result<String, String>> {
    let config = &ctx.config;
    let mut found = Vec::with_capacity(config.repositories.len());
    for repository in &config.repositories {
        found.push(
            crate::repo::catalog::probe(ctx.engine.store(), &ctx.fetcher, repository)
                .await
                .map(|text| format!("repository {}: {text}", repository.name))
                .map_err(|e| {
                    format!(
                        "repository {} cannot be read: {}",
                        repository.name,
                        unavailable(repository, &e)
                    )
                }),
        );
    }
    found
}

/// Logs each repository as the last refresh left it, worded as `check`
/// words a probe, without asking the repository again: its recorded
/// failure (a warning, with the ways out), or the index in use and when
/// it was fetched. The daemon says it at start (where asking would
/// download every index a second time just to say so) and again after
/// its first refresh, which a new install runs at once.
pub fn say_repositories(ctx: &Context) {
    let catalog = ctx.catalog();
    for repository in &ctx.config.repositories {
        let name = &repository.name;
        let source = catalog.sources.iter().find(|s| s.repository.name == *name);
        match (
            catalog.failures.iter().find(|f| f.repository == *name),
            source,
        ) {
            (Some(failure), kept) => tracing::warn!(
                "repository {name} cannot be read: {}{}",
                unavailable(repository, &failure.reason),
                kept.map(|s| format!(" (in use meanwhile: its index fetched {})", s.fetched))
                    .unwrap_or_default()
            ),
            (None, Some(source)) => tracing::info!(
                "repository {name}: {} modules, index fetched {}",
                source.index.modules.len(),
                source.fetched
            ),
            (None, None) => {
                tracing::info!("repository {name}: no index yet; the first refresh fetches it")
            }
        }
    }
}

/// Whether Prosody takes modman's handshake: this process may be the one
/// connected; otherwise the front end's probe tells.
async fn component(ctx: &Context) -> Result<String, String> {
    let component = &ctx.config.component;
    if ctx.engine.server.connected() {
        return Ok(format!(
            "connected to {} as {}",
            component.server, component.jid
        ));
    }
    match &ctx.component_probe {
        Some(probe) => probe.probe().await,
        None => Err("not checked: this front end cannot try the component handshake".into()),
    }
}

/// A directory modman can write to (checked by writing).
fn writable_dir(dir: &Path) -> Result<String, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{} does not exist; create it, owned by the user modman runs as (prosody)",
            dir.display()
        ));
    }
    crate::fsutil::can_write_in(dir)
        .map(|()| dir.display().to_string())
        .map_err(|e| {
            format!(
                "cannot write in {}: {e}; make it writable by the user modman runs as (prosody)",
                dir.display()
            )
        })
}

/// The account Prosody runs as, unless root (who reads everything): the
/// owner of its admin socket, which Prosody creates as that user, or,
/// while Prosody is stopped, of the directory that holds it (Prosody's
/// data directory, which the package gives to its user).
fn prosody_account(admin_socket: &Path) -> Option<crate::fsutil::Account> {
    use std::os::unix::fs::MetadataExt;
    let owner = match std::fs::metadata(admin_socket) {
        Ok(socket) => socket.uid(),
        Err(_) => std::fs::metadata(admin_socket.parent()?).ok()?.uid(),
    };
    (owner != 0)
        .then(|| crate::fsutil::Account::with_uid(owner))
        .flatten()
}

/// Whether `account` can read each of `paths`. `check` may run as root,
/// which reads everything, while Prosody, running as its own user, would
/// not start on a config it cannot read, nor load from a directory it
/// cannot enter: so this goes by owner, group and mode, as Prosody meets
/// them.
fn readable_by(account: &crate::fsutil::Account, paths: &[&Path]) -> Result<String, String> {
    let refused: Vec<String> = paths
        .iter()
        .filter_map(|path| account.can_read(path).err().map(|e| (path, e)))
        .map(|(path, e)| {
            let what = match e.at.is_dir() {
                true => "g+rx",
                false => "g+r",
            };
            format!(
                "the {user} user cannot read {} ({} is owned by uid {} gid {}, mode {:04o}); Prosody, running as {user}, fails on it: run `chgrp {user} {at} && chmod {what} {at}`",
                path.display(),
                e.at.display(),
                e.uid,
                e.gid,
                e.mode,
                user = account.name,
                at = e.at.display(),
            )
        })
        .collect();
    match refused.is_empty() {
        true => Ok(format!(
            "the {} user can read {}",
            account.name,
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        false => Err(refused.join("; ")),
    }
}

/// Whether prosody.cfg.lua Includes `managed`, after every host section.
fn included(prosody_cfg: &str, managed: &Path) -> Result<String, String> {
    use crate::engine::prosody_cfg::{ProsodyCfg, Statement};
    let path = managed.display().to_string();
    let cfg = ProsodyCfg::parse(prosody_cfg).map_err(|e| {
        format!("cannot read prosody.cfg.lua, {e}; prosodyctl check config says more")
    })?;
    let include = (cfg.statements.iter().enumerate().rev()).find_map(|(at, s)| match s {
        Statement::Include { pattern, line } if crate::engine::include::names(pattern, managed) => {
            Some((at, line + 1))
        }
        _ => None,
    });
    let line = crate::engine::include::line(managed);
    let Some((at, include_line)) = include else {
        return Err(format!(
            "prosody.cfg.lua does not Include {path}; add {line} as its last line"
        ));
    };
    let section_after = cfg.statements[at..].iter().find_map(|s| match s {
        Statement::Section { section, line } => Some((section.name().to_owned(), line + 1)),
        _ => None,
    });
    if let Some((host, section_line)) = section_after {
        return Err(format!(
            "the Include of {path} (line {include_line}) comes before the section of {host} (line {section_line}); move it to the end of prosody.cfg.lua"
        ));
    }
    if !managed.exists() {
        return Err(format!("{path} does not exist, so Prosody runs without the modules modman enabled (or, if prosody.cfg.lua Includes it by its plain name, does not start); run modman once, or create it empty"));
    }
    Ok(format!("{path}, Included last"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_include_must_be_there_and_last() {
        let dir = tempfile::tempdir().unwrap();
        let managed = dir.path().join("modman.cfg.lua");
        std::fs::write(&managed, "").unwrap();
        let m = managed.display();
        let good = format!("VirtualHost \"a\"\nInclude \"{m}\"\n");
        assert!(included(&good, &managed).is_ok());
        let pattern = format!(
            "VirtualHost \"a\"\n{}\n",
            crate::engine::include::line(&managed)
        );
        assert!(included(&pattern, &managed).is_ok());
        let early = format!("Include \"{m}\"\nVirtualHost \"a\"\n");
        assert!(included(&early, &managed)
            .unwrap_err()
            .contains("move it to the end"));
        let commented = format!("-- Include \"{m}\"\n");
        assert!(included(&commented, &managed)
            .unwrap_err()
            .contains("does not Include"));
        // Read as Lua: a block comment holds no Include (the line scanner
        // before took this one), nor a section after the Include.
        let blocked = format!("VirtualHost \"a\"\n--[[\nInclude \"{m}\"\n]]\n");
        assert!(included(&blocked, &managed).is_err());
        let after = format!("VirtualHost \"a\"\nInclude \"{m}\"\n--[[\nVirtualHost \"b\"\n]]\n");
        assert!(included(&after, &managed).is_ok());
        std::fs::remove_file(&managed).unwrap();
        assert!(included(&good, &managed)
            .unwrap_err()
            .contains("does not exist"));
    }

    #[test]
    fn the_summary_names_the_checks_that_did_not_pass_worst_first() {
        // Columns in another order than check's own: read by name.
        let table = |rows: &[(&str, Outcome)]| Table {
            title: String::new(),
            columns: vec![("detail", "Detail"), OUTCOME, CHECK],
            rows: rows
                .iter()
                .map(|(check, outcome)| {
                    vec![
                        "why".to_owned(),
                        outcome.as_str().to_owned(),
                        (*check).to_owned(),
                    ]
                })
                .collect(),
            note: String::new(),
        };
        assert_eq!(
            summary(&table(&[("admins", Outcome::Ok), ("secret", Outcome::Ok)])),
            "All checks passed."
        );
        assert_eq!(
            summary(&table(&[
                ("nagle", Outcome::Warning),
                ("secret", Outcome::Failed),
                ("admins", Outcome::Ok),
                ("repository debian", Outcome::Unavailable),
                ("admin socket", Outcome::Failed),
            ])),
            "Failed: secret, admin socket. Unavailable: repository debian. Warning: nagle."
        );
    }
}
