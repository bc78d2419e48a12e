//! Health-checked changes against a real Prosody: a module that loads and
//! then turns to error is put back by modman on its own, and a healthy
//! change stands. modman's clock is a file the test moves
//! (`MODMAN_CLOCK_FILE`, debug builds), so nothing waits for time to pass:
//! the test waits for Prosody to report the error, then moves the clock to
//! the watch's next look.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::{last, Client, Modman, Program, Prosody, Repository, ADMIN, COMPONENT, DOMAIN};
use time::macros::datetime;
use time::OffsetDateTime;

const ROOM: &str = "ops@conference.localhost";
/// The status the broken copy sets, a moment after it loaded.
const BOOM: &str = "canary lost its voice";

/// modman's clock, as a file the test rewrites.
struct TestClock {
    path: PathBuf,
    now: OffsetDateTime,
}

impl TestClock {
    fn at(path: PathBuf, now: OffsetDateTime) -> TestClock {
        let clock = TestClock { path, now };
        clock.write();
        clock
    }

    fn advance(&mut self, seconds: i64) {
        self.now += time::Duration::seconds(seconds);
        self.write();
    }

    /// modman with `config`, on this clock.
    fn modman(&self, prosody: &Prosody, config: &str) -> Modman {
        Modman::start_with_env(
            prosody,
            config,
            &Program::this_build(),
            &[("MODMAN_CLOCK_FILE", self.path.as_os_str())],
        )
    }

    fn write(&self) {
        let text = self
            .now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let temp = self.path.with_extension("new");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, &self.path).unwrap();
    }
}

/// A Prosody, and a repository that offers mod_canary, with its version.
fn with_canary() -> (Prosody, Repository, String) {
    let prosody = Prosody::start();
    let repository = Repository::start_with(|corpus| {
        write_canary(
            &corpus.join("mod_canary"),
            "module:log(\"info\", \"canary v1\");\n",
        );
    });
    let v1 = repository.entry("canary")["version"]
        .as_str()
        .unwrap()
        .to_owned();
    (prosody, repository, v1)
}

/// Writes mod_canary with `code` into the repository's tree and builds it;
/// returns the version the index gives it.
fn canary(repository: &Repository, code: &str) -> String {
    offer(repository, "canary", code)
}

/// Writes `module` with `code` into the repository's tree and builds it;
/// returns the version the index gives it.
fn offer(repository: &Repository, module: &str, code: &str) -> String {
    write_module(&repository.corpus(&format!("mod_{module}")), module, code);
    repository.rebuild();
    repository.entry(module)["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn write_canary(dir: &Path, code: &str) {
    write_module(dir, "canary", code);
}

fn write_module(dir: &Path, module: &str, code: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("mod_{module}.lua")), code).unwrap();
    std::fs::write(
        dir.join("README.markdown"),
        "---\nsummary: Sings, or not\n---\n",
    )
    .unwrap();
}

fn installed_version(prosody: &Prosody) -> String {
    version_of(prosody, "canary")
}

fn version_of(prosody: &Prosody, module: &str) -> String {
    let state: Value = serde_json::from_slice(
        &std::fs::read(prosody.path("modman-state/installed.json")).unwrap(),
    )
    .unwrap();
    state["modules"][module]["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The next health verdict sent to the admin directly.
fn verdict(admin: &mut Client) -> Value {
    let (text, facts) = admin.next_chat(COMPONENT).expect("a health verdict");
    assert_eq!(facts["kind"], "health", "{text}: {facts}");
    facts
}

#[test]
fn a_module_that_turns_to_error_after_an_update_is_put_back_and_a_healthy_one_stays() {
    let (prosody, repository, v1) = with_canary();
    let mut clock = TestClock::at(prosody.path("clock"), datetime!(2026-12-05 12:00 UTC));
    let config = format!(
        "{}{}\n[chat]\nrooms = [\"{ROOM}\"]\nnick = \"modman\"\n",
        prosody
            .modman_config()
            .replace("watch = \"0\"", "watch = \"10m\""),
        repository.config_section()
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.join(ROOM, "alice", "anyone");
    let modman = clock.modman(&prosody, &config);
    admin.wait_for_occupant(ROOM, "modman");
    assert_eq!(
        last(&admin.run("refresh", json!({})))["status"],
        "completed"
    );

    // Installed and enabled: watched; healthy once the watch is over.
    let install = admin.run("install", json!({"modules": ["canary"], "enable": true}));
    assert_eq!(last(&install)["status"], "completed", "{install}");
    clock.advance(10 * 60 + 1);
    let healthy = verdict(&mut admin);
    assert_eq!(healthy["verdict"], "healthy", "{healthy}");
    assert_eq!(healthy["module"], "canary");
    assert_eq!(healthy["version"], v1.as_str());
    assert_eq!(healthy["hosts"], json!([DOMAIN]));

    // A copy that loads, then sets an error status a moment later.
    let v2 = canary(
        &repository,
        &format!(
            "module:log(\"info\", \"canary v2\");\nmodule:add_timer(0.2, function() module:set_status(\"error\", \"{BOOM}\") end);\n"
        ),
    );
    assert_ne!(v1, v2);
    assert_eq!(
        last(&admin.run("refresh", json!({})))["status"],
        "completed"
    );
    let update = admin.run("update", json!({"modules": ["canary"], "confirm": true}));
    assert_eq!(last(&update)["status"], "completed", "{update}");
    assert_eq!(installed_version(&prosody), v2);
    let broken = format!("canary (error: {BOOM})");
    support::wait_for("Prosody to report the error", || {
        prosody.module_list(DOMAIN).contains(&broken).then_some(())
    });
    // The watch's next look finds it, and puts the old copy back.
    clock.advance(5);
    let failed = verdict(&mut admin);
    assert_eq!(failed["verdict"], "failed_and_undone", "{failed}");
    assert_eq!(failed["version"], v2.as_str());
    assert_eq!(failed["host"], DOMAIN);
    assert_eq!(failed["problem"], format!("error: {BOOM}"));
    assert_eq!(failed["back"], v1.as_str());
    // The room hears it too, with the same facts (after the notices of
    // the updates the refreshes found).
    let in_room = std::iter::from_fn(|| admin.next_json_from(ROOM, "modman", 20))
        .find(|facts| facts["kind"] == "health")
        .expect("the verdict in the room");
    assert_eq!(in_room, failed);
    assert_eq!(installed_version(&prosody), v1);
    assert_eq!(
        std::fs::read_to_string(prosody.modules_dir().join("mod_canary/mod_canary.lua")).unwrap(),
        "module:log(\"info\", \"canary v1\");\n"
    );
    let listed = prosody.module_list(DOMAIN);
    assert!(listed.contains(&"canary".to_owned()), "{listed:?}");
    let history = std::fs::read_to_string(prosody.path("modman-state/history.jsonl")).unwrap();
    let undo: Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(undo["operation"], "health-rollback");
    assert_eq!(undo["actor"], "health-check");
    assert_eq!(undo["result"], "ok");
    assert_eq!(
        undo["changes"],
        json!([{"module": "canary", "from": v2, "to": v1}])
    );
    assert!(undo["reason"].as_str().unwrap().contains(BOOM), "{undo}");

    // A healthy update stays once its watch is over.
    let v3 = canary(&repository, "module:log(\"info\", \"canary v3\");\n");
    assert_eq!(
        last(&admin.run("refresh", json!({})))["status"],
        "completed"
    );
    let update = admin.run("update", json!({"modules": ["canary"], "confirm": true}));
    assert_eq!(last(&update)["status"], "completed", "{update}");
    clock.advance(10 * 60 + 1);
    let healthy = verdict(&mut admin);
    assert_eq!(healthy["verdict"], "healthy", "{healthy}");
    assert_eq!(healthy["version"], v3.as_str());
    assert_eq!(installed_version(&prosody), v3);
    let watching = prosody.path("modman-state/watching");
    let records = || std::fs::read_dir(&watching).map_or(0, |d| d.count());
    assert_eq!(records(), 0, "a watch that ended leaves no record");

    // Killed mid-watch: the change stands, and the next start reports it
    // (and forgets the record).
    let v4 = canary(&repository, "module:log(\"info\", \"canary v4\");\n");
    assert_eq!(
        last(&admin.run("refresh", json!({})))["status"],
        "completed"
    );
    let update = admin.run("update", json!({"modules": ["canary"], "confirm": true}));
    assert_eq!(last(&update)["status"], "completed", "{update}");
    let record = watching.join(format!("{}.json", modman.pid()));
    let recorded: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(recorded, json!([{"module": "canary", "version": v4}]));
    drop(modman);
    let _modman = clock.modman(&prosody, &config);
    assert_eq!(records(), 0, "the record of the killed watch is gone");
    assert_eq!(installed_version(&prosody), v4);

    // On the command line the update waits for its verdict: undone, it
    // fails.
    let v5 = canary(
        &repository,
        &format!(
            "module:add_timer(0.2, function() module:set_status(\"error\", \"{BOOM}\") end);\n"
        ),
    );
    let toml = prosody.path("modman.toml");
    assert!(support::cli(&["refresh"], &toml).0);
    let clock_file = clock.path.clone();
    let update_from_shell = || {
        let mut update = Program::this_build()
            .command()
            .args(["update", "--yes", "canary", "--config"])
            .arg(&toml)
            .env("MODMAN_CLOCK_FILE", &clock_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        support::wait_for("Prosody to report the error", || {
            prosody.module_list(DOMAIN).contains(&broken).then_some(())
        });
        assert_eq!(update.try_wait().unwrap(), None, "it waits for the verdict");
        update
    };
    let mut update = update_from_shell();
    clock.advance(5);
    let exit = support::wait_for("the update to end", || update.try_wait().unwrap());
    assert!(!exit.success());
    assert_eq!(installed_version(&prosody), v4);
    // Stopped while it waits: the watch ends, and the change stands.
    let mut update = update_from_shell();
    let stop = std::process::Command::new("kill")
        .arg(update.id().to_string())
        .status()
        .unwrap();
    assert!(stop.success());
    let exit = support::wait_for("the update to end", || update.try_wait().unwrap());
    assert!(exit.success());
    assert_eq!(installed_version(&prosody), v5);
}

#[test]
fn an_auto_policy_updates_within_its_window_and_not_outside_it() {
    let (prosody, repository, v1) = with_canary();
    let sparrow = offer(&repository, "sparrow", "-- sparrow v1\n");
    let wren1 = offer(&repository, "wren", "-- wren v1\n");
    // A Saturday noon; the window opens on Sunday at 03:00, for two hours.
    let mut clock = TestClock::at(prosody.path("clock"), datetime!(2026-12-05 12:00 UTC));
    let config = format!(
        "{}{}\n[chat]\nnotify_admins = true\ncheck_updates_hours = 1\n\n[policy]\nwindow = \"Sun 03:00-05:00\"\n",
        prosody.modman_config(),
        repository.config_section()
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    let _modman = clock.modman(&prosody, &config);
    assert_eq!(
        last(&admin.run("refresh", json!({})))["status"],
        "completed"
    );
    let install = admin.run("install", json!({"modules": ["canary", "sparrow", "wren"]}));
    assert_eq!(last(&install)["status"], "completed", "{install}");
    // Auto for all, then notify for canary alone, then auto for it: its
    // own choice wins over the one for all. Chat, ad-hoc and the command
    // line each set or show it, from the one declaration.
    admin.chat_json(COMPONENT, "policy all auto");
    let notify = admin.run("policy", json!({"policy": "notify", "modules": ["canary"]}));
    assert_eq!(last(&notify)["status"], "completed", "{notify}");
    admin.chat_json(COMPONENT, "policy wren security");
    let policy = admin.chat_json(COMPONENT, "policy canary auto");
    let rows = support::rows_by(&policy, "module");
    assert_eq!(rows["canary"]["policy"], "auto", "{policy}");
    assert_eq!(rows["canary"]["source"], "module", "{policy}");
    assert_eq!(rows["sparrow"]["policy"], "auto", "{policy}");
    assert_eq!(rows["sparrow"]["source"], "all", "{policy}");
    // A held module is never touched, whatever its policy.
    let hold = admin.run("hold", json!({"modules": ["sparrow"], "confirm": true}));
    assert_eq!(last(&hold)["status"], "completed", "{hold}");
    let (ok, out, err) = support::cli(&["policy", "--json"], &prosody.path("modman.toml"));
    assert!(ok, "{err}");
    let rows = support::json_rows(&out, "module");
    assert_eq!(rows["sparrow"]["held"], "yes", "{out}");
    assert_eq!(rows["canary"]["policy"], "auto", "{out}");
    assert_eq!(rows["wren"]["policy"], "security", "{out}");
    offer(&repository, "sparrow", "-- sparrow v2\n");
    let wren2 = offer(&repository, "wren", "-- wren v2\n");

    // A new copy, found by the hourly refresh outside the window:
    // announced, not applied (an update applied is announced before the
    // notices, and is no news after).
    let v2 = canary(&repository, "module:log(\"info\", \"canary v2\");\n");
    clock.advance(3600);
    let (notice, facts) = admin.next_chat(COMPONENT).expect("an update notice");
    assert_eq!(facts["kind"], "updates", "not an update notice: {notice}");
    assert!(
        facts["updates"].as_array().is_some_and(|updates| updates
            .iter()
            .any(|update| update["module"] == "canary" && update["to"] == v2.as_str())),
        "{facts}"
    );
    assert_eq!(installed_version(&prosody), v1);

    // Within the window: announced, applied, announced again.
    clock.now = datetime!(2026-12-06 03:00:30 UTC);
    clock.write();
    let (_, starting) = admin.next_chat(COMPONENT).expect("the announcement before");
    assert_eq!(starting["kind"], "auto_update", "{starting}");
    assert_eq!(starting["stage"], "starting");
    assert_eq!(
        starting["modules"],
        json!([{"module": "canary", "from": v1, "to": v2}])
    );
    let (_, done) = admin.next_chat(COMPONENT).expect("the announcement after");
    assert_eq!(done["stage"], "done", "{done}");
    let updated = support::rows_by(&done["result"], "module");
    assert_eq!(updated["canary"]["to"], v2.as_str());
    assert_eq!(installed_version(&prosody), v2);
    assert_eq!(version_of(&prosody, "sparrow"), sparrow);
    // wren's update fixes nothing an advisory names: left to the admin.
    assert_eq!(version_of(&prosody, "wren"), wren1);

    // Its repository then marks wren's copy insecure, fixed by the one
    // on offer: the next run, an hour later and still in the window,
    // applies it.
    repository.advise_insecure("wren", &wren1, &wren2, "sings too loud");
    clock.advance(3600);
    let (_, starting) = admin.next_chat(COMPONENT).expect("the announcement before");
    assert_eq!(
        starting["modules"],
        json!([{"module": "wren", "from": wren1, "to": wren2}]),
        "{starting}"
    );
    let (_, done) = admin.next_chat(COMPONENT).expect("the announcement after");
    assert_eq!(done["stage"], "done", "{done}");
    assert_eq!(version_of(&prosody, "wren"), wren2);
}
