//! The modules on offer: the last good index of each configured
//! repository, kept in the store ([`Kept::Index`]) and checked against its
//! signature again whenever it is loaded, so a file changed on disk is
//! caught as surely as one changed on the wire.
//!
//! Freshness, as apt and TUF do it: beside each index, modman keeps the
//! highest serial it accepted from that repository (and the SHA-256 of
//! that index), and refuses an index with a lower serial, or the same
//! serial and other content: a validly signed but older index, replayed by
//! someone in the middle, would otherwise downgrade modules. An expired
//! index is never accepted, and one that expires while in use still lists
//! its modules but installs and updates nothing from them.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Repository, RepositoryKind};
use crate::repo::fetch::{self, FetchError, Fetcher};
use crate::repo::index::{Earlier, Index, IndexError, ModuleEntry, Timestamp};
use crate::repo::luarocks::server::Server;
use crate::store::{Kept, Store};

use super::descriptions::Descriptions;
use super::refusal::{Cause, Refusal};
use super::verified::Digests;

/// One repository's last good index.
#[derive(Debug, Clone)]
pub struct Source {
    pub repository: Repository,
    /// Shared: a refresh that fails keeps the last good index without
    /// copying it (tens of megabytes for a big repository). Its
    /// descriptions are empty: they are in `descriptions`.
    pub index: Arc<Index>,
    /// When this index was fetched (the cache file's time), RFC 3339.
    pub fetched: String,
    /// The READMEs of `index`'s modules, on disk (see [`Descriptions`]).
    pub descriptions: Arc<Descriptions>,
}

impl Source {
    /// `index` from `repository` put in use, its READMEs on disk in
    /// `store` (see [`Descriptions`]); the time of its cache file
    /// says when it came.
    fn new(
        store: &Store,
        repository: &Repository,
        (index, descriptions): (Index, Descriptions),
    ) -> Source {
        Source {
            repository: repository.clone(),
            index: index.into(),
            fetched: modified(&store.path(Kept::Index(repository))),
            descriptions: descriptions.into(),
        }
    }
}

/// What every configured repository offers. Where two offer a module of
/// the same name, the one listed first in modman.toml wins.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub sources: Vec<Source>,
    /// The repositories whose last refresh failed, and why: what `list`
    /// shows of them is the index kept from before, or nothing.
    pub failures: Vec<Failure>,
}

/// A repository whose last refresh failed. Kept in the store
/// ([`Kept::Failure`]) until a refresh of it succeeds,
/// so that every process (the component after a restart, the command
/// line) says so.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub repository: String,
    pub reason: String,
}

impl Failure {
    /// The recorded failure of `repository`, if any (one that does not
    /// read is no failure: it only words a note).
    fn load(store: &Store, repository: &Repository) -> Option<Failure> {
        let bytes = store.read(Kept::Failure(repository)).ok()?;
        serde_json::from_slice::<Failure>(&bytes)
            .ok()
            .filter(|f| f.repository == repository.name)
    }

    /// Records this failure, or with `None` that the last refresh went
    /// well. A record that cannot be written is logged: the refresh
    /// report says it all the same.
    fn record(store: &Store, repository: &Repository, failure: Option<&Failure>) {
        let kept = Kept::Failure(repository);
        let written = match failure {
            Some(failure) => {
                let bytes = serde_json::to_vec(failure)
                    .unwrap_or_else(|e| unreachable!("two strings always serialise: {e}"));
                store.write(kept, &bytes)
            }
            None => store.remove(kept),
        };
        if let Err(e) = written {
            tracing::warn!(
                "cannot record the refresh of {} in {}: {e}",
                repository.name,
                store.path(kept).display()
            );
        }
    }
}

/// How one repository's refresh went.
#[derive(Debug)]
pub struct Refreshed {
    pub repository: String,
    /// Modules in the index now in use, if any.
    pub modules: Option<usize>,
    /// `Ok(())` if fetched now; otherwise why not.
    pub result: Result<(), Refusal>,
    /// When the index in use was fetched.
    pub fetched: Option<String>,
    /// Modules a LuaRocks server offers that were left out, one line each
    /// naming the rock or rockspec and why.
    pub warnings: Vec<String>,
}

/// The newest index accepted from one repository: the replay guard. Kept
/// in its own file, so it survives a cached index that no longer verifies
/// (after a key rotation, say).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Accepted {
    serial: u64,
    sha256: String,
}

impl Accepted {
    /// The record, if any. One that does not parse is an error, not a
    /// fresh start: deleting the guard must not be a way around it.
    fn load(store: &Store, repository: &Repository) -> Result<Option<Accepted>, Refusal> {
        let kept = Kept::Accepted(repository);
        let path = store.path(kept);
        let damaged = |text: String| Refusal::new(Cause::State, text);
        match store.read(kept) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                damaged(format!(
                    "{} is damaged ({e}); it records the newest index accepted from this repository: remove it to accept whatever the repository serves next",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(damaged(format!("cannot read {}: {e}", path.display()))),
        }
    }
}

impl Catalog {
    /// Loads every cached index in `store` that still verifies; returns
    /// the catalog and a warning per cache that was refused.
    pub fn load(config: &Config, store: &Store) -> (Catalog, Vec<String>) {
        let mut catalog = Catalog::default();
        let mut warnings = Vec::new();
        for repository in &config.repositories {
            catalog.failures.extend(Failure::load(store, repository));
            let index_path = store.path(Kept::Index(repository));
            if repository.kind == RepositoryKind::LuaRocks {
                // Built by modman itself from pinned rocks; the state
                // directory is trusted as the pins in it are.
                let parse = |bytes: Vec<u8>| Descriptions::parse(store, || Index::parse(&bytes));
                match store.read(Kept::Index(repository)).map(parse) {
                    Ok(Ok(index)) => catalog.sources.push(Source::new(store, repository, index)),
                    // Kept by a modman from before index names, from
                    // rocks it pinned: the next refresh remakes it.
                    Ok(Err(IndexError::Unnamed)) => {}
                    Ok(Err(e)) => warnings.push(format!(
                        "cached index {} refused: {e}",
                        index_path.display()
                    )),
                    Err(_) => {}
                }
                continue;
            }
            let (Ok(bytes), Ok(signature)) = (
                store.read(Kept::Index(repository)),
                store.read(Kept::Signature(repository)),
            ) else {
                continue;
            };
            // These very bytes verified when a refresh accepted them,
            // under a key still listed: checked by digest, not by
            // signature again (see [`super::verified`] for why that is
            // as safe). Loading writes nothing.
            let RepositoryKind::Signed { public_keys } = &repository.kind else {
                continue;
            };
            let known = Digests::of(&bytes, &signature).remembered(store, repository, public_keys);
            let checked = || match known {
                true => fetch::parse_signed(repository, &bytes),
                false => fetch::verify_index(repository, &bytes, &signature),
            };
            match Descriptions::parse(store, checked) {
                Ok(index) => catalog.sources.push(Source::new(store, repository, index)),
                Err(e) => warnings.push(format!(
                    "cached index {} refused: {e}",
                    index_path.display()
                )),
            }
        }
        (catalog, warnings)
    }

    /// Fetches every repository, keeping what it accepts in `store`; a
    /// failure keeps that repository's last good index. Returns the new
    /// catalog and what happened per repository.
    pub async fn refresh(
        &self,
        config: &Config,
        store: &Store,
        fetcher: &Fetcher,
    ) -> (Catalog, Vec<Refreshed>) {
        let mut catalog = Catalog::default();
        let mut report = Vec::new();
        for repository in &config.repositories {
            let previous = self
                .sources
                .iter()
                .find(|s| s.repository.name == repository.name);
            let mut warnings = Vec::new();
            let fetched = match &repository.kind {
                RepositoryKind::LuaRocks => {
                    let index =
                        luarocks_index(config, store, fetcher, repository, &mut warnings).await;
                    index.map(|mut index| {
                        let descriptions = Descriptions::take(&mut index, store);
                        (index, descriptions)
                    })
                }
                RepositoryKind::Signed { .. } => match fetcher.index_bytes(repository).await {
                    Ok((bytes, signature)) => {
                        let verified_by = std::cell::Cell::new(None);
                        Descriptions::parse(store, || {
                            let key = fetch::verify_signature(repository, &bytes, &signature)?;
                            verified_by.set(Some(*key));
                            fetch::parse_signed(repository, &bytes)
                        })
                        .map_err(Refusal::from)
                        .and_then(|(index, descriptions)| {
                            let index = accept(
                                store,
                                repository,
                                (&bytes, &signature),
                                index,
                                Timestamp::now(),
                            )?;
                            // Accepted and kept: loads of these bytes
                            // check them by digest.
                            if let Some(key) = verified_by.get() {
                                Digests::of(&bytes, &signature).remember(store, repository, &key);
                            }
                            Ok((index, descriptions))
                        })
                    }
                    Err(e) => Err(Refusal::from(e)),
                },
            };
            let (source, result) = match fetched {
                Ok(parsed) => (Some(Source::new(store, repository, parsed)), Ok(())),
                Err(e) => {
                    let kept = previous.filter(|p| p.index.is_expired(Timestamp::now()));
                    let e = match kept {
                        Some(kept) => Refusal::new(e.cause, format!(
                            "{e}; the index still in use expired at {}, so nothing is installed or updated from {} until a fresh one arrives",
                            kept.index.expires, repository.name
                        )),
                        None => e,
                    };
                    (previous.cloned(), Err(e))
                }
            };
            let failure = result.as_ref().err().map(|refusal| Failure {
                repository: repository.name.clone(),
                reason: refusal.text.clone(),
            });
            Failure::record(store, repository, failure.as_ref());
            catalog.failures.extend(failure);
            report.push(Refreshed {
                repository: repository.name.clone(),
                modules: source.as_ref().map(|s| s.index.modules.len()),
                fetched: source.as_ref().map(|s| s.fetched.clone()),
                result,
                warnings,
            });
            catalog.sources.extend(source);
        }
        (catalog, report)
    }

    /// Refuses to install or update from `repository` while its index is
    /// expired: the last good index still lists what it offered, but an
    /// index frozen by someone in the middle must not keep serving code.
    pub fn check_fresh(&self, repository: &Repository) -> Result<(), FetchError> {
        let now = Timestamp::now();
        match self
            .sources
            .iter()
            .find(|s| s.repository.name == repository.name)
        {
            Some(source) if source.index.is_expired(now) => Err(FetchError::Expired {
                repository: repository.name.clone(),
                freshness: source.index.freshness(),
            }),
            _ => Ok(()),
        }
    }

    /// One line per configured repository whose modules are not shown as
    /// they are now: no index yet, its last refresh failed (what is shown
    /// is the index kept from before), or its index has expired; for
    /// `list` to say so rather than pass old or missing data as current.
    pub fn stale(&self, configured: &[Repository]) -> Vec<String> {
        let now = Timestamp::now();
        let mut lines = Vec::new();
        for repository in configured {
            let name = &repository.name;
            let source = self.sources.iter().find(|s| s.repository.name == *name);
            let failure = self.failures.iter().find(|f| f.repository == *name);
            match (source, failure) {
                (None, None) => lines.push(format!(
                    "no index of {name} yet, so none of its modules is shown: run refresh"
                )),
                (None, Some(failure)) => lines.push(format!(
                    "no index of {name}, so none of its modules is shown: its refresh failed ({})",
                    failure.reason
                )),
                (Some(source), Some(failure)) => lines.push(format!(
                    "the last refresh of {name} failed ({}), so its modules are shown as of the index fetched {}",
                    failure.reason, source.fetched
                )),
                (Some(_), None) => {}
            }
            if let Some(source) = source.filter(|s| s.index.is_expired(now)) {
                lines.push(format!(
                    "the index of {name} expired at {} (fetched {}): its modules are shown as of then, and none is installed or updated until refresh brings a fresh one",
                    source.index.expires, source.fetched
                ));
            }
        }
        lines
    }

    /// The module `name` and the repository offering it.
    pub fn find(&self, name: &str) -> Option<(&Repository, &ModuleEntry)> {
        self.sources
            .iter()
            .find_map(|s| s.index.get(name).map(|entry| (&s.repository, entry)))
    }

    /// The description (README) of module `name` as the repository
    /// called `repository` offers it, read from disk; empty when neither
    /// is known.
    pub fn description(&self, repository: &str, name: &str) -> String {
        self.sources
            .iter()
            .filter(|s| s.repository.name == repository)
            .find_map(|s| {
                let position = (s.index.modules)
                    .binary_search_by(|m| m.name.as_str().cmp(name))
                    .ok()?;
                Some(s.descriptions.get(&s.index, position))
            })
            .unwrap_or_default()
    }

    /// The module `name` as the repository called `repository` offers it.
    pub fn find_in(&self, repository: &str, name: &str) -> Option<(&Repository, &ModuleEntry)> {
        self.sources
            .iter()
            .filter(|s| s.repository.name == repository)
            .find_map(|s| s.index.get(name).map(|entry| (&s.repository, entry)))
    }

    /// Every module on offer, each name once, sorted by name.
    pub fn modules(&self) -> Vec<(&Repository, &ModuleEntry)> {
        // Keyed by name: linear, sorted, and the first repository's entry
        // stays (`or_insert`), as in `find`.
        let mut all: std::collections::BTreeMap<&str, (&Repository, &ModuleEntry)> =
            Default::default();
        for source in &self.sources {
            for entry in &source.index.modules {
                all.entry(entry.name.as_str())
                    .or_insert((&source.repository, entry));
            }
        }
        all.into_values().collect()
    }
}

/// Takes a fetched, verified index into use if it is newer than (or the
/// same as) the last one accepted and not expired; keeps it and raises the
/// recorded serial. `Err` says why not, for the refresh report.
fn accept(
    store: &Store,
    repository: &Repository,
    (bytes, signature): (&[u8], &[u8]),
    index: Index,
    now: Timestamp,
) -> Result<Index, Refusal> {
    let sha256 = super::sha256_hex(bytes);
    if let Some(accepted) = Accepted::load(store, repository)? {
        let replay = |cause: Cause, what: &str| {
            Refusal::new(cause, format!(
                "the index it serves ({}) {what} serial {} that modman already accepted; it may be a replay of an old index (someone between modman and the repository, or a stale mirror) and was not used",
                index.freshness(),
                accepted.serial
            ))
        };
        if index.serial < accepted.serial {
            return Err(replay(Cause::Replay, "is older than"));
        }
        if index.serial == accepted.serial && sha256 != accepted.sha256 {
            return Err(replay(
                Cause::SerialReused,
                "differs from the index of the same",
            ));
        }
    }
    if index.is_expired(now) {
        return Err(Refusal::new(Cause::Expired, format!(
            "the index it serves expired ({}) and was not used; the repository must be rebuilt and published again (modman repo build), or something between is serving an old copy",
            index.freshness()
        )));
    }
    save(store, repository, (bytes, signature), &sha256, index.serial)
        .map_err(|e| unkept(store, e))?;
    Ok(index)
}

/// Why an index fetched could not be kept in `store`, for the refresh
/// report.
fn unkept(store: &Store, e: std::io::Error) -> Refusal {
    Refusal::new(
        Cause::State,
        format!(
            "fetched, but cannot keep it in {}: {e}",
            store.dir().display()
        ),
    )
}

/// A configured LuaRocks server, with the rock cache and the pins in
/// `store` that [`Catalog::refresh`] uses.
fn luarocks_server<'a>(
    store: &Store,
    fetcher: &'a Fetcher,
    repository: &'a Repository,
) -> Result<Server<'a>, crate::repo::luarocks::server::ServerError> {
    Server::open(fetcher, repository, store.rocks(repository))
}

/// Whether `repository` answers now, asked for the file a refresh starts
/// with (a LuaRocks server's manifest, a signed repository's index and
/// its signature), so a check that passes means a refresh can. Changes
/// nothing: no cache, no pin, no serial is written. `Ok` says what was
/// found; `Err` why it failed.
pub async fn probe(
    store: &Store,
    fetcher: &Fetcher,
    repository: &Repository,
) -> Result<String, String> {
    match &repository.kind {
        RepositoryKind::LuaRocks => {
            let server = luarocks_server(store, fetcher, repository).map_err(|e| e.to_string())?;
            let manifest = server.manifest().await.map_err(|e| e.to_string())?;
            Ok(format!(
                "{}: a LuaRocks server, {} rocks in its manifest",
                repository.url,
                manifest.rocks.len()
            ))
        }
        RepositoryKind::Signed { .. } => {
            let (_, _, index) = fetcher.index(repository).await.map_err(|e| e.to_string())?;
            Ok(format!(
                "{}: signature valid, {} modules",
                repository.url,
                index.modules.len()
            ))
        }
    }
}

/// The earlier version `version` of `entry`, which the LuaRocks server
/// `repository` lists (see [`ModuleEntry::listed`]) in the catalog
/// `index`: its rock downloaded, pinned and read as a refresh reads the
/// newest, so that it can be planned like an earlier build of a signed
/// repository. `Err` says why not.
pub async fn listed_version(
    config: &Config,
    store: &Store,
    fetcher: &Fetcher,
    repository: &Repository,
    index: &Index,
    entry: &ModuleEntry,
    version: &str,
) -> Result<Earlier, String> {
    let community: BTreeSet<String> = index.modules.iter().map(|m| m.name.clone()).collect();
    let mut server = luarocks_server(store, fetcher, repository).map_err(|e| e.to_string())?;
    server
        .earlier(entry, version, &community, &config.prosody.builtin_modules)
        .await
        .map_err(|e| e.to_string())
}

/// Reads a LuaRocks server into an index of the modules it offers, and
/// keeps it as the cached index. Its rocks are cached, their hashes
/// pinned, in `store` ([`Store::rocks`]).
async fn luarocks_index(
    config: &Config,
    store: &Store,
    fetcher: &Fetcher,
    repository: &Repository,
    warnings: &mut Vec<String>,
) -> Result<Index, Refusal> {
    let offers = async {
        let mut server = luarocks_server(store, fetcher, repository)?;
        server
            .offers(
                &config.prosody.builtin_modules,
                // Listing costs no download: as many as an index holds.
                crate::repo::index::limits::PREVIOUS,
                &mut |_| {},
            )
            .await
    };
    let offers = offers.await.map_err(Refusal::from)?;
    warnings.extend(
        offers
            .problems
            .into_iter()
            .map(|problem| format!("{problem}; left out of the catalog")),
    );
    let index = Index::unsigned(
        &repository.name,
        offers.modules.into_iter().map(|o| o.entry).collect(),
    );
    store
        .write(Kept::Index(repository), &index.to_json())
        .map_err(|e| unkept(store, e))?;
    Ok(index)
}

fn save(
    store: &Store,
    repository: &Repository,
    (bytes, signature): (&[u8], &[u8]),
    sha256: &str,
    serial: u64,
) -> std::io::Result<()> {
    // The guard first: if the writes below fail, the old cache stays in
    // use, and the same index is accepted again at the next refresh.
    let accepted = Accepted {
        serial,
        sha256: sha256.to_owned(),
    };
    let record = serde_json::to_vec(&accepted)
        .unwrap_or_else(|e| unreachable!("a number and a string always serialise: {e}"));
    store.write(Kept::Accepted(repository), &record)?;
    // Signature first: between the two writes, the pair fails to verify
    // and is refused, rather than a new index passing with an old signature.
    store.write(Kept::Signature(repository), signature)?;
    store.write(Kept::Index(repository), bytes)
}

/// The file's time to the second, RFC 3339 in UTC (`2026-12-06T05:32:37Z`):
/// an admin reads it in a refresh or list note, where nanoseconds are noise.
fn modified(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(|t| Timestamp::to_the_second(time::OffsetDateTime::from(t)).to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::signing;

    #[test]
    fn an_index_time_is_shown_to_the_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        std::fs::write(&path, "{}").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        let at = std::time::UNIX_EPOCH + std::time::Duration::new(1_796_535_157, 179_641_164);
        file.set_modified(at).unwrap();
        assert_eq!(modified(&path), "2026-12-06T05:32:37Z");
        assert_eq!(modified(&dir.path().join("absent")), "unknown");
    }

    fn source(name: &str, modules: &[&str]) -> Source {
        let entry = |module: &str| ModuleEntry {
            version: name.into(),
            ..crate::repo::index::tests::entry(module)
        };
        Source {
            repository: Repository {
                name: name.into(),
                url: url::Url::parse("http://127.0.0.1/").unwrap(),
                kind: RepositoryKind::Signed {
                    public_keys: vec![
                        ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key()
                    ],
                },
                timeout: std::time::Duration::from_secs(1),
            },
            index: crate::repo::index::tests::index_of(modules.iter().map(|m| entry(m)).collect())
                .into(),
            fetched: String::new(),
            descriptions: Default::default(),
        }
    }

    #[test]
    fn an_older_or_altered_or_expired_index_is_refused_and_the_guard_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let repository = source("r", &[]).repository;
        let index = |serial: u64, modules: &[&str]| Index {
            serial,
            ..(*source("r", modules).index).clone()
        };
        let bytes = |index: &Index| index.to_json();
        let during = Timestamp(index(1, &[]).generated.0 + time::Duration::days(1));
        let accept_at = |index: Index, now| {
            let json = bytes(&index);
            accept(&store, &repository, (&json, b"sig"), index, now)
        };

        accept_at(index(5, &["a"]), during).unwrap();
        // The same index again is fine; a newer one too.
        accept_at(index(5, &["a"]), during).unwrap();
        let error = accept_at(index(4, &["a"]), during).unwrap_err();
        assert_eq!(error.cause, Cause::Replay, "{error}");
        assert!(error.text.contains("serial 5"), "{error}");
        let error = accept_at(index(5, &["a", "b"]), during).unwrap_err();
        assert_eq!(error.cause, Cause::SerialReused, "{error}");
        let expired = Timestamp(index(6, &[]).expires.0 + time::Duration::seconds(1));
        let error = accept_at(index(6, &["a"]), expired).unwrap_err();
        assert_eq!(error.cause, Cause::Expired, "{error}");
        assert!(error.text.contains("serial 6"), "{error}");
        // Nothing refused moved the guard.
        let guard = Accepted::load(&store, &repository).unwrap().unwrap();
        assert_eq!(guard.serial, 5);
        accept_at(index(6, &["a", "b"]), during).unwrap();
        assert_eq!(
            Accepted::load(&store, &repository).unwrap().unwrap().serial,
            6
        );

        // A damaged guard stops refreshes rather than resetting them.
        std::fs::write(store.path(Kept::Accepted(&repository)), b"{").unwrap();
        let error = accept_at(index(7, &["a"]), during).unwrap_err();
        assert_eq!(error.cause, Cause::State, "{error}");
    }

    /// A cached index remembered as verified is loaded by its digest; the
    /// same index changed on disk, or with its key taken out of
    /// modman.toml, is refused as before.
    #[test]
    fn a_cached_index_is_loaded_by_its_digest_only_as_it_was_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let config = |trusted: &ed25519_dalek::SigningKey| {
            let toml = format!(
                "admins = [\"admin@example.org\"]\nstate_dir = \"/s\"\n\
                 [component]\njid = \"modman.example.org\"\nserver = \"127.0.0.1:5347\"\nsecret = \"s\"\n\
                 [prosody]\nconfig = \"/p/prosody.cfg.lua\"\nmodules_dir = \"/p/modman\"\n\
                 managed_config = \"/p/modman.cfg.lua\"\nadmin_socket = \"/p/prosody.sock\"\n\
                 [[repositories]]\nname = \"r\"\nurl = \"http://127.0.0.1/\"\npublic_key = \"{}\"\n",
                signing::public_key_text(&trusted.verifying_key())
            );
            Config::parse(&toml, dir.path()).unwrap()
        };
        let trusting = config(&key);
        let repository = &trusting.repositories[0];
        let bytes = crate::repo::index::tests::index_of(vec![]).to_json();
        store.write(Kept::Index(repository), &bytes).unwrap();
        let signature = signing::sign(&key, &bytes);
        store
            .write(Kept::Signature(repository), signature.as_bytes())
            .unwrap();
        let loaded = |config: &Config| {
            let (catalog, warnings) = Catalog::load(config, &store);
            (catalog.sources.len(), warnings.len())
        };
        // Verified by its signature; loading writes nothing.
        assert_eq!(loaded(&trusting), (1, 0));
        assert!(store.read(Kept::Verified(repository)).is_err());
        // Remembered, as the refresh that accepted it does: by its digest.
        let digests = Digests::of(&bytes, signature.as_bytes());
        digests.remember(&store, repository, &key.verifying_key());
        assert_eq!(loaded(&trusting), (1, 0));
        // Its key out of modman.toml: the record vouches for nothing.
        assert_eq!(loaded(&config(&other)), (0, 1));
        // Changed on disk (still valid JSON): refused.
        let changed = Index {
            serial: 2,
            ..crate::repo::index::tests::index_of(vec![])
        };
        assert!(Index::parse(&changed.to_json()).is_ok());
        store
            .write(Kept::Index(repository), &changed.to_json())
            .unwrap();
        assert_eq!(loaded(&trusting), (0, 1));
        store.write(Kept::Index(repository), &bytes).unwrap();
        assert_eq!(loaded(&trusting), (1, 0));
    }

    #[test]
    fn stale_names_every_repository_not_shown_as_it_is_now() {
        let fresh_for_a_day = |mut source: Source| {
            let mut index = (*source.index).clone();
            index.expires = Timestamp(time::OffsetDateTime::now_utc() + time::Duration::days(1));
            source.index = index.into();
            source
        };
        let catalog = Catalog {
            sources: vec![
                fresh_for_a_day(source("r_current", &["a"])),
                fresh_for_a_day(source("r_failed", &["b"])),
                // Expired on 2026-12-01.
                source("r_expired", &["c"]),
            ],
            failures: ["r_failed", "r_down"]
                .map(|name| Failure {
                    repository: name.into(),
                    reason: format!("{name} refused"),
                })
                .to_vec(),
        };
        let configured: Vec<Repository> =
            ["r_current", "r_failed", "r_expired", "r_never", "r_down"]
                .map(|name| source(name, &[]).repository)
                .to_vec();
        let lines = catalog.stale(&configured);
        let about = |name: &str| lines.iter().filter(|l| l.contains(name)).count();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(about("r_current"), 0);
        for name in ["r_failed", "r_expired", "r_never", "r_down"] {
            assert_eq!(about(name), 1, "{name}: {lines:#?}");
        }
        assert!(lines.iter().any(|l| l.contains("(r_failed refused)")));
        assert!(lines.iter().any(|l| l.contains("(r_down refused)")));
    }

    #[test]
    fn each_module_once_sorted_and_the_first_repository_wins() {
        let catalog = Catalog {
            sources: vec![source("first", &["b", "c"]), source("second", &["a", "b"])],
            failures: vec![],
        };
        let listed: Vec<(&str, &str)> = catalog
            .modules()
            .iter()
            .map(|(r, e)| (e.name.as_str(), r.name.as_str()))
            .collect();
        assert_eq!(listed, [("a", "second"), ("b", "first"), ("c", "first")]);
        assert_eq!(catalog.find("b").unwrap().0.name, "first");
    }
}
