//! The admin's first hour: `modman setup` on a Prosody that has never seen
//! modman, `modman check` all green, an admin listing modules over XMPP;
//! and each check failing with its fix.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use support::{
    cli, cli_binary, json_rows, Client, Modman, Program, Prosody, Repository, ADMIN, DOMAIN,
};

#[test]
fn setup_then_check_then_an_admin_lists_modules_over_xmpp() {
    first_hour(&Program::this_build());
}

/// The Debian package, as scripts/test builds it and installs it in the
/// Prosody 13 chroot (never on the machine running the tests): its files,
/// its unit, and the same first hour with the installed binary, run inside
/// the chroot with the chroot's libraries.
mod prosody_13_only {
    use super::*;
    use support::{server, Version};

    #[test]
    #[ignore = "Prosody 13 only: scripts/test runs it with MODMAN_TEST_PROSODY=13"]
    fn the_installed_debian_package_does_the_first_hour_too() {
        let server = server();
        server.require(
            Version::V13,
            "scripts/test installs the package only in the Prosody 13 chroot",
        );
        let version = server
            .command("dpkg-query")
            .args(["-W", "-f=${Version}", "modman"])
            .output()
            .unwrap();
        let version = String::from_utf8_lossy(&version.stdout).into_owned();
        assert!(
            version.starts_with(env!("CARGO_PKG_VERSION")),
            "modman installed in {} is `{version}`: run scripts/test",
            server.root.display()
        );
        let unit_path = "/usr/lib/systemd/system/modman.service";
        for file in [
            "/usr/bin/modman",
            unit_path,
            "/etc/modman/modman.example.toml",
        ] {
            assert!(
                server.host_path(file).is_file(),
                "{file} is not installed in {}",
                server.root.display()
            );
        }
        let unit = std::fs::read_to_string(server.host_path(unit_path)).unwrap();
        for line in [
            "User=prosody",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/prosody",
            "PrivateTmp=yes",
            "ExecStart=/usr/bin/modman run --config /etc/modman/modman.toml",
        ] {
            assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
        }
        // The chroot's own systemd checks the unit against the chroot's
        // files (its ExecStart binary, its user).
        let verify = server
            .command("systemd-analyze")
            .args(["verify", unit_path])
            .output()
            .expect("systemd-analyze runs in the chroot");
        assert!(
            verify.status.success() && verify.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let installed = Program {
            chroot: Some(server.root.clone()),
            path: "/usr/bin/modman".into(),
        };
        let help = installed.command().arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        for command in ["run", "setup", "check", "install", "enable", "repo"] {
            assert!(
                help.contains(&format!("  {command} ")),
                "--help lacks {command}:\n{help}"
            );
        }
        first_hour(&installed);
    }
}

/// A Prosody that has never seen modman; `modman setup`, without and with
/// --write; a restart; `modman check` all green; an admin lists modules.
fn first_hour(binary: &Program) {
    let mut prosody = Prosody::start_plain();
    let original = std::fs::read_to_string(prosody.config_path()).unwrap();
    assert!(
        !original.contains("modman.localhost") && !original.contains("admin_shell"),
        "{original}"
    );
    let modman_toml = prosody.path("etc/modman.toml");
    let setup = |write: bool| {
        let output = binary
            .command()
            .args(["setup", "--domain", DOMAIN, "--prosody-config"])
            .arg(prosody.config_path())
            .arg("--config")
            .arg(&modman_toml)
            .arg("--data-dir")
            .arg(prosody.path("data"))
            .arg("--state-dir")
            .arg(prosody.path("modman-state"))
            // The community repository is the default; tests reach only
            // this machine.
            .arg("--no-repository")
            .args(write.then_some("--write"))
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{printed}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        printed
    };
    let printed = setup(false);
    // Without --write, nothing is touched.
    assert!(
        printed.contains("nothing was written; add --write"),
        "{printed}"
    );
    assert!(
        printed.contains("+ Component \"modman.localhost\""),
        "{printed}"
    );
    assert_eq!(
        std::fs::read_to_string(prosody.config_path()).unwrap(),
        original
    );
    assert!(!modman_toml.exists());

    let printed = setup(true);
    let backup = printed
        .split("to ")
        .nth(1)
        .unwrap()
        .split(".bak")
        .next()
        .unwrap()
        .to_owned()
        + ".bak";
    assert_eq!(
        std::fs::read_to_string(backup.trim()).unwrap(),
        original,
        "the backup is the original"
    );

    prosody.restart();
    let (ok, out, err) = cli_binary(binary, &["check", "--json"], &modman_toml);
    assert!(
        ok,
        "check failed after setup:\n{out}{err}\nProsody's log:\n{}",
        prosody.log()
    );
    let checks = json_rows(&out, "check");
    for check in [
        "component",
        "module directory",
        "managed config",
        "admin socket",
        "plugin_paths",
    ] {
        assert_eq!(checks[check]["outcome"], "ok", "{out}");
    }
    assert_eq!(checks["repositories"]["outcome"], "warning", "{out}");

    let _modman = Modman::start_binary(
        &prosody,
        &std::fs::read_to_string(&modman_toml).unwrap(),
        binary,
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    let list = admin.run("list", json!({}));
    assert_eq!(list["steps"][1]["status"], "completed", "{list}");
    // Over XMPP too, the same checks, and this modman is the one connected.
    let check = admin.run_steps("check", json!([]));
    let rows = check["steps"][0]["form"]["items"]
        .as_array()
        .unwrap()
        .clone();
    let component = rows.iter().find(|r| r["check"] == "component").unwrap();
    assert!(
        component["detail"]
            .as_str()
            .unwrap()
            .starts_with("connected to"),
        "{component}"
    );
}

/// Runs check with `config`: whether it passed, and its rows by check.
fn check_with(prosody: &Prosody, config: &str) -> (bool, BTreeMap<String, Value>) {
    let path = prosody.path("check.toml");
    std::fs::write(&path, config).unwrap();
    // It holds the component secret: check refuses it readable by all.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, out, _) = cli(&["check", "--json"], &path);
    (ok, json_rows(&out, "check"))
}

#[test]
fn every_failed_check_says_how_to_fix_it() {
    let mut prosody = Prosody::start();
    let repository = Repository::start();
    let good = prosody.modman_config() + &repository.config_section();
    let (ok, checks) = check_with(&prosody, &good);
    assert!(ok, "{checks:?}");
    assert!(
        checks.values().all(|row| row["outcome"] == "ok"),
        "{checks:?}"
    );
    let dir = prosody.dir.path().display().to_string();

    let cases: Vec<(String, &str, &str)> = vec![
        (
            good.replace("test-secret", "wrong"),
            "component",
            "the secret in modman.toml differs from component_secret",
        ),
        (
            good.replace(&format!("{dir}/modules"), &format!("{dir}/nowhere")),
            "module directory",
            "does not exist; create it",
        ),
        (
            good.replace(&format!("{dir}/modules"), &format!("{dir}/data")),
            "plugin_paths",
            "does not search",
        ),
        (
            good.replace("modman.cfg.lua", "other.cfg.lua"),
            "managed config",
            "does not Include",
        ),
        (
            good.replace("prosody.sock", "nothing.sock"),
            "admin socket",
            "add \"admin_shell\" to modules_enabled",
        ),
        (
            good.replace(&format!("127.0.0.1:{}/", repository.port), "127.0.0.1:9/"),
            "repository local",
            "is the repository up",
        ),
    ];
    for (config, check, fix) in cases {
        let (ok, checks) = check_with(&prosody, &config);
        assert!(!ok, "{check}: exit 0 on a failure:\n{checks:?}");
        let row = &checks[check];
        assert_eq!(row["outcome"], "failed", "{check}: {row}");
        assert!(row["detail"].as_str().unwrap().contains(fix), "{row}");
    }

    // Prosody down: the component and the admin socket fail, with the fix.
    let config_path = prosody.path("check.toml");
    std::fs::write(&config_path, &good).unwrap();
    prosody.stop();
    let (ok, out, _) = cli(&["check", "--json"], &config_path);
    assert!(!ok);
    let checks = json_rows(&out, "check");
    assert_eq!(checks["component"]["outcome"], "failed", "{out}");
    assert!(
        checks["component"]["detail"]
            .as_str()
            .unwrap()
            .contains("is Prosody running"),
        "{out}"
    );
    assert_eq!(checks["admin socket"]["outcome"], "failed", "{out}");
    assert!(Path::new(&config_path).exists());
}
