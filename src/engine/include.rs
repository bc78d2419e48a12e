//! The line of prosody.cfg.lua that brings in the managed config, decided
//! once for `setup` (which writes it), `setup --undo` (which takes it out)
//! and `check` (which looks for it).
//!
//! Prosody refuses to start on an `Include` of a missing file, so the line
//! names the managed config as a wildcard pattern that matches only it:
//! its last character replaced by `?`. Prosody (0.12 and 13) expands a
//! name holding `*` or `?` by listing the directory, anchored at both
//! ends and skipping dot files (modman's temporary files), and includes
//! nothing when nothing matches: a managed config removed by hand, or
//! never written, leaves a Prosody that starts, without modman's modules.

use std::path::Path;

/// The pattern Prosody expands to `managed` alone.
pub fn pattern(managed: &Path) -> String {
    let mut path = managed.display().to_string();
    if path.pop().is_some() {
        path.push('?');
    }
    path
}

/// The `Include` line setup writes.
pub fn line(managed: &Path) -> String {
    format!("Include \"{}\"", pattern(managed))
}

/// Whether an `Include` of `pattern` (the string it names, as
/// [`crate::engine::prosody_cfg`] reads it) brings in `managed`: by its
/// name or by [`pattern`].
pub fn names(included: &str, managed: &Path) -> bool {
    included == managed.display().to_string() || included == pattern(managed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::prosody_cfg::{ProsodyCfg, Statement};

    /// Whether the line `code` of prosody.cfg.lua Includes `managed`.
    fn includes(code: &str, managed: &Path) -> bool {
        let cfg = ProsodyCfg::parse(code).unwrap();
        (cfg.statements.iter())
            .any(|s| matches!(s, Statement::Include { pattern, .. } if names(pattern, managed)))
    }

    #[test]
    fn the_pattern_names_only_the_managed_config() {
        let managed = Path::new("/var/lib/prosody/modman.cfg.lua");
        assert_eq!(pattern(managed), "/var/lib/prosody/modman.cfg.lu?");
        assert_eq!(line(managed), "Include \"/var/lib/prosody/modman.cfg.lu?\"");
        assert!(includes(&line(managed), managed));
        assert!(includes(
            "Include '/var/lib/prosody/modman.cfg.lua'",
            managed
        ));
        assert!(includes(
            "Include(\"/var/lib/prosody/modman.cfg.lua\")",
            managed
        ));
        assert!(!includes(
            "Include \"/var/lib/prosody/other.cfg.lua\"",
            managed
        ));
        assert!(!includes("Include \"/var/lib/prosody/*.lua\"", managed));
    }
}
