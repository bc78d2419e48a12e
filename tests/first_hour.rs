//! The admin's first hour: `modman setup` on a Prosody that has never seen
//! modman, `modman check` all green, an admin listing modules over XMPP;
//! and each check failing with its fix.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use modman::prosody::Nagle;
use serde_json::{json, Value};
use support::{
    cli, cli_binary, json_rows, last, Client, Modman, Program, Prosody, Repository, ADMIN,
    COMPONENT, DOMAIN,
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
            "ExecReload=/usr/bin/modman reload --config /etc/modman/modman.toml",
            "TimeoutStopSec=90",
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
        manual_and_completions_installed(server);
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

    /// The admin's path with the installed package, as systemd would run
    /// it: `setup --write` on a prosody.cfg.lua owned as Debian ships it;
    /// `prosodyctl check config` as prosody; the unit's ExecStartPre and
    /// ExecStart command lines as prosody, with no repository reachable;
    /// `setup --undo` back to the very bytes, and Prosody without modman.
    #[test]
    #[ignore = "Prosody 13 only: scripts/test runs it with MODMAN_TEST_PROSODY=13"]
    fn the_installed_package_runs_as_its_unit_without_a_repository_and_undoes_setup() {
        let server = server();
        server.require(
            Version::V13,
            "scripts/test installs the package only in the Prosody 13 chroot",
        );
        let installed = Program {
            chroot: Some(server.root.clone()),
            path: "/usr/bin/modman".into(),
        };
        let mut prosody = prosody_as_debian_ships_it();
        let config = prosody.config_path();
        let original = std::fs::read(&config).unwrap();
        let original_owner = owner_and_mode(&config);
        let modman_toml = prosody.path("etc/modman.toml");
        // A repository nobody answers for: this host has no route to it.
        let repository_url = format!("http://127.0.0.1:{}/", support::free_port());
        let output = installed
            .command()
            .args(["setup", "--domain", DOMAIN, "--write", "--prosody-config"])
            .arg(&config)
            .arg("--config")
            .arg(&modman_toml)
            .arg("--data-dir")
            .arg(prosody.path("data"))
            .arg("--state-dir")
            .arg(prosody.path("modman-state"))
            .args(["--repository", &repository_url])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(owner_and_mode(&config), original_owner);
        let config_text = config.display().to_string();
        let check = as_prosody(&["prosodyctl", "--config", &config_text, "check", "config"])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "prosodyctl check config as prosody:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        restart_as_debian_runs_it(&mut prosody);

        // The unit's command lines, with this modman.toml.
        let command_line = |key: &str| unit_command_line(key, &modman_toml);
        let pre = command_line("ExecStartPre=");
        let pre: Vec<&str> = pre.iter().map(String::as_str).collect();
        let checked = as_prosody(&pre).output().unwrap();
        let printed = String::from_utf8_lossy(&checked.stdout).into_owned();
        assert!(
            checked.status.success(),
            "ExecStartPre failed:\n{printed}{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        assert!(
            printed
                .lines()
                .any(|l| l.starts_with("repository community (outcome: unavailable")),
            "{printed}"
        );
        let (mut daemon, log_path) = start_as_the_unit(&prosody, &modman_toml);
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let warned = support::wait_for("the warning on the repository", || {
            log()
                .lines()
                .find(|l| l.contains("WARN") && l.contains("repository community cannot be read"))
                .map(str::to_owned)
        });
        assert!(warned.contains("--from-debian"), "{warned}");

        // The way out the warning names: a repository built from Debian's
        // prosody-modules by the installed modman, named in modman.toml
        // instead, applied by `modman reload` (run as the unit's
        // ExecReload runs it) without a restart of the service.
        let repository = support::Repository::start_from_debian_by(&installed);
        let toml = std::fs::read_to_string(&modman_toml).unwrap();
        let community = format!(
            "[[repositories]]\nname = \"community\"\nurl = \"{repository_url}\"\nkind = \"luarocks\"\n"
        );
        assert!(toml.contains(&community), "{toml}");
        std::fs::write(
            &modman_toml,
            toml.replace(&community, &repository.config_section()),
        )
        .unwrap();
        let reload = command_line("ExecReload=");
        let reload: Vec<&str> = reload.iter().map(String::as_str).collect();
        let reloaded = as_prosody(&reload).output().unwrap();
        assert!(reloaded.status.success(), "{reloaded:?}");
        support::wait_for("modman to connect again", || {
            (log().matches("connected to Prosody").count() == 2).then_some(())
        });
        let mut admin = Client::connect(&prosody, ADMIN);
        let refresh = admin.run("refresh", json!({}));
        let items = |reply: &Value| last(reply)["form"]["items"].as_array().unwrap().clone();
        let refreshed = items(&refresh);
        let local = refreshed.iter().find(|r| r["repository"] == "local");
        assert_eq!(
            local.map(|r| &r["outcome"]),
            Some(&json!("ok")),
            "{refresh}"
        );
        let list = admin.run("list", json!({"show": "available"}));
        assert!(
            items(&list)
                .iter()
                .any(|row| row["module"] == "csi_battery_saver"),
            "{list}"
        );
        drop(admin);

        // As systemd stops it: SIGTERM to modman itself.
        let stopped = std::process::Command::new("kill")
            .arg(modman_under(&daemon).to_string())
            .status()
            .unwrap();
        assert!(stopped.success());
        assert!(daemon.wait().unwrap().success(), "{}", log());

        let undo = installed
            .command()
            .args(["setup", "--undo", "--prosody-config"])
            .arg(&config)
            .arg("--config")
            .arg(&modman_toml)
            .output()
            .unwrap();
        assert!(undo.status.success(), "{undo:?}");
        assert_eq!(std::fs::read(&config).unwrap(), original);
        assert_eq!(owner_and_mode(&config), original_owner);
        prosody.restart();
        drop(Client::connect(&prosody, ADMIN));
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", prosody.component_port)).is_err(),
            "Prosody still has a component port open after setup --undo"
        );
    }

    /// `apt-get purge` with the daemon running as its unit runs it, and
    /// a module enabled through it: no modman process is left, modman's
    /// own config and state are gone, and Prosody, whose config still has
    /// setup's lines, starts on it and loads what modman had enabled (the
    /// module directory and managed config are left, as postrm says).
    /// It purges the package the other Prosody 13 tests run, so
    /// scripts/test runs it alone, after them, and it installs the package
    /// again at its end (`MODMAN_TEST_DEB`, the .deb scripts/test built),
    /// whether it passes or not.
    #[test]
    #[ignore = "Prosody 13 only, alone: scripts/test runs it by name after the other Prosody 13 tests"]
    fn apt_get_purge_leaves_no_daemon_and_prosody_starting() {
        let server = server();
        server.require(
            Version::V13,
            "scripts/test installs the package only in the Prosody 13 chroot",
        );
        let deb = std::env::var_os("MODMAN_TEST_DEB")
            .map(std::path::PathBuf::from)
            .filter(|deb| deb.is_file())
            .expect(
                "MODMAN_TEST_DEB names the .deb to install again after the purge: run it as scripts/test does",
            );
        let _reinstall = InstallAgain(deb);
        let mut prosody = prosody_as_debian_ships_it();
        // modman.toml and the state where the package's unit has them.
        let modman_toml = Path::new("/etc/modman/modman.toml");
        let state = "/var/lib/modman";
        let setup = Program {
            chroot: Some(server.root.clone()),
            path: "/usr/bin/modman".into(),
        }
        .command()
        .args(["setup", "--domain", DOMAIN, "--write", "--no-repository"])
        .arg("--prosody-config")
        .arg(prosody.config_path())
        .arg("--data-dir")
        .arg(prosody.path("data"))
        .output()
        .unwrap();
        assert!(setup.status.success(), "{setup:?}");
        restart_as_debian_runs_it(&mut prosody);
        let (mut daemon, log_path) = start_as_the_unit(&prosody, modman_toml);
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let mut admin = Client::connect(&prosody, ADMIN);
        let enable = admin.run("enable", json!({"modules": ["motd"]}));
        assert_eq!(last(&enable)["status"], "completed", "{enable}");
        drop(admin);
        assert!(!running_modmans(server).is_empty(), "{}", log());

        let purge = with_proc(&["apt-get", "purge", "-y", "-q", "modman"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        assert!(purge.status.success(), "{purge:?}");
        support::wait_for("runuser to see modman end", || {
            daemon.try_wait().unwrap().map(|_| ())
        });
        assert_eq!(running_modmans(server), Vec::<u32>::new(), "{}", log());
        assert!(!server.host_path("/usr/bin/modman").exists());
        for gone in [modman_toml.to_str().unwrap(), state] {
            assert!(!server.host_path(gone).exists(), "purge left {gone}");
        }
        // What Prosody reads stays, as the note says.
        let note = String::from_utf8_lossy(&purge.stderr);
        for left in ["/var/lib/prosody/modman", "/var/lib/prosody/modman.cfg.lua"] {
            assert!(
                note.contains(left),
                "the note does not name {left}:\n{note}"
            );
        }
        assert!(prosody.path("data/modman").is_dir());
        assert!(prosody.path("data/modman.cfg.lua").is_file());
        prosody.restart();
        drop(Client::connect(&prosody, ADMIN));
        assert!(prosody.loaded_modules(DOMAIN).contains(&"motd".to_owned()));
    }

    /// `man modman`, a page per subcommand, and the completions where
    /// Debian's man-db, bash-completion, zsh and fish look for them; each
    /// page renders without a warning from groff, and bash takes the
    /// completion.
    fn manual_and_completions_installed(server: &support::Server) {
        use std::io::{Read, Write};
        for page in [
            "modman",
            "modman-setup",
            "modman-install",
            "modman-repo-build",
        ] {
            let path = server.host_path(&format!("/usr/share/man/man1/{page}.1.gz"));
            let mut roff = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_string(&mut roff)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for section in ["NAME", "SYNOPSIS", "DESCRIPTION"] {
                assert!(
                    roff.lines().any(|l| l == format!(".SH {section}")),
                    "{page}.1 has no {section} section"
                );
            }
            let mut groff = std::process::Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .env("LC_ALL", "C.UTF-8")
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("groff runs (scripts/test installs groff-base)");
            groff
                .stdin
                .take()
                .unwrap()
                .write_all(roff.as_bytes())
                .unwrap();
            let rendered = groff.wait_with_output().unwrap();
            assert!(
                rendered.status.success() && rendered.stderr.is_empty(),
                "groff on {page}.1: {}",
                String::from_utf8_lossy(&rendered.stderr)
            );
        }
        for file in [
            "/usr/share/zsh/vendor-completions/_modman",
            "/usr/share/fish/vendor_completions.d/modman.fish",
        ] {
            assert!(server.host_path(file).is_file(), "{file} is not installed");
        }
        let bash = server.host_path("/usr/share/bash-completion/completions/modman");
        let registered = std::process::Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1" && complete -p modman"#)
            .arg("bash")
            .arg(&bash)
            .output()
            .unwrap();
        assert!(
            registered.status.success(),
            "{}: {registered:?}",
            bash.display()
        );
    }

    /// At its end, whatever happened, the package is installed again in
    /// the chroot from this .deb, with nothing of the purged one's config
    /// or state, as scripts/test left it.
    struct InstallAgain(std::path::PathBuf);

    impl Drop for InstallAgain {
        fn drop(&mut self) {
            let root = &server().root;
            let inside = "/tmp/modman-install-again.deb";
            std::fs::copy(&self.0, server().host_path(inside)).unwrap();
            // dpkg --purge is quiet about a package already purged.
            let install = [
                "apt-get",
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                inside,
            ];
            for args in [&["dpkg", "--purge", "modman"][..], &install] {
                let done = with_proc(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .output()
                    .unwrap();
                if !done.status.success() {
                    let failed = format!("{args:?} in {}: {done:?}", root.display());
                    // A second panic while the test's own unwinds would
                    // abort and hide the first.
                    match std::thread::panicking() {
                        true => eprintln!("{failed}"),
                        false => panic!("{failed}"),
                    }
                }
            }
            let _ = std::fs::remove_file(server().host_path(inside));
        }
    }

    /// A Prosody whose prosody.cfg.lua is owned as Debian ships it:
    /// root's, readable by the prosody group only; its directory open to
    /// the prosody user, as /etc/prosody is, and its data directory the
    /// prosody user's, as /var/lib/prosody is.
    fn prosody_as_debian_ships_it() -> Prosody {
        use std::os::unix::fs::PermissionsExt;
        let prosody = Prosody::start_plain();
        let config = prosody.config_path();
        let (uid, gid) = prosody_ids();
        std::os::unix::fs::chown(prosody.path("data"), Some(uid), Some(gid)).unwrap();
        std::os::unix::fs::chown(&config, Some(0), Some(gid)).unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(prosody.dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        prosody
    }

    /// Restarts Prosody and gives its admin socket to the prosody user:
    /// the harness runs Prosody as root, Debian's runs as prosody.
    fn restart_as_debian_runs_it(prosody: &mut Prosody) {
        prosody.restart();
        let (uid, gid) = prosody_ids();
        std::os::unix::fs::lchown(prosody.path("data/prosody.sock"), Some(uid), Some(gid)).unwrap();
    }

    /// The prosody user's uid and gid in the chroot.
    fn prosody_ids() -> (u32, u32) {
        let id = |flag: &str| -> u32 {
            let out = server()
                .command("id")
                .args([flag, "prosody"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        (id("-u"), id("-g"))
    }

    /// `args` run in the chroot as the prosody user, as the unit runs
    /// modman (with /proc, where modman finds its own executable to
    /// restart in place on a reload).
    fn as_prosody(args: &[&str]) -> std::process::Command {
        with_proc(&[&["runuser", "-u", "prosody", "--"], args].concat())
    }

    /// `args` run in the chroot with /proc mounted there, as on a real
    /// system, where the package's scripts find the processes to stop:
    /// mounted in a mount namespace of its own, so the shared chroot never
    /// has it.
    fn with_proc(args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--fork", "--"])
            .args([
                "sh",
                "-c",
                r#"mount -t proc proc "$1/proc" && exec chroot "$@""#,
                "sh",
            ])
            .arg(&server().root)
            .args(args);
        command
    }

    /// modman started as the unit's ExecStart runs it, with
    /// `modman_toml`, once it has connected to `prosody`: the process
    /// started, and the file its log goes to.
    fn start_as_the_unit(
        prosody: &Prosody,
        modman_toml: &Path,
    ) -> (std::process::Child, std::path::PathBuf) {
        let start = unit_command_line("ExecStart=", modman_toml);
        let start: Vec<&str> = start.iter().map(String::as_str).collect();
        let log_path = prosody.path("modman-unit.log");
        let daemon = as_prosody(&start)
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        support::wait_for("the daemon to connect", || {
            std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .contains("connected to Prosody")
                .then_some(())
        });
        (daemon, log_path)
    }

    /// The command line after `key` (`ExecStart=`...) in the installed
    /// unit, with `modman_toml` for the unit's modman.toml.
    fn unit_command_line(key: &str, modman_toml: &Path) -> Vec<String> {
        let unit =
            std::fs::read_to_string(server().host_path("/usr/lib/systemd/system/modman.service"))
                .unwrap();
        let line = unit
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in the unit"));
        line.replace(
            "/etc/modman/modman.toml",
            &modman_toml.display().to_string(),
        )
        .split_whitespace()
        .map(str::to_owned)
        .collect()
    }

    /// The PID of the modman that `parent` started (through unshare,
    /// chroot and runuser): the first process under it running the
    /// chroot's /usr/bin/modman.
    fn modman_under(parent: &std::process::Child) -> u32 {
        let binary = server().host_path("/usr/bin/modman");
        let mut pids = vec![parent.id()];
        while let Some(pid) = pids.pop() {
            if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary) {
                return pid;
            }
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        panic!("no modman runs under PID {}", parent.id())
    }

    /// The processes of this machine running the chroot's
    /// /usr/bin/modman (or that file since deleted).
    fn running_modmans(server: &support::Server) -> Vec<u32> {
        let binary = server.host_path("/usr/bin/modman");
        let deleted = format!("{} (deleted)", binary.display());
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|exe| exe == binary || exe.as_os_str() == deleted.as_str())
            })
            .collect()
    }
}

/// A Prosody that has never seen modman; `modman setup`, without and with
/// --write; a restart; `modman check` all green; an admin lists modules.
fn first_hour(binary: &Program) {
    let mut prosody = Prosody::start_plain();
    let original = std::fs::read_to_string(prosody.config_path()).unwrap();
    let original_owner = owner_and_mode(&prosody.config_path());
    assert!(
        !original.contains("modman.localhost") && !original.contains("admin_shell"),
        "{original}"
    );
    let modman_toml = prosody.path("etc/modman.toml");
    // The community repository is the default; tests reach only this
    // machine.
    let plan = ["--domain", DOMAIN, "--no-repository"];
    let json_setup = |extra: &[&str]| -> Value {
        let printed = setup(binary, &prosody, &[&plan[..], &["--json"], extra].concat());
        serde_json::from_str(&printed).unwrap_or_else(|e| panic!("{e}: {printed}"))
    };
    let planned = json_setup(&[]);
    // Without --write, nothing is touched.
    assert_eq!(
        (
            &planned["written"],
            &planned["backup"],
            &planned["component"]
        ),
        (&json!(false), &Value::Null, &json!("modman.localhost")),
        "{planned}"
    );
    let added = planned["prosody_config_added"].as_array().unwrap();
    assert!(
        added.contains(&json!("Component \"modman.localhost\"")),
        "{planned}"
    );
    assert_eq!(
        std::fs::read_to_string(prosody.config_path()).unwrap(),
        original
    );
    assert!(!modman_toml.exists());

    let written = json_setup(&["--write"]);
    assert_eq!(written["written"], true, "{written}");
    let backup = written["backup"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(backup).unwrap(),
        original,
        "the backup is the original"
    );

    // prosody.cfg.lua Includes the managed config by a pattern that
    // matches nothing while it is missing: Prosody starts all the same.
    let managed = prosody.path("data/modman.cfg.lua");
    let aside = prosody.path("data/modman.cfg.lua.aside");
    std::fs::rename(&managed, &aside).unwrap();
    let check = support::prosodyctl(&prosody, &["check", "config"]);
    assert!(
        check.status.success(),
        "prosodyctl check config without the managed config:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    prosody.restart();
    std::fs::rename(&aside, &managed).unwrap();

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
    // setup turned Nagle's algorithm off, and Prosody holds it so.
    assert_eq!(
        Nagle::from_network_settings(&prosody.config_get("*", "network_settings")),
        Nagle::Off
    );
    assert!(!checks.contains_key("nagle"), "{out}");

    let modman = Modman::start_binary(
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

    // The admin enables one of Prosody's own modules through modman, then
    // takes modman out again.
    let enable = admin.run("enable", json!({"modules": ["motd"]}));
    assert_eq!(enable["steps"][1]["status"], "completed", "{enable}");
    assert!(prosody.loaded_modules(DOMAIN).contains(&"motd".to_owned()));
    assert!(modman.terminate());
    let printed = setup(binary, &prosody, &["--undo"]);
    assert_eq!(
        std::fs::read(prosody.config_path()).unwrap(),
        original.as_bytes(),
        "prosody.cfg.lua after setup --undo differs from before setup"
    );
    assert_eq!(owner_and_mode(&prosody.config_path()), original_owner);
    assert!(!prosody.loaded_modules(DOMAIN).contains(&"motd".to_owned()));
    // What setup made and undo leaves is named, with how to remove it.
    for left in [prosody.path("data/modman"), prosody.path("modman-state")] {
        assert!(
            printed.contains(&format!(" {}", left.display())),
            "{printed}"
        );
    }
    // Prosody starts on the config as it was (the restart waits for it to
    // listen), serves its users, and has no component for modman.
    prosody.restart();
    drop(Client::connect(&prosody, ADMIN));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", prosody.component_port)).is_err(),
        "Prosody still has a component port open after setup --undo"
    );
}

/// `modman setup ARGS` on the test Prosody's paths, as an admin runs it
/// and then undoes it; what it printed.
fn setup(binary: &Program, prosody: &Prosody, args: &[&str]) -> String {
    let output = binary
        .command()
        .arg("setup")
        .args(args)
        .arg("--prosody-config")
        .arg(prosody.config_path())
        .arg("--config")
        .arg(prosody.path("etc/modman.toml"))
        .arg("--data-dir")
        .arg(prosody.path("data"))
        .arg("--state-dir")
        .arg(prosody.path("modman-state"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).unwrap();
    (metadata.uid(), metadata.gid(), metadata.mode())
}

/// Runs check with `config`: whether it passed, and its rows by check.
fn check_with(prosody: &Prosody, config: &str) -> (bool, BTreeMap<String, Value>) {
    check_as(prosody, config, &["check"])
}

/// `modman ARGS --json --config` with `config` written as modman.toml:
/// whether it passed, and its rows by check.
fn check_as(prosody: &Prosody, config: &str, args: &[&str]) -> (bool, BTreeMap<String, Value>) {
    let path = prosody.path("check.toml");
    std::fs::write(&path, config).unwrap();
    // It holds the component secret: check refuses it readable by all.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, out, _) = cli(&[args, &["--json"]].concat(), &path);
    (ok, json_rows(&out, "check"))
}

/// A first start on a host with no route to its repository: `check` names
/// the file a refresh would fetch and fails, with the way out; the check
/// the service runs before starting accepts it; the daemon starts, says
/// so in its log with the way out, and serves.
#[test]
fn a_repository_out_of_reach_is_said_at_start_and_never_stops_the_service() {
    let prosody = Prosody::start();
    // A port of this machine nobody listens on: a repository out of reach.
    let url = format!("http://127.0.0.1:{}/", support::free_port());
    let config = prosody.modman_config() + &support::luarocks_section(&url);
    let manifest = format!("{url}manifest-5.4");
    let repository_row = |checks: &BTreeMap<String, Value>| {
        let row = &checks["repository community"];
        assert_eq!(row["outcome"], "unavailable", "{row}");
        // The URL a refresh fetches first, and both ways out.
        let detail = row["detail"].as_str().unwrap();
        for fact in [
            manifest.as_str(),
            "modman repo mirror --from",
            "modman repo build --from-debian",
        ] {
            assert!(detail.contains(fact), "{fact} not in {detail}");
        }
    };
    let (ok, checks) = check_as(&prosody, &config, &["check"]);
    assert!(
        !ok,
        "check by hand passed with a repository out of reach:\n{checks:?}"
    );
    repository_row(&checks);
    // Printed once, not again as an error line.
    let (_, out, err) = cli(&["check"], &prosody.path("check.toml"));
    assert_eq!(
        (out + &err)
            .matches("Unavailable: repository community.")
            .count(),
        1
    );

    let (ok, checks) = check_as(&prosody, &config, &["check", "--at-start"]);
    assert!(ok, "the service's check refused to start:\n{checks:?}");
    repository_row(&checks);

    // Real misconfiguration still stops the service.
    let broken = config.replace("test-secret", "wrong");
    let (ok, checks) = check_as(&prosody, &broken, &["check", "--at-start"]);
    assert!(!ok, "{checks:?}");
    assert_eq!(checks["component"]["outcome"], "failed", "{checks:?}");

    let modman = Modman::start(&prosody, &config);
    let warned = support::wait_for("the start-up warning on the repository", || {
        let log = modman.log();
        log.lines()
            .find(|l| l.contains("WARN") && l.contains("repository community cannot be read"))
            .map(str::to_owned)
    });
    assert!(
        warned.contains(&manifest) && warned.contains("--from-debian"),
        "{warned}"
    );
    // The first refresh, with no index yet, is no "done" either.
    support::wait_for("the first refresh's warning", || {
        modman
            .log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("scheduled refresh: "))
            .then_some(())
    });
    assert!(!modman.log().contains("scheduled refresh done"));
    let mut admin = Client::connect(&prosody, ADMIN);
    let checks = admin.run_steps("check", json!([]));
    let rows = checks["steps"][0]["form"]["items"].as_array().unwrap();
    let component = rows.iter().find(|r| r["check"] == "component").unwrap();
    assert!(
        component["detail"]
            .as_str()
            .unwrap()
            .starts_with("connected to"),
        "{component}"
    );
    assert!(modman.terminate());
}

#[test]
fn every_failed_check_says_how_to_fix_it() {
    let mut prosody = Prosody::start();
    let repository = Repository::start();
    let good = prosody.modman_config() + &repository.config_section();
    let (ok, checks) = check_with(&prosody, &good);
    assert!(ok, "{checks:?}");
    // Prosody's default, Nagle's algorithm on: a warning, not a failure.
    assert_eq!(
        Nagle::from_network_settings(&prosody.config_get("*", "network_settings")),
        Nagle::On
    );
    assert_eq!(checks["nagle"]["outcome"], "warning", "{checks:?}");
    assert!(
        checks
            .iter()
            .all(|(check, row)| check == "nagle" || row["outcome"] == "ok"),
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

/// The lines of modman's log that `needle` is in.
fn logged(modman: &Modman, needle: &str) -> usize {
    modman.log().matches(needle).count()
}

/// `modman reload` for the modman.toml at `toml`; its output must name
/// modman's PID.
fn reload(modman: &Modman, toml: &Path) {
    let (ok, out, err) = cli(&["reload"], toml);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("PID {}", modman.pid())), "{out}");
}

/// `modman reload` with modman.toml unchanged, then broken: nothing
/// changes (the same process, the same connection, still serving), and the
/// log says why; with no modman running for a config, it says so and fails.
#[test]
fn a_reload_of_an_unchanged_or_broken_modman_toml_changes_nothing() {
    let prosody = Prosody::start();
    let config = prosody.modman_config();
    let mut modman = Modman::start(&prosody, &config);
    let toml = prosody.path("modman.toml");
    reload(&modman, &toml);
    support::wait_for("the unchanged reload to be logged", || {
        (logged(&modman, "nothing changed") == 1).then_some(())
    });
    std::fs::write(&toml, "admins = [").unwrap();
    reload(&modman, &toml);
    support::wait_for("the broken file to be logged", || {
        (logged(&modman, "no longer loads") == 1).then_some(())
    });
    let mut admin = Client::connect(&prosody, ADMIN);
    let list = admin.run("list", json!({}));
    assert_eq!(last(&list)["status"], "completed", "{list}");
    assert!(modman.running());
    assert_eq!(logged(&modman, "connected to Prosody"), 1);
    let (ok, _, _) = cli(&["reload"], &prosody.path("elsewhere.toml"));
    assert!(!ok, "a reload with no modman running succeeded");
    assert!(modman.terminate());
}

/// The way out of a repository out of reach: a repository built with
/// `modman repo build --from-debian`, served on 127.0.0.1, named in
/// modman.toml and applied by `modman reload`: the same process starts
/// again with it, and the admin lists and installs its modules.
#[test]
fn a_reload_applies_a_repository_built_from_debian() {
    let prosody = Prosody::start();
    let url = format!("http://127.0.0.1:{}/", support::free_port());
    let out_of_reach = support::luarocks_section(&url);
    let config = prosody.modman_config() + &out_of_reach;
    let mut modman = Modman::start(&prosody, &config);
    let mut admin = Client::connect(&prosody, ADMIN);
    let offered = |admin: &mut Client| -> Vec<String> {
        let list = admin.run("list", json!({"show": "available"}));
        last(&list)["form"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| row["module"].as_str().map(str::to_owned))
            .collect()
    };
    let outcome = |admin: &mut Client, name: &str| {
        let refresh = admin.run("refresh", json!({}));
        let rows = last(&refresh)["form"]["items"].as_array().unwrap().clone();
        let row = rows.iter().find(|r| r["repository"] == name);
        row.map(|r| r["outcome"].clone())
            .unwrap_or_else(|| panic!("no {name} row: {refresh}"))
    };
    assert_eq!(outcome(&mut admin, "community"), "failed");
    assert_eq!(offered(&mut admin), Vec::<String>::new());

    let repository = Repository::start_from_debian();
    let toml = prosody.path("modman.toml");
    std::fs::write(
        &toml,
        config.replace(&out_of_reach, &repository.config_section()),
    )
    .unwrap();
    reload(&modman, &toml);
    support::wait_for("modman to connect again", || {
        (logged(&modman, "connected to Prosody") == 2).then_some(())
    });
    assert!(modman.running(), "the restart in place ended the process");
    assert_eq!(logged(&modman, &format!("(PID {})", modman.pid())), 1);

    assert_ne!(outcome(&mut admin, &repository.name), "failed");
    let offered = offered(&mut admin);
    assert!(
        offered.contains(&"csi_battery_saver".to_owned()),
        "{offered:?}"
    );
    let install = admin.run("install", json!({"modules": ["csi_battery_saver"]}));
    assert_eq!(last(&install)["status"], "completed", "{install}");
    assert!(prosody.modules_dir().join("mod_csi_battery_saver").is_dir());
    // The process started again listens for the next reload.
    reload(&modman, &toml);
    support::wait_for("the next reload to be logged", || {
        (logged(&modman, "nothing changed") == 1).then_some(())
    });
    assert!(modman.running());
    assert!(modman.terminate());
}

/// A change in flight when a reload restarts modman finishes and is
/// answered; a request meanwhile is refused as a restart (wait), not as a
/// stop; then the same process starts again.
#[test]
fn a_change_in_flight_during_a_reload_finishes_and_is_answered() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let config = prosody.modman_config() + &repository.config_section();
    let toml = prosody.path("modman.toml");
    std::fs::write(&toml, &config).unwrap();
    let (ok, out, err) = cli(&["refresh"], &toml);
    assert!(ok, "{out}{err}");
    let pause = prosody.path("pause");
    let env = [
        ("MODMAN_PAUSE_AT", std::ffi::OsStr::new("config-write")),
        ("MODMAN_PAUSE_FILE", pause.as_os_str()),
    ];
    let mut modman = Modman::start_with_env(&prosody, &config, &Program::this_build(), &env);
    let mut admin = Client::connect(&prosody, ADMIN);
    let install = format!(
        "<iq type='set' to='{COMPONENT}' id='install'><command xmlns='http://jabber.org/protocol/commands' node='install' action='execute'>\
         <x xmlns='jabber:x:data' type='submit'><field var='modules'><value>csi_battery_saver</value></field>\
         <field var='enable'><value>1</value></field><field var='confirm'><value>1</value></field></x></command></iq>"
    );
    let answered = std::thread::spawn(move || admin.iq(&install));
    support::wait_for("the install to pause", || pause.exists().then_some(()));

    let admins = config.lines().find(|l| l.starts_with("admins")).unwrap();
    std::fs::write(
        &toml,
        config.replace(
            admins,
            &format!("admins = [\"{ADMIN}\", \"other@{DOMAIN}\"]"),
        ),
    )
    .unwrap();
    reload(&modman, &toml);
    support::wait_for("the restart to be asked for", || {
        (logged(&modman, "restarting in place") == 1).then_some(())
    });
    let mut other = Client::connect(&prosody, ADMIN);
    let refused = other.iq(&format!(
        "<iq type='set' to='{COMPONENT}' id='refused'><command xmlns='http://jabber.org/protocol/commands' node='list' action='execute'/></iq>"
    ));
    assert_eq!(refused.attr("type"), Some("error"), "{refused:?}");
    let error = refused
        .children()
        .find(|c| c.name() == "error")
        .expect("an error");
    assert_eq!(error.attr("type"), Some("wait"), "{refused:?}");

    std::fs::remove_file(prosody.path("pause")).unwrap();
    let reply = answered.join().unwrap();
    assert_eq!(reply.attr("type"), Some("result"), "{reply:?}");
    let command = reply
        .get_child("command", "http://jabber.org/protocol/commands")
        .unwrap();
    assert_eq!(command.attr("status"), Some("completed"), "{reply:?}");
    assert!(prosody.modules_dir().join("mod_csi_battery_saver").is_dir());
    support::wait_for("modman to connect again", || {
        (logged(&modman, "connected to Prosody") == 2).then_some(())
    });
    assert!(modman.running());
    assert!(modman.terminate());
}
