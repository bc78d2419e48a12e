//! `modman repo mirror`: a LuaRocks server (Prosody's community
//! repository, or a copy) as a signed modman repository, so that an
//! organisation trusts its own key rather than TLS and first use.
//!
//! Each module's newest rock is read as the `luarocks` repository kind
//! reads it, and its files packed into the same deterministic archive as
//! `repo build` makes; versions (`N-R`) and dependencies are carried over.
//! Rocks are kept, pinned, in a cache beside the output
//! (`.<out>.rocks/`), so a second run fetches only new rocks, and a rock
//! whose bytes changed under the same version stops the mirror.
//!
//! A rock refused (corrupt, hostile, or depending on one that is) leaves
//! out its module only: the rest is published and signed, and the module
//! keeps its last good copy when the mirror already had one. One bad
//! upstream rock must not freeze an organisation's mirror; the report
//! names each module left out, why, and what the mirror holds of it now.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::archive;
use super::build::{self, BuildError};
use super::fetch::Fetcher;
use super::index::{Index, ModuleEntry};
use super::luarocks::server::{LeftOut, Progress, Server, ServerError};
use super::signing::{self, KeyError};
use crate::config::{Repository, RepositoryKind};
use crate::store::RockCache;

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
    /// Earlier versions of each module the server lists to mirror too,
    /// newest first, listed in the index (see `repo build --keep`).
    pub keep: usize,
}

/// What a mirror run did.
#[derive(Debug, PartialEq, Eq)]
pub struct MirrorReport {
    /// Modules published, last good copies included.
    pub modules: usize,
    /// Rocks downloaded this run (the others came from the cache).
    pub fetched: usize,
    /// Modules whose newest rock was refused, sorted by package.
    pub left_out: Vec<Omission>,
}

impl MirrorReport {
    /// The same facts as the text, for a publishing script: counts, and
    /// each module left out by package, with the version still offered.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "modules": self.modules,
            "fetched": self.fetched,
            "left_out": self.left_out.iter().map(|o| serde_json::json!({
                "package": o.left_out.package,
                "kept": o.kept,
                "why": o.to_string(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// A module whose newest rock was not mirrored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Omission {
    pub left_out: LeftOut,
    /// The version of the last good copy the mirror still holds, if it
    /// had one; otherwise the mirror does not offer the module.
    pub kept: Option<String>,
}

impl std::fmt::Display for Omission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kept {
            Some(version) => write!(
                f,
                "{}; the mirror keeps its last good copy, version {version}",
                self.left_out
            ),
            None => write!(f, "{}; the mirror does not offer it", self.left_out),
        }
    }
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Server(#[from] ServerError),
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
/// Rocks are packed one at a time from the cache, so memory does not grow
/// with what they unpack to.
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
    let mut server = Server::open(&fetcher, &repository, RockCache::in_dir(&cache))?;
    let mut fetched = 0;
    let offers = server
        .offers(options.builtin_dir, options.keep, &mut |step| {
            fetched += usize::from(step.from_server);
            progress(step);
        })
        .await?;
    let mut left_out = offers.problems;
    let community: BTreeSet<String> = (offers.modules.iter())
        .map(|o| o.entry.name.clone())
        .collect();
    let mut modules = Vec::with_capacity(offers.modules.len());
    let mut earlier_archives = Vec::new();
    for offer in offers.modules {
        let mut entry = offer.entry;
        let packed = pack(&server, &entry.name, &entry.archive, options.builtin_dir);
        let bytes = match packed {
            Ok(bytes) => bytes,
            Err(problem) => {
                left_out.push(LeftOut {
                    package: format!("mod_{}", entry.name),
                    problem,
                });
                continue;
            }
        };
        // Its earlier versions are read and packed as the newest is; one
        // refused is not mirrored, and leaves the module in.
        for version in entry.listed.clone() {
            let earlier = server
                .earlier(&entry, &version, &community, options.builtin_dir)
                .await
                .map_err(|e| e.to_string());
            let packed = earlier.and_then(|earlier| {
                let bytes = pack(&server, &entry.name, &earlier.archive, options.builtin_dir)?;
                Ok((earlier, bytes))
            });
            match packed {
                Ok((mut earlier, bytes)) => {
                    earlier.archive = archive_path(&entry.name, &version);
                    earlier.size = bytes.len() as u64;
                    earlier.sha256 = super::sha256_hex(&bytes);
                    earlier_archives.push((earlier.archive.clone(), bytes));
                    entry.previous.push(earlier);
                }
                Err(problem) => {
                    tracing::warn!("{}: version {version} not mirrored: {problem}", entry.name)
                }
            }
        }
        // A signed index lists only builds it serves.
        entry.listed.clear();
        entry.archive = archive_path(&entry.name, &entry.version);
        entry.size = bytes.len() as u64;
        entry.sha256 = super::sha256_hex(&bytes);
        modules.push((entry, bytes));
    }
    let previous = build::published(options.out, &key);
    let mut omissions = Vec::new();
    left_out.sort_by(|a, b| a.package.cmp(&b.package));
    for left in left_out {
        let name = left.package.strip_prefix("mod_").unwrap_or(&left.package);
        let published = modules.iter().any(|(entry, _)| entry.name == name);
        let copy = previous
            .as_ref()
            .filter(|_| !published)
            .and_then(|index| previous_copy(options.out, index, name));
        let kept = copy.map(|(entry, bytes)| {
            let version = entry.version.clone();
            modules.push((entry, bytes));
            version
        });
        omissions.push(Omission {
            left_out: left,
            kept,
        });
    }
    modules.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let count = modules.len();
    // The earlier builds listed are those the server lists now.
    build::publish(
        options.out,
        options.name,
        &key,
        options.valid_for,
        modules,
        earlier_archives,
        previous,
    )?;
    Ok(MirrorReport {
        modules: count,
        fetched,
        left_out: omissions,
    })
}

/// Where the mirror serves module `name`'s archive of `version`.
fn archive_path(name: &str, version: &str) -> String {
    format!("archives/mod_{name}-{version}.tar.gz")
}

/// The rock `file` of module `name`, read whole from the server's cache
/// (as [`Server::offers`] or [`Server::earlier`] pinned it) and packed
/// as `repo build` packs a module.
fn pack(
    server: &Server<'_>,
    name: &str,
    file: &str,
    builtin_dir: &Path,
) -> Result<Vec<u8>, String> {
    let rock = server.cached_rock(file, builtin_dir)?;
    archive::pack_files(name, &rock.files).map_err(|e| format!("{file}: cannot pack it: {e}"))
}

/// Module `name` of the previous mirror, with its archive's bytes, if the
/// archive is still there and matches the signed index.
fn previous_copy(out: &Path, index: &Index, name: &str) -> Option<(ModuleEntry, Vec<u8>)> {
    // Its newest copy only: the earlier builds' archives are not carried.
    let entry = ModuleEntry {
        previous: vec![],
        ..index.get(name)?.clone()
    };
    let bytes = std::fs::read(out.join(&entry.archive)).ok()?;
    let good = bytes.len() as u64 == entry.size
        && super::sha256_hex(&bytes) == entry.sha256
        && archive::read(&bytes, &entry.name).is_ok();
    good.then_some((entry, bytes))
}
