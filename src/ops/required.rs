//! Options a module will not load without, checked before a change that
//! would enable it: `enable` reads the module's code where it is
//! installed, `install --enable` the code it has just fetched, and both
//! refuse the same way before anything changes, rather than installing a
//! module that Prosody then refuses to load.

use super::error::Cause;
use super::OpError;
use crate::engine::live::Live;
use crate::engine::managed_config::Scope;
use crate::repo::options::ModuleOption;

/// The names among `options` that are required and that Prosody does not
/// hold for `host`.
pub(super) async fn missing(
    options: &[ModuleOption],
    host: &str,
    live: &mut Live,
) -> Result<Vec<String>, OpError> {
    let mut missing = Vec::new();
    for option in options.iter().filter(|o| o.required) {
        let now = live
            .config_get(&Scope::Host(host.to_owned()), &option.name)
            .await?;
        if now.is_none() {
            missing.push(option.name.clone());
        }
    }
    Ok(missing)
}

/// The refusal when `module` lacks `missing` on `host`, naming the
/// command that sets them.
pub(super) fn refusal(module: &str, host: &str, missing: &[String]) -> OpError {
    let settings: Vec<String> = missing.iter().map(|m| format!("{m}=...")).collect();
    let text = format!(
        "mod_{module} will not load on {host} without {}, which {} not set; set {} first with configure (in chat: configure {module} on {host} {})",
        missing.join(" and "),
        if missing.len() == 1 { "is" } else { "are" },
        if missing.len() == 1 { "it" } else { "them" },
        settings.join(" ")
    );
    OpError {
        cause: Some(Cause::OptionsUnset),
        ..OpError::bad_input(text)
    }
}
