//! The update policies admins chose with the `policy` command, kept in
//! `state_dir/policy.json`: one for every module (`policy all ...`), and
//! one per module, which wins. modman.toml's `[policy] default` applies
//! where neither is set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{io, Engine, EngineError};
use crate::policy::Policy;

const FILE: &str = "policy.json";

/// The policies chosen, as kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chosen {
    /// For every module without its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Policy>,
    /// Per module.
    #[serde(default)]
    pub modules: BTreeMap<String, Policy>,
}

/// Where a module's policy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Module,
    All,
    Config,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Module => "module",
            Source::All => "all",
            Source::Config => "modman.toml",
        }
    }
}

impl Chosen {
    /// The policy of `module`, and where it comes from.
    pub fn of(&self, module: &str, default: Policy) -> (Policy, Source) {
        match (self.modules.get(module), self.all) {
            (Some(policy), _) => (*policy, Source::Module),
            (None, Some(policy)) => (policy, Source::All),
            (None, None) => (default, Source::Config),
        }
    }
}

impl Engine {
    /// The policies chosen so far; none when nothing was chosen.
    pub fn policies(&self) -> Result<Chosen, EngineError> {
        let path = self.paths.state_dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::Internal(format!(
                    "{} is not modman's policy file ({e}); fix or remove it, then choose again",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Chosen::default()),
            Err(e) => Err(io("cannot read the policies in", &path)(e)),
        }
    }

    /// Keeps `chosen`, replacing what was kept.
    pub fn set_policies(&self, chosen: &Chosen) -> Result<(), EngineError> {
        let path = self.paths.state_dir.join(FILE);
        let bytes =
            serde_json::to_vec_pretty(chosen).map_err(|e| EngineError::Internal(e.to_string()))?;
        crate::fsutil::atomic_write(&path, &bytes)
            .map_err(io("cannot write the policies to", &path))
    }
}
