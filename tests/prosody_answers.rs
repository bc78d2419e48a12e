//! modman's admin socket client reads what the real Prosody answers, on
//! 0.12 and 13: a module loaded with an error or warn status is loaded, a
//! global module is found where it is (never under a host), and the
//! server's features are its own; the index a repository build makes of
//! the real corpus records what the server checks it against. Each fact is checked against what
//! `prosodyctl shell` prints, independently of modman's parser.

mod support;

use modman::engine::admin_socket::{
    AdminSocket, LoadedModule, ModuleAction, ModuleStatus, Scope, StatusLevel,
};
use modman::prosody::{Objection, Shipped};
use modman::repo::index::{DependencyKind, Index, Need};
use serde_json::json;
use support::{last, modman_with, server, Prosody, Repository, Version, DOMAIN};

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
        // A module with an error status is loaded too.
        let names: Vec<String> = on_host.iter().map(|m| m.name.clone()).collect();
        assert!(names.contains(&"failing_x".to_owned()), "{names:?}");

        // Global modules: never under the host, always in the global scope.
        let globally = socket.loaded_with_status(Scope::Global).await.unwrap();
        for global in ["global_x", "host_guard"] {
            assert!(!names.contains(&global.to_owned()), "{names:?}");
            assert!(
                globally.iter().any(|m| m.name == global),
                "{global}: {globally:?}"
            );
        }
        // And Prosody's own module:list() agrees.
        let listed = prosody.module_list("*");
        assert!(listed.iter().any(|m| m == "host_guard"), "{listed:?}");
    });
}

/// mod_dnsbl of the 2025 corpus loads without its option and says so.
mod prosody_13_only {
    use super::*;

    #[test]
    #[ignore = "Prosody 13 only: scripts/test runs it with MODMAN_TEST_PROSODY=13"]
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
    let (lasting, hosts) = runtime().block_on(async {
        let mut socket = AdminSocket::connect(&socket_path).await.unwrap();
        let lasting = socket.lasting().await.unwrap();
        let hosts = socket.hosts().await.unwrap();
        // As a new connection asks: the stream header, the hosts and the
        // facts in one write, answered in order.
        let mut asked_at_once = AdminSocket::connect(&socket_path).await.unwrap();
        let both = asked_at_once.hosts_and_lasting().await.unwrap();
        assert_eq!(both, (hosts.clone(), lasting.clone()));
        (lasting, hosts)
    });
    assert!(hosts
        .iter()
        .any(|h| h.name == "localhost" && h.component.is_none()));
    assert_eq!(lasting.lua, "5.4");
    let features = lasting.features;
    assert!(features.contains("mod_bookmarks"), "{features:?}");
    let series = match server().version {
        Version::V0_12 => "0.12.",
        Version::V13 => "13.",
    };
    assert!(lasting.version.starts_with(series), "{}", lasting.version);
    match server().version {
        Version::V0_12 => assert_eq!(features.len(), 1, "{features:?}"),
        Version::V13 => {
            for feature in ["mod_flags", "mod_cloud_notify", "mod_server_info", "loader"] {
                assert!(features.contains(feature), "{feature}: {features:?}");
            }
        }
    }
}

/// The index of the corpus of the Prosody under test, read back typed.
fn corpus_index(repository: &Repository) -> Index {
    Index::parse(&std::fs::read(repository.served().join("index.json")).unwrap()).unwrap()
}

fn dependency(index: &Index, module: &str, on: &str) -> (DependencyKind, Need) {
    let entry = index.get(module).unwrap();
    let found = entry
        .dependencies
        .iter()
        .find(|d| d.name == on)
        .unwrap_or_else(|| panic!("{module} does not depend on {on}: {:?}", entry.dependencies));
    (found.kind, found.need)
}

/// `repo build` on the real corpus: a conditional `module:depends` is
/// optional (csi_battery_saver, both corpora), a library read from another
/// module's directory is a dependency (dnsbl, 2025), and headers and stage
/// labels are recorded (mod_flags, mod_s2s_smacks_timeout, 2025).
#[test]
fn the_index_records_hidden_and_optional_dependencies_headers_and_stages() {
    let repository = Repository::start();
    let index = corpus_index(&repository);
    assert_eq!(
        dependency(&index, "csi_battery_saver", "track_muc_joins"),
        (DependencyKind::Community, Need::Optional)
    );
    assert_eq!(
        dependency(&index, "csi_battery_saver", "csi").1,
        Need::Required
    );
    // The index leaves the usual case out, so older readers see no change
    // for modules without optional dependencies or headers.
    let raw = repository.entry("csi_battery_saver");
    let needs: Vec<_> = raw["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.get("need").cloned())
        .collect();
    assert!(needs.contains(&Some(serde_json::json!("optional"))));
    assert!(needs.contains(&None));
    assert!(repository.entry("firewall").get("headers").is_none());
    if server().version == Version::V13 {
        assert_eq!(
            dependency(&index, "dnsbl", "anti_spam"),
            (DependencyKind::Community, Need::Required)
        );
        assert_eq!(index.get("flags").unwrap().headers.conflicts, ["mod_flags"]);
        assert_eq!(
            index.get("s2s_smacks_timeout").unwrap().stage.as_deref(),
            Some("obsolete")
        );
    }
}

/// What the running server has, learnt from it, against the corpus: on 13
/// the 2025 mod_flags is refused (and Prosody really keeps its own when
/// the community copy is in a plugin path); on 0.12 the prosody-modules
/// copy in Prosody's directory is named.
#[test]
fn the_server_s_own_modules_and_features_stand_against_a_community_copy() {
    let repository = Repository::start();
    let index = corpus_index(&repository);
    let prosody = Prosody::start();
    let socket_path = prosody.path("data/prosody.sock");
    let builtin = server().builtin_modules();
    runtime().block_on(async {
        let mut socket = AdminSocket::connect(&socket_path).await.unwrap();
        let facts = modman::engine::live::server_facts(&mut socket, &builtin)
            .await
            .unwrap();
        assert_eq!(facts.lua, "5.4");
        for own in ["roster", "muc"] {
            assert!(modman::prosody::has_module(&builtin, own), "{own}");
        }
        match server().version {
            Version::V0_12 => {
                // Debian's prosody-modules put it among Prosody's own:
                // told apart by the package's file list, at its version.
                let version = server()
                    .command("dpkg-query")
                    .args(["-W", "-f=${Version}", "prosody-modules"])
                    .output()
                    .unwrap();
                assert_eq!(
                    facts.objections(index.get("cloud_notify").unwrap()),
                    [Objection::BuiltIn(Shipped::Debian {
                        dir: builtin.clone(),
                        version: String::from_utf8(version.stdout).unwrap(),
                    })]
                );
                assert_eq!(
                    modman::prosody::shipped_in(&builtin, "roster"),
                    Shipped::Directory(builtin.clone())
                );
                assert!(facts
                    .objections(index.get("csi_battery_saver").unwrap())
                    .iter()
                    .all(|o| !o.refused()));
            }
            Version::V13 => {
                let objections = facts.objections(index.get("flags").unwrap());
                assert_eq!(
                    objections,
                    [
                        Objection::Conflicts(vec!["mod_flags".into()]),
                        Objection::BuiltIn(Shipped::Feature)
                    ]
                );
                assert!(objections[0].refused());
                for own in ["account_activity", "server_info"] {
                    assert!(modman::prosody::has_module(&builtin, own), "{own}");
                }
                // Prosody's side of it: the community copy first in the
                // plugin path is refused, its own mod_flags loads.
                std::process::Command::new("cp")
                    .arg("-r")
                    .arg(repository.corpus("mod_flags"))
                    .arg(prosody.modules_dir())
                    .status()
                    .unwrap();
                let loaded = socket
                    .module(ModuleAction::Load, "flags", DOMAIN)
                    .await
                    .unwrap();
                assert_eq!(loaded, Ok(()));
                let info = prosody.shell("module:info(\"flags\")");
                assert!(
                    info.contains("path: /usr/lib/prosody/modules/mod_flags.lua"),
                    "{info}"
                );
                assert!(
                    prosody.log().contains("conflicting features"),
                    "{}",
                    prosody.log()
                );
            }
        }
    });
}

/// Installing community modules that Debian's prosody-modules already put
/// in Prosody's directory says so once, for all of them, naming the
/// package's version, instead of a line per module.
#[test]
fn copies_over_debian_s_prosody_modules_are_said_once_naming_the_package() {
    let repository = Repository::start();
    let prosody = Prosody::start();
    let config = support::cli_config(&prosody, &repository);
    let (ok, out, err) = support::cli(&["refresh"], &config);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = support::cli(
        &["install", "--yes", "csi_battery_saver", "lastlog"],
        &config,
    );
    assert!(ok, "{out}{err}");
    let version = server()
        .command("dpkg-query")
        .args(["-W", "-f=${Version}", "prosody-modules"])
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let said: Vec<&str> = out
        .split(". ")
        .filter(|s| s.contains(&format!("prosody-modules ({version})")))
        .collect();
    assert_eq!(said.len(), 1, "{out}");
    assert!(
        said[0].contains("mod_csi_battery_saver") && said[0].contains("mod_lastlog"),
        "{out}"
    );
    for module in ["csi_battery_saver", "lastlog"] {
        assert!(prosody.modules_dir().join(format!("mod_{module}")).is_dir());
    }
}

/// `list` labels a module of Prosody's directory that modman enabled by
/// whose it is, in the form's `installed` field: lastlog, which Debian's
/// prosody-modules put there, apart from Prosody's own mam.
#[test]
fn list_tells_debian_s_prosody_modules_from_prosody_s_own() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let (_modman, mut admin) = modman_with(&prosody, &repository);
    let builtin = server().builtin_modules();
    assert!(matches!(
        modman::prosody::shipped_in(&builtin, "lastlog"),
        Shipped::Debian { .. }
    ));
    let enable = admin.run(
        "enable",
        json!({"modules": ["lastlog", "mam"], "hosts": [DOMAIN]}),
    );
    assert_eq!(last(&enable)["status"], "completed", "{enable}");
    let list = admin.run("list", json!({"show": "installed"}));
    let items = last(&list)["form"]["items"].as_array().unwrap().clone();
    let installed = |module: &str| {
        items
            .iter()
            .find(|row| row["module"] == module)
            .and_then(|row| row["installed"].as_str())
            .map(str::to_owned)
    };
    let debian = modman::prosody::shipped_in(&builtin, "lastlog").whose();
    let own = Shipped::Directory(builtin.clone()).whose();
    assert_ne!(debian, own);
    assert_eq!(installed("lastlog").as_deref(), Some(debian), "{list}");
    assert_eq!(installed("mam").as_deref(), Some(own), "{list}");
}
