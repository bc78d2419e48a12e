//! Faults from outside: repositories that hang, redirect away or never
//! stop sending; stanza abuse over a real connection; Prosody killed in
//! the middle of a change. modman must answer with a clear error, stay up,
//! and leave nothing half-changed.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{
    cli, failed_command, json_output, json_rows, snapshot, stanza_error, Client, Modman, Prosody,
    Repository, ADMIN, COMPONENT,
};

/// How the hostile server answers every request.
#[derive(Clone)]
enum Behaviour {
    /// Accepts, reads the request, never answers.
    Hang,
    /// Redirects to this URL.
    Redirect(String),
    /// 200, then bytes until the client gives up.
    Endless,
}

/// A one-behaviour HTTP server on 127.0.0.1, stopped on drop.
struct HostileServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl HostileServer {
    fn start(behaviour: Behaviour) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (behaviour, stopped) = (behaviour.clone(), stopped.clone());
                std::thread::spawn(move || answer(stream, behaviour, stopped));
            }
        });
        HostileServer { port, stop }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(stream: TcpStream, behaviour: Behaviour, stopped: Arc<AtomicBool>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let mut stream = stream;
    match behaviour {
        Behaviour::Hang => {
            // The server's misbehaviour, not test synchronisation.
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Behaviour::Redirect(to) => {
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n"
            );
        }
        Behaviour::Endless => {
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = vec![b'{'; 64 * 1024];
            while !stopped.load(Ordering::Relaxed) && stream.write_all(&chunk).is_ok() {}
        }
    }
}

/// A modman.toml (CLI only) whose one repository is at `url`.
fn host_with_repository(dir: &std::path::Path, url: &str, key: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    let d = dir.display();
    let config = format!(
        "admins = [\"admin@localhost\"]\nstate_dir = \"{d}/state\"\n[component]\njid = \"modman.localhost\"\nserver = \"127.0.0.1:1\"\nsecret = \"x\"\n\
         [prosody]\nconfig = \"{d}/prosody.cfg.lua\"\nmodules_dir = \"{d}/modules\"\nmanaged_config = \"{d}/modman.cfg.lua\"\nadmin_socket = \"{d}/prosody.sock\"\n\
         [[repositories]]\nname = \"hostile\"\nurl = \"{url}\"\npublic_key = \"{key}\"\ntimeout_seconds = 2\n"
    );
    let path = dir.join("modman.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn hostile_repositories_are_refused_with_a_clear_error_and_change_nothing() {
    let repository = Repository::start();
    let key = repository.public_key.clone();
    let hang = HostileServer::start(Behaviour::Hang);
    let endless = HostileServer::start(Behaviour::Endless);
    // 127.0.0.2 is loopback too, but another host as far as modman knows.
    let away = HostileServer::start(Behaviour::Redirect(format!(
        "http://127.0.0.2:{}/index.json",
        repository.port
    )));
    let cases = [
        (hang.port, "timed out"),
        (endless.port, "larger than 33554432 bytes; refused"),
        (away.port, "redirect to another host (http://127.0.0.2"),
    ];
    for (port, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = host_with_repository(dir.path(), &format!("http://127.0.0.1:{port}/"), &key);
        // The first run creates the managed file and the lock: not changes.
        assert!(cli(&["list"], &config).0);
        let before = snapshot(dir.path());
        let (_, out, err) = cli(&["refresh", "--json"], &config);
        let row = &json_rows(&out, "repository")["hostile"];
        // Failed, with no index kept to offer modules from.
        assert_eq!(
            (&row["outcome"], &row["modules"]),
            (&json!("failed"), &json!("")),
            "{out}{err}"
        );
        assert!(out.contains(expected), "{expected}: {out}{err}");
        let (ok, out, err) = cli(&["install", "lastlog", "--json"], &config);
        let refused = json_output(&out);
        assert!(!ok, "{out}{err}");
        assert_eq!(
            (&refused["error"], &refused["outcome"]),
            (&json!("not_found"), &json!("nothing_changed")),
            "{out}{err}"
        );
        let after = snapshot(dir.path());
        let changed: Vec<_> = after
            .keys()
            .filter(|p| before.get(*p) != after.get(*p))
            .collect();
        assert!(
            changed
                .iter()
                .all(|p| p.starts_with("state") && !p.starts_with("state/indexes")),
            "{expected}: changed {changed:?}"
        );
    }
}

#[test]
fn a_hanging_repository_holds_up_nobody_else() {
    let prosody = Prosody::start();
    let hang = HostileServer::start(Behaviour::Hang);
    let repository = Repository::start();
    let config = prosody.modman_config()
        + &format!(
            "\n[[repositories]]\nname = \"hanging\"\nurl = \"http://127.0.0.1:{}/\"\npublic_key = \"{}\"\ntimeout_seconds = 3\n",
            hang.port, repository.public_key
        );
    let _modman = Modman::start(&prosody, &config);
    let mut stuck = Client::connect(&prosody, ADMIN);
    let mut other = Client::connect(&prosody, ADMIN);
    // The refresh waits for its timeout; meanwhile another admin is served.
    stuck.send(&format!(
        "<iq type='set' to='{COMPONENT}' id='slow'><command xmlns='http://jabber.org/protocol/commands' node='refresh'/></iq>"
    ));
    let run = other.run("list", json!({}));
    assert_eq!(run["steps"][1]["status"], "completed", "{run}");
}

#[test]
fn stanza_abuse_gets_errors_and_modman_stays_up_for_others() {
    let prosody = Prosody::start();
    let modman = Modman::start(&prosody, &prosody.modman_config());
    let mut admin = Client::connect(&prosody, ADMIN);
    let commands = "http://jabber.org/protocol/commands";
    let submit = |node: &str, fields: &str| {
        format!("<iq type='set' to='{COMPONENT}' id='x'><command xmlns='{commands}' node='{node}'><x xmlns='jabber:x:data' type='submit'>{fields}</x></command></iq>")
    };
    // Oversized: too many values, a value too long, wrong types.
    let many: String = (0..300).map(|i| format!("<value>m{i}</value>")).collect();
    let long = "x".repeat(2000);
    for (xml, expected) in [
        (submit("install", &format!("<field var='modules'>{many}</field>")), "at most 256"),
        (submit("list", &format!("<field var='query'><value>{long}</value></field>")), "too long"),
        (submit("install", "<field var='modules'><value>a</value></field><field var='enable'><value>maybe</value></field>"), "not a boolean"),
        (submit("list", "<field var='show'><value>everything</value></field>"), "is not one of"),
        (submit("enable", "<field var='modules'><value>x</value></field><field var='hosts'><value>a/b</value></field>"), "not a host name"),
    ] {
        let (condition, text) = failed_command(&admin.iq(&xml));
        assert_eq!(condition, "bad-request", "{expected}: {text}");
        assert!(text.contains(expected), "{expected}: {text}");
    }

    // A thousand sessions from one JID: bounded, the oldest forgotten.
    let open = format!(
        "<iq type='set' to='{COMPONENT}' id='s'><command xmlns='{commands}' node='list'/></iq>"
    );
    let first = admin.iq(&open);
    let first = first
        .get_child("command", commands)
        .unwrap()
        .attr("sessionid")
        .unwrap()
        .to_owned();
    for _ in 0..1000 {
        admin.iq(&open);
    }
    let stale = admin.iq(&format!(
        "<iq type='set' to='{COMPONENT}' id='s'><command xmlns='{commands}' node='list' sessionid='{first}' action='complete'/></iq>"
    ));
    assert_eq!(stanza_error(&stale).2.as_deref(), Some("bad-sessionid"));

    // A flood of requests at once: every one is answered.
    let mut flooder = Client::connect(&prosody, ADMIN);
    let replies = flooder.request(json!({"op": "flood_iq", "to": COMPONENT, "count": 500}));
    let replies = replies["replies"]
        .as_array()
        .unwrap_or_else(|| panic!("{replies}"));
    assert_eq!(replies.len(), 500);
    assert!(
        replies
            .iter()
            .all(|r| r == "result" || r == "resource-constraint"),
        "{replies:?}"
    );
    admin.wait_until_component_answers();
    assert!(!modman.log().contains("panicked"));
}

#[test]
fn prosody_killed_during_changes_leaves_every_module_whole_and_modman_back() {
    let mut prosody = Prosody::start();
    let repository = Repository::start();
    let modman = Modman::start(
        &prosody,
        &(prosody.modman_config() + &repository.config_section()),
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    assert_eq!(
        admin.run_steps("refresh", json!([]))["steps"][0]["status"],
        "completed"
    );
    let modules = ["firewall", "csi_battery_saver", "lastlog", "muc_rtbl"];
    for (round, module) in modules.iter().enumerate() {
        // Ask for an install, and kill Prosody right away.
        admin.send(&format!(
            "<iq type='set' to='{COMPONENT}' id='i{round}'><command xmlns='http://jabber.org/protocol/commands' node='install'>\
             <x xmlns='jabber:x:data' type='submit'><field var='modules'><value>{module}</value></field></x></command></iq>"
        ));
        prosody.restart();
        admin = Client::connect(&prosody, ADMIN);
        admin.wait_until_component_answers();
        // modman carried on while Prosody was down; a second change waits
        // for the first behind the lock, and answers after it.
        let again = admin.run("install", json!({"modules": [module]}));
        assert_eq!(
            again["steps"][1]["status"], "completed",
            "round {round}: {again}"
        );
        // Every module is whole, and disk and state agree exactly.
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(prosody.path("modman-state/installed.json")).unwrap(),
        )
        .unwrap();
        let mut recorded: Vec<String> = state["modules"]
            .as_object()
            .unwrap()
            .keys()
            .map(|n| format!("mod_{n}"))
            .collect();
        recorded.sort();
        let mut on_disk: Vec<String> = std::fs::read_dir(prosody.modules_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, recorded, "round {round}: disk and state disagree");
        for name in &recorded {
            let shipped = snapshot(&repository.corpus(name));
            assert_eq!(
                snapshot(&prosody.modules_dir().join(name)),
                shipped,
                "round {round}: {name} is not whole"
            );
        }
    }
    let log = modman.log();
    assert_eq!(
        log.matches("lost the connection to Prosody").count(),
        modules.len(),
        "{log}"
    );
}
