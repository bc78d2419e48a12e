//! The record of one transaction on module files: what each module was
//! before and after it, and the options it set. The change journal holds
//! it while the swap runs, the backup keeps it for `rollback`, and the
//! history reads it; it sits below all three so none imports another for
//! it.

use serde::{Deserialize, Serialize};

use super::managed_config::{LuaValue, Scope};
use super::state::InstalledModule;
use crate::repo::archive::ArchiveFile;

/// A transaction as journaled, and as kept with its backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Sortable by time.
    pub id: String,
    pub time: String,
    pub actor: String,
    pub operation: String,
    pub changes: Vec<RecordChange>,
    /// Module options set or unset, with the values before, for rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingChange>,
}

/// One option of a module before and after a change; `None` is unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingChange {
    pub module: String,
    pub scope: Scope,
    pub name: String,
    pub before: Option<LuaValue>,
    pub after: Option<LuaValue>,
    /// Never shown, logged or put in the history.
    pub secret: bool,
}

impl SettingChange {
    /// As the history and replies show it: a secret as set or unset.
    pub fn describe(&self) -> String {
        let value = |v: &Option<LuaValue>| LuaValue::shown(v.as_ref(), self.secret);
        format!(
            "{} on {}: {} -> {}",
            self.name,
            self.scope,
            value(&self.before),
            value(&self.after)
        )
    }
}

impl Transaction {
    /// Each module, from which version to which, as the history says it.
    pub fn module_changes(&self) -> Vec<super::audit::ModuleChange> {
        self.changes
            .iter()
            .map(|c| super::audit::ModuleChange {
                module: c.name.clone(),
                from: c.before.as_ref().map(|r| r.version.clone()),
                to: c.after.as_ref().map(|r| r.version.clone()),
            })
            .collect()
    }
}

/// One module's records before and after a transaction; `None` means not
/// installed by modman.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    pub name: String,
    pub before: Option<InstalledModule>,
    pub after: Option<InstalledModule>,
}

impl RecordChange {
    /// The record that says where it lives: the new one, else the old.
    pub(super) fn record(&self) -> &InstalledModule {
        self.after
            .as_ref()
            .or(self.before.as_ref())
            .expect("a change has a record before or after it")
    }
}

/// A module's new record and files, or `None` to remove it.
pub struct Prepared {
    pub name: String,
    pub after: Option<(InstalledModule, Vec<ArchiveFile>)>,
}
