//! A stop or a crash never leaves Prosody half-changed. Every change
//! (install with enable, update, remove, disable, configure) is stopped at
//! every step the engine can pause at (debug builds: `MODMAN_PAUSE_AT`),
//! once with SIGKILL and once with SIGTERM. After the next start:
//!
//! - SIGKILL: everything is as before the change (module files, the
//!   managed config, installed.json, pulled_in.json, what Prosody's own
//!   `module:list()` shows), and one history line says the change was
//!   undone;
//! - SIGTERM: modman refused new requests while stopping, finished the
//!   change, answered its requester and exited cleanly; the change is
//!   whole, with its one "ok" history line.
//!
//! One Prosody for the whole matrix; only modman is restarted.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{
    append, cli, debian_corpus, stanza_error, wait_for, Client, Modman, Program, Prosody,
    Repository, ADMIN, COMPONENT, DOMAIN,
};

const COMMANDS: &str = "http://jabber.org/protocol/commands";
const MODULE: &str = "lastlog";
const CONFIGURED: &str = "http_upload_external";
const OPTION: &str = "http_upload_external_base_url";
const URL: &str = "https://upload.example/";

/// Everything a change may alter, as the host shows it.
#[derive(PartialEq)]
struct Facts {
    files: BTreeMap<PathBuf, Vec<u8>>,
    managed_config: String,
    installed: Value,
    pulled_in: Option<Value>,
    /// `module:list()` on the host, sorted.
    loaded: Vec<String>,
}

/// Shown with the files by name: their bytes would bury the difference.
impl std::fmt::Debug for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<(&PathBuf, usize)> = self.files.iter().map(|(p, b)| (p, b.len())).collect();
        f.debug_struct("Facts")
            .field("files", &files)
            .field("managed_config", &self.managed_config)
            .field("installed", &self.installed)
            .field("pulled_in", &self.pulled_in)
            .field("loaded", &self.loaded)
            .finish()
    }
}

/// How a change is asked for.
enum Front {
    /// An ad-hoc command, its form submitted with the first execute.
    Adhoc {
        node: &'static str,
        fields: Vec<(&'static str, String)>,
    },
    /// The CLI, with `--yes`.
    Cli(Vec<String>),
}

/// A change of the matrix: how it is asked for, the steps it reaches,
/// how to tell it is whole, and how to get back to where it starts.
struct Change {
    operation: &'static str,
    front: Front,
    steps: &'static [&'static str],
    done: fn(&Bench, &Facts) -> bool,
    reset: &'static [&'static str],
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    Term,
    Kill,
}

/// The one Prosody, its repository, and modman's config.
struct Bench {
    prosody: Prosody,
    repository: Repository,
    config: String,
    pause: PathBuf,
    /// A second admin, who asks while modman stops.
    watcher: Client,
}

impl Bench {
    fn state(&self, file: &str) -> PathBuf {
        self.prosody.path("modman-state").join(file)
    }

    fn json(&self, file: &str) -> Option<Value> {
        let bytes = std::fs::read(self.state(file)).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    fn facts(&self) -> Facts {
        let mut loaded = self.prosody.loaded_modules(DOMAIN);
        loaded.sort();
        Facts {
            files: support::snapshot(&self.prosody.modules_dir()),
            managed_config: std::fs::read_to_string(self.prosody.path("modman.cfg.lua")).unwrap(),
            installed: self.json("installed.json").unwrap_or(Value::Null),
            pulled_in: self.json("pulled_in.json"),
            loaded,
        }
    }

    fn history(&self) -> Vec<Value> {
        support::history(&self.prosody)
    }

    fn modman(&self) -> Modman {
        Modman::start(&self.prosody, &self.config)
    }

    fn cli(&self, args: &[&str]) {
        let (ok, out, err) = cli(args, &self.prosody.path("modman.toml"));
        assert!(ok, "modman {args:?}: {out}{err}");
    }

    fn pause_env<'a>(&'a self, step: &'a str) -> [(&'a str, &'a OsStr); 2] {
        [
            ("MODMAN_PAUSE_AT", OsStr::new(step)),
            ("MODMAN_PAUSE_FILE", self.pause.as_os_str()),
        ]
    }

    fn wait_for_pause(&self, step: &str) {
        wait_for(&format!("the change to reach {step}"), || {
            self.pause.exists().then_some(())
        });
    }

    fn installed_version(&self, facts: &Facts) -> Option<String> {
        facts.installed["modules"][MODULE]["version"]
            .as_str()
            .map(str::to_owned)
    }

    fn enabled(facts: &Facts, module: &str) -> bool {
        facts.managed_config.contains(&format!("\"{module}\""))
    }

    fn loaded(facts: &Facts, module: &str) -> bool {
        facts.loaded.iter().any(|m| m == module)
    }
}

fn command_iq(node: &str, fields: &[(&str, String)]) -> String {
    let fields: String = fields
        .iter()
        .chain(&[("confirm", "1".to_owned())])
        .map(|(var, value)| format!("<field var='{var}'><value>{value}</value></field>"))
        .collect();
    format!(
        "<iq type='set' to='{COMPONENT}' id='stop-{node}'><command xmlns='{COMMANDS}' node='{node}' action='execute'>\
         <x xmlns='jabber:x:data' type='submit'>{fields}</x></command></iq>"
    )
}

/// The repository: two modules of the Debian corpus.
fn repository() -> Repository {
    Repository::start_with(|corpus| {
        let all = corpus.with_file_name("debian");
        debian_corpus(&all);
        std::fs::create_dir_all(corpus).unwrap();
        for module in [MODULE, CONFIGURED] {
            let status = Command::new("cp")
                .arg("-r")
                .arg(all.join(format!("mod_{module}")))
                .arg(corpus)
                .status()
                .unwrap();
            assert!(status.success());
        }
    })
}

fn changes() -> Vec<Change> {
    let modules = |extra: &[(&'static str, &str)]| {
        let mut fields = vec![("modules", MODULE.to_owned())];
        fields.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        fields
    };
    vec![
        Change {
            operation: "install",
            front: Front::Adhoc {
                node: "install",
                fields: modules(&[("enable", "1"), ("hosts", DOMAIN)]),
            },
            steps: &["swap", "state-save", "config-write", "audit"],
            done: |bench, facts| {
                bench.installed_version(facts).is_some()
                    && Bench::enabled(facts, MODULE)
                    && Bench::loaded(facts, MODULE)
            },
            reset: &["remove", MODULE, "--yes"],
        },
        Change {
            operation: "update",
            front: Front::Adhoc {
                node: "update",
                fields: modules(&[]),
            },
            steps: &["swap", "state-save", "audit"],
            done: |bench, facts| {
                bench.installed_version(facts).as_deref()
                    == bench.repository.entry(MODULE)["version"].as_str()
                    && Bench::loaded(facts, MODULE)
            },
            reset: &["rollback", MODULE, "--yes"],
        },
        Change {
            operation: "disable",
            front: Front::Adhoc {
                node: "disable",
                fields: modules(&[("hosts", DOMAIN)]),
            },
            steps: &["config-write", "audit"],
            done: |bench, facts| {
                bench.installed_version(facts).is_some()
                    && !Bench::enabled(facts, MODULE)
                    && !Bench::loaded(facts, MODULE)
            },
            reset: &["enable", MODULE, "--hosts", DOMAIN, "--yes"],
        },
        Change {
            operation: "remove",
            front: Front::Adhoc {
                node: "remove",
                fields: modules(&[]),
            },
            steps: &["config-write", "swap", "state-save", "audit"],
            done: |bench, facts| {
                bench.installed_version(facts).is_none()
                    && !Bench::enabled(facts, MODULE)
                    && !Bench::loaded(facts, MODULE)
                    && !bench.prosody.modules_dir().join("mod_lastlog").exists()
            },
            reset: &["install", MODULE, "--enable", "--hosts", DOMAIN, "--yes"],
        },
        Change {
            operation: "configure",
            front: Front::Cli(
                [
                    "configure",
                    CONFIGURED,
                    "--hosts",
                    DOMAIN,
                    "--set",
                    &format!("{OPTION}={URL}"),
                    "--yes",
                ]
                .map(str::to_owned)
                .to_vec(),
            ),
            steps: &["config-write", "audit"],
            done: |bench, facts| {
                facts.managed_config.contains(URL)
                    && bench.prosody.config_get(DOMAIN, OPTION).contains(URL)
            },
            reset: &["rollback", "--yes"],
        },
    ]
}

/// A request in flight.
enum Asked {
    /// An ad-hoc command whose answer a thread waits for.
    Answered(std::thread::JoinHandle<(Client, minidom::Element)>),
    /// An ad-hoc command sent by this client; no answer is awaited.
    Sent(Client),
    /// A CLI command.
    Cli(std::process::Child),
}

/// Asks for `change` of a modman that pauses at `step`; returns the
/// modman (none for the CLI) and the request.
fn ask(bench: &Bench, change: &Change, step: &str, stop: Stop) -> (Option<Modman>, Asked) {
    match &change.front {
        Front::Adhoc { node, fields } => {
            let env = bench.pause_env(step);
            let modman =
                Modman::start_with_env(&bench.prosody, &bench.config, &Program::this_build(), &env);
            let mut admin = Client::connect(&bench.prosody, ADMIN);
            let iq = command_iq(node, fields);
            let asked = match stop {
                // The answer is awaited only where one can come.
                Stop::Term => Asked::Answered(std::thread::spawn(move || {
                    let reply = admin.iq(&iq);
                    (admin, reply)
                })),
                Stop::Kill => {
                    admin.send(&iq);
                    Asked::Sent(admin)
                }
            };
            (Some(modman), asked)
        }
        Front::Cli(args) => {
            let child = Command::new(env!("CARGO_BIN_EXE_modman"))
                .args(args)
                .arg("--config")
                .arg(bench.prosody.path("modman.toml"))
                .envs(bench.pause_env(step))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (None, Asked::Cli(child))
        }
    }
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// One case: `change` stopped with `stop` at `step`, then modman started
/// again; checks what is true then.
fn case(bench: &mut Bench, change: &Change, step: &str, stop: Stop) {
    let what = format!("{} stopped by {stop:?} at {step}", change.operation);
    let before = bench.facts();
    let lines = bench.history().len();
    let (modman, asked) = ask(bench, change, step, stop);
    bench.wait_for_pause(step);
    match (modman, asked) {
        (Some(modman), Asked::Sent(_admin)) => {
            modman.signal("KILL");
            assert!(!modman.wait().success(), "{what}");
            std::fs::remove_file(&bench.pause).unwrap();
        }
        (None, Asked::Cli(mut child)) if matches!(stop, Stop::Kill) => {
            child.kill().unwrap();
            child.wait().unwrap();
            std::fs::remove_file(&bench.pause).unwrap();
        }
        (Some(modman), Asked::Answered(admin)) => {
            modman.signal("TERM");
            wait_for("modman to take no new requests", || {
                modman.log().contains("shutting down").then_some(())
            });
            // A new request is refused at once, the change goes on.
            let refused = bench.watcher.iq(&command_iq("list", &[]));
            let (kind, condition, _, _) = stanza_error(&refused);
            assert_eq!(
                (kind.as_str(), condition.as_str()),
                ("wait", "service-unavailable"),
                "{what}"
            );
            std::fs::remove_file(&bench.pause).unwrap();
            let (_admin, reply) = admin.join().unwrap();
            assert_eq!(reply.attr("type"), Some("result"), "{what}: {reply:?}");
            let command = reply.get_child("command", COMMANDS).unwrap();
            assert_eq!(command.attr("status"), Some("completed"), "{what}");
            assert!(modman.wait().success(), "{what}");
        }
        (None, Asked::Cli(child)) => {
            kill(child.id(), "TERM");
            std::fs::remove_file(&bench.pause).unwrap();
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{what}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        _ => unreachable!("the component answers ad-hoc commands, the CLI its own"),
    }

    // The next start: recovery, then the running server put right.
    let modman = bench.modman();
    let after = bench.facts();
    let history = bench.history();
    assert_eq!(history.len(), lines + 1, "{what}: {history:?}");
    let line = &history[lines];
    assert_eq!(line["operation"], change.operation, "{what}");
    for left in ["journal.json", "change.jsonl"] {
        assert!(!bench.state(left).exists(), "{what}: {left} stays");
    }
    assert_eq!(
        support::staging_left(&bench.prosody.modules_dir()),
        Vec::<String>::new(),
        "{what}"
    );
    match stop {
        Stop::Kill => {
            assert_eq!(after, before, "{what}");
            assert_ne!(line["result"], "ok", "{what}");
            assert!(
                line["change"].as_str().is_some_and(|c| !c.is_empty()),
                "{what}"
            );
        }
        Stop::Term => {
            assert!((change.done)(bench, &after), "{what}: {after:?}");
            assert_eq!(line["result"], "ok", "{what}");
        }
    }
    assert!(modman.terminate(), "{what}");
    if let Stop::Term = stop {
        bench.cli(change.reset);
    }
}

#[test]
fn a_change_stopped_at_any_step_is_whole_or_undone_after_the_next_start() {
    let prosody = Prosody::start();
    let repository = repository();
    let config = prosody.modman_config() + &repository.config_section();
    let modman = Modman::start(&prosody, &config);
    let watcher = Client::connect(&prosody, ADMIN);
    let mut bench = Bench {
        pause: prosody.path("paused"),
        prosody,
        repository,
        config,
        watcher,
    };
    bench.cli(&["refresh"]);
    assert!(modman.terminate());

    let mut cases = 0;
    for change in changes() {
        // Where each change starts from.
        match change.operation {
            "update" => {
                bench.cli(&["install", MODULE, "--enable", "--hosts", DOMAIN, "--yes"]);
                let code = bench
                    .repository
                    .corpus(&format!("mod_{MODULE}"))
                    .join(format!("mod_{MODULE}.lua"));
                append(&code, "\n-- a newer version\n");
                bench.repository.rebuild();
                bench.cli(&["refresh"]);
            }
            "configure" => bench.cli(&["install", CONFIGURED, "--yes"]),
            _ => {}
        }
        for step in change.steps {
            for stop in [Stop::Kill, Stop::Term] {
                case(&mut bench, &change, step, stop);
                cases += 1;
            }
        }
    }
    // Each change at each step its way reaches, each stopped both ways.
    assert_eq!(cases, 2 * (4 + 3 + 2 + 4 + 2));

    outliving_the_grace(&bench);
}

/// A change still running when the stop's grace is over is cut short
/// with the process, and undone at the next start.
fn outliving_the_grace(bench: &Bench) {
    bench.cli(&["remove", MODULE, "--yes"]);
    let before = bench.facts();
    let lines = bench.history().len();
    let mut env = bench.pause_env("config-write").to_vec();
    env.push(("MODMAN_STOP_GRACE_MS", OsStr::new("100")));
    let modman =
        Modman::start_with_env(&bench.prosody, &bench.config, &Program::this_build(), &env);
    let mut admin = Client::connect(&bench.prosody, ADMIN);
    let fields = [("modules", MODULE.to_owned()), ("enable", "1".to_owned())];
    admin.send(&command_iq("install", &fields));
    bench.wait_for_pause("config-write");
    modman.signal("TERM");
    wait_for("the grace to run out", || {
        modman
            .log()
            .contains("after the grace period")
            .then_some(())
    });
    // The change goes on only until its next wait on the runtime.
    std::fs::remove_file(&bench.pause).unwrap();
    assert!(modman.wait().success());

    let modman = bench.modman();
    assert_eq!(bench.facts(), before);
    // The change may have begun its own undo as the process ended (a line
    // of its own, without the change's id); the next start ended it.
    let history = bench.history();
    assert!(
        (lines + 1..=lines + 2).contains(&history.len()),
        "{history:?}"
    );
    let last = history.last().unwrap();
    assert_ne!(last["result"], "ok");
    assert!(last["change"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(modman.terminate());
}

#[test]
fn a_stop_leaves_the_rooms_before_the_stream_closes() {
    const ROOM: &str = "ops@conference.localhost";
    let prosody = Prosody::start();
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.join(ROOM, "alice", "anyone");
    let config = format!(
        "{}\n[chat]\nrooms = [\"{ROOM}\"]\nnick = \"modman\"\n",
        prosody.modman_config()
    );
    let modman = Modman::start(&prosody, &config);
    admin.wait_for_occupant(ROOM, "modman");
    assert!(modman.terminate());
    // Prosody keeps a component's occupants when its stream closes: only
    // modman's own goodbye takes it out of the room.
    admin.wait_for_departure(ROOM, "modman");
}

/// A change large enough that its stage is written by several threads,
/// as the archives arrive, and made durable by one `syncfs` (20 modules
/// of three files: over 64 paths), killed after that barrier (with one
/// module moved, and with every module moved but the state not saved):
/// after the next start it is wholly undone, with its history line; not
/// stopped, it is whole. An install of them all, then an update, whose
/// modules are exchanged with their new copies.
#[test]
fn a_large_change_killed_after_its_barrier_is_undone_after_the_next_start() {
    const MODULES: usize = 20;
    // Each module is its directory and three files in the stage.
    const { assert!(4 * MODULES >= modman::fsutil::SYNCFS_FROM) };
    let prosody = Prosody::start();
    let names: Vec<String> = (0..MODULES).map(|i| format!("bulk_{i:02}")).collect();
    let repository = Repository::start_with(|corpus| {
        for name in &names {
            let dir = corpus.join(format!("mod_{name}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("mod_{name}.lua")), format!("-- {name}\n")).unwrap();
            std::fs::write(dir.join("helper.lib.lua"), "return {}\n").unwrap();
            std::fs::write(
                dir.join("README.markdown"),
                format!("---\nsummary: '{name}'\n---\n\nIntroduction\n============\n\nA module.\n"),
            )
            .unwrap();
        }
    });
    let config_path = prosody.path("modman.toml");
    let config = prosody.modman_config() + &repository.config_section();
    std::fs::write(&config_path, &config).unwrap();
    assert!(cli(&["refresh"], &config_path).0);
    let state = |file: &str| prosody.path("modman-state").join(file);
    let history = || support::history(&prosody);
    let installed = || std::fs::read_to_string(state("installed.json")).ok();
    let pause = prosody.path("paused");
    let run = |operation: &str, env: &[(&str, &OsStr)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modman"));
        command.arg(operation);
        if operation == "install" {
            command.args(&names);
        }
        command
            .arg("--yes")
            .arg("--config")
            .arg(&config_path)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let code = |name: &str| {
        let dir = prosody.modules_dir().join(format!("mod_{name}"));
        std::fs::read_to_string(dir.join(format!("mod_{name}.lua"))).unwrap()
    };
    // An install of them all, then an update of them all, each module
    // exchanged with its new copy.
    for operation in ["install", "update"] {
        for step in ["swap", "state-save"] {
            let case = format!("{operation} killed at {step}");
            let files = support::snapshot(&prosody.modules_dir());
            let (records, lines) = (installed(), history().len());
            let mut child = run(
                operation,
                &[
                    ("MODMAN_PAUSE_AT", OsStr::new(step)),
                    ("MODMAN_PAUSE_FILE", pause.as_os_str()),
                ],
            );
            wait_for(&format!("the {operation} to reach {step}"), || {
                pause.exists().then_some(())
            });
            child.kill().unwrap();
            child.wait().unwrap();
            std::fs::remove_file(&pause).unwrap();

            // The next start: recovery.
            let modman = Modman::start(&prosody, &config);
            assert!(modman.terminate(), "{case}");
            assert_eq!(support::snapshot(&prosody.modules_dir()), files, "{case}");
            assert_eq!(installed(), records, "{case}");
            let after = history();
            assert_eq!(after.len(), lines + 1, "{case}: {after:?}");
            assert_eq!(after[lines]["operation"], operation, "{case}");
            assert_ne!(after[lines]["result"], "ok", "{case}");
            for left in ["journal.json", "change.jsonl"] {
                assert!(!state(left).exists(), "{case}: {left} stays");
            }
            // The daemon may have made the next stage ahead already.
            let left = support::staging_left(&prosody.modules_dir());
            assert_eq!(left, Vec::<String>::new(), "{case}");
        }

        assert!(run(operation, &[]).wait().unwrap().success(), "{operation}");
        let records: Value = serde_json::from_str(&installed().unwrap()).unwrap();
        let version = |name: &str| records["modules"][name]["version"].clone();
        for name in &names {
            assert!(version(name).is_string(), "{operation}: {name}");
            let version = match operation {
                "install" => String::new(),
                _ => "-- 2\n".into(),
            };
            assert_eq!(code(name), format!("-- {name}\n{version}"), "{operation}");
            let dir = prosody.modules_dir().join(format!("mod_{name}"));
            assert!(dir.join("helper.lib.lua").is_file(), "{name}");
        }
        assert_eq!(history().last().unwrap()["result"], "ok");
        if operation == "install" {
            for name in &names {
                let lua = repository
                    .corpus(&format!("mod_{name}"))
                    .join(format!("mod_{name}.lua"));
                std::fs::write(&lua, format!("-- {name}\n-- 2\n")).unwrap();
            }
            repository.rebuild();
            assert!(cli(&["refresh"], &config_path).0);
        }
    }
}
