//! `rollback`: put back what a module was before its last change, from the
//! backup modman kept; without names, undo the last change as a whole.
//! A rollback is itself a change, kept and undoable like any other; the
//! engine reloads what it replaces and unloads what it takes away.

use super::confirm::{Consent, Proposal};
use super::{params, Field, Params};
use super::{Access, Command, Context, ModuleChoice, OpError, ParamKind, Response, Spec, Table};
use crate::access::Actor;
use crate::engine::change::Setting;
use crate::engine::managed_config::LuaValue;
use crate::engine::manifest::{RecordChange, SettingChange};
use crate::engine::state::InstalledModule;
use crate::engine::ChangeSet;

/// Rolls back `modules`, or the last change when empty.
#[derive(Debug)]
pub struct Rollback {
    modules: Vec<String>,
    consent: Consent,
}

params! {
    /// What `Rollback` takes.
    pub struct RollbackParams {
        modules: Vec<String> = Field {
            label: "Modules (empty: the last change)",
            help: "Which modules to roll back; leave empty to undo the last change.",
            kind: ParamKind::Modules(ModuleChoice::Installed),
            required: false,
        },
    }
}

impl Command for Rollback {
    type Params = RollbackParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "rollback",
        name: "Roll back",
        instructions: "Put back the copy a module had before its last change (install, update, remove or rollback). Leave the modules empty to undo the last change as a whole.",
        params: RollbackParams::FIELDS,
    };

    fn new(RollbackParams { modules }: RollbackParams, consent: Consent) -> Result<Self, OpError> {
        Ok(Rollback { modules, consent })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        let backups = ctx.engine.backups()?;
        // (transaction, change) pairs to undo, and options to put back.
        let (targets, options): (Vec<(&str, &RecordChange)>, Vec<&SettingChange>) = if self
            .modules
            .is_empty()
        {
            let last = backups
                .last()
                .ok_or_else(|| OpError::not_found("nothing to roll back: no change is recorded"))?;
            let files = last.changes.iter().map(|c| (last.id.as_str(), c)).collect();
            (files, last.settings.iter().collect())
        } else {
            let (mut files, mut options) = (Vec::new(), Vec::new());
            for name in &self.modules {
                let last = backups
                    .iter()
                    .rev()
                    .find(|t| {
                        t.changes.iter().any(|c| &c.name == name)
                            || t.settings.iter().any(|s| &s.module == name)
                    })
                    .ok_or_else(|| {
                        OpError::not_found(format!("no earlier copy or options of {name} are kept"))
                    })?;
                files.extend(
                    last.changes
                        .iter()
                        .filter(|c| &c.name == name)
                        .map(|c| (last.id.as_str(), c)),
                );
                options.extend(last.settings.iter().filter(|s| &s.module == name));
            }
            (files, options)
        };
        let version = |record: Option<&InstalledModule>| {
            record.map_or_else(|| "(not installed)".to_owned(), |r| r.version.clone())
        };
        let sha = |record: Option<&InstalledModule>| {
            record.map_or_else(|| "-".to_owned(), |r| r.sha256.clone())
        };
        let mut proposal = Proposal::always_asked("Roll back");
        let (mut copies, mut files) = (Vec::new(), Vec::new());
        for (id, change) in targets {
            let current = guard.installed.modules.get(&change.name);
            // Held: kept at its copy, as update keeps it.
            if let Some((record, hold)) = current.and_then(|r| Some((r, r.held.as_ref()?))) {
                let name = &change.name;
                return Err(super::hold::refusal(
                    "rollback",
                    name,
                    &record.version,
                    hold,
                ));
            }
            let target = change.before.as_ref();
            if current.map(|r| &r.sha256) == target.map(|r| &r.sha256) {
                continue;
            }
            let shown = format!(
                "{}: {} -> {}",
                change.name,
                version(current),
                version(target)
            );
            let exact = format!(
                "{shown} sha256:{} -> sha256:{} from {id}",
                sha(current),
                sha(target)
            );
            proposal.step(shown, exact);
            copies.push([change.name.clone(), version(current), version(target)]);
            files.push(ctx.engine.restoring(id, change, actor)?);
        }
        let config = ctx.engine.managed_config()?;
        let (mut values, mut settings) = (Vec::new(), Vec::new());
        for option in options {
            let now = config.options(&option.scope).get(&option.name).cloned();
            if now == option.before {
                continue;
            }
            let back = SettingChange {
                before: now,
                after: option.before.clone(),
                ..option.clone()
            };
            let shown = format!("{}: {}", option.module, back.describe());
            proposal.step(shown.clone(), shown);
            let value = |v: &Option<LuaValue>| LuaValue::shown(v.as_ref(), back.secret);
            values.push([
                option.module.clone(),
                back.name.clone(),
                back.scope.to_string(),
                value(&back.before),
                value(&back.after),
            ]);
            settings.push(Setting {
                module: option.module.clone(),
                scope: option.scope.clone(),
                name: option.name.clone(),
                value: option.before.clone(),
                secret: option.secret,
            });
        }
        let rolled = Rolled { copies, values };
        if rolled.is_empty() {
            return Ok(Response::Table(Table {
                title: "Rollback".into(),
                columns: rolled.columns(),
                rows: vec![],
                note: "Nothing to do: the modules are already as they were before that change."
                    .into(),
            }));
        }
        if let Err(question) = proposal.decide(&self.consent) {
            return Ok(question);
        }
        let change = ChangeSet {
            operation: "rollback",
            settings,
            files,
            disable: vec![],
            enable: vec![],
        };
        let applied = guard.commit(actor, change).await?;
        let mut note = format!(
            "Rolled back; the {} replaced are kept too, so rollback again undoes this.",
            rolled.replaced()
        );
        if let Some(why) = applied.not_live {
            note +=
                &format!(" Not done live ({why}); the files take effect when Prosody restarts.");
        }
        note += &super::enable::released_note(&applied.released);
        Ok(Response::Table(Table {
            title: "Rolled back".into(),
            columns: rolled.columns(),
            rows: rolled.rows(),
            note,
        }))
    }
}

/// What a rollback puts back: module copies (module, from, to) and option
/// values (module, option, where, from, to). A row is keyed by what it
/// puts back, module alone or module and option, so an option's name and
/// values never land in a copy's version columns.
struct Rolled {
    copies: Vec<[String; 3]>,
    values: Vec<[String; 5]>,
}

impl Rolled {
    fn is_empty(&self) -> bool {
        self.copies.is_empty() && self.values.is_empty()
    }

    /// The option columns only where options are put back, so a rollback
    /// of copies reads as it always did.
    fn columns(&self) -> Vec<(&'static str, &'static str)> {
        let mut columns = vec![("module", "Module")];
        if !self.values.is_empty() {
            columns.extend([("option", "Option"), ("where", "Where")]);
        }
        columns.extend([("from", "From"), ("to", "To")]);
        columns
    }

    /// Copies first, then values; a copy's option cells are empty where
    /// the table has them.
    fn rows(&self) -> Vec<Vec<String>> {
        let with_options = !self.values.is_empty();
        let copies = self
            .copies
            .iter()
            .map(|[module, from, to]| match with_options {
                true => vec![
                    module.clone(),
                    String::new(),
                    String::new(),
                    from.clone(),
                    to.clone(),
                ],
                false => vec![module.clone(), from.clone(), to.clone()],
            });
        copies
            .chain(self.values.iter().map(|row| row.to_vec()))
            .collect()
    }

    /// What the rollback replaced, which it kept for another rollback.
    fn replaced(&self) -> &'static str {
        match (self.copies.is_empty(), self.values.is_empty()) {
            (false, false) => "copies and option values",
            (true, _) => "option values",
            (false, true) => "copies",
        }
    }
}
