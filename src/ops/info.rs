//! `info`: everything known about one module, installed or on offer.

use super::input::module_names;
use super::list::hosts_or_unknown;
use super::{Access, Command, Context, Details, Input, OpError, Param, ParamKind, Response, Spec};
use crate::access::Actor;
use crate::repo::compat;
use crate::repo::index::DependencyKind;
use crate::repo::readme;

/// Describes module `name`.
#[derive(Debug)]
pub struct Info {
    name: String,
}

impl Command for Info {
    const SPEC: Spec = Spec {
        access: Access::Read,
        node: "info",
        name: "Module details",
        instructions:
            "Show a module's summary, versions, dependencies, compatibility, files and description.",
        params: &[Param {
            var: "module",
            label: "Module",
            help: "The module's name, such as cloud_notify or mod_cloud_notify.",
            kind: ParamKind::Text,
            required: true,
        }],
    };

    fn parse(input: &Input) -> Result<Self, OpError> {
        let names = module_names(
            "module",
            &[input.text("module").unwrap_or_default().to_owned()],
        )?;
        match names.as_slice() {
            [name] => Ok(Info { name: name.clone() }),
            _ => Err(OpError::bad_input(
                "field `module`: give exactly one module name",
            )),
        }
    }

    async fn apply(self, ctx: &Context, _actor: &Actor) -> Result<Response, OpError> {
        let name = self.name;
        let installed = ctx.engine.installed()?;
        let record = installed.modules.get(&name);
        let catalog = ctx.catalog();
        let offered = catalog.find(&name);
        let unmanaged =
            record.is_none() && crate::prosody::has_module(ctx.engine.modules_dir(), &name);
        let builtin = record.is_none()
            && !unmanaged
            && crate::prosody::has_module(&ctx.config.prosody.builtin_modules, &name);
        if record.is_none() && offered.is_none() && !unmanaged && !builtin {
            return Err(OpError::not_found(format!(
                "no module `{name}` is installed or on offer; check the name with list, or run refresh"
            )));
        }
        let entry = offered.map(|(_, e)| e);
        let installed_status = match (record, unmanaged, builtin) {
            (Some(r), _, _) => format!(
                "installed: {} from {} on {} by {}",
                r.version, r.repository, r.installed_at, r.installed_by
            ),
            (None, true, _) => format!(
                "present in {} but not installed by modman (unmanaged)",
                ctx.engine.modules_dir().display()
            ),
            (None, false, true) => format!(
                "builtin: one of Prosody's own modules, in {}",
                ctx.config.prosody.builtin_modules.display()
            ),
            (None, false, false) => "not installed".into(),
        };
        let available = match offered {
            Some((repository, e)) => {
                format!("{} from {} ({} bytes)", e.version, repository.name, e.size)
            }
            None => "not offered by any configured repository".into(),
        };
        let update = match (record, entry) {
            (Some(r), Some(e)) if r.sha256 != e.sha256 => {
                format!("yes: {} -> {}", r.version, e.version)
            }
            (Some(_), Some(_)) => "no, up to date".into(),
            _ => String::new(),
        };
        let dependencies = entry
            .map(|e| {
                e.dependencies
                    .iter()
                    .map(|d| {
                        let kind = match d.kind {
                            DependencyKind::Community => "community, installed along",
                            DependencyKind::Builtin => "built into Prosody",
                            DependencyKind::Missing => "not found anywhere",
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
        let fields = vec![
            ("module", "Module", name.clone()),
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
            ("prosody", "In Prosody", live),
            ("available", "Available", available),
            ("update", "Update", update),
            ("dependencies", "Dependencies", dependencies),
            ("compatibility", "Compatibility", compatibility),
            ("files", "Files", files),
            (
                "description",
                "Description",
                entry
                    .map(|e| readme::plain(&e.description))
                    .unwrap_or_default(),
            ),
        ];
        Ok(Response::Details(Details {
            title: format!("mod_{name}"),
            fields: fields
                .into_iter()
                .filter(|(_, _, value)| !value.is_empty())
                .collect(),
        }))
    }
}

fn none_if_empty(hosts: String) -> String {
    if hosts.is_empty() {
        "no host".into()
    } else {
        hosts
    }
}
