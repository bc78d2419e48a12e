//! `policy`: what an update found on schedule does, per module or for all:
//! `notify` (the update notices), `auto` (applied within the maintenance
//! window of modman.toml, health-checked, announced before and after) or
//! `security` (the same, only for an update an advisory names as the fix).
//! [`auto_updates`] is what the schedule runs.

use super::input::Chosen;
use super::update::{Update, UpdateParams};
use super::{params, Field, Params};
use super::{Consent, Wanted};
use serde_json::json;
use time::OffsetDateTime;

use super::advisories::{self, Concern, Remedy};
use super::health::Notice;
use super::updates::{self, UpdateStatus};
use super::{Access, Command, Context, ModuleChoice, OpError, ParamKind, Response, Spec, Table};
use crate::access::Actor;
use crate::policy::Policy;

/// The choices of the `policy` field: show them, or set one.
const CHOICES: &[(&str, &str)] = &[
    ("show", "show the policies"),
    Policy::CHOICES[0],
    Policy::CHOICES[1],
    Policy::CHOICES[2],
];

/// Shows the policies, or sets `policy` for `modules` (all when empty).
#[derive(Debug)]
pub struct PolicyCommand {
    modules: Vec<String>,
    policy: Option<Policy>,
}

params! {
    /// What `PolicyCommand` takes.
    pub struct PolicyParams {
        policy: Option<Policy> = Field {
            label: "Policy",
            help: "show the policies, or the one to set: notify, auto or security.",
            kind: ParamKind::Choice(CHOICES),
            required: false,
        },
        modules: Vec<String> = Field {
            label: "Modules (empty: all)",
            help: "Which installed modules it is for; leave empty for all.",
            kind: ParamKind::Modules(ModuleChoice::Installed),
            required: false,
        },
    }
}

/// `show` is no policy: it reads `None`, showing them.
impl Chosen for Policy {
    fn chosen(choice: &'static str) -> Option<Policy> {
        Policy::parse(choice)
    }
}

impl Command for PolicyCommand {
    type Params = PolicyParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "policy",
        name: "Update policy",
        instructions: "What an update found on schedule does: notify (announce it; an admin updates), auto (apply it within the maintenance window set in modman.toml, health-checked, announced before and after) or security (as auto, but only an update to the version an advisory names as the fix). Leave the modules empty to set it for all; a module's own policy wins over that for all. Held modules are never updated.",
        params: PolicyParams::FIELDS,
    };

    fn new(
        PolicyParams { policy, modules }: PolicyParams,
        _consent: Consent,
    ) -> Result<Self, OpError> {
        Ok(PolicyCommand { modules, policy })
    }

    async fn apply(self, ctx: &Context, _actor: &Actor) -> Result<Response, OpError> {
        let guard = ctx.engine.lock().await?;
        let mut chosen = ctx.engine.policies()?;
        let mut note = Vec::new();
        if let Some(policy) = self.policy {
            for name in &self.modules {
                if !guard.installed.modules.contains_key(name) {
                    return Err(OpError::not_found(format!(
                        "{name} is not installed by modman; nothing was changed"
                    )));
                }
            }
            if self.modules.is_empty() {
                // For all: the modules' own choices give way to it.
                chosen.modules.clear();
                chosen.all = Some(policy);
            }
            for name in &self.modules {
                chosen.modules.insert(name.clone(), policy);
            }
            ctx.engine.set_policies(&chosen)?;
            note.push(format!("Set to {policy}."));
        }
        let default = ctx.config.policy.default;
        let rows: Vec<Vec<String>> = guard
            .installed
            .modules
            .iter()
            .map(|(name, record)| {
                let (policy, source) = chosen.of(name, default);
                // Held: never updated, whatever the policy says.
                let held = match record.held {
                    Some(_) => "yes",
                    None => "",
                };
                vec![
                    name.clone(),
                    policy.to_string(),
                    source.as_str().to_owned(),
                    held.to_owned(),
                ]
            })
            .collect();
        note.push(match &ctx.config.policy.window {
            Some(window) => format!("Automatic updates run within {window}."),
            None => "No maintenance window is set ([policy] window in modman.toml), so no module is updated automatically until one is set.".to_owned(),
        });
        Ok(Response::Table(Table {
            title: "Update policy".into(),
            columns: vec![
                ("module", "Module"),
                ("policy", "Policy"),
                ("source", "Set for"),
                ("held", "Held (never updated)"),
            ],
            rows,
            note: note.join(" "),
        }))
    }
}

/// The schedule's automatic updates, at `now`: inside the maintenance
/// window, every installed module whose policy is `auto` and that has an
/// update, or `security` and the update is an advisory's fix, is updated as an admin's `update` would (so health-checked),
/// announced to the rooms and every admin through `tell` before and
/// after. Nothing happens outside the window.
pub async fn auto_updates(ctx: &Context, now: OffsetDateTime, tell: impl Fn(Notice)) {
    let Some(window) = ctx
        .config
        .policy
        .window
        .as_ref()
        .filter(|w| w.contains(now))
    else {
        return;
    };
    let (Ok(installed), Ok(chosen)) = (ctx.engine.installed(), ctx.engine.policies()) else {
        tracing::warn!("automatic updates skipped: the state cannot be read");
        return;
    };
    let catalog = ctx.catalog();
    let due: Vec<(String, String, String)> = installed
        .modules
        .iter()
        .filter_map(|(name, record)| {
            let repositories = &ctx.config.repositories;
            let UpdateStatus::Available { from, to, .. } =
                updates::status(&catalog, repositories, name, record)
            else {
                return None;
            };
            let wanted = match chosen.of(name, ctx.config.policy.default).0 {
                Policy::Notify => false,
                Policy::Auto => true,
                Policy::Security => fixes_an_advisory(
                    &advisories::concerning(&catalog, repositories, name, record),
                    &to.version,
                ),
            };
            wanted.then(|| (name.clone(), from.to_string(), to.version.clone()))
        })
        .collect();
    if due.is_empty() {
        return;
    }
    let everyone = |text: String, result: Option<Response>, facts: serde_json::Value| Notice {
        admins: ctx.config.admins.iter().cloned().collect(),
        rooms: true,
        text,
        result,
        facts,
    };
    let listed: Vec<String> = due
        .iter()
        .map(|(name, from, to)| format!("{name} {from} -> {to}"))
        .collect();
    let modules: Vec<serde_json::Value> = due
        .iter()
        .map(|(name, from, to)| json!({"module": name, "from": from, "to": to}))
        .collect();
    tell(everyone(
        format!(
            "Updating now, as their policy is auto (window {window}): {}. Each is health-checked.",
            listed.join(", ")
        ),
        None,
        json!({"kind": "auto_update", "stage": "starting", "modules": modules}),
    ));
    // The update itself, with its parameters typed: yes in advance, as
    // the policy is the admin's yes.
    let modules = due.into_iter().map(|(name, ..)| Wanted {
        name,
        version: None,
    });
    let params = UpdateParams {
        modules: modules.collect(),
    };
    let ran = match Update::new(params, Consent::Given) {
        Ok(update) => update.apply(ctx, &Actor::schedule()).await,
        Err(e) => Err(e),
    };
    let notice = match ran {
        Ok(response) => {
            let facts =
                json!({"kind": "auto_update", "stage": "done", "result": response.to_json()});
            everyone("Automatic update:".to_owned(), Some(response), facts)
        }
        Err(e) => everyone(
            format!("The automatic update failed: {e}"),
            None,
            json!({"kind": "auto_update", "stage": "failed", "error": e.to_json()}),
        ),
    };
    tell(notice);
}

/// Whether updating to `version` is the fix an advisory concerning the
/// installed copy names: it ends that concern, and the advisory names a
/// fixed version (an update that merely leaves a version without a fix
/// is not one).
fn fixes_an_advisory(concerns: &[Concern], version: &str) -> bool {
    concerns.iter().any(|concern| {
        concern.advisory.has_fix()
            && matches!(concern.remedy, Remedy::Update(to) if to.version == version)
    })
}
