//! modman's admin socket client reads what the real Prosody answers, on
//! 0.12 and 13: a module loaded with an error or warn status is loaded, a
//! global module is found where it is (never under a host), and the
//! server's features are its own. Each fact is checked against what
//! `prosodyctl shell` prints, independently of modman's parser.

mod support;

use modman::engine::admin_socket::{
    AdminSocket, LoadedModule, ModuleAction, ModuleStatus, Scope, StatusLevel,
};
use support::{server, Prosody, Version, DOMAIN};

/// A module that loads and then reports an error, as a module missing an
/// option does (mod_dnsbl on 13, which 0.12's corpus lacks).
const FAILING: &str = r#"module:set_status("error", "No 'failing_url' in config file (test)")"#;
/// A module loaded once for the whole server.
const GLOBAL: &str = "module:set_global()\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn status(level: StatusLevel, text: &str) -> Option<ModuleStatus> {
    Some(ModuleStatus {
        level,
        text: text.into(),
    })
}

#[test]
fn a_module_with_an_error_status_and_a_global_module_are_seen_loaded() {
    let prosody = Prosody::start();
    for (name, code) in [("failing_x", FAILING), ("global_x", GLOBAL)] {
        let dir = prosody.modules_dir().join(format!("mod_{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("mod_{name}.lua")), code).unwrap();
    }
    std::process::Command::new("cp")
        .arg("-r")
        .arg(support::corpus_module("mod_host_guard"))
        .arg(prosody.modules_dir())
        .status()
        .unwrap();
    let socket_path = prosody.path("data/prosody.sock");
    runtime().block_on(async {
        let mut socket = AdminSocket::connect(&socket_path).await.unwrap();
        for module in ["failing_x", "global_x", "host_guard", "external_services"] {
            let loaded = socket
                .module(ModuleAction::Load, module, DOMAIN)
                .await
                .unwrap();
            assert_eq!(loaded, Ok(()), "loading {module}");
        }

        // What Prosody itself prints: the status after the name.
        let printed = prosody.module_list(DOMAIN);
        assert!(
            printed.contains(&"failing_x (error: No 'failing_url' in config file (test))".into()),
            "{printed:?}"
        );
        assert!(!printed.iter().any(|l| l.starts_with("global_x")));

        let on_host = socket
            .loaded_with_status(Scope::Host(DOMAIN.into()))
            .await
            .unwrap();
        let find = |modules: &[LoadedModule], name: &str| {
            modules
                .iter()
                .find(|m| m.name == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name} not in {modules:?}"))
        };
        assert_eq!(
            find(&on_host, "failing_x").status,
            status(StatusLevel::Error, "No 'failing_url' in config file (test)")
        );
        assert_eq!(
            find(&on_host, "external_services").status,
            status(
                StatusLevel::Warn,
                "No services configured or all had errors"
            )
        );
        assert_eq!(find(&on_host, "c2s").status, None);
        assert_eq!(
            on_host.len(),
            printed.len(),
            "modman reads every line Prosody prints"
        );
        let names = socket.loaded(DOMAIN).await.unwrap();
        assert!(names.contains(&"failing_x".to_owned()), "{names:?}");

        // Global modules: never under the host, always in the global scope.
        for global in ["global_x", "host_guard"] {
            assert!(!names.contains(&global.to_owned()), "{names:?}");
            let placements = socket.placements(global).await.unwrap();
            assert_eq!(
                placements.iter().map(|p| &p.scope).collect::<Vec<_>>(),
                [&Scope::Global],
                "{global}: {placements:?}"
            );
            assert_eq!(
                placements[0].path,
                Some(
                    prosody
                        .modules_dir()
                        .join(format!("mod_{global}/mod_{global}.lua"))
                )
            );
        }
        let globally = socket.loaded_with_status(Scope::Global).await.unwrap();
        assert!(globally.iter().any(|m| m.name == "host_guard"));
        let shell = prosody.shell("module:list(\"*\")");
        assert!(shell.contains("    host_guard\n"), "{shell}");

        let everywhere = socket.loaded_everywhere().await.unwrap();
        assert_eq!(everywhere[0].0, Scope::Global);
        let host = everywhere
            .iter()
            .find(|(scope, _)| scope == &Scope::Host(DOMAIN.into()))
            .unwrap();
        assert_eq!(host.1, on_host);

        // Where a module is loaded and with what status, from module:info.
        let failing = socket.placements("failing_x").await.unwrap();
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].scope, Scope::Host(DOMAIN.into()));
        assert_eq!(
            failing[0].status,
            status(StatusLevel::Error, "No 'failing_url' in config file (test)")
        );
        assert!(socket.placements("not_loaded_x").await.unwrap().is_empty());
    });
}

/// mod_dnsbl of the 2025 corpus loads without its option and says so.
mod prosody_13_only {
    use super::*;

    #[test]
    fn dnsbl_without_its_option_is_loaded_with_prosodys_error() {
        server().require(Version::V13, "0.12's prosody-modules has no mod_dnsbl");
        let prosody = Prosody::start();
        let socket_path = prosody.path("data/prosody.sock");
        runtime().block_on(async {
            let mut socket = AdminSocket::connect(&socket_path).await.unwrap();
            let loaded = socket
                .module(ModuleAction::Load, "dnsbl", DOMAIN)
                .await
                .unwrap();
            assert_eq!(loaded, Ok(()));
            assert!(prosody
                .module_list(DOMAIN)
                .contains(&"dnsbl (error: No 'dnsbls' in config file)".to_owned()));
            let on_host = socket
                .loaded_with_status(Scope::Host(DOMAIN.into()))
                .await
                .unwrap();
            let dnsbl = on_host.iter().find(|m| m.name == "dnsbl").unwrap();
            assert_eq!(
                dnsbl.status,
                status(StatusLevel::Error, "No 'dnsbls' in config file")
            );
        });
    }
}

/// The features each server declares: 13's name the community modules it
/// took in; 0.12 has only mod_bookmarks.
#[test]
fn the_server_declares_its_own_features() {
    let prosody = Prosody::start();
    let socket_path = prosody.path("data/prosody.sock");
    let features = runtime().block_on(async {
        let mut socket = AdminSocket::connect(&socket_path).await.unwrap();
        socket.features().await.unwrap()
    });
    assert!(features.contains("mod_bookmarks"), "{features:?}");
    match server().version {
        Version::V0_12 => assert_eq!(features.len(), 1, "{features:?}"),
        Version::V13 => {
            for feature in ["mod_flags", "mod_cloud_notify", "mod_server_info", "loader"] {
                assert!(features.contains(feature), "{feature}: {features:?}");
            }
        }
    }
}
