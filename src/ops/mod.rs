//! What a user can do, written once and rendered by every front end.
//!
//! Each operation lives in its own file as a type implementing [`Command`]:
//! `parse` turns the neutral [`Input`] (from a data form, a chat line or the
//! CLI) into the typed request, `apply` does the work and returns a neutral
//! [`Response`]. No operation knows which front end called it; the ad-hoc,
//! chat and CLI front ends only render.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;

use crate::config::Config;
use crate::engine::{Engine, EngineError};
use crate::repo::catalog::Catalog;
use crate::repo::fetch::{FetchError, Fetcher};
use crate::repo::index::is_valid_module_name;

mod activation;
pub mod check;
mod disable;
mod enable;
mod history;
mod info;
mod install;
mod list;
mod plan;
mod refresh;
mod remove;
mod rollback;
mod update;

/// Everything an operation may use. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub engine: Arc<Engine>,
    /// Replaced whole by `refresh`; readers keep the one they took.
    pub catalog: Arc<RwLock<Arc<Catalog>>>,
    pub fetcher: Fetcher,
    pub server: Arc<ServerInfo>,
    /// What Prosody has loaded, as last asked (see [`activation::Status`]).
    pub loaded: Arc<activation::LoadedCache>,
}

impl Context {
    /// Opens the engine (finishing or undoing a change a crash interrupted)
    /// and loads the cached repository indexes. Returns the context and
    /// what it found worth telling the admin.
    pub fn open(config: Arc<Config>) -> Result<(Context, Vec<String>), EngineError> {
        let (engine, mut notes) = Engine::open(config.clone())?;
        let (catalog, warnings) = Catalog::load(&config);
        notes.extend(warnings);
        // Read back now, so a hand edit is reported at start, not at the
        // next enable.
        if let Err(e) =
            crate::engine::managed_config::ManagedConfig::load(&config.prosody.managed_config)
        {
            notes.push(format!(
                "{e}; enable and disable refuse to run until it is fixed"
            ));
        }
        let ctx = Context {
            config,
            engine: Arc::new(engine),
            catalog: Arc::new(RwLock::new(Arc::new(catalog))),
            fetcher: Fetcher::default(),
            server: Arc::new(ServerInfo::default()),
            loaded: Arc::default(),
        };
        Ok((ctx, notes))
    }

    /// The catalog as of now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_catalog(&self, catalog: Catalog) {
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog);
    }

    /// Module names a `Modules` parameter offers, for clients that show
    /// options.
    pub fn module_choices(&self, choice: ModuleChoice) -> Vec<String> {
        let installed = self.engine.installed().unwrap_or_default();
        let catalog = self.catalog();
        match choice {
            ModuleChoice::Available => catalog
                .modules()
                .into_iter()
                .map(|(_, entry)| entry.name.clone())
                .filter(|name| !installed.modules.contains_key(name))
                .collect(),
            ModuleChoice::Installed => installed.modules.keys().cloned().collect(),
        }
    }
}

/// Asks Prosody's admin socket for its version and hosts (kept in
/// [`ServerInfo`]).
pub async fn learn_from_prosody(ctx: &Context) -> Result<(), OpError> {
    activation::Live::connect(ctx).await.map(|_| ())
}

/// What modman knows of the Prosody it serves, learnt at run time.
#[derive(Debug, Default)]
pub struct ServerInfo {
    version: RwLock<Option<String>>,
    /// Hosts that take modules, as the admin socket last listed them.
    hosts: RwLock<Vec<String>>,
    /// This process is connected to Prosody as the component now.
    connected: std::sync::atomic::AtomicBool,
}

impl ServerInfo {
    pub fn connected(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_connected(&self, connected: bool) {
        self.connected
            .store(connected, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn hosts(&self) -> Vec<String> {
        self.hosts.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_hosts(&self, hosts: Vec<String>) {
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

/// Which module names a `Modules` parameter offers as options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleChoice {
    /// On offer and not installed.
    Available,
    /// Installed by modman.
    Installed,
}

/// How a parameter is asked for and what values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// One line of free text.
    Text,
    /// One of fixed (value, label) pairs; the first is the default.
    Choice(&'static [(&'static str, &'static str)]),
    /// One or more module names (`mod_x` or `x`).
    Modules(ModuleChoice),
    /// Yes or no; no when not given.
    Boolean,
    /// One or more of the server's host names; all VirtualHosts when none.
    Hosts,
}

/// One input of an operation: a data-form field, a chat word, a CLI flag.
#[derive(Debug)]
pub struct Param {
    /// The form field `var`; stable, bots rely on it.
    pub var: &'static str,
    pub label: &'static str,
    /// A sentence shown as the field's description.
    pub help: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

/// The static description of an operation.
#[derive(Debug)]
pub struct Spec {
    /// The ad-hoc node and the chat word.
    pub node: &'static str,
    /// The human name clients show in their command list.
    pub name: &'static str,
    /// The instructions shown above the form.
    pub instructions: &'static str,
    pub params: &'static [Param],
}

/// The field every operation accepts: `true` answers its confirmation
/// question in advance, so a bot needs one round trip.
pub const CONFIRM_FIELD: &str = "confirm";

/// Longest value accepted for any field, in bytes.
const MAX_VALUE_LEN: usize = 1024;
/// Most values accepted for one field.
const MAX_VALUES: usize = 256;

/// Submitted values, checked against an operation's [`Param`]s: every
/// name is known, every value fits its kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Input {
    values: BTreeMap<&'static str, Vec<String>>,
    /// The request was confirmed (field `confirm`, or the confirmation step).
    pub confirmed: bool,
}

impl Input {
    /// Checks raw `(var, values)` pairs against `params`. Fields not in
    /// `params` are refused (a typo in a bot's field name must not be
    /// silently ignored), except `confirm` and the data-forms bookkeeping
    /// `FORM_TYPE`.
    pub fn check<'a>(
        params: &'static [Param],
        raw: impl IntoIterator<Item = (&'a str, Vec<String>)>,
    ) -> Result<Input, OpError> {
        let mut input = Input::default();
        for (var, vals) in raw {
            if var == "FORM_TYPE" {
                continue;
            }
            if vals.len() > MAX_VALUES {
                return Err(OpError::bad_input(format!(
                    "field `{}` has {} values; at most {MAX_VALUES} are accepted",
                    truncate(var),
                    vals.len()
                )));
            }
            if let Some(long) = vals.iter().find(|v| v.len() > MAX_VALUE_LEN) {
                return Err(OpError::bad_input(format!(
                    "field `{}`: a value of {} bytes is too long (at most {MAX_VALUE_LEN})",
                    truncate(var),
                    long.len()
                )));
            }
            if var == CONFIRM_FIELD {
                input.confirmed = parse_bool(var, &vals)?;
                continue;
            }
            let param = params.iter().find(|p| p.var == var).ok_or_else(|| {
                let known: Vec<_> = params
                    .iter()
                    .map(|p| p.var)
                    .chain([CONFIRM_FIELD])
                    .collect();
                OpError::bad_input(format!(
                    "unknown field `{}`; this command takes: {}",
                    truncate(var),
                    known.join(", ")
                ))
            })?;
            let vals = match param.kind {
                ParamKind::Text | ParamKind::Choice(_) if vals.len() > 1 => {
                    return Err(OpError::bad_input(format!(
                        "field `{var}` takes one value, got {}",
                        vals.len()
                    )))
                }
                ParamKind::Text => vals,
                ParamKind::Choice(options) => {
                    let value = vals.first().map(|v| v.trim()).unwrap_or_default();
                    if !value.is_empty() && !options.iter().any(|(o, _)| *o == value) {
                        let allowed: Vec<_> = options.iter().map(|(o, _)| *o).collect();
                        return Err(OpError::bad_input(format!(
                            "field `{var}`: `{}` is not one of {}",
                            truncate(value),
                            allowed.join(", ")
                        )));
                    }
                    vals
                }
                ParamKind::Modules(_) => module_names(var, &vals)?,
                ParamKind::Boolean => vec![parse_bool(var, &vals)?.to_string()],
                ParamKind::Hosts => host_names(var, &vals)?,
            };
            input.values.insert(param.var, vals);
        }
        if let Some(missing) = params.iter().find(|p| {
            p.required
                && input
                    .values
                    .get(p.var)
                    .is_none_or(|v| v.iter().all(|s| s.trim().is_empty()))
        }) {
            return Err(OpError::bad_input(format!(
                "field `{}` ({}) is required",
                missing.var, missing.label
            )));
        }
        Ok(input)
    }

    /// The value of a single-valued field, trimmed; `None` when empty.
    pub fn text(&self, var: &str) -> Option<&str> {
        self.values
            .get(var)
            .and_then(|v| v.first())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// The names of a `Modules` or `Hosts` field (normalised, unique, in
    /// the order given); empty when not given.
    pub fn modules(&self, var: &str) -> Vec<String> {
        self.values.get(var).cloned().unwrap_or_default()
    }

    /// A `Boolean` field; false when not given.
    pub fn flag(&self, var: &str) -> bool {
        self.text(var) == Some("true")
    }
}

fn parse_bool(var: &str, values: &[String]) -> Result<bool, OpError> {
    match values.first().map(|v| v.trim().to_lowercase()).as_deref() {
        None | Some("") | Some("0") | Some("false") | Some("no") => Ok(false),
        Some("1") | Some("true") | Some("yes") => Ok(true),
        Some(other) => Err(OpError::bad_input(format!(
            "field `{var}`: `{}` is not a boolean; use true or false",
            truncate(other)
        ))),
    }
}

/// Names from values that may each hold several, separated by spaces or
/// commas; `mod_x` becomes `x`.
fn module_names(var: &str, values: &[String]) -> Result<Vec<String>, OpError> {
    let mut names: Vec<String> = Vec::new();
    for word in values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
    {
        if word.is_empty() {
            continue;
        }
        let name = word.strip_prefix("mod_").unwrap_or(word);
        if !is_valid_module_name(name) {
            return Err(OpError::bad_input(format!(
                "field `{var}`: `{}` is not a module name (letters, digits, `_` and `-`, such as cloud_notify)",
                truncate(word)
            )));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Host names, split like module names; each must look like a domain.
fn host_names(var: &str, values: &[String]) -> Result<Vec<String>, OpError> {
    let mut names: Vec<String> = Vec::new();
    for word in values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|w| !w.is_empty())
    {
        let domain_like = word.len() <= 255
            && !word.starts_with(['.', '-'])
            && word
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if !domain_like {
            return Err(OpError::bad_input(format!(
                "field `{var}`: `{}` is not a host name",
                truncate(word)
            )));
        }
        if !names.iter().any(|n| n == word) {
            names.push(word.to_lowercase());
        }
    }
    Ok(names)
}

/// Quotes at most a short prefix of untrusted text in an error message.
fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// A neutral result, rendered by each front end in its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Rows under named columns: a data-form `result` with `<reported/>`
    /// in ad-hoc, aligned text in chat and on the command line.
    Table(Table),
    /// Labelled values about one thing (`info`).
    Details(Details),
    /// A question to answer before anything changes. Running the same
    /// request again with `confirmed` set goes ahead.
    Confirm(String),
}

/// A titled table. `columns` are (var, label) pairs; each row has one cell
/// per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<(&'static str, &'static str)>,
    pub rows: Vec<Vec<String>>,
    /// One line summarising the table, such as a count or a hint.
    pub note: String,
}

/// Labelled values; a value may span lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    pub title: String,
    /// (field var, label, value).
    pub fields: Vec<(&'static str, &'static str, String)>,
}

/// What kind of failure, so each front end can pick its own wording
/// (an XMPP error condition, an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong: fix it and try again.
    BadInput,
    /// What the request names does not exist.
    NotFound,
    /// It conflicts with the state of the host (not installed, unmanaged,
    /// another change running).
    Conflict,
    /// The host or a repository failed (I/O, network, a bad download).
    Unavailable,
}

/// A failure that reaches a user: says what failed, on what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct OpError {
    pub kind: ErrorKind,
    pub text: String,
}

impl OpError {
    pub fn bad_input(text: impl Into<String>) -> Self {
        OpError {
            kind: ErrorKind::BadInput,
            text: text.into(),
        }
    }
    pub fn not_found(text: impl Into<String>) -> Self {
        OpError {
            kind: ErrorKind::NotFound,
            text: text.into(),
        }
    }
    pub fn conflict(text: impl Into<String>) -> Self {
        OpError {
            kind: ErrorKind::Conflict,
            text: text.into(),
        }
    }
    pub fn unavailable(text: impl Into<String>) -> Self {
        OpError {
            kind: ErrorKind::Unavailable,
            text: text.into(),
        }
    }
}

impl From<EngineError> for OpError {
    fn from(error: EngineError) -> Self {
        let kind = match error {
            EngineError::Unmanaged(_) | EngineError::Busy(_) => ErrorKind::Conflict,
            EngineError::Io { .. } | EngineError::Internal(_) => ErrorKind::Unavailable,
        };
        OpError {
            kind,
            text: format!("{error}; nothing was changed"),
        }
    }
}

impl From<FetchError> for OpError {
    fn from(error: FetchError) -> Self {
        OpError::unavailable(format!("{error}; nothing was changed"))
    }
}

/// One operation: its description, how to read its input, how to run it.
pub trait Command: Sized + Send + 'static {
    const SPEC: Spec;

    /// Reads the typed request from checked input.
    fn parse(input: &Input) -> Result<Self, OpError>;

    /// Does the work on behalf of `actor` (a bare JID, or `cli:USER`).
    fn apply(
        self,
        ctx: &Context,
        actor: &str,
    ) -> impl Future<Output = Result<Response, OpError>> + Send;
}

/// The object-safe face of a [`Command`], so front ends can hold a list.
pub trait Operation: Send + Sync {
    fn spec(&self) -> &'static Spec;
    fn run<'a>(
        &'a self,
        ctx: &'a Context,
        actor: &'a str,
        input: &'a Input,
    ) -> BoxFuture<'a, Result<Response, OpError>>;
}

struct Registered<C>(PhantomData<fn() -> C>);

impl<C: Command> Operation for Registered<C> {
    fn spec(&self) -> &'static Spec {
        // A `const` item promoted to 'static: `SPEC` holds only literals.
        const { &C::SPEC }
    }

    fn run<'a>(
        &'a self,
        ctx: &'a Context,
        actor: &'a str,
        input: &'a Input,
    ) -> BoxFuture<'a, Result<Response, OpError>> {
        Box::pin(async move { C::parse(input)?.apply(ctx, actor).await })
    }
}

/// Every operation, in the order front ends list them.
pub fn all() -> &'static [&'static dyn Operation] {
    &[
        &Registered::<list::List>(PhantomData),
        &Registered::<info::Info>(PhantomData),
        &Registered::<install::Install>(PhantomData),
        &Registered::<update::Update>(PhantomData),
        &Registered::<remove::Remove>(PhantomData),
        &Registered::<enable::Enable>(PhantomData),
        &Registered::<disable::Disable>(PhantomData),
        &Registered::<rollback::Rollback>(PhantomData),
        &Registered::<refresh::Refresh>(PhantomData),
        &Registered::<history::History>(PhantomData),
        &Registered::<check::Check>(PhantomData),
    ]
}

/// Finds an operation by its node / chat word.
pub fn find(node: &str) -> Option<&'static dyn Operation> {
    all().iter().copied().find(|op| op.spec().node == node)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &[Param] = &[
        Param {
            var: "query",
            label: "Search",
            help: "",
            kind: ParamKind::Text,
            required: false,
        },
        Param {
            var: "show",
            label: "Show",
            help: "",
            kind: ParamKind::Choice(&[("all", "All"), ("installed", "Installed")]),
            required: false,
        },
        Param {
            var: "modules",
            label: "Modules",
            help: "",
            kind: ParamKind::Modules(ModuleChoice::Available),
            required: false,
        },
    ];

    fn raw(pairs: &[(&'static str, &[&str])]) -> Vec<(&'static str, Vec<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (*k, v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn known_fields_pass_and_form_type_is_ignored() {
        let input = Input::check(
            PARAMS,
            raw(&[
                ("FORM_TYPE", &["x"]),
                ("query", &[" smacks "]),
                ("confirm", &["1"]),
                ("show", &["installed"]),
            ]),
        )
        .unwrap();
        assert_eq!(input.text("query"), Some("smacks"));
        assert_eq!(input.text("show"), Some("installed"));
        assert!(input.confirmed);
    }

    #[test]
    fn module_names_are_normalised_split_and_deduplicated() {
        let input = Input::check(
            PARAMS,
            raw(&[(
                "modules",
                &["mod_smacks", "cloud_notify, smacks", " csi  mod_csi"],
            )]),
        )
        .unwrap();
        assert_eq!(input.modules("modules"), ["smacks", "cloud_notify", "csi"]);
    }

    #[test]
    fn garbage_is_refused_with_the_field_named() {
        for (pairs, expected) in [
            (
                raw(&[("colour", &["red"])]),
                "unknown field `colour`; this command takes: query, show, modules, confirm",
            ),
            (
                raw(&[("query", &["a", "b"])]),
                "field `query` takes one value, got 2",
            ),
            (
                raw(&[("show", &["sideways"])]),
                "field `show`: `sideways` is not one of all, installed",
            ),
            (
                raw(&[("modules", &["../../etc"])]),
                "field `modules`: `../../etc` is not a module name",
            ),
            (
                raw(&[("confirm", &["maybe"])]),
                "field `confirm`: `maybe` is not a boolean",
            ),
        ] {
            let error = Input::check(PARAMS, pairs).unwrap_err();
            assert_eq!(error.kind, ErrorKind::BadInput);
            assert!(
                error.text.starts_with(expected),
                "{expected:?} vs {:?}",
                error.text
            );
        }
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let error = Input::check(PARAMS, vec![("query", vec![long])]).unwrap_err();
        assert!(error.text.contains("too long"), "{}", error.text);
        let many = vec!["x".to_owned(); MAX_VALUES + 1];
        let error = Input::check(PARAMS, vec![("modules", many)]).unwrap_err();
        assert!(error.text.contains("at most 256"), "{}", error.text);
    }

    #[test]
    fn every_node_is_unique_and_findable() {
        for op in all() {
            let node = op.spec().node;
            assert!(std::ptr::eq(find(node).unwrap().spec(), op.spec()));
        }
        assert!(find("no-such-node").is_none());
    }
}
