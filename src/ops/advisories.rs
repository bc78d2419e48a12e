//! "Is an installed copy under an advisory, and what should the admin
//! do?", decided once. `list`, `info`, `check` and the advisory notices
//! all ask [`concerning`], so what one of them flags the others flag too.
//! An installed module hears only from the repository it came from, as
//! its updates do (see [`super::updates`]).

use super::updates::{self, UpdateStatus};
use crate::config::Repository;
use crate::engine::state::InstalledModule;
use crate::repo::catalog::Catalog;
use crate::repo::index::{Advisory, AdvisoryKind, ModuleEntry};

/// One advisory concerning an installed copy, with the way out.
#[derive(Debug, Clone, Copy)]
pub struct Concern<'a> {
    pub advisory: &'a Advisory,
    /// The repository that issued it: the one the module came from.
    pub repository: &'a str,
    pub remedy: Remedy<'a>,
}

/// What ends a [`Concern`].
#[derive(Debug, Clone, Copy)]
pub enum Remedy<'a> {
    /// `update` installs a copy the advisory does not name.
    Update(&'a ModuleEntry),
    /// The advisory names a fix, but the repository does not offer it
    /// (or anything else unconcerned) yet.
    FixNotOffered(&'a str),
    /// No fix exists: disable or remove it meanwhile.
    NoFix,
}

impl Concern<'_> {
    /// Whether `check` fails on it: a withdrawn copy should never stay,
    /// and an insecure one must go as soon as there is a fix; an insecure
    /// copy without a fix is the admin's call, and only a warning.
    pub fn fails_check(&self) -> bool {
        match self.advisory.kind {
            AdvisoryKind::Withdrawn => true,
            AdvisoryKind::Insecure => self.advisory.has_fix(),
        }
    }

    /// What the admin should do about module `name`, one sentence, with
    /// the commands.
    pub fn advice(&self, name: &str) -> String {
        match self.remedy {
            Remedy::Update(to) => format!(
                "update it to {} with `update {name}`",
                to.version
            ),
            Remedy::FixNotOffered(fixed) => format!(
                "the fix is {fixed}, which {} does not offer yet: run refresh, then `update {name}`; meanwhile `disable {name}`",
                self.repository
            ),
            Remedy::NoFix => match self.advisory.kind {
                AdvisoryKind::Withdrawn => format!(
                    "there is no fixed version: `rollback` to the copy before it, or `remove {name}`"
                ),
                AdvisoryKind::Insecure => format!(
                    "there is no fix yet: `disable {name}` until one comes"
                ),
            },
        }
    }

    /// The whole line an admin reads: module, version, kind, the
    /// repository's reason, and the advice.
    pub fn describe(&self, name: &str, installed: &str) -> String {
        format!(
            "{name} {installed} is {} ({} says: {}); {}.",
            self.advisory.kind,
            self.repository,
            crate::clean::one_line(&self.advisory.reason),
            self.advice(name)
        )
    }
}

impl Concern<'_> {
    /// The facts of it about installed module `name` at `installed`, for
    /// bots (the JSON beside a notice): the same the text says.
    pub fn to_json(&self, name: &str, installed: &str) -> serde_json::Value {
        let (remedy, to) = match self.remedy {
            Remedy::Update(to) => ("update", Some(to.version.as_str())),
            Remedy::FixNotOffered(_) => ("fix_not_offered", None),
            Remedy::NoFix => ("no_fix", None),
        };
        serde_json::json!({
            "kind": "advisory",
            "module": name,
            "installed": installed,
            "repository": self.repository,
            "advisory": self.advisory.kind.as_str(),
            "reason": self.advisory.reason,
            "versions": self.advisory.versions,
            "fixed": self.advisory.fixed,
            "remedy": remedy,
            "update_to": to,
            "fails_check": self.fails_check(),
        })
    }
}

/// The advisories concerning installed module `name` (installed as
/// `record`), the insecure ones first, each with its remedy.
pub fn concerning<'a>(
    catalog: &'a Catalog,
    repositories: &'a [Repository],
    name: &str,
    record: &'a InstalledModule,
) -> Vec<Concern<'a>> {
    let Some(source) = catalog
        .sources
        .iter()
        .find(|s| s.repository.name == record.repository)
    else {
        return vec![];
    };
    let advisories = source.index.advisories_for(name, &record.version);
    if advisories.is_empty() {
        return vec![];
    }
    let update = match updates::status(catalog, repositories, name, record) {
        UpdateStatus::Available { to, .. } => Some(to),
        _ => None,
    };
    advisories
        .into_iter()
        .map(|advisory| {
            // An update that is itself named is no way out.
            let cures = update.filter(|to| !advisory.concerns(name, &to.version));
            let remedy = match (cures, &advisory.fixed) {
                (Some(to), _) => Remedy::Update(to),
                (None, Some(fixed)) => Remedy::FixNotOffered(fixed),
                (None, None) => Remedy::NoFix,
            };
            Concern {
                advisory,
                repository: &source.repository.name,
                remedy,
            }
        })
        .collect()
}

/// The kinds of `concerns`, comma-separated: the `advisory` cell of
/// `list` and field of `info`, empty when there is none.
pub fn kinds(concerns: &[Concern]) -> String {
    let mut kinds: Vec<&str> = concerns.iter().map(|c| c.advisory.kind.as_str()).collect();
    kinds.dedup();
    kinds.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RepositoryKind;
    use crate::repo::advisory::tests::advisory;
    use crate::repo::catalog::Source;
    use crate::repo::index::tests::{entry, index_of};

    /// `main` offering lastlog at `offered`, with `advisories`.
    fn catalog(offered: &str, advisories: Vec<Advisory>) -> (Catalog, Vec<Repository>) {
        let repository = Repository {
            name: "main".into(),
            url: url::Url::parse("http://127.0.0.1/").unwrap(),
            kind: RepositoryKind::LuaRocks,
            timeout: std::time::Duration::from_secs(1),
        };
        let mut index = index_of(vec![ModuleEntry {
            version: offered.into(),
            ..entry("lastlog")
        }]);
        index.advisories = advisories;
        let catalog = Catalog {
            sources: vec![Source {
                repository: repository.clone(),
                index: index.into(),
                fetched: String::new(),
                descriptions: Default::default(),
            }],
            failures: vec![],
        };
        (catalog, vec![repository])
    }

    #[test]
    fn each_concern_has_its_remedy_and_check_fails_where_it_must() {
        let record = InstalledModule::for_test("main", "20240601.aa", '1');
        let remedies = |offered: &str, advisory: Advisory| {
            let (catalog, repositories) = catalog(offered, vec![advisory]);
            let found = concerning(&catalog, &repositories, "lastlog", &record);
            found
                .iter()
                .map(|c| (format!("{:?}", c.remedy), c.fails_check()))
                .collect::<Vec<_>>()
        };
        let insecure = advisory("lastlog", "20240601.aa", AdvisoryKind::Insecure);
        // The fix is on offer: update; check fails.
        let found = remedies("20240701.bb", insecure.clone());
        assert!(found[0].0.starts_with("Update(") && found[0].1, "{found:?}");
        // Named but not offered yet (the copy on offer is the installed
        // one): still failing, the fix named.
        let found = remedies("20240601.aa", insecure.clone());
        assert_eq!(found, [("FixNotOffered(\"20240701.bb\")".to_owned(), true)]);
        // No fix: a warning only.
        let no_fix = Advisory {
            fixed: None,
            ..insecure.clone()
        };
        assert_eq!(
            remedies("20240601.aa", no_fix.clone()),
            [("NoFix".to_owned(), false)]
        );
        // Withdrawn always fails.
        let withdrawn = Advisory {
            kind: AdvisoryKind::Withdrawn,
            ..no_fix
        };
        assert_eq!(
            remedies("20240601.aa", withdrawn),
            [("NoFix".to_owned(), true)]
        );
        // Another version: no concern.
        let other = Advisory {
            versions: vec!["20230101.cc".into()],
            ..insecure
        };
        assert!(remedies("20240701.bb", other).is_empty());
    }
}
