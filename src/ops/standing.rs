//! Where each module `update` was asked about stands afterwards: updated,
//! or left as it is and why. A column of update's table, so a bot (or a
//! test) reads why a module was not updated without parsing the note.

use super::updates::{Unknown, UpdateStatus};

/// One module's standing after `update`. Modules already up to date are
/// not listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Replaced with the copy the plan named.
    Updated,
    /// Not installed before: a dependency the new copies need.
    Installed,
    /// The version named is the one installed already.
    AtVersion,
    /// Held at its version by the admin.
    Held,
    /// Its repository offers only an older copy; update never goes back
    /// unasked.
    OlderOffered,
    /// Its repository no longer offers it, another one does; a module
    /// never moves between repositories by itself.
    OnlyElsewhere,
    /// No repository offers it any more.
    NotOffered,
    /// There is no index of its repository yet.
    NoIndex,
    /// Its repository is not in modman.toml any more.
    NotConfigured,
}

impl Standing {
    /// The cell's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Updated => "updated",
            Standing::Installed => "installed",
            Standing::AtVersion => "at_version",
            Standing::Held => "held",
            Standing::OlderOffered => "older_offered",
            Standing::OnlyElsewhere => "only_elsewhere",
            Standing::NotOffered => "not_offered",
            Standing::NoIndex => "no_index",
            Standing::NotConfigured => "not_configured",
        }
    }

    /// Why a module with `status` is left as it is; `None` when it is to
    /// be updated or is up to date.
    pub fn left(status: &UpdateStatus) -> Option<Standing> {
        match status {
            UpdateStatus::Available { .. } | UpdateStatus::UpToDate => None,
            UpdateStatus::Held(_) => Some(Standing::Held),
            UpdateStatus::Older { .. } => Some(Standing::OlderOffered),
            UpdateStatus::OnlyElsewhere { .. } => Some(Standing::OnlyElsewhere),
            UpdateStatus::NotOffered { .. } => Some(Standing::NotOffered),
            UpdateStatus::Unknown {
                why: Unknown::NoIndex,
                ..
            } => Some(Standing::NoIndex),
            UpdateStatus::Unknown {
                why: Unknown::NotConfigured,
                ..
            } => Some(Standing::NotConfigured),
        }
    }
}
