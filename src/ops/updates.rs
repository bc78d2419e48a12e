//! "Is there an update?", decided once. `list`, `info`, `update`,
//! `refresh` and the update notices all ask [`status`], so a module that
//! one of them calls updatable is one `update` updates: an installed
//! module's updates come from the repository it was installed from, never
//! from another that happens to offer the same name, never as an older
//! copy (that is rollback's job, or `update x@VERSION` after a question),
//! and never while an admin holds it.

use std::cmp::Ordering;

use crate::config::Repository;
use crate::engine::state::{Hold, InstalledModule};
use crate::repo::catalog::Catalog;
use crate::repo::compare_versions;
use crate::repo::index::ModuleEntry;

/// How an installed module stands against what its repository offers.
#[derive(Debug, Clone, Copy)]
pub enum UpdateStatus<'a> {
    /// An admin keeps it at its version (`hold`): no update, whatever is
    /// on offer, until `unhold`.
    Held(&'a Hold),
    /// Its repository offers the very copy installed (same SHA-256).
    UpToDate,
    /// Its repository offers another copy that is not older: `update`
    /// installs it.
    Available {
        /// The version installed.
        from: &'a str,
        /// The copy on offer.
        to: &'a ModuleEntry,
        repository: &'a Repository,
        versions: Versions,
    },
    /// Its repository offers an older copy: no update.
    Older {
        installed: &'a str,
        offered: &'a ModuleEntry,
        repository: &'a Repository,
    },
    /// Its repository no longer offers it, another does: no update, since
    /// a module never moves by itself (remove it and install it again).
    OnlyElsewhere {
        /// Its own repository, by the name in installed.json.
        own: &'a str,
        elsewhere: &'a Repository,
        entry: &'a ModuleEntry,
    },
    /// No repository offers it, its own included.
    NotOffered { own: &'a str },
    /// Its repository's index is not at hand, so nothing can be said.
    Unknown { own: &'a str, why: Unknown },
}

/// How the version on offer relates to the installed one. A copy is
/// another copy by its SHA-256; the version only tells an older copy
/// (never an update) from the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// A later version.
    Newer,
    /// The same version (the same date, another commit, or a rebuilt
    /// rock): another copy all the same.
    Same,
    /// Versions in no scheme modman can order (see
    /// [`compare_versions`]); a changed copy is offered, and the admin
    /// sees both versions before saying yes.
    Unordered,
}

/// Which way a copy on offer moves an installed module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// To a later copy, or one modman cannot place before the installed.
    Forward,
    /// To an earlier version than installed: asked about, and it undoes
    /// commits rather than bringing them.
    Downgrade,
}

/// Which way `version` moves a module installed at `installed`, where
/// `offered` is the module's entry in its repository: by the versions'
/// places in the entry's list (newest first, as the index lists its
/// builds) when it has both, since builds of one day share a date and
/// their ids do not order them; by the versions themselves otherwise.
pub fn direction(offered: Option<&ModuleEntry>, version: &str, installed: &str) -> Direction {
    let place = |wanted: &str| offered.and_then(|e| e.versions().position(|v| v == wanted));
    let earlier = match (place(version), place(installed)) {
        (Some(chosen), Some(now)) => chosen > now,
        _ => compare_versions(version, installed) == Some(Ordering::Less),
    };
    match earlier {
        true => Direction::Downgrade,
        false => Direction::Forward,
    }
}

/// Why an update status is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Its repository is no longer in modman.toml.
    NotConfigured,
    /// Its repository has no usable index yet (never fetched, or the
    /// cached one was refused): refresh fetches one.
    NoIndex,
}

impl UpdateStatus<'_> {
    /// Whether `update` would install another copy.
    pub fn is_available(&self) -> bool {
        matches!(self, UpdateStatus::Available { .. })
    }
}

/// The update status of installed module `name` (installed as `record`)
/// in `catalog`.
pub fn status<'a>(
    catalog: &'a Catalog,
    config_repositories: &'a [Repository],
    name: &str,
    record: &'a InstalledModule,
) -> UpdateStatus<'a> {
    if let Some(hold) = &record.held {
        return UpdateStatus::Held(hold);
    }
    let own = record.repository.as_str();
    let Some(source) = catalog.sources.iter().find(|s| s.repository.name == own) else {
        let why = match config_repositories.iter().any(|r| r.name == own) {
            true => Unknown::NoIndex,
            false => Unknown::NotConfigured,
        };
        return UpdateStatus::Unknown { own, why };
    };
    let Some(entry) = source.index.get(name) else {
        return match catalog.find(name) {
            Some((elsewhere, entry)) => UpdateStatus::OnlyElsewhere {
                own,
                elsewhere,
                entry,
            },
            None => UpdateStatus::NotOffered { own },
        };
    };
    if entry.sha256 == record.sha256 {
        return UpdateStatus::UpToDate;
    }
    let versions = match compare_versions(&entry.version, &record.version) {
        Some(Ordering::Less) => {
            return UpdateStatus::Older {
                installed: &record.version,
                offered: entry,
                repository: &source.repository,
            }
        }
        Some(Ordering::Greater) => Versions::Newer,
        Some(Ordering::Equal) => Versions::Same,
        None => Versions::Unordered,
    };
    UpdateStatus::Available {
        from: &record.version,
        to: entry,
        repository: &source.repository,
        versions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RepositoryKind;
    use crate::repo::catalog::Source;

    fn repository(name: &str) -> Repository {
        Repository {
            name: name.into(),
            url: url::Url::parse("http://127.0.0.1/").unwrap(),
            kind: RepositoryKind::LuaRocks,
            timeout: std::time::Duration::from_secs(1),
        }
    }

    /// A source `name` offering (module, version, sha256 digit).
    fn source(name: &str, modules: &[(&str, &str, char)]) -> Source {
        let mut entries: Vec<ModuleEntry> = modules
            .iter()
            .map(|(module, version, hash)| ModuleEntry {
                version: (*version).into(),
                sha256: hash.to_string().repeat(64),
                ..crate::repo::index::tests::entry(module)
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Source {
            repository: repository(name),
            index: crate::repo::index::tests::index_of(entries).into(),
            fetched: String::new(),
            descriptions: Default::default(),
        }
    }

    fn installed(repository: &str, version: &str, hash: char) -> InstalledModule {
        InstalledModule::for_test(repository, version, hash)
    }

    #[test]
    fn only_a_changed_not_older_copy_from_the_own_repository_is_an_update() {
        // `third` is listed first and offers everything newer: never used
        // for a module installed from `main`.
        let catalog = Catalog {
            sources: vec![
                source(
                    "third",
                    &[
                        ("a", "20250101.aa", 'f'),
                        ("gone", "20250101.aa", 'f'),
                        ("old", "20250101.aa", 'f'),
                    ],
                ),
                source(
                    "main",
                    &[
                        ("a", "20240201.bb", '2'),
                        ("old", "20230101.aa", '2'),
                        ("same", "20240101.cc", '2'),
                        ("rock", "2-1", '2'),
                        ("odd", "trunk", '2'),
                        ("current", "20240101.aa", '1'),
                    ],
                ),
            ],
            failures: vec![],
        };
        let configured = [repository("third"), repository("main")];
        let of = |name: &str, record: &InstalledModule| {
            format!("{:?}", status(&catalog, &configured, name, record))
        };
        let check =
            |name: &str, record: InstalledModule, expected: &dyn Fn(UpdateStatus) -> bool| {
                let found = status(&catalog, &configured, name, &record);
                assert!(expected(found), "{name}: {}", of(name, &record));
            };

        // Newer in its own repository: from its own, not the first listed.
        check("a", installed("main", "20240101.aa", '1'), &|s| {
            matches!(s, UpdateStatus::Available { from: "20240101.aa", to, repository, versions: Versions::Newer }
                if to.version == "20240201.bb" && repository.name == "main")
        });
        // An older copy is no update.
        check("old", installed("main", "20240101.aa", '1'), &|s| {
            matches!(s, UpdateStatus::Older { installed: "20240101.aa", offered, .. } if offered.version == "20230101.aa")
                && !s.is_available()
        });
        // The same version with another hash is another copy.
        check("same", installed("main", "20240101.cc", '1'), &|s| {
            matches!(
                s,
                UpdateStatus::Available {
                    versions: Versions::Same,
                    ..
                }
            )
        });
        // Rock versions compare as numbers.
        check("rock", installed("main", "10-1", '1'), &|s| {
            matches!(s, UpdateStatus::Older { .. })
        });
        // Versions that cannot be ordered: a changed copy, said as such.
        check("odd", installed("main", "20240101.aa", '1'), &|s| {
            matches!(
                s,
                UpdateStatus::Available {
                    versions: Versions::Unordered,
                    ..
                }
            )
        });
        check("current", installed("main", "20240101.aa", '1'), &|s| {
            matches!(s, UpdateStatus::UpToDate)
        });
        // Only another repository offers it: no update, and which one.
        check("gone", installed("main", "20240101.aa", '1'), &|s| {
            matches!(s, UpdateStatus::OnlyElsewhere { own: "main", elsewhere, .. } if elsewhere.name == "third")
                && !s.is_available()
        });
        check("nowhere", installed("main", "20240101.aa", '1'), &|s| {
            matches!(s, UpdateStatus::NotOffered { own: "main" })
        });
        // No index of its repository, or the repository is gone.
        let without_main = Catalog {
            sources: vec![catalog.sources[0].clone()],
            failures: vec![],
        };
        let record = installed("main", "20240101.aa", '1');
        assert!(matches!(
            status(&without_main, &configured, "a", &record),
            UpdateStatus::Unknown {
                own: "main",
                why: Unknown::NoIndex
            }
        ));
        let record = installed("removed", "20240101.aa", '1');
        assert!(matches!(
            status(&catalog, &configured, "a", &record),
            UpdateStatus::Unknown {
                own: "removed",
                why: Unknown::NotConfigured
            }
        ));
    }

    #[test]
    fn earlier_is_the_place_in_the_index_before_the_version_itself() {
        let mut entry = crate::repo::index::tests::entry("lastlog");
        entry.version = "20240701.bb".into();
        let mut earlier = entry.as_earlier();
        earlier.version = "20240701.cc".into();
        entry.previous = vec![earlier];
        let down = |version, installed| direction(Some(&entry), version, installed);
        // One day, two builds: the index says which came first.
        assert_eq!(down("20240701.cc", "20240701.bb"), Direction::Downgrade);
        assert_eq!(down("20240701.bb", "20240701.cc"), Direction::Forward);
        // A version the index no longer lists: the dates decide.
        assert_eq!(down("20240701.cc", "20240801.aa"), Direction::Downgrade);
        assert_eq!(
            direction(None, "20240901.aa", "20240801.aa"),
            Direction::Forward
        );
    }
}
