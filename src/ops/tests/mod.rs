//! The operations run whole, as a front end runs them (checked input,
//! the registry, the engine's one change), on the engine's stand-in for
//! the running server ([`crate::engine::fake`]) and a signed repository
//! built into a temp dir and served over HTTP on 127.0.0.1 from this
//! process: each one's plan (a dry run's rows), its question and what a
//! "yes" to it applies, and its result, asserted as typed values (table
//! cells by column, detail fields by var, error kinds), never as wording.
//! One file per operation; this file is the host they share.

mod configure;
mod enable_disable;
mod hold;
mod info;
mod install;
mod list;
mod refresh;
mod remove;
mod rollback;
mod update;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::confirm::{Consent, Why, PLANNED};
use super::{Context, Details, ErrorKind, Form, Input, OpError, Question, Response, Table};
use crate::access::Actor;
use crate::config::Config;
use crate::engine::fake::{config_text, Fake, HOST};
use crate::engine::state::InstalledModule;
use crate::engine::{Engine, Opening};
use crate::repo::build::{build, BuildOptions};
use crate::repo::signing;

#[test]
fn every_node_is_unique_and_findable() {
    for op in super::all() {
        let node = op.spec().node;
        assert!(std::ptr::eq(super::find(node).unwrap().spec(), op.spec()));
    }
    assert!(super::find("no-such-node").is_none());
}

#[tokio::test]
async fn every_operation_refuses_a_field_it_does_not_declare() {
    let host = Host::new().await;
    let before = host.snapshot();
    for op in super::all() {
        let refused = error(host.run(op.spec().node, &[("colour", &["red"])]).await);
        assert_eq!(refused.kind, ErrorKind::BadInput, "{}", op.spec().node);
        // Input checked against another operation's fields (install's
        // `enable`) is refused by the one run, not read in part.
        let install = super::find("install").unwrap().spec();
        let enable = [
            ("modules", vec!["alpha".to_owned()]),
            ("enable", vec!["true".to_owned()]),
        ];
        let other = Input::check(install.params, enable).unwrap();
        if op.spec().node != "install" {
            let run = op.run(&host.ctx, &Actor::local_user(), &other).await;
            assert_eq!(error(run).kind, ErrorKind::BadInput, "{}", op.spec().node);
        }
    }
    assert_eq!(host.snapshot(), before);
}

/// The repository's name in modman.toml and in its signed index.
const REPOSITORY: &str = "local";

/// The modules the repository offers at first, as (name, code, summary):
/// `beta` needs `alpha`, `gamma` will not load without `gamma_key`.
const MODULES: &[(&str, &str, &str)] = &[
    (
        "alpha",
        "local url = module:get_option_string(\"alpha_url\", \"https://a.example/\");\n",
        "Alpha says hello",
    ),
    (
        "beta",
        "module:depends(\"alpha\");\n",
        "Beta builds on alpha",
    ),
    (
        "gamma",
        "local key = assert(module:get_option_string(\"gamma_key\"), \"gamma_key is required\");\n",
        "Gamma needs a key",
    ),
];

/// One host: modman's directories in a temp dir, the stand-in server,
/// and the repository the context's catalog was refreshed from.
pub(super) struct Host {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub ctx: Context,
    pub server: Fake,
}

impl Host {
    /// A host with nothing installed, whose catalog holds [`MODULES`].
    pub async fn new() -> Host {
        Host::with_prosody_cfg("").await
    }

    /// [`Host::new`] with `prosody_cfg` as Prosody's own config file.
    pub async fn with_prosody_cfg(prosody_cfg: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        for sub in ["modules", "state", "builtin", "tree"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("builtin/mod_carbons.lua"), "-- Prosody's own\n").unwrap();
        std::fs::write(root.join("prosody.cfg.lua"), prosody_cfg).unwrap();
        for (name, code, summary) in MODULES {
            write_module(&root, name, code, summary);
        }
        let key = signing::generate(&root.join("key")).unwrap();
        publish(&root);
        let port = serve(root.join("repo"));
        let text = config_text(&format!(
            "[[repositories]]\nname = \"{REPOSITORY}\"\nurl = \"http://127.0.0.1:{port}/\"\npublic_key = \"{}\"\n",
            signing::public_key_text(&key.verifying_key())
        ));
        let config = Arc::new(Config::parse(&text, &root).unwrap());
        let server = Fake::default();
        let (engine, _) =
            Engine::open_with(config.clone(), Box::new(server.clone()), Opening::ToChange).unwrap();
        let (ctx, _) = Context::with_engine(config, engine, vec![]);
        let host = Host {
            _dir: dir,
            root,
            ctx,
            server,
        };
        host.refresh().await;
        host
    }

    /// Publishes `code` as the new copy of `name` and refreshes the
    /// catalog; returns the version it is offered at.
    pub async fn publish(&self, name: &str, code: &str) -> String {
        write_module(&self.root, name, code, "Published again");
        publish(&self.root);
        self.refresh().await;
        self.offered(name)
    }

    async fn refresh(&self) {
        let refreshed = table(self.run("refresh", &[]).await);
        assert!(!refreshed.failed(), "{refreshed:?}");
    }

    /// The version the catalog offers of `name`.
    pub fn offered(&self, name: &str) -> String {
        let catalog = self.ctx.catalog();
        catalog.find(name).unwrap().1.version.clone()
    }

    /// What modman's state says of `name`.
    pub fn installed(&self, name: &str) -> Option<InstalledModule> {
        self.ctx.engine.installed().unwrap().modules.remove(name)
    }

    /// Whether the stand-in server has `name` loaded.
    pub fn loaded(&self, name: &str) -> bool {
        self.server.0.lock().unwrap().loaded.contains(name)
    }

    /// The hosts the managed config enables `name` on.
    pub fn enabled_on(&self, name: &str) -> Vec<String> {
        self.ctx.engine.managed_config().unwrap().hosts_of(name)
    }

    /// Runs operation `node` as the ad-hoc and chat front ends do, with
    /// `fields` as a submitted form gives them and nothing said yet
    /// about going ahead.
    pub async fn run(
        &self,
        node: &str,
        fields: &[(&'static str, &[&str])],
    ) -> Result<Response, OpError> {
        self.run_with(node, fields, Consent::NotAsked).await
    }

    /// [`Host::run`] with `consent`.
    pub async fn run_with(
        &self,
        node: &str,
        fields: &[(&'static str, &[&str])],
        consent: Consent,
    ) -> Result<Response, OpError> {
        let op = super::find(node).unwrap();
        let raw = fields
            .iter()
            .map(|(var, values)| (*var, values.iter().map(|v| v.to_string()).collect()));
        let mut input = Input::check(op.spec().params, raw)?;
        input.consent = consent;
        op.run(&self.ctx, &Actor::local_user(), &input).await
    }

    /// What a dry run of `node` plans: one step per row.
    pub async fn plan(&self, node: &str, fields: &[(&'static str, &[&str])]) -> Vec<String> {
        let planned = table(self.run_with(node, fields, Consent::DryRun).await);
        assert_eq!(planned.columns, [PLANNED]);
        planned
            .rows
            .into_iter()
            .map(|mut row| row.remove(0))
            .collect()
    }

    /// Everything a change could touch: modman's state, the managed
    /// config, the module directory and what the server has loaded.
    pub fn snapshot(&self) -> Snapshot {
        let config = &self.ctx.config.prosody.managed_config;
        let mut files: Vec<PathBuf> = walkdir(&self.root.join("modules"));
        files.sort();
        Snapshot {
            installed: (self.ctx.engine.installed().unwrap().modules.into_iter())
                .map(|(name, record)| (name, record.version))
                .collect(),
            managed_config: std::fs::read(config).unwrap_or_default(),
            files,
            loaded: self.server.0.lock().unwrap().loaded.clone(),
        }
    }

    /// Runs `node`, which must ask, and answers no: the question and
    /// nothing more, so nothing on the host may differ from before.
    pub async fn ask_and_refuse(&self, node: &str, fields: &[(&'static str, &[&str])]) -> Question {
        let before = self.snapshot();
        let asked = question(self.run(node, fields).await);
        assert_eq!(self.snapshot(), before, "{node} changed the host by asking");
        asked
    }

    /// Runs `node`, which must ask, and answers yes to its question.
    pub async fn ask_and_approve(
        &self,
        node: &str,
        fields: &[(&'static str, &[&str])],
    ) -> Result<Response, OpError> {
        let asked = question(self.run(node, fields).await);
        self.run_with(node, fields, Consent::Approved(asked.approval))
            .await
    }
}

/// What [`Host::snapshot`] compares.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Snapshot {
    /// Module -> version, as modman's state records them.
    installed: BTreeMap<String, String>,
    managed_config: Vec<u8>,
    files: Vec<PathBuf>,
    loaded: std::collections::BTreeSet<String>,
}

/// Every path under `dir`, depth first.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            paths.extend(walkdir(&path));
        }
        paths.push(path);
    }
    paths
}

/// Writes `mod_NAME` into the repository's source tree.
fn write_module(root: &Path, name: &str, code: &str, summary: &str) {
    let dir = root.join("tree").join(format!("mod_{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("mod_{name}.lua")), code).unwrap();
    let readme = format!("---\nsummary: {summary}\n---\n\n{summary}.\n");
    std::fs::write(dir.join("README.markdown"), readme).unwrap();
}

/// Builds and signs the repository from the tree, as `repo build` does.
fn publish(root: &Path) {
    build(&BuildOptions {
        tree: &root.join("tree"),
        out: &root.join("repo"),
        name: REPOSITORY,
        key: &root.join("key"),
        builtin_dir: &root.join("builtin"),
        valid_for: time::Duration::days(1),
        keep: 3,
    })
    .unwrap();
}

/// Serves the files of `dir` over HTTP on a free port of 127.0.0.1, one
/// request per connection, until the test process ends; returns the port.
fn serve(dir: PathBuf) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buffer = [0; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let body = match path.contains("..") {
                true => None,
                false => std::fs::read(dir.join(path.trim_start_matches('/'))).ok(),
            };
            let (status, body) = match body {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", vec![]),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    port
}

/// The table a response must be.
pub(super) fn table(response: Result<Response, OpError>) -> Table {
    match response {
        Ok(Response::Table(table)) => table,
        other => panic!("expected a table, got {other:?}"),
    }
}

/// The question a response must be.
pub(super) fn question(response: Result<Response, OpError>) -> Question {
    match response {
        Ok(Response::Confirm(question)) => question,
        other => panic!("expected a question, got {other:?}"),
    }
}

/// The form a response must be.
pub(super) fn form(response: Result<Response, OpError>) -> Form {
    match response {
        Ok(Response::Form(form)) => form,
        other => panic!("expected a form, got {other:?}"),
    }
}

/// The details a response must be.
pub(super) fn details(response: Result<Response, OpError>) -> Details {
    match response {
        Ok(Response::Details(details)) => details,
        other => panic!("expected details, got {other:?}"),
    }
}

/// The error a response must be.
pub(super) fn error(response: Result<Response, OpError>) -> OpError {
    match response {
        Err(error) => error,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

/// The cells of `column`, top to bottom.
pub(super) fn column(table: &Table, column: &str) -> Vec<String> {
    let at = table
        .columns
        .iter()
        .position(|(var, _)| *var == column)
        .unwrap_or_else(|| panic!("no column {column} in {:?}", table.columns));
    table.rows.iter().map(|row| row[at].clone()).collect()
}

/// The row whose first cell is `key`, keyed by column.
pub(super) fn row(table: &Table, key: &str) -> BTreeMap<&'static str, String> {
    let row = (table.rows.iter())
        .find(|row| row[0] == key)
        .unwrap_or_else(|| panic!("no row {key} in {table:?}"));
    table
        .columns
        .iter()
        .map(|(var, _)| *var)
        .zip(row.iter().cloned())
        .collect()
}

/// The value of field `var`, if the details have it.
pub(super) fn field(details: &Details, var: &str) -> Option<String> {
    (details.fields.iter())
        .find(|(v, _, _)| *v == var)
        .map(|(_, _, value)| value.clone())
}

/// The step text a plan shows for enabling `module` on the test host.
pub(super) fn on_host(module: &str) -> String {
    format!("{module} on {HOST}")
}
