//! The option names Prosody itself reads: in its server (core/, net/,
//! util/, the `prosody` and `prosodyctl` scripts) and in the modules it
//! ships. `configure` sets none of them, whatever module asks.
//!
//! The table is not picked by hand: `scripts/prosody-options` writes it
//! from the Lua sources of Prosody 0.12 and 13 (every `config.get`,
//! `configmanager.get`, `module:get_option*` and the per-service names
//! such as `c2s_ports` that `core/portmanager.lua` reads), and a test
//! re-reads the Prosody installed here and fails when the table differs.
//! It is compiled in, not read at run time, so that a Prosody install
//! modman cannot find or read never makes the list empty: the refusal
//! fails closed. The union of both versions applies to both: a name
//! Prosody 13 reads is refused on 0.12 too, so an upgrade of Prosody
//! never turns a value written earlier into a core setting.
//!
//! A module may read a name Prosody reads too. The rule
//! ([`super::settable`]):
//! - A name Prosody's server reads (core/, net/, util/, the scripts), or
//!   that more than one of its modules reads, is a setting of the server
//!   and is refused always, whatever module reads it too. The security
//!   settings are all of this kind: `authentication`, `authorization`,
//!   `anonymous_login`, `storage`, `ssl`, `admins`, `plugin_paths`,
//!   `component_module`, each network service's `*_ports`,
//!   `*_interfaces` and `*_ssl` (read by core/portmanager.lua), and
//!   `c2s_require_encryption` (read by several modules). A community
//!   module reading one (an auth module reading `authentication`) reads
//!   it to follow the server, not to own it.
//! - A name only one module of Prosody's reads is that module's own
//!   option. Prosody 13 ships modules that were community modules
//!   (`cloud_notify`, `server_info`...), and the community copy reads the
//!   same names; so such a name is set for a module modman installed of
//!   that same name, and refused for any other module, and for Prosody's
//!   own copy, which its admin configures in prosody.cfg.lua.

#[cfg(test)]
mod scan;

mod names;

/// Which of the Prosody versions modman supports read a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    Only012,
    Only13,
    Both,
}

/// An option name Prosody reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProsodyOption {
    pub name: &'static str,
    /// One file of Prosody that reads it (its server's before its
    /// modules'), relative to Prosody's directory, such as
    /// `core/usermanager.lua`: named in the refusal.
    pub read_by: &'static str,
    /// The one module of Prosody's that reads it, when only that module
    /// does (in either version): then it is that module's own option, not
    /// a setting of the server.
    pub only_module: Option<&'static str>,
    pub versions: Versions,
}

/// Prosody's own option `name`, if it is one.
pub fn prosody_option(name: &str) -> Option<&'static ProsodyOption> {
    names::NAMES
        .binary_search_by(|o| o.name.cmp(name))
        .ok()
        .map(|at| &names::NAMES[at])
}

#[cfg(test)]
mod tests {
    use super::scan::{render, table_path, Install};
    use super::*;

    #[test]
    fn the_table_is_sorted_for_the_search() {
        assert!(names::NAMES.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn core_security_settings_of_both_versions_are_prosodys() {
        for (name, read_by) in [
            ("authentication", "core/usermanager.lua"),
            ("authorization", "core/usermanager.lua"),
            ("anonymous_login", "core/usermanager.lua"),
            ("component_module", "core/hostmanager.lua"),
            ("storage", "core/storagemanager.lua"),
            ("ssl", "core/certmanager.lua"),
            ("console_interfaces", "core/portmanager.lua"),
            ("c2s_ports", "core/portmanager.lua"),
        ] {
            let option = prosody_option(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(option.read_by, read_by, "{name}");
            assert_eq!(option.versions, Versions::Both, "{name}");
        }
        for name in ["admins", "plugin_paths", "c2s_require_encryption"] {
            assert_eq!(prosody_option(name).unwrap().versions, Versions::Both);
        }
        // Read by modules Prosody ships.
        assert!(prosody_option("c2s_require_encryption")
            .unwrap()
            .read_by
            .starts_with("modules/"));
        // A community module's own option is not Prosody's.
        assert_eq!(prosody_option("http_upload_external_secret"), None);
    }

    #[test]
    fn names_one_version_reads_are_in_the_table() {
        let only = |v| names::NAMES.iter().filter(|o| o.versions == v).count();
        assert!(only(Versions::Only012) > 0 && only(Versions::Only13) > 0);
    }

    /// The table is what Prosody's sources on this host read. With
    /// `MODMAN_WRITE_PROSODY_OPTIONS=1` and both versions installed it
    /// writes the table instead (`scripts/prosody-options`).
    #[test]
    fn the_table_is_what_the_installed_prosody_reads() {
        let installs: Vec<_> = Install::on_this_host()
            .into_iter()
            .map(|i| (i.version, i.names()))
            .collect();
        let table = std::fs::read_to_string(table_path()).unwrap();
        if installs.len() == 2 {
            let written = render(&installs);
            if std::env::var_os("MODMAN_WRITE_PROSODY_OPTIONS").is_some() {
                std::fs::write(table_path(), &written).unwrap();
                return;
            }
            assert_eq!(written, table, "run scripts/prosody-options");
        }
        for (version, names) in &installs {
            let in_table: Vec<&str> = names::NAMES
                .iter()
                .filter(|o| o.versions == *version || o.versions == Versions::Both)
                .map(|o| o.name)
                .collect();
            let read: Vec<&str> = names.keys().map(String::as_str).collect();
            assert_eq!(in_table, read, "{version:?}: run scripts/prosody-options");
        }
        assert!(
            !installs.is_empty(),
            "no Prosody installed to check against"
        );
    }
}
