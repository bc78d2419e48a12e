//! modman across a fleet of Prosody servers federated over s2s, each
//! server with its own modman, in a network namespace of the fleet's own
//! (tests/support/fleet.rs).

mod support;

use serde_json::{json, Value};
use support::fleet::Fleet;

const ROOM: &str = "ops@conference.a.test";

/// Three federated servers come up with one modman each: every modman
/// answers a client of another server over s2s, and the modmans of the
/// two other servers join the room that lives on a.test under their own
/// server's name.
#[test]
fn three_servers_each_with_its_modman_meet_in_one_room() {
    let mut fleet = Fleet::start(3);
    let alice = fleet.members[0].admin.clone();
    let mut admin = fleet.client(&alice);
    admin.join(ROOM, "alice", "anyone");
    for domain in ["a.test", "b.test", "c.test"] {
        let member = fleet.member(domain);
        let config = member.modman_config(&[&member.admin], &[ROOM], domain, "");
        fleet.start_modman(domain, &config);
    }
    for domain in ["b.test", "c.test"] {
        let to = fleet.member(domain).component();
        let reply = admin.iq(&format!(
            "<iq type='get' to='{to}' id='s2s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ));
        assert_eq!(reply.attr("type"), Some("result"), "{to} over s2s");
        assert_eq!(reply.attr("from"), Some(to.as_str()));
    }
    for domain in ["a.test", "b.test", "c.test"] {
        admin.wait_for_occupant(ROOM, domain);
    }
    // Without peers, the form of `list` has no servers field.
    let shown = admin.run_at(&fleet.member("a.test").component(), "list", json!([]));
    let fields = &support::last(&shown)["form"]["fields"];
    assert!(
        !fields.as_array().unwrap().contains(&json!("servers")),
        "{shown}"
    );
    // An admin of a.test is no admin of b.test: its modman refuses her.
    let refused = admin.run_at(&fleet.member("b.test").component(), "list", json!([]));
    assert_eq!(refused["error"]["condition"], "forbidden", "{refused}");
}

/// The cells `vars` of each row of the result form a completed fleet
/// command answered.
fn cells<const N: usize>(run: &serde_json::Value, vars: [&str; N]) -> Vec<[String; N]> {
    let step = support::last(run);
    assert_eq!(step["status"], "completed", "{run}");
    step["form"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {run}"))
        .iter()
        .map(|item| vars.map(|var| item[var].as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// The rows of a merged fleet table as (module, server, drift, outcome,
/// failure), from the result form a fleet `list` answered.
fn fleet_rows(run: &serde_json::Value) -> Vec<[String; 5]> {
    cells(run, ["module", "server", "drift", "outcome", "failure"])
}

/// `list` for the whole fleet answers one table of module × server: a
/// module on a.test alone is marked as drift on every server that
/// answered; c.test, which lists a.test as a peer but not a.test's admin
/// among its own, refuses, and so does c.test to b.test, which it does not
/// list as a peer; each refusal is that server's own failed row.
#[test]
fn fleet_list_merges_servers_marks_drift_and_each_server_trusts_its_own() {
    let mut fleet = Fleet::start(3);
    let module = support::corpus_module("mod_lastlog");
    let into = fleet
        .member("a.test")
        .prosody
        .modules_dir()
        .join("mod_lastlog");
    std::fs::create_dir_all(&into).unwrap();
    for entry in std::fs::read_dir(&module).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), into.join(entry.file_name())).unwrap();
    }
    let peers = |list: &[&str]| {
        let list: Vec<String> = list.iter().map(|d| format!("modman.{d}")).collect();
        format!("\n[fleet]\npeers = {}\nanswer_seconds = 5\n", json!(list))
    };
    let configs = [
        (
            "a.test",
            vec!["admin@a.test", "admin@b.test"],
            peers(&["b.test", "c.test"]),
        ),
        (
            "b.test",
            vec!["admin@b.test", "admin@a.test"],
            peers(&["a.test", "c.test"]),
        ),
        (
            "c.test",
            vec!["admin@c.test", "admin@b.test"],
            peers(&["a.test"]),
        ),
    ];
    for (domain, admins, extra) in &configs {
        let config = fleet
            .member(domain)
            .modman_config(admins, &[], domain, extra);
        fleet.start_modman(domain, &config);
    }

    let mut alice = fleet.client("admin@a.test");
    // With peers, the form of `list` offers the servers to ask.
    let shown = alice.run_at("modman.a.test", "list", json!([]));
    let form = &support::last(&shown)["form"];
    assert!(
        form["fields"]
            .as_array()
            .unwrap()
            .contains(&json!("servers")),
        "{shown}"
    );
    let run = alice.run_at("modman.a.test", "list", json!([{"servers": ["fleet"]}]));
    let rows = fleet_rows(&run);
    let lastlog: Vec<_> = rows.iter().filter(|r| r[0] == "lastlog").collect();
    assert_eq!(lastlog.len(), 2, "{rows:?}");
    for (row, server) in lastlog.iter().zip(["a.test", "b.test"]) {
        assert_eq!(
            (row[1].as_str(), row[2].as_str(), row[3].as_str()),
            (server, "differs", "ok")
        );
    }
    let failed: Vec<_> = rows.iter().filter(|r| r[3] == "failed").collect();
    assert_eq!(failed.len(), 1, "{rows:?}");
    assert_eq!(
        (failed[0][1].as_str(), failed[0][4].as_str()),
        ("c.test", "refused")
    );

    // b.test's admin asks b.test's modman for c.test: c.test does not list
    // modman.b.test as a peer, so the relayed request is refused although
    // admin@b.test is one of c.test's own admins.
    let mut bob = fleet.client("admin@b.test");
    let run = bob.run_at("modman.b.test", "list", json!([{"servers": ["c.test"]}]));
    let rows = fleet_rows(&run);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0][1].as_str(),
            rows[0][3].as_str(),
            rows[0][4].as_str()
        ),
        ("c.test", "failed", "refused")
    );
    let log = fleet.member("c.test").modman.as_ref().unwrap().log();
    assert!(
        log.contains("refused a command from modman.b.test"),
        "{log}"
    );

    // The same in a direct chat: one text answer, a line per module and
    // server, c.test's refusal on a line of its own.
    let text = alice.chat("modman.a.test", "fleet: list");
    let lastlog = text.lines().filter(|l| l.starts_with("lastlog ")).count();
    assert_eq!(lastlog, 2, "{text}");
    // The same rows as facts beside the text: c.test's refusal is a row.
    let facts = alice.chat_json("modman.a.test", "fleet: list");
    let refused: Vec<&Value> = (facts["rows"].as_array().into_iter().flatten())
        .filter(|r| r["failure"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{facts}");
    assert_eq!(refused[0]["server"], "c.test", "{facts}");

    // Naming a server outside the fleet changes nothing and says so.
    let run = alice.run_at("modman.a.test", "list", json!([{"servers": ["z.test"]}]));
    assert_eq!(run["error"]["condition"], "bad-request", "{run}");
}

/// A server that is down is a failed row of its own, `unreachable`, and
/// the servers that answered are all there (a module on one server gives
/// a row on each).
#[test]
fn a_server_that_is_down_is_its_own_failed_row() {
    let mut fleet = Fleet::start(3);
    let peers = |list: &[&str]| {
        let list: Vec<String> = list.iter().map(|d| format!("modman.{d}")).collect();
        format!("\n[fleet]\npeers = {}\n", json!(list))
    };
    // a.test's last, once its peers answer: its first refresh at start
    // then finds the fleet alike and tells the room nothing, so what
    // a.test says in the room is the test's doing. (Started first, it
    // would tell the room that b.test and c.test do not answer, and that
    // this is gone at a later refresh: true, but at no set moment.)
    for (domain, peers) in [
        ("b.test", peers(&["a.test"])),
        ("c.test", peers(&["a.test"])),
        ("a.test", peers(&["b.test", "c.test"])),
    ] {
        let config = fleet
            .member(domain)
            .modman_config(&["admin@a.test"], &[ROOM], domain, &peers);
        fleet.start_modman(domain, &config);
    }
    let mut alice = fleet.client("admin@a.test");
    alice.join(ROOM, "alice", "anyone");
    for domain in ["a.test", "b.test", "c.test"] {
        alice.wait_for_occupant(ROOM, domain);
    }
    let servers = |run: &serde_json::Value| {
        let rows = fleet_rows(run);
        let mut servers: Vec<(String, String, String)> = rows
            .into_iter()
            .map(|[_, server, _, outcome, failure]| (server, outcome, failure))
            .collect();
        servers.dedup();
        servers
    };
    let ok = |server: &str| (server.to_owned(), "ok".to_owned(), String::new());
    fleet.place_module("a.test", "mod_lastlog");
    let all = alice.run_at("modman.a.test", "list", json!([{"servers": ["fleet"]}]));
    let seen = servers(&all);
    assert_eq!(seen, [ok("a.test"), ok("b.test"), ok("c.test")]);
    // `check` has a row for the room, in it as its nick, on every
    // server.
    for domain in ["a.test", "b.test", "c.test"] {
        let run = alice.run_at(&format!("modman.{domain}"), "check", json!([]));
        let rooms: Vec<_> = cells(&run, ["check", "outcome", "detail"])
            .into_iter()
            .filter(|[check, ..]| check.starts_with("room "))
            .collect();
        assert_eq!(rooms.len(), 1, "{domain}: {rooms:?}");
        let [check, outcome, detail] = &rooms[0];
        assert_eq!(
            (check.as_str(), outcome.as_str()),
            (format!("room {ROOM}").as_str(), "ok"),
            "{domain}"
        );
        assert!(detail.ends_with(&format!(" {domain}")), "{detail}");
    }
    // `check` has a row per peer: reached over s2s, or not and why.
    let peers = |alice: &mut support::Client| {
        let run = alice.run_at("modman.a.test", "check", json!([]));
        let rows = cells(&run, ["check", "outcome"]);
        rows.into_iter()
            .filter(|[check, _]| check.starts_with("peer "))
            .collect::<Vec<_>>()
    };
    let row = |peer: &str, outcome: &str| [format!("peer modman.{peer}"), outcome.to_owned()];
    assert_eq!(
        peers(&mut alice),
        [row("b.test", "ok"), row("c.test", "ok")]
    );

    fleet.stop_server("c.test");
    assert_eq!(
        peers(&mut alice),
        [row("b.test", "ok"), row("c.test", "unavailable")]
    );
    let run = alice.run_at("modman.a.test", "list", json!([{"servers": ["fleet"]}]));
    let down = (
        "c.test".to_owned(),
        "failed".to_owned(),
        "unreachable".to_owned(),
    );
    let seen = servers(&run);
    assert!(seen.contains(&down), "{seen:?}");
    for server in ["a.test", "b.test"] {
        assert!(seen.contains(&ok(server)), "{seen:?}");
    }
}

/// The room lives on a.test, which runs no modman; the modmans of b.test
/// and c.test meet there over s2s. `fleet: list` gets one answer, from the
/// modman whose server sorts first, covering both servers; a line for one
/// server is still that server's modman's alone.
#[test]
fn a_room_on_a_third_server_gets_one_answer_for_the_fleet() {
    let mut fleet = Fleet::start(3);
    fleet.place_module("b.test", "mod_lastlog");
    let mut bob = fleet.client("admin@b.test");
    bob.join(ROOM, "bob", "anyone");
    for (domain, peer) in [("b.test", "c.test"), ("c.test", "b.test")] {
        let extra = format!("\n[fleet]\npeers = [\"modman.{peer}\"]\n");
        let config = fleet
            .member(domain)
            .modman_config(&["admin@b.test"], &[ROOM], domain, &extra);
        fleet.start_modman(domain, &config);
        bob.wait_for_occupant(ROOM, domain);
    }
    bob.say(ROOM, "fleet: list", false);
    let answer = bob
        .next_json_from(ROOM, "b.test", 20)
        .expect("b.test answers");
    let lastlog: Vec<&Value> = (answer["rows"].as_array().into_iter().flatten())
        .filter(|r| r["module"] == "lastlog")
        .map(|r| &r["server"])
        .collect();
    assert_eq!(lastlog, [&json!("b.test"), &json!("c.test")], "{answer}");
    // c.test's next words are its answer to the line addressed to it
    // alone: its own list, which names no server.
    bob.say(ROOM, "c.test: list", false);
    let own = bob
        .next_json_from(ROOM, "c.test", 20)
        .expect("c.test answers");
    // The fleet's answer has a row per module and server.
    let mut rows = own["rows"].as_array().into_iter().flatten();
    assert!(
        own["kind"] == "table" && rows.all(|r| r.get("server").is_none()),
        "c.test answered the fleet line too: {own}"
    );
}

/// What modman records as installed on `domain`, by module (empty before
/// its first change).
fn state_on(fleet: &Fleet, domain: &str) -> serde_json::Map<String, serde_json::Value> {
    let path = fleet
        .member(domain)
        .prosody
        .path("modman-state/installed.json");
    std::fs::read(path).map_or_else(
        |_| serde_json::Map::new(),
        |bytes| {
            let installed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            installed["modules"]
                .as_object()
                .cloned()
                .unwrap_or_default()
        },
    )
}

/// The modules modman records as installed on `domain`.
fn installed_on(fleet: &Fleet, domain: &str) -> Vec<String> {
    state_on(fleet, domain).keys().cloned().collect()
}

/// The version of `module` modman records as installed on `domain`.
fn version_on(fleet: &Fleet, domain: &str, module: &str) -> String {
    state_on(fleet, domain)[module]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("{module} is not installed on {domain}"))
        .to_owned()
}

/// A modman on each server with `repository` served to all, a.test's
/// listing b.test and c.test as peers and theirs a.test, `fleet_lines`
/// (more lines of `[fleet]`) on each, in `rooms` under its server's name,
/// admin@a.test the admin everywhere; each has refreshed. Returns
/// admin@a.test's client.
fn modmans_around_a(
    fleet: &mut Fleet,
    repository: &mut support::Repository,
    fleet_lines: &str,
    rooms: &[&str],
) -> support::Client {
    fleet.serve_repository(repository);
    let peers = |list: &[&str]| {
        let list: Vec<String> = list.iter().map(|d| format!("modman.{d}")).collect();
        format!("\n[fleet]\npeers = {}\n{fleet_lines}", json!(list))
    };
    // a.test's last, once its peers answer: its first refresh at start
    // then finds the fleet alike and tells the room nothing, so what
    // a.test says in the room is the test's doing. (Started first, it
    // would tell the room that b.test and c.test do not answer, and that
    // this is gone at a later refresh: true, but at no set moment.)
    for (domain, peers) in [
        ("b.test", peers(&["a.test"])),
        ("c.test", peers(&["a.test"])),
        ("a.test", peers(&["b.test", "c.test"])),
    ] {
        let extra = peers + &repository.config_section();
        let config = fleet
            .member(domain)
            .modman_config(&["admin@a.test"], rooms, domain, &extra);
        fleet.start_modman(domain, &config);
    }
    let mut alice = fleet.client("admin@a.test");
    for domain in ["a.test", "b.test", "c.test"] {
        let refresh = alice.run_at(&format!("modman.{domain}"), "refresh", json!([]));
        assert_eq!(support::last(&refresh)["status"], "completed", "{refresh}");
    }
    alice
}

/// An install addressed to two servers is made by each of them (their own
/// change, recorded in their own state) and by no other; without
/// `confirm` it runs nowhere. The drift watch after a refresh tells the
/// room once that a.test lacks the module, says nothing at the next
/// refresh, and tells it once more when a.test has it too. Then, with a
/// newer build in the repository, an update addressed to one server
/// updates it alone, and one addressed to the two others updates both.
#[test]
fn an_addressed_install_changes_the_servers_named_and_no_other() {
    let mut fleet = Fleet::start(3);
    let mut repository = support::Repository::start();
    let mut alice = modmans_around_a(&mut fleet, &mut repository, "", &[ROOM]);
    alice.join(ROOM, "alice", "anyone");
    for domain in ["a.test", "b.test", "c.test"] {
        alice.wait_for_occupant(ROOM, domain);
    }
    let install = |confirm: bool| json!([{"modules": ["lastlog"], "servers": ["b.test", "c.test"], "confirm": confirm}]);

    let refused = alice.run_at("modman.a.test", "install", install(false));
    assert_eq!(refused["error"]["condition"], "bad-request", "{refused}");
    for domain in ["a.test", "b.test", "c.test"] {
        assert!(installed_on(&fleet, domain).is_empty(), "{domain}");
    }

    let run = alice.run_at("modman.a.test", "install", install(true));
    let rows = cells(&run, ["server", "module", "outcome"]);
    for server in ["b.test", "c.test"] {
        let row = [server.to_owned(), "lastlog".to_owned(), "ok".to_owned()];
        assert!(rows.contains(&row), "{rows:?}");
        assert_eq!(installed_on(&fleet, server), ["lastlog"]);
    }
    assert!(rows.iter().all(|r| r[0] != "a.test"), "{rows:?}");
    assert!(installed_on(&fleet, "a.test").is_empty());

    // The room was told of the install; then, drift watch: a refresh of
    // a.test compares the fleet and tells the room, with the facts beside
    // the text.
    let told = alice.next_json_from(ROOM, "a.test", 20);
    assert_eq!(told, Some(serde_json::Value::Null));
    let refresh = |alice: &mut support::Client| {
        let run = alice.run_at("modman.a.test", "refresh", json!([]));
        assert_eq!(support::last(&run)["status"], "completed", "{run}");
        alice
            .next_json_from(ROOM, "a.test", 20)
            .expect("a.test tells the room")["fleet_drift"]
            .clone()
    };
    let drift = refresh(&mut alice);
    let lastlog = &drift["modules"]["lastlog"];
    assert_eq!(lastlog["a.test"]["installed"], json!(null), "{drift}");
    for server in ["b.test", "c.test"] {
        assert!(lastlog[server]["installed"].is_string(), "{drift}");
    }
    assert_eq!(drift["silent"], json!([]), "{drift}");
    // The same drift at the next refresh is not told again: the next
    // thing the room hears is that the drift is gone.
    let run = alice.run_at("modman.a.test", "refresh", json!([]));
    assert_eq!(support::last(&run)["status"], "completed", "{run}");
    let install_here = json!([{"modules": ["lastlog"], "servers": ["a.test"], "confirm": true}]);
    let run = alice.run_at("modman.a.test", "install", install_here);
    assert_eq!(support::last(&run)["status"], "completed", "{run}");
    assert_eq!(installed_on(&fleet, "a.test"), ["lastlog"]);
    let told = alice.next_json_from(ROOM, "a.test", 20);
    assert_eq!(told, Some(serde_json::Value::Null));
    let gone = refresh(&mut alice);
    assert_eq!(gone, json!({"modules": {}, "silent": []}));

    // A newer lastlog in the repository (the build keeps the earlier
    // one): an update addressed to b.test updates b.test alone, then one
    // addressed to a.test and c.test updates both of them.
    let old = version_on(&fleet, "a.test", "lastlog");
    support::append(
        &repository.corpus("mod_lastlog").join("mod_lastlog.lua"),
        "\n-- a newer upstream\n",
    );
    repository.rebuild();
    let new = repository.entry("lastlog")["version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(old, new);
    for domain in ["a.test", "b.test", "c.test"] {
        let run = alice.run_at(&format!("modman.{domain}"), "refresh", json!([]));
        assert_eq!(support::last(&run)["status"], "completed", "{run}");
    }
    let update =
        |servers: &[&str]| json!([{"modules": ["lastlog"], "servers": servers, "confirm": true}]);
    for (servers, updated) in [
        (&["b.test"][..], &["b.test"][..]),
        (
            &["a.test", "c.test"][..],
            &["a.test", "b.test", "c.test"][..],
        ),
    ] {
        let run = alice.run_at("modman.a.test", "update", update(servers));
        let rows = cells(&run, ["server", "module", "outcome"]);
        let mut asked: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        asked.dedup();
        assert_eq!(asked, servers, "{rows:?}");
        for row in &rows {
            assert_eq!(
                (row[1].as_str(), row[2].as_str()),
                ("lastlog", "ok"),
                "{rows:?}"
            );
        }
        for domain in ["a.test", "b.test", "c.test"] {
            let expected = if updated.contains(&domain) {
                &new
            } else {
                &old
            };
            assert_eq!(&version_on(&fleet, domain, "lastlog"), expected, "{domain}");
        }
    }
}

/// The rows of a rollout table as (server, module, standing, failure).
fn rollout_rows(run: &serde_json::Value) -> Vec<[String; 4]> {
    cells(run, ["server", "module", "standing", "failure"])
}

/// A staged rollout: a module that loads everywhere goes to a.test first,
/// then to b.test and c.test together (batch size 2, from a chat line);
/// a module whose Lua fails to load on b.test goes, one server at a time,
/// to a.test (done), to b.test (failed, and undone there), and stops
/// there: c.test is not reached and changes nothing; the room is told.
/// A module that fails to load on a.test, the canary, stops the rollout
/// at a.test, undone there, and no other server is asked.
/// A dry run changes nothing anywhere, and a server down stops no dry
/// run; in a rollout, a server down is its own row, and the others of its
/// batch are done.
#[test]
fn a_staged_rollout_stops_at_the_server_that_fails_and_undoes_it_there() {
    let mut fleet = Fleet::start(3);
    let mut repository = support::Repository::start_with(|corpus| {
        support::debian_corpus(corpus);
        support::write_module(
            corpus,
            "flaky",
            "if module.host == \"b.test\" then error(\"mod_flaky does not load on b.test\") end\n",
            "---\nsummary: Loads everywhere but on b.test\n---\n\nA module for tests.\n",
        );
        support::write_module(
            corpus,
            "brittle",
            "if module.host == \"a.test\" then error(\"mod_brittle does not load on a.test\") end\n",
            "---\nsummary: Loads everywhere but on a.test, the canary\n---\n\nA module for tests.\n",
        );
    });
    let mut alice = modmans_around_a(&mut fleet, &mut repository, "batch_size = 1\n", &[ROOM]);
    alice.join(ROOM, "alice", "anyone");
    for domain in ["a.test", "b.test", "c.test"] {
        alice.wait_for_occupant(ROOM, domain);
    }
    // Someone who only reads the room (alice's chat drops room messages
    // while it waits for its answer).
    let mut watcher = fleet.client("user@a.test");
    watcher.join(ROOM, "watcher", "anyone");
    let loaded = |fleet: &Fleet, domain: &str, module: &str| {
        fleet
            .member(domain)
            .prosody
            .loaded_modules(domain)
            .contains(&module.to_owned())
    };

    // Unconfirmed, from chat: nothing runs anywhere.
    alice.chat("modman.a.test", "fleet: install lastlog enable batch=2");
    for domain in ["a.test", "b.test", "c.test"] {
        assert!(installed_on(&fleet, domain).is_empty(), "{domain}");
    }
    alice.chat(
        "modman.a.test",
        "fleet: install lastlog enable batch=2 confirm",
    );
    for domain in ["a.test", "b.test", "c.test"] {
        assert_eq!(installed_on(&fleet, domain), ["lastlog"], "{domain}");
        assert!(loaded(&fleet, domain, "lastlog"), "{domain}");
    }
    // Asked in a direct chat, the change is told to the room too: a line
    // for each server, in one message.
    let told = watcher
        .next_from(ROOM, "a.test", 20)
        .expect("a.test tells the room");
    for server in ["a.test", "b.test", "c.test"] {
        let lines = told.lines().filter(|l| l.trim_start().starts_with(server));
        assert_eq!(lines.count(), 1, "{told}");
    }

    // The form offers the batch size, set from [fleet] batch_size.
    let shown = alice.run_at("modman.a.test", "install", json!([]));
    let fields = &support::last(&shown)["form"]["fields"];
    assert!(
        fields.as_array().unwrap().contains(&json!("batch")),
        "{shown}"
    );

    // A dry run: every server answers its plan, nothing changes, and a
    // plan that would fail later stops nobody.
    let planned = alice.run_at(
        "modman.a.test",
        "install",
        json!([{"modules": ["flaky"], "enable": true, "servers": ["fleet"], "dry_run": true}]),
    );
    let rows = rollout_rows(&planned);
    for server in ["a.test", "b.test", "c.test"] {
        assert!(
            rows.iter().any(|r| r[0] == server && r[2] == "planned"),
            "{rows:?}"
        );
        assert_eq!(installed_on(&fleet, server), ["lastlog"], "{server}");
    }

    let run = alice.run_at(
        "modman.a.test",
        "install",
        json!([{"modules": ["flaky"], "enable": true, "servers": ["fleet"], "confirm": true}]),
    );
    let rows = rollout_rows(&run);
    let standing = |server: &str| -> Vec<&str> {
        rows.iter()
            .filter(|r| r[0] == server)
            .map(|r| r[2].as_str())
            .collect()
    };
    assert_eq!(standing("a.test"), ["done"], "{rows:?}");
    assert_eq!(standing("b.test"), ["failed, undone"], "{rows:?}");
    // The room is told, once, by the modman that was asked: a line for
    // each server, as the table has; the message before was the chat
    // line's change, told once.
    let told = alice
        .next_from(ROOM, "a.test", 20)
        .expect("a.test tells the room");
    // The watcher's next message is this one too: the chat line's change
    // was told once.
    let watched = watcher.next_from(ROOM, "a.test", 20);
    assert_eq!(watched.as_ref(), Some(&told));
    assert!(
        told.lines()
            .any(|l| l.trim_start().starts_with("a.test") && l.contains("flaky")),
        "{told}"
    );
    for server in ["a.test", "b.test", "c.test"] {
        let lines = told.lines().filter(|l| l.trim_start().starts_with(server));
        assert_eq!(lines.count(), standing(server).len(), "{told}");
    }
    // b.test's modman ran the change, which failed there: not a refusal.
    let failure: Vec<&str> = rows
        .iter()
        .filter(|r| r[0] == "b.test")
        .map(|r| r[3].as_str())
        .collect();
    assert_eq!(failure, ["failed-there"], "{rows:?}");
    assert_eq!(standing("c.test"), ["not reached"], "{rows:?}");
    assert!(loaded(&fleet, "a.test", "flaky"));
    assert_eq!(installed_on(&fleet, "a.test"), ["flaky", "lastlog"]);
    for domain in ["b.test", "c.test"] {
        assert_eq!(installed_on(&fleet, domain), ["lastlog"], "{domain}");
        assert!(!loaded(&fleet, domain, "flaky"), "{domain}");
        assert!(
            !fleet
                .member(domain)
                .prosody
                .modules_dir()
                .join("mod_flaky")
                .exists(),
            "{domain}"
        );
    }

    // A module that fails to load on the canary itself: the rollout stops
    // there, a.test's change is undone, no other server is asked, and the
    // room is told, a line for each server.
    let run = alice.run_at(
        "modman.a.test",
        "install",
        json!([{"modules": ["brittle"], "enable": true, "servers": ["fleet"], "batch": "2", "confirm": true}]),
    );
    let rows = cells(&run, ["server", "standing", "outcome", "failure"]);
    let row = |server: &str, standing: &str, failure: &str| {
        [server, standing, "failed", failure].map(str::to_owned)
    };
    assert_eq!(
        rows,
        [
            row("a.test", "failed, undone", "failed"),
            row("b.test", "not reached", ""),
            row("c.test", "not reached", ""),
        ]
    );
    let told = watcher
        .next_from(ROOM, "a.test", 20)
        .expect("a.test tells the room");
    for (server, standing) in [
        ("a.test", "failed, undone"),
        ("b.test", "not reached"),
        ("c.test", "not reached"),
    ] {
        let lines: Vec<&str> = told
            .lines()
            .filter(|l| l.trim_start().starts_with(server))
            .collect();
        assert!(
            lines.len() == 1 && lines[0].contains(standing),
            "{server}: {told}"
        );
    }
    for domain in ["a.test", "b.test", "c.test"] {
        assert!(
            !installed_on(&fleet, domain).contains(&"brittle".to_owned()),
            "{domain}"
        );
        assert!(!loaded(&fleet, domain, "brittle"), "{domain}");
        assert!(
            !fleet
                .member(domain)
                .prosody
                .modules_dir()
                .join("mod_brittle")
                .exists(),
            "{domain}"
        );
    }

    // A server down: a dry run, one server at a time, still asks the
    // servers after it for their plans; the change, in a batch of b.test
    // and c.test, is made by c.test, while b.test's row says it could not
    // be reached and changed nothing.
    fleet.stop_server("b.test");
    let csi = |batch: &str, confirm: &str| json!([{"modules": ["csi_battery_saver"], "servers": ["fleet"], "batch": batch, confirm: true}]);
    let b_down = ["failed, unchanged".to_owned(), "unreachable".to_owned()];
    for (fields, standing) in [
        (csi("1", "dry_run"), "planned"),
        (csi("2", "confirm"), "done"),
    ] {
        let rows = cells(
            &alice.run_at("modman.a.test", "install", fields),
            ["server", "standing", "failure"],
        );
        let of = |server: &str| -> Vec<[String; 2]> {
            rows.iter()
                .filter(|r| r[0] == server)
                .map(|[_, standing, failure]| [standing.clone(), failure.clone()])
                .collect()
        };
        for server in ["a.test", "c.test"] {
            let rows = of(server);
            assert!(
                !rows.is_empty() && rows.iter().all(|r| r[0] == standing),
                "{server}: {rows:?}"
            );
        }
        assert_eq!(of("b.test"), std::slice::from_ref(&b_down), "{rows:?}");
    }
    for (server, has) in [("a.test", true), ("b.test", false), ("c.test", true)] {
        let installed = installed_on(&fleet, server);
        assert_eq!(
            installed.contains(&"csi_battery_saver".to_owned()),
            has,
            "{server}"
        );
    }
}
