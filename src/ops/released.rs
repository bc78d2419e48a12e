//! Built-ins a change also unloaded (modules the ones it took away had
//! pulled in, that nothing needs now), as rows of the change's table
//! beside the modules it acted on, so a bot (or a test) reads which
//! without parsing the note.

use crate::engine::Placement;

/// The [`STATE`] of a row that is a built-in unloaded because nothing
/// needs it any more.
pub const RELEASED: &str = "released";

/// The column saying what happened to each row's module.
pub const STATE: (&str, &str) = ("state", "State");

/// One row per released placement under `columns`: its module, host and
/// [`RELEASED`] in the columns of those names, the others empty.
pub fn rows(columns: &[(&'static str, &'static str)], released: &[Placement]) -> Vec<Vec<String>> {
    released
        .iter()
        .map(|p| {
            let cell = |var: &str| match var {
                "module" => p.module.clone(),
                "host" => p.host.clone(),
                var if var == STATE.0 => RELEASED.to_owned(),
                _ => String::new(),
            };
            columns.iter().map(|(var, _)| cell(var)).collect()
        })
        .collect()
}
