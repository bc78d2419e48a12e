//! The modules on offer: the last good index of each configured
//! repository, kept in `state_dir/indexes/` and checked against its
//! signature again whenever it is loaded, so a file changed on disk is
//! caught as surely as one changed on the wire.

use std::path::{Path, PathBuf};

use crate::config::{Config, Repository, RepositoryKind};
use crate::fsutil;
use crate::repo::fetch::{self, Fetcher};
use crate::repo::index::{Index, ModuleEntry};
use crate::repo::luarocks::server::Server;

/// One repository's last good index.
#[derive(Debug, Clone)]
pub struct Source {
    pub repository: Repository,
    pub index: Index,
    /// When this index was fetched (the cache file's time), RFC 3339.
    pub fetched: String,
}

/// What every configured repository offers. Where two offer a module of
/// the same name, the one listed first in modman.toml wins.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub sources: Vec<Source>,
}

/// How one repository's refresh went.
#[derive(Debug)]
pub struct Refreshed {
    pub repository: String,
    /// Modules in the index now in use, if any.
    pub modules: Option<usize>,
    /// `Ok(())` if fetched now; otherwise why not.
    pub result: Result<(), String>,
    /// When the index in use was fetched.
    pub fetched: Option<String>,
    /// Modules a LuaRocks server offers that were left out, one line each
    /// naming the rock or rockspec and why.
    pub warnings: Vec<String>,
}

fn cache_paths(state_dir: &Path, repository: &Repository) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("indexes");
    (
        dir.join(format!("{}.json", repository.name)),
        dir.join(format!("{}.json.sig", repository.name)),
    )
}

impl Catalog {
    /// Loads every cached index that still verifies; returns the catalog
    /// and a warning per cache that was refused.
    pub fn load(config: &Config) -> (Catalog, Vec<String>) {
        let mut catalog = Catalog::default();
        let mut warnings = Vec::new();
        for repository in &config.repositories {
            let (index_path, signature_path) = cache_paths(&config.state_dir, repository);
            if repository.kind == RepositoryKind::LuaRocks {
                // Built by modman itself from pinned rocks; the state
                // directory is trusted as the pins in it are.
                match std::fs::read(&index_path).map(|bytes| Index::parse(&bytes)) {
                    Ok(Ok(index)) => catalog.sources.push(Source {
                        repository: repository.clone(),
                        index,
                        fetched: modified(&index_path),
                    }),
                    Ok(Err(e)) => warnings.push(format!(
                        "cached index {} refused: {e}",
                        index_path.display()
                    )),
                    Err(_) => {}
                }
                continue;
            }
            let (Ok(bytes), Ok(signature)) =
                (std::fs::read(&index_path), std::fs::read(&signature_path))
            else {
                continue;
            };
            match fetch::verify_index(repository, &bytes, &signature) {
                Ok(index) => catalog.sources.push(Source {
                    repository: repository.clone(),
                    index,
                    fetched: modified(&index_path),
                }),
                Err(e) => warnings.push(format!(
                    "cached index {} refused: {e}",
                    index_path.display()
                )),
            }
        }
        (catalog, warnings)
    }

    /// Fetches every repository; a failure keeps that repository's last
    /// good index. Returns the new catalog and what happened per repository.
    pub async fn refresh(&self, config: &Config, fetcher: &Fetcher) -> (Catalog, Vec<Refreshed>) {
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
                    luarocks_index(config, fetcher, repository, &mut warnings).await
                }
                RepositoryKind::Signed { .. } => match fetcher.index(repository).await {
                    Ok((bytes, signature, index)) => {
                        save(&config.state_dir, repository, &bytes, &signature)
                            .map(|()| index)
                            .map_err(|e| {
                                format!(
                                    "fetched, but cannot keep it in {}: {e}",
                                    config.state_dir.display()
                                )
                            })
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            let (source, result) = match fetched {
                Ok(index) => {
                    let (index_path, _) = cache_paths(&config.state_dir, repository);
                    let source = Source {
                        repository: repository.clone(),
                        index,
                        fetched: modified(&index_path),
                    };
                    (Some(source), Ok(()))
                }
                Err(e) => (previous.cloned(), Err(e)),
            };
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

    /// The module `name` and the repository offering it.
    pub fn find(&self, name: &str) -> Option<(&Repository, &ModuleEntry)> {
        self.sources
            .iter()
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

/// Reads a LuaRocks server into an index of the modules it offers, and
/// keeps it as the cached index. Rocks are cached in
/// `state_dir/rocks/<repository>/`, their hashes pinned in
/// `state_dir/rocks-pins.json`.
async fn luarocks_index(
    config: &Config,
    fetcher: &Fetcher,
    repository: &Repository,
    warnings: &mut Vec<String>,
) -> Result<Index, String> {
    let rocks = config.state_dir.join("rocks").join(&repository.name);
    let pins = config.state_dir.join("rocks-pins.json");
    let offers = async {
        let mut server = Server::open(fetcher, repository, &rocks, &pins)?;
        server
            .offers(&config.prosody.builtin_modules, &mut |_| {})
            .await
    };
    let offers = offers.await.map_err(|e| e.to_string())?;
    warnings.extend(
        offers
            .problems
            .into_iter()
            .map(|problem| format!("{problem}; left out of the catalog")),
    );
    let index = Index {
        schema: crate::repo::index::SCHEMA,
        modules: offers.modules.into_iter().map(|o| o.entry).collect(),
    };
    let (index_path, _) = cache_paths(&config.state_dir, repository);
    let saved = index_path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| fsutil::atomic_write(&index_path, &index.to_json()));
    saved.map_err(|e| {
        format!(
            "fetched, but cannot keep it in {}: {e}",
            config.state_dir.display()
        )
    })?;
    Ok(index)
}

fn save(
    state_dir: &Path,
    repository: &Repository,
    bytes: &[u8],
    signature: &[u8],
) -> std::io::Result<()> {
    let (index_path, signature_path) = cache_paths(state_dir, repository);
    if let Some(dir) = index_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Signature first: between the two writes, the pair fails to verify
    // and is refused, rather than a new index passing with an old signature.
    fsutil::atomic_write(&signature_path, signature)?;
    fsutil::atomic_write(&index_path, bytes)
}

fn modified(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(time::OffsetDateTime::from)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::index::SCHEMA;

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
                    public_key: ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key(),
                },
                timeout: std::time::Duration::from_secs(1),
            },
            index: Index {
                schema: SCHEMA,
                modules: modules.iter().map(|m| entry(m)).collect(),
            },
            fetched: String::new(),
        }
    }

    #[test]
    fn each_module_once_sorted_and_the_first_repository_wins() {
        let catalog = Catalog {
            sources: vec![source("first", &["b", "c"]), source("second", &["a", "b"])],
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
