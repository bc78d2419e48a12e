//! `hold` and `unhold`: keep installed modules at the copy they have
//! (`hold lastlog because "breaks with our LDAP"`), through `update` and
//! its notices, until an admin lets updates reach them again. Who held a
//! module, when and why is shown to every admin by `list` and `info`, and
//! kept in the history.

use super::confirm::{Consent, Proposal};
use super::{
    params, Access, Command, Context, Field, ModuleChoice, OpError, ParamKind, Params, Response,
    Spec, Table,
};
use crate::access::Actor;
use crate::engine::hold::Holding;
use crate::engine::state::{Hold as Held, Reason};

/// The modules of a hold or unhold.
const MODULES: Field = Field {
    label: "Modules",
    help: "Installed modules, such as lastlog (mod_ prefix optional).",
    kind: ParamKind::Modules(ModuleChoice::Installed),
    required: true,
};

/// Holds `modules` at their installed copies.
#[derive(Debug)]
pub struct Hold {
    modules: Vec<String>,
    reason: Option<Reason>,
    consent: Consent,
}

/// Releases the holds on `modules`.
#[derive(Debug)]
pub struct Unhold {
    modules: Vec<String>,
    consent: Consent,
}

/// The one line saying who holds a module, since when and why: the
/// `held` cell of `list`, and what `update` says when it leaves one.
pub fn describe(hold: &Held) -> String {
    let why = match &hold.reason {
        Some(reason) => format!(": {reason}"),
        None => String::new(),
    };
    format!("by {} since {}{why}", hold.by, hold.at)
}

/// The refusal of `operation` (update, rollback) on held module `name`,
/// at `version`: who held it and why, and the way out.
pub fn refusal(operation: &str, name: &str, version: &str, hold: &Held) -> OpError {
    OpError::conflict(format!(
        "{name} is held at {version} ({}), so {operation} leaves it as it is; to {operation} it, unhold {name} first",
        describe(hold)
    ))
}

params! {
    /// What `hold` takes.
    pub struct HoldParams {
        modules: Vec<String> = MODULES,
        because: Option<Reason> = Field {
            label: "Why",
            help: "Why they are held, shown to every admin (one line, at most 200 characters).",
            kind: ParamKind::Reason,
            required: false,
        },
    }
}

impl Command for Hold {
    type Params = HoldParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "hold",
        name: "Hold modules at their version",
        instructions: "Keep installed modules at the copy they have now: update leaves them alone and no update is announced for them, until unhold. Every admin sees who held them and why.",
        params: HoldParams::FIELDS,
    };

    fn new(HoldParams { modules, because }: HoldParams, consent: Consent) -> Result<Self, OpError> {
        Ok(Hold {
            modules,
            reason: because,
            consent,
        })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        let mut proposal = Proposal::new("Hold");
        for name in &self.modules {
            let record = installed(&guard.installed, name)?;
            let text = format!("hold {name} at {}", record.version);
            proposal.step(text.clone(), text);
        }
        if let Err(plan) = proposal.decide(&self.consent) {
            return Ok(plan);
        }
        guard.set_holds(actor, &self.modules, Holding::Hold(self.reason))?;
        let rows = self
            .modules
            .iter()
            .map(|name| {
                let record = &guard.installed.modules[name];
                let held = record.held.as_ref().map(describe).unwrap_or_default();
                vec![name.clone(), record.version.clone(), held]
            })
            .collect();
        Ok(Response::Table(Table {
            title: "Held".into(),
            columns: vec![
                ("module", "Module"),
                ("version", "Version"),
                ("held", "Held"),
            ],
            rows,
            note: "Update leaves these modules at these versions until unhold.".into(),
        }))
    }
}

params! {
    /// What `unhold` takes.
    pub struct UnholdParams {
        modules: Vec<String> = MODULES,
    }
}

impl Command for Unhold {
    type Params = UnholdParams;

    const SPEC: Spec = Spec {
        access: Access::Change,
        node: "unhold",
        name: "Let updates reach held modules",
        instructions: "Release the hold on installed modules: update and its notices offer them newer copies again.",
        params: UnholdParams::FIELDS,
    };

    fn new(UnholdParams { modules }: UnholdParams, consent: Consent) -> Result<Self, OpError> {
        Ok(Unhold { modules, consent })
    }

    async fn apply(self, ctx: &Context, actor: &Actor) -> Result<Response, OpError> {
        let mut guard = ctx.engine.lock().await?;
        let mut proposal = Proposal::new("Unhold");
        let mut held = Vec::new();
        for name in &self.modules {
            if let Some(hold) = &installed(&guard.installed, name)?.held {
                let text = format!("release {name} ({})", describe(hold));
                proposal.step(text.clone(), text);
                held.push(name.clone());
            }
        }
        if held.is_empty() {
            return Err(OpError::conflict(format!(
                "none of {} is held, so there is nothing to release",
                self.modules.join(", ")
            )));
        }
        if let Err(plan) = proposal.decide(&self.consent) {
            return Ok(plan);
        }
        let was = guard.set_holds(actor, &held, Holding::Release)?;
        let rows = held
            .iter()
            .zip(was)
            .map(|(name, was)| {
                vec![
                    name.clone(),
                    guard.installed.modules[name].version.clone(),
                    was.as_ref().map(describe).unwrap_or_default(),
                ]
            })
            .collect();
        let note = "Update offers these modules newer copies again.".to_owned();
        Ok(Response::Table(Table {
            title: "Released".into(),
            columns: vec![
                ("module", "Module"),
                ("version", "Version"),
                ("was_held", "Was held"),
            ],
            rows,
            note,
        }))
    }
}

/// `name`'s record, or the error saying it is not installed by modman.
fn installed<'a>(
    installed: &'a crate::engine::state::Installed,
    name: &str,
) -> Result<&'a crate::engine::state::InstalledModule, OpError> {
    installed.modules.get(name).ok_or_else(|| {
        OpError::not_found(format!(
            "{name} is not installed by modman, so there is nothing to hold or release"
        ))
    })
}
