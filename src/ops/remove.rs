//! `remove`: take modules out of the module directory. Asks first while
//! other installed modules depend on them. The engine unloads them and
//! drops them from the managed config first; the files go to a backup, so
//! `rollback` can put them back.

use super::confirm::{Consent, Proposal, Why};
use super::released;
use super::{
    params, Access, Command, Context, Field, ModuleChoice, OpError, ParamKind, Params, Response,
    Spec, Table,
};
use crate::access::Actor;
use crate::engine::manifest::Prepared;
use crate::engine::ChangeSet;
use crate::repo::metadata::Need;

/// The state of a row that is a module this change removed.
const REMOVED: &str = "removed";

/// Removes `modules`.
#[derive(Debug)]
pub struct Remove {
    modules: Vec<String>,
    consent: Consent,
}

params! {
    /// What `remove` takes.
    pub struct RemoveParams {
        modules: Vec<String> = Field {
            label: "Modules",
            help: "One or more installed module names.",
            kind: ParamKind::Modules(ModuleChoice::Installed),
            required: true,
        },
    }
}

impl Command for Remove {
    type Params = RemoveParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "remove",
        name: "Remove modules",
        instructions: "Remove modules that modman installed: unloaded, disabled, and their files kept in a backup for rollback.",
        params: RemoveParams::FIELDS,
    };

    fn new(RemoveParams { modules }: RemoveParams, consent: Consent) -> Result<Self, OpError> {
        Ok(Remove { modules, consent })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        let installed = guard.installed.modules.clone();
        for name in &self.modules {
            if !installed.contains_key(name) {
                return Err(
                    if crate::prosody::has_module(ctx.engine.modules_dir(), name) {
                        OpError::conflict(format!(
                            "mod_{name} was not installed by modman, so modman leaves it alone"
                        ))
                    } else {
                        OpError::not_found(format!("{name} is not installed; see list installed"))
                    },
                );
            }
        }
        let catalog = ctx.catalog();
        let mut proposal = Proposal::new("Remove");
        for name in &self.modules {
            let record = &installed[name];
            proposal.step(
                format!("{name} {}", record.version),
                format!("remove {name} {} sha256:{}", record.version, record.sha256),
            );
            let (mut needing, mut maybe) = (Vec::new(), Vec::new());
            for (other, record) in &installed {
                if self.modules.contains(other) || !record.dependencies.contains(name) {
                    continue;
                }
                // The catalog says whether the dependency is conditional.
                let optional = catalog
                    .find_in(&record.repository, other)
                    .and_then(|(_, entry)| entry.dependencies.iter().find(|d| &d.name == name))
                    .is_some_and(|d| d.need == Need::Optional);
                match optional {
                    true => maybe.push(other.as_str()),
                    false => needing.push(other.as_str()),
                }
            }
            if !needing.is_empty() {
                proposal.concern(
                    Why::Needed,
                    format!(
                        "{name} is needed by {}, which will fail to load without it.",
                        needing.join(", ")
                    ),
                );
            }
            if !maybe.is_empty() {
                proposal.concern(Why::MaybeNeeded, format!(
                    "{name} is used by {} in some set-ups only (an optional dependency); check that yours is not one.",
                    maybe.join(", ")
                ));
            }
        }
        if let Err(question) = proposal.decide(&self.consent) {
            return Ok(question);
        }
        // Read while the code is still on disk: the options it reads.
        let documented: Vec<String> = self
            .modules
            .iter()
            .filter_map(|name| super::configure::documented_options(ctx, name).ok())
            .flatten()
            .map(|option| option.name)
            .collect();
        let columns = vec![
            ("module", "Module"),
            ("version", "Version"),
            ("host", "Host"),
            released::STATE,
        ];
        let mut rows: Vec<Vec<String>> = self
            .modules
            .iter()
            .map(|name| {
                let version = installed[name].version.clone();
                vec![name.clone(), version, String::new(), REMOVED.to_owned()]
            })
            .collect();
        let files = self
            .modules
            .iter()
            .map(|name| Prepared {
                name: name.clone(),
                after: None,
            })
            .collect();
        let change = ChangeSet {
            operation: "remove",
            settings: vec![],
            files,
            disable: vec![],
            enable: vec![],
        };
        let applied = guard.commit(actor, change).await?;
        let unloaded = match applied.unloaded.is_empty() {
            true => String::new(),
            false => " Unloaded and disabled first.".to_owned(),
        };
        let kept = kept_options(ctx, &documented);
        rows.extend(released::rows(&columns, &applied.released));
        Ok(Response::Table(Table {
            title: "Removed".into(),
            columns,
            rows,
            note: format!(
                "Removed; the files are kept in a backup (rollback puts them back).{unloaded}{}{kept}",
                super::enable::released_note(&applied.released)
            ),
        }))
    }
}

/// What becomes of the options a removed module read: they stay in the
/// managed config, so a rollback or a new install finds its settings as
/// they were, and Prosody ignores an option no module reads. Said, with
/// the names, so nobody thinks them gone.
fn kept_options(ctx: &Context, documented: &[String]) -> String {
    let Ok(managed) = ctx.engine.managed_config() else {
        return String::new();
    };
    let set: std::collections::BTreeSet<&str> = managed
        .global
        .keys()
        .chain(managed.hosts.values().flat_map(|h| h.options.keys()))
        .map(String::as_str)
        .filter(|name| documented.iter().any(|d| d == name))
        .collect();
    match set.is_empty() {
        true => String::new(),
        false => format!(
            " Its options stay in {} ({}), unused while nothing reads them, so a rollback or a new install finds them as they were; unset them with configure if you want them gone.",
            ctx.config.prosody.managed_config.display(),
            set.into_iter().collect::<Vec<_>>().join(", ")
        ),
    }
}
