//! The command line hands its commands to the running daemon over the
//! daemon's local socket, against a real Prosody: what it changes is the
//! daemon's own view at once; a daemon with another modman.toml declines
//! and the command line makes the change itself; a stop of the command
//! line never cuts the daemon's change; and the socket refuses what is not
//! a well-formed request from its owner, answering the next one as before.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::{cli, json_output, Client, Modman, Program, Prosody, Repository, ADMIN, COMPONENT};

/// Writes `module` into the repository's tree and builds it.
fn offer(repository: &Repository, module: &str) {
    let dir = repository.corpus(&format!("mod_{module}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("mod_{module}.lua")), "-- new\n").unwrap();
    std::fs::write(dir.join("README.markdown"), "---\nsummary: New\n---\n").unwrap();
    repository.rebuild();
}

/// Whether the daemon, asked over XMPP, knows `module`.
fn daemon_offers(admin: &mut Client, module: &str) -> bool {
    let facts = admin.chat_json(COMPONENT, &format!("info {module}"));
    facts["kind"] != "error"
}

/// The frames the daemon answers `request` (bytes as sent) with.
fn frames(socket: &Path, request: &[u8]) -> Vec<Value> {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The daemon may answer before it read all of a request too long.
    let _ = stream.write_all(request);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A Prosody, a repository, and the modman.toml of the two.
fn set_up() -> (Prosody, Repository, String) {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let config = prosody.modman_config() + &repository.config_section();
    (prosody, repository, config)
}

#[test]
fn a_refresh_from_the_shell_refreshes_what_the_running_daemon_offers() {
    let (prosody, repository, config) = set_up();
    let _modman = Modman::start(&prosody, &config);
    let toml = prosody.path("modman.toml");
    let mut admin = Client::connect(&prosody, ADMIN);
    assert!(cli(&["refresh"], &toml).0);

    // Handed over: the daemon's own catalog is the one refreshed.
    offer(&repository, "handed");
    assert!(!daemon_offers(&mut admin, "handed"));
    let (ok, out, err) = cli(&["refresh", "--json"], &toml);
    assert!(ok, "{out}{err}");
    assert!(daemon_offers(&mut admin, "handed"));

    // modman.toml changed since the daemon read it: the daemon declines,
    // and the command line refreshes the cache itself, which the daemon
    // reads only at its next start.
    let mut changed = config.clone();
    changed.push_str("\n# edited, not reloaded\n");
    std::fs::write(&toml, &changed).unwrap();
    offer(&repository, "declined");
    let (ok, out, err) = cli(&["refresh", "--json"], &toml);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli(&["info", "--json", "declined"], &toml);
    assert!(ok, "{out}{err}");
    assert_eq!(json_output(&out)["kind"], "details", "{out}");
    assert!(!daemon_offers(&mut admin, "declined"));
}

#[test]
fn a_stopped_command_line_never_cuts_the_daemon_s_change() {
    let (prosody, _repository, config) = set_up();
    let pause = prosody.path("pause");
    let env = [
        ("MODMAN_PAUSE_AT", std::ffi::OsStr::new("swap")),
        ("MODMAN_PAUSE_FILE", pause.as_os_str()),
    ];
    let modman = Modman::start_with_env(&prosody, &config, &Program::this_build(), &env);
    let toml = prosody.path("modman.toml");
    assert!(cli(&["refresh"], &toml).0);
    let paused_install = |module: &str| {
        let install = Program::this_build()
            .command()
            .args(["install", "--yes", "--json", module, "--config"])
            .arg(&toml)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        support::wait_for("the daemon's change to reach its swap", || {
            pause.exists().then_some(())
        });
        install
    };
    let stop = |install: &std::process::Child| {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &install.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    let last_change = || support::history(&prosody).pop().unwrap();

    // One stop: the command line says it waits, and prints the answer.
    let mut install = paused_install("lastlog");
    stop(&install);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(install.try_wait().unwrap(), None, "it waits for the answer");
    std::fs::remove_file(&pause).unwrap();
    let exit = support::wait_for("the install to end", || install.try_wait().unwrap());
    assert!(exit.success());
    let mut out = String::new();
    install
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(json_output(&out)["kind"], "table", "{out}");
    assert!(prosody.modules_dir().join("mod_lastlog").is_dir());
    let last = last_change();
    assert_eq!(
        (&last["operation"], &last["result"]),
        (&json!("install"), &json!("ok")),
        "{last}"
    );

    // A second stop ends the waiting, not the change, which the daemon
    // (started again, to pause again) finishes once let go.
    drop(modman);
    let _modman = Modman::start_with_env(&prosody, &config, &Program::this_build(), &env);
    let mut install = paused_install("track_muc_joins");
    stop(&install);
    std::thread::sleep(Duration::from_millis(300));
    stop(&install);
    let exit = support::wait_for("the command line to stop", || install.try_wait().unwrap());
    assert!(!exit.success(), "it cannot say how the change ended");
    assert!(pause.exists(), "the daemon's change is still paused");
    std::fs::remove_file(&pause).unwrap();
    support::wait_for("the daemon to finish the change", || {
        let last = last_change();
        (last["operation"] == "install" && last["changes"][0]["module"] == "track_muc_joins")
            .then_some(last)
    });
    assert!(prosody.modules_dir().join("mod_track_muc_joins").is_dir());
    assert_eq!(last_change()["result"], "ok");
}

#[test]
fn the_daemon_s_socket_takes_only_well_formed_requests_from_its_owner() {
    let (prosody, _repository, config) = set_up();
    let modman = Modman::start(&prosody, &config);
    let toml = prosody.path("modman.toml");
    let socket = prosody.path("modman-state/modman.sock");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "its owner's only");

    let declined = |request: &[u8]| {
        let frames = frames(&socket, request);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["frame"], "declined", "{frames:?}");
    };
    // Not JSON, cut short, with a field too many, too long, nested deep.
    declined(b"install lastlog\n");
    declined(b"{\"version\":\"0.1.0\"");
    let mut request = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": std::fs::canonicalize(&toml).unwrap(),
        "config_sha256": vec![0u8; 32],
        "node": "install",
        "fields": [["modules", ["lastlog"]], ["confirm", ["true"]]],
        "json": true,
    });
    request["sneaked"] = json!(true);
    declined(format!("{request}\n").as_bytes());
    declined(&vec![b'{'; 70 * 1024]);
    declined(format!("{}\n", "[".repeat(5000)).as_bytes());
    // Well formed, but another modman.toml's bytes, or a command the
    // shell never hands over.
    request.as_object_mut().unwrap().remove("sneaked");
    declined(format!("{request}\n").as_bytes());
    let digest = |bytes: &[u8]| -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).to_vec()
    };
    request["config_sha256"] = json!(digest(config.as_bytes()));
    request["node"] = json!("check");
    declined(format!("{request}\n").as_bytes());
    // Many connections at once, each sending nothing, then closing.
    let idle: Vec<UnixStream> = (0..200)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    drop(idle);
    assert!(!prosody.modules_dir().join("mod_lastlog").exists());

    // The same request, well formed, is taken and carried out.
    request["node"] = json!("install");
    let answered = frames(&socket, format!("{request}\n").as_bytes());
    let kinds: Vec<&Value> = answered.iter().map(|f| &f["frame"]).collect();
    assert_eq!(kinds, [&json!("taken"), &json!("answer"), &json!("done")]);
    let answer = &answered[1]["answer"];
    assert_eq!(answer["status"], "success", "{answer}");
    let result: Value = serde_json::from_str(answer["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(result["kind"], "table", "{result}");
    assert!(prosody.modules_dir().join("mod_lastlog").is_dir());
    // And the daemon goes on: the command line is answered by it.
    let (ok, out, err) = cli(&["remove", "--yes", "--json", "lastlog"], &toml);
    assert!(ok, "{out}{err}");
    assert!(!prosody.modules_dir().join("mod_lastlog").exists());
    // Killed, the daemon leaves its socket; the command line, refused
    // there, makes its changes itself.
    drop(modman);
    assert!(socket.exists());
    let (ok, out, err) = cli(&["install", "--yes", "--json", "lastlog"], &toml);
    assert!(ok, "{out}{err}");
    assert!(prosody.modules_dir().join("mod_lastlog").is_dir());
    // The next start listens there again; a stop takes the socket away.
    let modman = Modman::start(&prosody, &config);
    let answered = frames(&socket, format!("{request}\n").as_bytes());
    assert_eq!(answered[0]["frame"], "taken", "{answered:?}");
    modman.signal("TERM");
    assert!(modman.wait().success());
    assert!(!socket.exists());
}
