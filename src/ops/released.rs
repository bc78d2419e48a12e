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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_built_in_fills_module_host_and_state_and_leaves_the_rest_empty() {
        let columns = [
            ("module", "Module"),
            ("version", "Version"),
            ("host", "Host"),
            STATE,
        ];
        let csi = Placement {
            module: "csi".into(),
            host: "example.org".into(),
        };
        assert_eq!(
            rows(&columns, &[csi]),
            [["csi", "", "example.org", RELEASED]]
        );
    }
}
