//! Where a module runs: a module on a host, the unit of live loading
//! that a change plans, journals and undoes.

/// A module on a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    pub module: String,
    pub host: String,
}

impl Placement {
    /// Every module on every host.
    pub fn all(modules: &[String], hosts: &[String]) -> Vec<Placement> {
        modules
            .iter()
            .flat_map(|module| {
                hosts.iter().map(move |host| Placement {
                    module: module.clone(),
                    host: host.clone(),
                })
            })
            .collect()
    }
}
