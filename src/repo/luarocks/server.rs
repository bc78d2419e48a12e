//! Reading a LuaRocks server: exactly the configured one (the rockspecs'
//! `source.url` is never fetched), over HTTPS unless it is this machine,
//! through modman's [`Fetcher`] (its limits, and redirects may not leave
//! the host). Every rock's bytes are pinned on first use ([`Pins`]), and
//! kept in a cache directory so that only new rocks are fetched again.
//!
//! The result is what a signed repository's index gives: one
//! [`ModuleEntry`] per module (its newest version), whose `archive`,
//! `size` and `sha256` are those of the `.src.rock`, so the catalog,
//! install and update treat both kinds of repository alike.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use futures::StreamExt as _;

use super::manifest::{Manifest, ManifestError};
use super::pins::{PinError, Pins};
use super::rock::{self, Reading, Rock};
use super::rockspec::Rockspec;
use super::Requirement;
use crate::config::Repository;
use crate::repo::build::dependency_kind;
use crate::repo::fetch::{self, FetchError, Fetcher};
use crate::repo::index::{Dependency, Earlier, ModuleEntry};
use crate::repo::metadata::{self, Need};
use crate::store::RockCache;

/// Largest manifest accepted (the Lua reader's own limit).
const MAX_MANIFEST: u64 = super::lua::MAX_INPUT as u64;
/// Most text the descriptions of one server's rocks may hold, as much as
/// a signed index may be: with any number of rocks, a refresh holds no
/// more than that.
const MAX_CATALOG: u64 = fetch::MAX_INDEX;
/// Most bytes the rocks of one server may unpack to in one refresh,
/// counting every entry (the whole community repository unpacks to tens
/// of MiB): what bounds a refresh's CPU with any number of rocks. Rocks
/// after that are left out unread.
const MAX_REFRESH_UNPACKED: u64 = 1024 * 1024 * 1024;
/// Most rocks downloaded at once: a first refresh of a server of hundreds
/// of modules takes seconds, not minutes, without hammering it.
const PARALLEL: usize = 4;
/// Largest `.src.rock` downloaded. A rock holds one module's part of the
/// prosody-modules tree (KiB, a few hundred with assets); bounding it
/// bounds what the downloads in flight hold, (`PARALLEL` + 1) x this.
pub const MAX_ROCK: u64 = 8 * 1024 * 1024;

/// Why a LuaRocks server could not be read at all; the last good catalog
/// stays in use.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Url(String),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("{path}: {problem}")]
    Cache { path: String, problem: String },
    /// A chosen earlier version the server does not list, or whose rock
    /// was refused.
    #[error("{0}")]
    Refused(String),
}

/// A module on offer, read from its newest rock.
#[derive(Debug, Clone)]
pub struct Offer {
    /// As a signed index would describe it; `archive` is the rock's file
    /// name, `size` and `sha256` the rock's.
    pub entry: ModuleEntry,
}

/// Everything the server offers, and the modules left out with why.
#[derive(Debug, Default)]
pub struct Offers {
    /// Sorted by name.
    pub modules: Vec<Offer>,
    /// Each module left out, with why.
    pub problems: Vec<LeftOut>,
}

/// A module left out of what a server offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// Its rock's package, `mod_x`.
    pub package: String,
    /// Why, naming its rock or rockspec file.
    pub problem: String,
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.problem)
    }
}

/// One rock read by [`Server::offers`].
#[derive(Debug, Clone)]
pub struct Progress {
    /// `mod_x 3-1`.
    pub rock: String,
    /// How many rocks have been read, this one included, of `total`.
    pub done: usize,
    pub total: usize,
    pub from_server: bool,
}

/// One configured LuaRocks server.
pub struct Server<'a> {
    fetcher: &'a Fetcher,
    repository: &'a Repository,
    cache: RockCache,
    pins: Pins,
}

impl<'a> Server<'a> {
    /// Checks the URL and reads the pins; connects to nothing yet.
    /// `cache` holds rocks already fetched, and their pins.
    pub fn open(
        fetcher: &'a Fetcher,
        repository: &'a Repository,
        cache: RockCache,
    ) -> Result<Server<'a>, ServerError> {
        crate::config::check_luarocks_url(&repository.url).map_err(ServerError::Url)?;
        Ok(Server {
            fetcher,
            repository,
            pins: Pins::load(&cache)?,
            cache,
        })
    }

    /// The server's manifest: `manifest-5.4`, else `manifest`, as LuaRocks
    /// clients ask for them.
    pub async fn manifest(&self) -> Result<Manifest, ServerError> {
        let versioned = fetch::url_of(self.repository, "manifest-5.4")?;
        let plain = fetch::url_of(self.repository, "manifest")?;
        let get = |url: String| async move {
            let bytes = self.fetcher.get(self.repository, &url, MAX_MANIFEST).await;
            (url, bytes)
        };
        let (url, bytes) = match get(versioned).await {
            (_, Err(FetchError::Status { status: 404, .. })) => get(plain).await,
            fetched => fetched,
        };
        let text = String::from_utf8(bytes?).map_err(|_| ManifestError::Shape {
            file: url.clone(),
            problem: "not UTF-8 text".into(),
        })?;
        Ok(Manifest::parse(&url, &text)?)
    }

    /// A rock kept from an earlier run, if its bytes still match its pin.
    fn cached(&self, file: &str, url: &str) -> Option<Vec<u8>> {
        cached_in(&self.cache, file, self.pins.get(url))
    }

    /// Reads the newest rock of every module and describes each as a
    /// signed index would. Modules whose rock is refused, whose rockspec
    /// dependencies the server does not have (or has refused), or that are
    /// in a dependency cycle are left out, each with a problem line.
    /// `progress` hears of each rock as it is read.
    ///
    /// Rocks are read one at a time and only their description is kept
    /// (see [`Reading::Describe`]), so what a refresh holds does not grow
    /// with what the rocks unpack to.
    ///
    /// Up to `listed` earlier versions of each module that the manifest
    /// lists (newest first) are offered by version only
    /// ([`ModuleEntry::listed`]): no rock of theirs is downloaded until an
    /// admin chooses one ([`Server::earlier`]).
    pub async fn offers(
        &mut self,
        builtin_dir: &Path,
        listed: usize,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Offers, ServerError> {
        let manifest = self.manifest().await?;
        let mut problems = Vec::new();
        let mut read = BTreeMap::new();
        let fetched = self
            .read_newest(&manifest, builtin_dir, &mut read, &mut problems, progress)
            .await;
        // Pin what was fetched even when a later rock stopped the run.
        self.pins.save()?;
        fetched?;
        let kept = resolve(&manifest, &read, &mut problems);
        let community: BTreeSet<String> = kept
            .iter()
            .map(|p| p.strip_prefix("mod_").unwrap_or(p).to_owned())
            .collect();
        let modules = kept
            .iter()
            .filter_map(|package| Some((package, read.remove(package)?)))
            .map(|(package, described)| {
                let mut offer = described.offer(&community, builtin_dir);
                offer.entry.listed = (manifest.rocks.get(package).into_iter().flatten())
                    .rev()
                    .skip(1)
                    .take(listed)
                    .map(ToString::to_string)
                    .collect();
                offer
            })
            .collect();
        Ok(Offers { modules, problems })
    }

    /// The earlier version `version` of the module `entry` offers, as its
    /// entry lists an earlier build: its rock downloaded (unless kept from
    /// before), pinned, and read with the same bounds as a refresh reads
    /// the newest. `community` names the modules the server offers, to
    /// tell its dependencies apart. A version the entry does not list, or
    /// a rock refused, is an error naming it.
    pub async fn earlier(
        &mut self,
        entry: &ModuleEntry,
        version: &str,
        community: &BTreeSet<String>,
        builtin_dir: &Path,
    ) -> Result<Earlier, ServerError> {
        if !entry.listed.iter().any(|v| v == version) {
            return Err(ServerError::Refused(format!(
                "{} does not list {} at {version}",
                self.repository.name, entry.name
            )));
        }
        let package = entry
            .archive
            .strip_suffix(&format!("-{}.src.rock", entry.version))
            .unwrap_or(&entry.archive);
        let file = format!("{package}-{version}.src.rock");
        let url = fetch::url_of(self.repository, &file)?;
        let bytes = match self.cached(&file, &url) {
            Some(bytes) => bytes,
            None => {
                let bytes = self.fetcher.get(self.repository, &url, MAX_ROCK).await?;
                self.pins.check(&url, &crate::repo::sha256_hex(&bytes))?;
                keep_in(&self.cache, &file, &bytes)?;
                self.pins.save()?;
                bytes
            }
        };
        let has_module = |name: &str| crate::repo::placement::has_module(builtin_dir, name);
        let rock = rock::read(&file, &bytes, Reading::Describe, &has_module, &mut 0)
            .map_err(|e| ServerError::Refused(e.to_string()))?;
        let build = Build::new(rock, &bytes, version.to_owned(), file);
        Ok(build.earlier(community, builtin_dir))
    }

    /// Reads the rock `file` (`mod_x-N-R.src.rock`) whole from the cache,
    /// as [`Server::offers`] kept and pinned it: to pack one module at a
    /// time after the catalog is known.
    pub fn cached_rock(&self, file: &str, builtin_dir: &Path) -> Result<Rock, String> {
        let url = fetch::url_of(self.repository, file).map_err(|e| e.to_string())?;
        let bytes = self.cached(file, &url).ok_or_else(|| {
            format!(
                "{file}: no longer in {} as pinned; run the command again",
                self.cache.dir().display()
            )
        })?;
        let has_module = |name: &str| crate::repo::placement::has_module(builtin_dir, name);
        rock::read(file, &bytes, Reading::Whole, &has_module, &mut 0).map_err(|e| e.to_string())
    }

    /// Reads the newest rock of each module in `manifest` into `read`, or
    /// says in `problems` why it was refused. Rocks not in the cache are
    /// downloaded [`PARALLEL`] at a time, and handled in that order, one
    /// at a time.
    async fn read_newest(
        &mut self,
        manifest: &Manifest,
        builtin_dir: &Path,
        read: &mut BTreeMap<String, Described>,
        problems: &mut Vec<LeftOut>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(), ServerError> {
        let mut wanted = Vec::new();
        for (package, versions) in &manifest.rocks {
            let Some(version) = versions.last() else {
                continue;
            };
            if !super::is_module_rock(package) {
                problems.push(LeftOut {
                    package: package.clone(),
                    problem: format!("{package}: not a Prosody module name (mod_x)"),
                });
                continue;
            }
            let file = format!("{package}-{version}.src.rock");
            let url = fetch::url_of(self.repository, &file)?;
            let pinned = self.pins.get(&url).map(str::to_owned);
            // Owned, so the downloads below hold no borrows of the manifest
            // or the pins; a cached rock is read only when its turn comes.
            wanted.push((package.clone(), version.clone(), file, url, pinned));
        }
        let total = wanted.len();
        let (fetcher, repository, cache) = (self.fetcher, self.repository, &self.cache);
        let mut downloads = futures::stream::iter(wanted)
            .map(|(package, version, file, url, pinned)| async move {
                let bytes = match cached_in(cache, &file, pinned.as_deref()) {
                    Some(bytes) => Ok((bytes, false)),
                    None => fetcher
                        .get(repository, &url, MAX_ROCK)
                        .await
                        .map(|bytes| (bytes, true)),
                };
                (package, version, file, url, bytes)
            })
            .buffered(PARALLEL);
        let mut done = 0;
        // Bytes of text the descriptions read so far hold, and bytes the
        // rocks read so far unpacked to.
        let mut held: u64 = 0;
        let mut unpacked: u64 = 0;
        while let Some((package, version, file, url, bytes)) = downloads.next().await {
            let (bytes, from_server) = bytes?;
            if from_server {
                // Refuses other bytes than a pin says, then keeps them.
                self.pins.check(&url, &crate::repo::sha256_hex(&bytes))?;
                keep_in(cache, &file, &bytes)?;
            }
            done += 1;
            progress(Progress {
                rock: format!("{package} {version}"),
                done,
                total,
                from_server,
            });
            if unpacked > MAX_REFRESH_UNPACKED {
                problems.push(LeftOut {
                    package,
                    problem: format!(
                        "{file}: not read: this server's rocks before it already unpacked to more than {} MiB, the most one refresh inflates",
                        MAX_REFRESH_UNPACKED / 1024 / 1024
                    ),
                });
                continue;
            }
            let has_module = |name: &str| crate::repo::placement::has_module(builtin_dir, name);
            match rock::read(&file, &bytes, Reading::Describe, &has_module, &mut unpacked) {
                Ok(rock) => {
                    let described = Described::new(rock, &bytes);
                    if held + described.weight() > MAX_CATALOG {
                        problems.push(LeftOut {
                            package,
                            problem: format!(
                                "{file}: its description would take this server's catalog past {} MiB, the most a repository's index may hold",
                                MAX_CATALOG / 1024 / 1024
                            ),
                        });
                    } else {
                        held += described.weight();
                        read.insert(package, described);
                    }
                }
                Err(e) => problems.push(LeftOut {
                    package,
                    problem: e.to_string(),
                }),
            }
        }
        Ok(())
    }
}

/// The rock `file` kept in `cache` from an earlier run, if its bytes match
/// `pinned`.
fn cached_in(cache: &RockCache, file: &str, pinned: Option<&str>) -> Option<Vec<u8>> {
    let pinned = pinned?;
    let bytes = std::fs::read(cache.rock(file)).ok()?;
    (crate::repo::sha256_hex(&bytes) == pinned).then_some(bytes)
}

/// Keeps a rock just downloaded (and pinned) in `cache` for the next run.
fn keep_in(cache: &RockCache, file: &str, bytes: &[u8]) -> Result<(), ServerError> {
    cache.keep(file, bytes).map_err(|e| ServerError::Cache {
        path: cache.rock(file).display().to_string(),
        problem: format!("cannot keep the rock: {e}"),
    })
}
/// The packages whose rockspec dependencies all resolve, in no cycle;
/// adds a problem line for each one left out.
fn resolve(
    manifest: &Manifest,
    read: &BTreeMap<String, Described>,
    problems: &mut Vec<LeftOut>,
) -> BTreeSet<String> {
    let rockspec_of = |package: &str| {
        let rock = &read[package].rockspec;
        format!("{package}-{}.rockspec", rock.version)
    };
    let mut kept: BTreeSet<String> = read.keys().cloned().collect();
    // Cycles first: every module on one is left out, named with the path.
    let mut on_cycle = BTreeSet::new();
    for package in read.keys() {
        if let Some(cycle) = find_cycle(package, read) {
            if on_cycle.insert(package.clone()) {
                problems.push(LeftOut {
                    package: package.clone(),
                    problem: format!(
                        "{}: dependency cycle {}",
                        rockspec_of(package),
                        cycle.join(" -> ")
                    ),
                });
            }
        }
    }
    kept.retain(|p| !on_cycle.contains(p));
    // Then what is missing or refused, until nothing more drops out.
    loop {
        let mut dropped = Vec::new();
        for package in &kept {
            let requirements = &read[package].rockspec.dependencies;
            if let Some(problem) = requirements.iter().find_map(|r| unmet(r, manifest, &kept)) {
                dropped.push(package.clone());
                problems.push(LeftOut {
                    package: package.clone(),
                    problem: format!("{}: {problem}", rockspec_of(package)),
                });
            }
        }
        if dropped.is_empty() {
            return kept;
        }
        for package in dropped {
            kept.remove(&package);
        }
    }
}

/// Why `requirement` cannot be met from the modules `kept`, if it cannot.
fn unmet(
    requirement: &Requirement,
    manifest: &Manifest,
    kept: &BTreeSet<String>,
) -> Option<String> {
    let rock = &requirement.rock;
    let Some(newest) = manifest.newest(rock) else {
        return Some(format!("depends on {rock}, which the server does not have"));
    };
    if !kept.contains(rock) {
        return Some(format!("depends on {rock}, which was left out"));
    }
    (!requirement.allows(newest)).then(|| {
        format!("depends on a version of {rock} the server does not have (its newest is {newest})")
    })
}

/// A dependency path from `start` back to itself, if there is one.
fn find_cycle(start: &str, read: &BTreeMap<String, Described>) -> Option<Vec<String>> {
    let mut path = vec![start.to_owned()];
    let mut seen = BTreeSet::new();
    fn walk(
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
        read: &BTreeMap<String, Described>,
    ) -> bool {
        let current = path.last().cloned().unwrap_or_default();
        let Some(described) = read.get(&current) else {
            return false;
        };
        for requirement in &described.rockspec.dependencies {
            if requirement.rock == start {
                path.push(start.to_owned());
                return true;
            }
            if seen.insert(requirement.rock.clone()) {
                path.push(requirement.rock.clone());
                if walk(start, path, seen, read) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(start, &mut path, &mut seen, read).then_some(path)
}

/// An earlier version of a module's rock, as its entry lists it: what
/// tells the build apart (its file, bytes and files) and what it needs.
struct Build {
    version: String,
    file: String,
    size: u64,
    sha256: String,
    paths: Vec<String>,
    needs: BTreeMap<String, Need>,
}

impl Build {
    /// The rock `file` of `version`, as the manifest names them.
    fn new(rock: Rock, bytes: &[u8], version: String, file: String) -> Build {
        let described = Described::new(rock, bytes);
        Build {
            version,
            file,
            size: described.size,
            sha256: described.sha256,
            paths: described.paths,
            needs: described.needs,
        }
    }

    /// The build as its module's entry lists it.
    fn earlier(self, community: &BTreeSet<String>, builtin_dir: &Path) -> Earlier {
        Earlier {
            version: self.version,
            archive: self.file,
            size: self.size,
            sha256: self.sha256,
            files: self.paths,
            dependencies: dependencies(self.needs, community, builtin_dir),
        }
    }
}

/// Each of `needs`, told community, built in or missing.
fn dependencies(
    needs: BTreeMap<String, Need>,
    community: &BTreeSet<String>,
    builtin_dir: &Path,
) -> Vec<Dependency> {
    needs
        .into_iter()
        .map(|(dependency, need)| Dependency {
            kind: dependency_kind(&dependency, community, builtin_dir),
            name: dependency,
            need,
        })
        .collect()
}

/// What a catalog entry needs of one rock, taken as it is read so that
/// none of its contents are held: the rockspec, what it installs, the
/// README's metadata, the main file's headers and what its code needs.
struct Described {
    rockspec: Rockspec,
    library: Option<String>,
    paths: Vec<String>,
    size: u64,
    sha256: String,
    readme: metadata::Readme,
    headers: metadata::Headers,
    /// Rockspec dependencies (required) and the code's (maybe optional),
    /// by module name, without the module itself.
    needs: BTreeMap<String, Need>,
}

impl Described {
    /// Summary from the rockspec (else the README), the rest of the
    /// metadata from the README, dependencies from the rockspec and from
    /// the code of its Lua modules.
    fn new(rock: Rock, bytes: &[u8]) -> Described {
        let spec = rock.rockspec;
        let name = spec.module_name().to_owned();
        let readme = rock
            .files
            .iter()
            .find(|f| matches!(f.path.as_str(), "README.markdown" | "README.md"))
            .map(|f| metadata::parse_readme(&String::from_utf8_lossy(&f.data)).0)
            .unwrap_or_default();
        // Rockspec dependencies are required; the code's may be optional.
        let mut needs: BTreeMap<String, Need> = spec
            .dependencies
            .iter()
            .map(|r| {
                (
                    r.rock.strip_prefix("mod_").unwrap_or(&r.rock).to_owned(),
                    Need::Required,
                )
            })
            .collect();
        for declared in rock
            .files
            .iter()
            .filter(|f| f.path.ends_with(".lua"))
            .flat_map(|f| metadata::depends(&String::from_utf8_lossy(&f.data)))
        {
            let need = needs.entry(declared.name).or_insert(declared.need);
            *need = (*need).min(declared.need);
        }
        needs.remove(&name);
        // Prosody reads the headers of the file it loads: the main one.
        let headers = rock
            .files
            .iter()
            .find(|f| f.path.rsplit('/').next() == Some(&format!("mod_{name}.lua")))
            .map(|f| metadata::headers(&String::from_utf8_lossy(&f.data)))
            .unwrap_or_default();
        Described {
            rockspec: spec,
            library: rock.library,
            paths: rock.paths,
            size: bytes.len() as u64,
            sha256: crate::repo::sha256_hex(bytes),
            readme,
            headers,
            needs,
        }
    }

    /// The bytes of text it holds: what it adds to the catalog.
    fn weight(&self) -> u64 {
        let paths: usize = self.paths.iter().map(String::len).sum();
        (self.readme.description.len()
            + self.readme.summary.len()
            + self.rockspec.summary.len()
            + paths) as u64
    }

    /// The index entry for the rock: `archive`, `size` and `sha256` are
    /// the rock's; each dependency is told community, built in or missing.
    fn offer(self, community: &BTreeSet<String>, builtin_dir: &Path) -> Offer {
        let spec = self.rockspec;
        let dependencies = dependencies(self.needs, community, builtin_dir);
        let summary = if spec.summary.is_empty() {
            self.readme.summary
        } else {
            spec.summary.clone()
        };
        Offer {
            entry: ModuleEntry {
                name: spec.module_name().to_owned(),
                version: spec.version.to_string(),
                summary,
                labels: self.readme.labels,
                stage: self.readme.stage,
                description: self.readme.description,
                dependencies,
                compatibility: self.readme.compatibility,
                archive: format!("{}-{}.src.rock", spec.package, spec.version),
                size: self.size,
                sha256: self.sha256,
                files: self.paths,
                headers: self.headers,
                library: self.library,
                // A rock carries no history.
                changes: vec![],
                previous: vec![],
                // Set by the caller, from the manifest.
                listed: vec![],
            },
        }
    }
}
