//! Holds: an admin keeps a module at the copy installed (`hold`), until
//! released (`unhold`). A hold changes no file, config or running module,
//! only what modman will do later, so it is not a file transaction: the
//! record in `installed.json` is rewritten whole (atomically) and the
//! history says who held what and why, as for any change.

use super::state::{Hold, Reason};

/// What to do with a module's hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holding {
    /// Keep it at its copy, for this reason if one was given.
    Hold(Option<Reason>),
    /// Let updates reach it again.
    Release,
}
use super::{audit, io, ChangeGuard, EngineError};
use crate::access::Actor;

impl ChangeGuard<'_> {
    /// Holds installed `modules` for `actor`, or releases them, in one
    /// write and one history line. Returns each one's hold as it was
    /// before. If the history cannot be written, the state is put back
    /// and nothing has changed.
    pub fn set_holds(
        &mut self,
        actor: &Actor,
        modules: &[String],
        holding: Holding,
    ) -> Result<Vec<Option<Hold>>, EngineError> {
        let paths = &self.engine.paths;
        let before = self.installed.clone();
        let mut after = before.clone();
        let (operation, reason) = match &holding {
            Holding::Hold(reason) => ("hold", reason.clone()),
            Holding::Release => ("unhold", None),
        };
        let mut was = Vec::new();
        let mut changes = Vec::new();
        for module in modules {
            let record = after.modules.get_mut(module).ok_or_else(|| {
                EngineError::Internal(format!("{module} is not installed, so it cannot be held"))
            })?;
            was.push(record.held.take());
            record.held = match &holding {
                Holding::Hold(reason) => Some(Hold {
                    by: actor.to_string(),
                    at: audit::now_to_the_second(),
                    reason: reason.clone(),
                }),
                Holding::Release => None,
            };
            changes.push(audit::ModuleChange {
                module: module.clone(),
                from: Some(record.version.clone()),
                to: Some(record.version.clone()),
            });
        }
        after
            .save(&paths.state_dir)
            .map_err(io("cannot write the state in", &paths.state_dir))?;
        let entry = audit::Entry {
            time: audit::now(),
            actor: actor.to_string(),
            operation: operation.to_owned(),
            changes,
            result: "ok".to_owned(),
            transaction: String::new(),
            change: String::new(),
            hosts: vec![],
            settings: vec![],
            reason: reason.map(String::from),
        };
        if let Err(e) = audit::append(&paths.state_dir, &entry) {
            // Not recorded, so not done: the state as it was.
            before
                .save(&paths.state_dir)
                .map_err(io("cannot put back the state in", &paths.state_dir))?;
            return Err(io("cannot write the history in", &paths.state_dir)(e));
        }
        tracing::info!("{operation} by {actor}: {}", modules.join(", "));
        self.installed = after;
        Ok(was)
    }
}
