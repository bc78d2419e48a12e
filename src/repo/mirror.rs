//! `modman repo mirror`: a LuaRocks server (Prosody's community
//! repository, or a copy) as a signed modman repository, so that an
//! organisation trusts its own key rather than TLS and first use.
//!
//! Each module's newest rock is read as the `luarocks` repository kind
//! reads it, and its files packed into the same deterministic archive as
//! `repo build` makes; versions (`N-R`) and dependencies are carried over.
//! Rocks are kept, pinned, in a cache beside the output
//! (`.<out>.rocks/`), so a second run fetches only new rocks, and a rock
//! whose bytes changed under the same version stops the mirror. Any rock
//! refused stops it too: a mirror is all of the server or nothing, and
//! the previous output stays as it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::archive;
use super::build::{self, BuildError};
use super::fetch::Fetcher;
use super::luarocks::server::{Progress, Server, ServerError};
use super::signing::{self, KeyError};
use crate::config::{Repository, RepositoryKind};

/// What to mirror where.
pub struct MirrorOptions<'a> {
    /// The LuaRocks server, such as the community repository's `/rocks/`.
    pub from: &'a url::Url,
    pub out: &'a Path,
    pub key: &'a Path,
    /// Prosody's own modules, to tell built-in dependencies from missing ones.
    pub builtin_dir: &'a Path,
    /// The repository's name, signed into its index (see `repo build`).
    pub name: &'a str,
    /// Longest one download may take.
    pub timeout: Duration,
    /// How long clients may use the mirror's index (see `repo build`).
    pub valid_for: time::Duration,
}

/// What a mirror run did.
#[derive(Debug, PartialEq, Eq)]
pub struct MirrorReport {
    pub modules: usize,
    /// Rocks downloaded this run (the others came from the cache).
    pub fetched: usize,
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("{} module(s) refused, so nothing was written:\n  {}", .0.len(), .0.join("\n  "))]
    Refused(Vec<String>),
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// The cache of rocks and their pins for `out`: `.<name>.rocks` beside it.
pub fn cache_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repository".into());
    out.with_file_name(format!(".{name}.rocks"))
}

/// Mirrors the server; `progress` hears of each rock as it is read.
pub async fn mirror(
    options: &MirrorOptions<'_>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<MirrorReport, MirrorError> {
    let key = signing::read_private(options.key)?;
    let repository = Repository {
        name: "mirror".into(),
        url: options.from.clone(),
        kind: RepositoryKind::LuaRocks,
        timeout: options.timeout,
    };
    let fetcher = Fetcher::default();
    let cache = cache_dir(options.out);
    let mut server = Server::open(&fetcher, &repository, &cache, &cache.join("pins.json"))?;
    let mut fetched = 0;
    let offers = server
        .offers(options.builtin_dir, &mut |step| {
            fetched += usize::from(step.from_server);
            progress(step);
        })
        .await?;
    if !offers.problems.is_empty() {
        return Err(MirrorError::Refused(offers.problems));
    }
    let mut modules = Vec::with_capacity(offers.modules.len());
    for offer in offers.modules {
        let mut entry = offer.entry;
        let bytes = archive::pack_files(&entry.name, &offer.files).map_err(|e| {
            MirrorError::Refused(vec![format!("{}: cannot pack it: {e}", entry.archive)])
        })?;
        entry.archive = format!("archives/mod_{}-{}.tar.gz", entry.name, entry.version);
        entry.size = bytes.len() as u64;
        entry.sha256 = super::sha256_hex(&bytes);
        modules.push((entry, bytes));
    }
    let count = modules.len();
    build::publish(options.out, options.name, &key, options.valid_for, modules)?;
    Ok(MirrorReport {
        modules: count,
        fetched,
    })
}
