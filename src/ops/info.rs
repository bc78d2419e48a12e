//! `info`: everything known about one module, installed or on offer.

use super::advisories;
use super::list::hosts_or_unknown;
use super::updates::{self, Unknown, UpdateStatus, Versions};
use super::Consent;
use super::{params, Field, Module, Params};
use super::{Access, Command, Context, Details, OpError, ParamKind, Response, Spec};
use crate::access::Actor;
use crate::engine::managed_config::{LuaValue, Scope};
use crate::repo::index::DependencyKind;
use crate::repo::metadata::Need;
use crate::repo::readme;
use crate::repo::{compat, fetch};

/// Describes module `name`.
#[derive(Debug)]
pub struct Info {
    name: String,
}

params! {
    /// What `Info` takes.
    pub struct InfoParams {
        module: Module = Field {
            label: "Module",
            help: "The module's name, such as cloud_notify or mod_cloud_notify.",
            kind: ParamKind::Text,
            required: true,
        },
    }
}

impl Command for Info {
    type Params = InfoParams;

    const SPEC: Spec = Spec {
        access: Access::Read,
        node: "info",
        name: "Module details",
        instructions:
            "Show a module's summary, versions, dependencies, compatibility, files and description.",
        params: InfoParams::FIELDS,
    };

    fn new(InfoParams { module }: InfoParams, _consent: Consent) -> Result<Self, OpError> {
        Ok(Info { name: module.0 })
    }

    async fn apply(self, ctx: &Context, _actor: &Actor) -> Result<Response, OpError> {
        let name = self.name;
        let installed = ctx.engine.installed()?;
        let record = installed.modules.get(&name);
        let catalog = ctx.catalog();
        let offered = catalog.find(&name);
        let unmanaged =
            record.is_none() && crate::prosody::has_module(ctx.engine.modules_dir(), &name);
        let rock = ctx
            .engine
            .prosodyctl_modules()
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.name == name);
        let builtin = record.is_none()
            && !unmanaged
            && crate::prosody::has_module(&ctx.config.prosody.builtin_modules, &name);
        if record.is_none() && offered.is_none() && !unmanaged && !builtin && rock.is_none() {
            return Err(OpError::not_found(format!(
                "no module `{name}` is installed or on offer; check the name with list, or run refresh"
            )));
        }
        let entry = offered.map(|(_, e)| e);
        let installed_at = match record {
            Some(r) => super::times::local_times(std::iter::once(r.installed_at.as_str()))
                .await
                .pop(),
            None => None,
        };
        let installed_status = match (record, unmanaged, builtin) {
            (Some(r), _, _) => format!(
                "installed: {} from {} on {} by {}",
                r.version,
                r.repository,
                installed_at.as_deref().unwrap_or(r.installed_at.as_str()),
                r.installed_by
            ),
            (None, true, _) => format!(
                "present in {} but not installed by modman (unmanaged)",
                ctx.engine.modules_dir().display()
            ),
            (None, false, true) => {
                let dir = &ctx.config.prosody.builtin_modules;
                match &crate::prosody::shipped_in(dir, &name) {
                    shipped @ crate::prosody::Shipped::Debian { version, .. } => format!(
                        "{} ({version}): a community module the package put among Prosody's own, in {}",
                        shipped.whose(),
                        dir.display()
                    ),
                    _ => format!("builtin: one of Prosody's own modules, in {}", dir.display()),
                }
            }
            (None, false, false) => "not installed".into(),
        };
        let installed_status = match (&rock, record) {
            (None, _) => installed_status,
            (Some(rock), None) => format!(
                "installed by prosodyctl ({}) in {}; modman leaves it alone. To manage it with modman: prosodyctl remove mod_{name}, then install {name} with modman",
                rock.version,
                ctx.engine.prosodyctl_tree().display()
            ),
            (Some(rock), Some(_)) => format!(
                "{installed_status}; but prosodyctl also installed it ({}) in {}, which Prosody searches first, so Prosody runs that copy: prosodyctl remove mod_{name} to run modman's",
                rock.version,
                ctx.engine.prosodyctl_tree().display()
            ),
        };
        let available = match offered {
            Some((repository, e)) => {
                let index = catalog
                    .sources
                    .iter()
                    .find(|s| s.repository.name == repository.name)
                    .map(|s| format!("; index: {}", s.index.freshness()))
                    .unwrap_or_default();
                format!(
                    "{} from {} ({} bytes){index}",
                    e.version, repository.name, e.size
                )
            }
            None => "not offered by any configured repository".into(),
        };
        let update = record
            .map(|r| {
                update_text(updates::status(
                    &catalog,
                    &ctx.config.repositories,
                    &name,
                    r,
                ))
            })
            .unwrap_or_default();
        let concerns = match record {
            Some(r) => advisories::concerning(&catalog, &ctx.config.repositories, &name, r),
            None => vec![],
        };
        let advisory_text = concerns
            .iter()
            .map(|c| c.describe(&name, record.map_or("", |r| r.version.as_str())))
            .collect::<Vec<_>>()
            .join("\n");
        let fixed_in = concerns
            .iter()
            .filter_map(|c| c.advisory.fixed.clone())
            .collect::<Vec<_>>()
            .join(", ");
        let dependencies = entry
            .map(|e| {
                e.dependencies
                    .iter()
                    .map(|d| {
                        let kind = match (d.kind, d.need) {
                            (DependencyKind::Community, Need::Required) => {
                                "community, installed along"
                            }
                            (DependencyKind::Community, Need::Optional) => {
                                "community, optional: needed only in some set-ups; installed along"
                            }
                            (DependencyKind::Builtin, _) => "built into Prosody",
                            (DependencyKind::Missing, Need::Required) => "not found anywhere",
                            (DependencyKind::Missing, Need::Optional) => {
                                "optional, not found anywhere"
                            }
                        };
                        format!("{} ({kind})", d.name)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .or_else(|| record.map(|r| r.dependencies.join("\n")))
            .unwrap_or_default();
        let compatibility = entry
            .map(|e| {
                let mut lines: Vec<String> = e
                    .compatibility
                    .iter()
                    .map(|c| format!("{}: {}", c.prosody, c.status))
                    .collect();
                if let Some(server) = ctx.engine.server.version() {
                    let verdict = match compat::row_for(&e.compatibility, &server) {
                        Some(row) => format!("for this server (Prosody {server}): {}", row.status),
                        None => format!("for this server (Prosody {server}): not stated"),
                    };
                    lines.push(verdict);
                }
                lines.join("\n")
            })
            .unwrap_or_default();
        let status = ctx.engine.status().await;
        let options = options_set(ctx, &name);
        let live = format!(
            "enabled on: {}\nloaded on: {}",
            none_if_empty(hosts_or_unknown(status.enabled_on(&name))),
            none_if_empty(hosts_or_unknown(status.loaded_on(&name)))
        );
        let files = record
            .map(|r| &r.files)
            .or(entry.map(|e| &e.files))
            .map(|f| f.join("\n"))
            .unwrap_or_default();
        let library = record
            .and_then(|r| r.library.as_ref())
            .or(entry.and_then(|e| e.library.as_ref()))
            .map(|library| {
                format!(
                    "a Lua library that other modules load with module:require \"{library}\", not a module Prosody loads: installed as {}, never enabled",
                    ctx.engine.modules_dir().join(library).display()
                )
            })
            .unwrap_or_default();
        let hold = record.and_then(|r| r.held.as_ref());
        let held =
            |part: fn(&crate::engine::state::Hold) -> String| hold.map(part).unwrap_or_default();
        let fields = vec![
            ("module", "Module", name.clone()),
            ("library", "Library", library),
            (
                "summary",
                "Summary",
                entry.map(|e| e.summary.clone()).unwrap_or_default(),
            ),
            (
                "stage",
                "Stage",
                entry.and_then(|e| e.stage.clone()).unwrap_or_default(),
            ),
            ("status", "Status", installed_status),
            ("held_by", "Held by", held(|h| h.by.clone())),
            ("held_since", "Held since", held(|h| h.at.clone())),
            (
                "held_because",
                "Held because",
                held(|h| h.reason.as_ref().map(|r| r.to_string()).unwrap_or_default()),
            ),
            ("prosody", "In Prosody", live),
            ("options", "Options set by modman", options),
            ("available", "Available", available),
            (
                "versions",
                "Versions on offer",
                entry
                    .filter(|e| e.versions().nth(1).is_some())
                    .map(|e| e.versions().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
            ),
            ("update", "Update", update),
            ("advisory", "Advisory", advisories::kinds(&concerns)),
            ("advisory_text", "Advisory says", advisory_text),
            ("fixed_in", "Fixed in", fixed_in),
            ("dependencies", "Dependencies", dependencies),
            ("compatibility", "Compatibility", compatibility),
            ("files", "Files", files),
            (
                "description",
                "Description",
                offered
                    .map(|(r, e)| readme::plain(&catalog.description(&r.name, &e.name)))
                    .unwrap_or_default(),
            ),
        ];
        // The README ships in the module's archive, for when it is longer
        // than one reply.
        let whole_at = offered
            .and_then(|(repository, e)| fetch::url_of(repository, &e.archive).ok())
            .map(|url| ("description", format!("the whole README is in {url}")));
        Ok(Response::Details(Details {
            title: format!("mod_{name}"),
            fields: fields
                .into_iter()
                .filter(|(_, _, value)| !value.is_empty())
                .collect(),
            whole_at: whole_at.into_iter().collect(),
        }))
    }
}

/// The `update` field: what `update` would do with the module.
pub(super) fn update_text(status: UpdateStatus) -> String {
    match status {
        UpdateStatus::UpToDate => "no, up to date".into(),
        UpdateStatus::Held(hold) => format!("no: held {}", super::hold::describe(hold)),
        UpdateStatus::Available {
            from,
            to,
            repository,
            versions,
        } => {
            let how = match versions {
                Versions::Newer => "",
                Versions::Same if from == to.version => " (same version, another copy)",
                // Two commits of one day, say: the versions differ but
                // neither is later.
                Versions::Same => " (not a later version, but another copy)",
                Versions::Unordered => " (versions not comparable; another copy)",
            };
            format!(
                "yes: {from} -> {} from {}{how}",
                to.version, repository.name
            )
        }
        UpdateStatus::Older {
            installed,
            offered,
            repository,
        } => format!(
            "no: {} offers {}, older than the {installed} installed",
            repository.name, offered.version
        ),
        UpdateStatus::OnlyElsewhere { own, elsewhere, .. } => format!(
            "no: {own} does not offer it any more; {} does (remove and install to move it there)",
            elsewhere.name
        ),
        UpdateStatus::NotOffered { own } => {
            format!("no: {own} does not offer it any more")
        }
        UpdateStatus::Unknown {
            own,
            why: Unknown::NoIndex,
        } => format!("unknown: no index of {own} yet; run refresh"),
        UpdateStatus::Unknown {
            own,
            why: Unknown::NotConfigured,
        } => format!("unknown: {own} is not in modman.toml any more"),
    }
}

fn none_if_empty(hosts: String) -> String {
    if hosts.is_empty() {
        "no host".into()
    } else {
        hosts
    }
}

/// The options of `name` that modman's config sets, per scope; secrets
/// only as set. Empty when there are none, or the module's code is not
/// here to say which options are its own.
fn options_set(ctx: &Context, name: &str) -> String {
    let (Ok(config), Ok(documented)) = (
        ctx.engine.managed_config(),
        super::configure::documented_options(ctx, name),
    ) else {
        return String::new();
    };
    let scopes =
        std::iter::once(Scope::Global).chain(config.hosts.keys().cloned().map(Scope::Host));
    let mut lines = Vec::new();
    for scope in scopes {
        for (option, value) in config.options(&scope) {
            let Some(known) = documented.iter().find(|o| o.name == option) else {
                continue;
            };
            let shown = LuaValue::shown(Some(&value), known.secret);
            lines.push(format!("{option} = {shown} on {scope}"));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Repository, RepositoryKind};
    use crate::repo::index::ModuleEntry;

    #[test]
    fn another_copy_of_a_version_of_the_same_rank_says_whether_the_version_differs() {
        let repository = Repository {
            name: "debian".into(),
            url: url::Url::parse("http://127.0.0.1/").unwrap(),
            kind: RepositoryKind::LuaRocks,
            timeout: std::time::Duration::from_secs(1),
        };
        let entry = |version: &str| ModuleEntry {
            version: version.into(),
            ..crate::repo::index::tests::entry("lastlog")
        };
        let text = |from: &str, to: &ModuleEntry| {
            update_text(UpdateStatus::Available {
                from,
                to,
                repository: &repository,
                versions: Versions::Same,
            })
        };
        // Two commits of one day: not "the same version".
        let other_commit = entry("20261206.f7bab2d");
        assert_eq!(
            text("20261206.4ac9ba8", &other_commit),
            "yes: 20261206.4ac9ba8 -> 20261206.f7bab2d from debian (not a later version, but another copy)"
        );
        let rebuilt = entry("1.0-1");
        assert_eq!(
            text("1.0-1", &rebuilt),
            "yes: 1.0-1 -> 1.0-1 from debian (same version, another copy)"
        );
    }
}
