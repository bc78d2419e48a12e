//! A hostile world (issue 13): stanzas from ordinary accounts, in a direct
//! message and in a room modman sits in, never take modman down or make it
//! act for someone it cannot prove is an admin; and nothing changes where
//! nothing should.

mod support;

use serde_json::json;
use support::{
    chat_config, last, refresh_row, rows_by, snapshot, Client, Modman, Prosody, Repository, ADMIN,
    COMPONENT, USER,
};

const ROOM: &str = "ops@conference.localhost";

/// How many times modman has connected to Prosody so far.
fn connections(modman: &Modman) -> usize {
    modman.log().matches("connected to Prosody at").count()
}

/// An admin's disco#info round trip: modman is connected and serving.
fn answers_admin(admin: &mut Client) -> bool {
    let reply = admin.iq(&format!(
        "<iq type='get' to='{COMPONENT}' id='alive'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ));
    reply.attr("type") == Some("result")
}

#[test]
fn oversized_tokens_from_anyone_never_cost_the_connection() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.join(ROOM, "alice", "anyone");
    let modman = Modman::start(&prosody, &chat_config(&prosody, &repository, &[ROOM]));
    admin.wait_for_occupant(ROOM, "modman");
    assert_eq!(connections(&modman), 1);
    let before = snapshot(&prosody.modules_dir());
    let long = "A".repeat(9_000);

    let mut user = Client::connect(&prosody, USER);
    // A direct message with a 9,000-byte id.
    user.send(&format!(
        "<message to='{COMPONENT}' id='{long}' type='chat'><body>hello</body></message>"
    ));
    // An IQ request whose payload does not parse, with a long attribute:
    // the sender gets an error, the connection stays.
    let reply = user.iq(&format!(
        "<iq type='set' to='{COMPONENT}' id='bad'><command xmlns='http://jabber.org/protocol/commands' node='list' action='{long}'/></iq>"
    ));
    assert_eq!(
        reply.attr("type"),
        Some("error"),
        "{}",
        String::from(&reply)
    );
    // A room presence with a 9,000-byte caps ver, which Prosody would
    // replay to modman on every re-join.
    user.send(&format!(
        "<presence to='{ROOM}/mallory'><x xmlns='http://jabber.org/protocol/muc'/><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='x' ver='{long}'/></presence>"
    ));
    admin.wait_for_occupant(ROOM, "mallory");
    // A groupchat message with a long attribute on an extension element,
    // and a long element name.
    let name = "e".repeat(9_000);
    user.send(&format!(
        "<message to='{ROOM}' type='groupchat'><body>modman: list</body><x xmlns='urn:example:hostile' a='{long}'/><{name} xmlns='urn:example:hostile'/></message>"
    ));

    // That message was read, and refused, like any other.
    let refused = admin.next_from(ROOM, "modman", 20).expect("the refusal");
    assert!(refused.starts_with("mallory: "), "{refused}");

    // Still the first connection, still answering the admin, in the room
    // and directly.
    for _ in 0..3 {
        assert!(answers_admin(&mut admin));
    }
    admin.say(ROOM, "modman: list installed", false);
    let listed = admin
        .next_json_from(ROOM, "modman", 20)
        .expect("an answer in the room");
    assert_eq!(listed["kind"], "table", "{listed}");
    assert_eq!(
        last(&admin.run("list", json!({"show": "all"})))["status"],
        "completed"
    );
    assert_eq!(
        connections(&modman),
        1,
        "modman reconnected:\n{}",
        modman.log()
    );
    assert!(
        !modman.log().contains("lost the connection"),
        "{}",
        modman.log()
    );
    assert_eq!(snapshot(&prosody.modules_dir()), before);
}

/// The Prosody under test and the one a forged version answer claims:
/// (real series, forged series, forged version string).
fn real_and_forged_versions() -> (&'static str, &'static str, &'static str) {
    match support::server().version {
        support::Version::V0_12 => ("0.12", "13", "13.0.0"),
        support::Version::V13 => ("13", "0.12", "0.12.3"),
    }
}

/// A module tree of one module whose README says it does not work with the
/// Prosody under test, and works with the other.
fn fragile_corpus(corpus: &std::path::Path) {
    let (real, forged, _) = real_and_forged_versions();
    support::write_module(
        corpus,
        "fragile",
        "module:log(\"info\", \"fragile\");\n",
        &format!("---\nsummary: Crashes some servers\n---\n\nCompatibility\n=============\n\n  ------ ----------------------------\n  {forged:<6} Works\n  {real:<6} Does not work (crashes the server)\n  ------ ----------------------------\n"),
    );
}

#[test]
fn a_version_result_from_anyone_but_the_server_is_ignored() {
    let (real, _, forged_version) = real_and_forged_versions();
    let prosody = Prosody::start();
    let repository = Repository::start_with(fragile_corpus);
    let modman = Modman::start(
        &prosody,
        &(prosody.modman_config() + &repository.config_section()),
    );
    support::wait_for("the server's own version answer", || {
        modman
            .log()
            .contains("the server runs Prosody")
            .then_some(())
    });
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.chat(COMPONENT, "refresh");
    let before = snapshot(&prosody.modules_dir());

    // Any user can send a result with the id of modman's version query.
    let mut user = Client::connect(&prosody, USER);
    user.send(&format!(
        "<iq type='result' to='{COMPONENT}' id='modman-server-version'><query xmlns='jabber:iq:version'><name>Prosody</name><version>{forged_version}</version></query></iq>"
    ));
    assert!(answers_admin(&mut user));

    let asked = admin.request(json!({"op": "chat", "to": COMPONENT, "body": "install fragile"}));
    assert_eq!(
        (&asked["json"]["kind"], &asked["json"]["why"]),
        (&json!("confirm"), &json!(["not_working"])),
        "{asked}"
    );
    // Judged by the server's own version, not the forged one.
    let question = asked["body"].as_str().unwrap_or_default();
    assert!(
        question.contains(&format!(
            "fragile is marked as not working with Prosody {real}"
        )),
        "{asked}"
    );
    assert_eq!(admin.chat(COMPONENT, "no"), "Nothing was changed.");
    assert_eq!(snapshot(&prosody.modules_dir()), before);
    assert!(
        !modman
            .log()
            .contains(&format!("the server runs Prosody {forged_version}")),
        "{}",
        modman.log()
    );
}

#[test]
fn after_a_reconnect_a_nick_taken_from_an_admin_proves_nothing() {
    let mut prosody = Prosody::start();
    let repository = Repository::start();
    let mut admin = Client::connect(&prosody, ADMIN);
    // Participants' presence reaches moderators only: modman (a
    // participant) sees the admin (the owner) but not who comes later.
    admin.join_broadcasting(ROOM, "alice", "anyone", &["moderator"]);
    let modman = Modman::start(&prosody, &chat_config(&prosody, &repository, &[ROOM]));
    admin.say(ROOM, "modman: refresh", false);
    // A refusal carries no facts; the refresh's table does.
    let refreshed = admin.next_json_from(ROOM, "modman", 20).expect("an answer");
    assert_eq!(
        rows_by(&refreshed, "repository")["local"]["outcome"],
        "ok",
        "{refreshed}"
    );
    drop(admin);

    // modman loses its connection; meanwhile the admin is gone and a
    // participant takes the nick.
    prosody.restart();
    let mut mallory = Client::connect(&prosody, USER);
    mallory.join(ROOM, "alice", "anyone");
    support::wait_for("modman to connect again", || {
        (connections(&modman) == 2).then_some(())
    });
    let before = snapshot(&prosody.modules_dir());
    let answer = support::wait_for("modman to answer in the room again", || {
        mallory.say(ROOM, "modman: install lastlog", false);
        mallory.next_from(ROOM, "modman", 2)
    });
    assert!(
        answer.starts_with("alice: I cannot tell who you are"),
        "the stale nick was obeyed: {answer}"
    );
    assert!(!answer.contains("admin@localhost"), "{answer}");
    assert_eq!(snapshot(&prosody.modules_dir()), before);
}

#[test]
fn in_a_semi_anonymous_room_a_refusal_names_nobody() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.join(ROOM, "alice", "moderators");
    // modman is a room admin, so a moderator: it sees real JIDs there,
    // which the participants do not.
    let granted = admin.iq(&format!(
        "<iq type='set' to='{ROOM}' id='grant'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='{COMPONENT}'/></query></iq>"
    ));
    assert_eq!(
        granted.attr("type"),
        Some("result"),
        "{}",
        String::from(&granted)
    );
    let _modman = Modman::start(&prosody, &chat_config(&prosody, &repository, &[ROOM]));
    admin.wait_for_occupant(ROOM, "modman");
    let before = snapshot(&prosody.modules_dir());

    let mut mallory = Client::connect(&prosody, USER);
    mallory.join(ROOM, "mallory", "moderators");
    mallory.say(ROOM, "modman: install lastlog", false);
    let refused = admin.next_from(ROOM, "modman", 20).expect("the refusal");
    assert!(
        refused.starts_with("mallory: you are not a modman admin"),
        "{refused}"
    );
    assert!(!refused.contains("user@localhost"), "{refused}");
    assert_eq!(snapshot(&prosody.modules_dir()), before);

    // modman does know who the admin is there.
    admin.say(ROOM, "modman: help", false);
    let help = admin.next_from(ROOM, "modman", 20).expect("an answer");
    assert!(help.starts_with("alice: Commands:"), "{help}");
}

/// A copy of the repository as served now, to serve again later.
fn copy_served(repository: &Repository) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(repository.served())
        .arg(copy.path().join("repo"))
        .status()
        .unwrap();
    assert!(status.success());
    copy
}

/// Serves `copy` (from [`copy_served`]) in place of the repository.
fn serve_copy(repository: &Repository, copy: &tempfile::TempDir) {
    std::fs::remove_dir_all(repository.served()).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(copy.path().join("repo"))
        .arg(repository.served())
        .status()
        .unwrap();
    assert!(status.success());
}

fn state_dir(prosody: &Prosody) -> std::path::PathBuf {
    prosody.path("modman-state")
}

#[test]
fn a_replayed_older_index_is_refused_and_nothing_is_downgraded() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let old = copy_served(&repository);
    let _modman = Modman::start(
        &prosody,
        &(prosody.modman_config() + &repository.config_section()),
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    assert_eq!(refresh_row(&mut admin, "local")["outcome"], "ok");

    // A new version of lastlog is published and installed.
    support::append(
        &repository.corpus("mod_lastlog").join("mod_lastlog.lua"),
        "\n-- a newer lastlog\n",
    );
    repository.rebuild();
    let new_version = repository.entry("lastlog")["version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(refresh_row(&mut admin, "local")["outcome"], "ok");
    let installed = admin.chat_json(COMPONENT, "install lastlog");
    assert_eq!(
        rows_by(&installed, "module")["lastlog"]["version"],
        new_version,
        "{installed}"
    );
    let modules = snapshot(&prosody.modules_dir());
    let state = snapshot(&state_dir(&prosody));

    // Someone between serves the older, validly signed repository.
    serve_copy(&repository, &old);
    let refresh = refresh_row(&mut admin, "local");
    assert_eq!(refresh["outcome"], "failed", "{refresh}");
    // The index accepted before stays in use.
    assert_ne!(refresh["modules"], "", "{refresh}");
    assert_eq!(refresh["cause"], "replay", "{refresh}");
    let update = admin.chat(COMPONENT, "update lastlog");
    // Nothing to update, and not "up to date": the index is not current.
    assert!(
        !update.contains("Everything is up to date")
            && update.contains("the last refresh of local failed"),
        "{update}"
    );
    let listed = rows_by(&admin.chat_json(COMPONENT, "list installed"), "module");
    assert_eq!(listed["lastlog"]["installed"], new_version);
    assert_eq!(listed["lastlog"]["update"], "", "{listed:?}");
    assert_eq!(snapshot(&prosody.modules_dir()), modules);
    only_the_failure_recorded(&state, &snapshot(&state_dir(&prosody)));
}

#[test]
fn an_index_of_the_same_serial_with_other_content_is_refused() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let epoch = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600)
        .to_string();
    // A serial fixed by the build time (an hour ahead: above the one
    // Repository::start built).
    repository.rebuild_with(&[], &[("SOURCE_DATE_EPOCH", &epoch)]);
    let (_modman, mut admin) = support::modman_with(&prosody, &repository);
    let state = snapshot(&state_dir(&prosody));
    support::append(
        &repository.corpus("mod_lastlog").join("mod_lastlog.lua"),
        "\n-- changed\n",
    );
    std::fs::remove_dir_all(repository.served()).unwrap();
    repository.rebuild_with(&[], &[("SOURCE_DATE_EPOCH", &epoch)]);
    let refresh = refresh_row(&mut admin, "local");
    assert_eq!(refresh["outcome"], "failed", "{refresh}");
    assert_eq!(refresh["cause"], "serial_reused", "{refresh}");
    only_the_failure_recorded(&state, &snapshot(&state_dir(&prosody)));
}

#[test]
fn an_expired_index_lists_as_stale_and_installs_nothing_until_a_fresh_one() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    // An index built 40 days ago, valid for 30: expired ten days ago.
    let forty_days_ago = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 40 * 86400)
        .to_string();
    std::fs::remove_dir_all(repository.served()).unwrap();
    repository.rebuild_with(
        &["--valid-for", "30"],
        &[("SOURCE_DATE_EPOCH", &forty_days_ago)],
    );
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(["repo", "verify"])
        .arg(repository.served())
        .args(["--public-key", &repository.public_key, "--json"])
        .output()
        .unwrap();
    let verified = support::json_output(&String::from_utf8_lossy(&verify.stdout));
    assert!(!verify.status.success(), "{verified}");
    let index = repository.index();
    assert_eq!(
        (
            &verified["problems"],
            &verified["repository"],
            &verified["serial"],
            &verified["expires"]
        ),
        (
            &json!([{"file": "index.json", "kind": "expired", "what": verified["problems"][0]["what"]}]),
            &json!("local"),
            &index["serial"],
            &index["expires"]
        ),
        "{verified}"
    );

    // modman's last good index is that one (it was fresh when fetched).
    let indexes = state_dir(&prosody).join("indexes");
    std::fs::create_dir_all(&indexes).unwrap();
    for (served, cached) in [
        ("index.json", "local.json"),
        ("index.json.sig", "local.json.sig"),
    ] {
        std::fs::copy(repository.served().join(served), indexes.join(cached)).unwrap();
    }
    let _modman = Modman::start(
        &prosody,
        &(prosody.modman_config() + &repository.config_section()),
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    let modules = snapshot(&prosody.modules_dir());

    // Still listed from the last good index, with a word that it is stale.
    let listed = admin.chat_json(COMPONENT, "list");
    assert!(
        rows_by(&listed, "module").contains_key("lastlog"),
        "{listed}"
    );
    let listed = admin.chat(COMPONENT, "list");
    assert!(
        listed.contains("Stale: the index of local expired at"),
        "{listed}"
    );
    let expired_index = json!({"error": "unavailable", "outcome": "nothing_changed"});
    let install = admin.chat_json(COMPONENT, "install lastlog");
    assert_eq!(
        json!({"error": install["error"], "outcome": install["outcome"]}),
        expired_index,
        "{install}"
    );
    // The repository serves the same expired index: refused, still stale.
    let refresh = refresh_row(&mut admin, "local");
    assert_eq!(refresh["outcome"], "failed", "{refresh}");
    assert_eq!(refresh["cause"], "expired", "{refresh}");
    let install = admin.chat_json(COMPONENT, "install lastlog");
    assert_eq!(
        json!({"error": install["error"], "outcome": install["outcome"]}),
        expired_index,
        "{install}"
    );
    assert_eq!(snapshot(&prosody.modules_dir()), modules);

    // A fresh index ends it.
    repository.rebuild();
    assert_eq!(refresh_row(&mut admin, "local")["outcome"], "ok");
    let installed = admin.chat_json(COMPONENT, "install lastlog");
    assert_eq!(rows_by(&installed, "module").len(), 1, "{installed}");
}

/// Control characters an upstream contributor could put in a README.
const HOSTILE_TEXT: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J NUL:\u{0} DEL:\u{7f}";

fn has_control(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

#[test]
fn control_characters_from_a_repository_reach_no_stanza_and_no_terminal() {
    // repo build cleans a README, with a warning naming the module.
    let repository = Repository::start_with(|corpus| {
        fragile_corpus(corpus);
        let noisy = corpus.join("mod_noisy");
        std::fs::create_dir_all(&noisy).unwrap();
        std::fs::write(noisy.join("mod_noisy.lua"), "-- noisy\n").unwrap();
        std::fs::write(
            noisy.join("README.markdown"),
            format!("---\nsummary: loud{HOSTILE_TEXT}\n---\n\nText{HOSTILE_TEXT}\n"),
        )
        .unwrap();
    });
    let out = tempfile::tempdir().unwrap();
    let build = std::process::Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(["repo", "build", "--from"])
        .arg(repository.dir.path().join("corpus"))
        .arg("--out")
        .arg(out.path().join("repo"))
        .arg("--key")
        .arg(repository.dir.path().join("key"))
        .args(["--name", "local"])
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&build.stderr);
    assert!(
        build.status.success()
            && warnings
                .lines()
                .any(|w| w.starts_with("warning: mod_noisy: ")
                    && w.ends_with("control characters in its README replaced with U+FFFD")),
        "{warnings}"
    );
    let built = std::fs::read_to_string(repository.served().join("index.json")).unwrap();
    assert!(
        !built.contains("\\u001b") && !built.contains("\\u0000"),
        "{built}"
    );

    // An index signed with control characters in it (another builder).
    let path = repository.served().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for module in index["modules"].as_array_mut().unwrap() {
        module["summary"] = HOSTILE_TEXT.into();
        module["description"] = format!("readme {HOSTILE_TEXT}").into();
        module["version"] = format!("2026{HOSTILE_TEXT}").into();
    }
    repository.serve_signed(&index);

    let prosody = Prosody::start();
    let (modman, mut admin) = support::modman_with(&prosody, &repository);
    let before = snapshot(&prosody.modules_dir());
    for line in ["info noisy", "list", "info fragile"] {
        let answer = admin.chat(COMPONENT, line);
        assert!(!has_control(&answer), "{line}: {answer:?}");
        assert!(answer.contains('\u{FFFD}'), "{line}: {answer:?}");
    }
    let info = admin.run("info", json!({"module": "fragile"}));
    assert_eq!(last(&info)["status"], "completed", "{info}");
    assert!(!has_control(&info.to_string()), "{info}");
    assert!(answers_admin(&mut admin));
    assert_eq!(connections(&modman), 1, "{}", modman.log());

    // The shell prints the same text, cleaned.
    for args in [&["info", "noisy"][..], &["list"]] {
        let (ok, stdout, stderr) = support::cli(args, &prosody.path("modman.toml"));
        assert!(ok, "{stderr}");
        assert!(!has_control(&stdout) && !has_control(&stderr), "{stdout:?}");
        assert!(stdout.contains('\u{FFFD}'), "{stdout:?}");
    }
    assert_eq!(snapshot(&prosody.modules_dir()), before);
}

/// Replaces `module`'s entry fields in the served index and signs it again
/// with the repository's key, as a hostile (or careless) builder could.
fn sign_modified_index(repository: &Repository, edit: impl Fn(&mut serde_json::Value)) {
    let path = repository.served().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut index);
    repository.serve_signed(&index);
}

#[test]
fn a_percent_encoded_archive_path_fetches_nothing_outside_the_repository() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    // The repository lives at /repo/ of a server whose root holds more.
    let lastlog = repository.entry("lastlog");
    let archive = repository
        .served()
        .join(lastlog["archive"].as_str().unwrap());
    std::fs::copy(&archive, repository.dir.path().join("x.tar.gz")).unwrap();
    sign_modified_index(&repository, |index| {
        for module in index["modules"].as_array_mut().unwrap() {
            if module["name"] == "lastlog" {
                module["archive"] = "archives/%2e%2e/%2e%2e/x.tar.gz".into();
            }
        }
    });
    let port = support::free_port();
    let requests = repository.dir.path().join("requests.log");
    let mut server = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(repository.dir.path())
        .arg(port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&requests).unwrap())
        .spawn()
        .unwrap();
    support::wait_for("the HTTP server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let config = format!(
        "{}\n[[repositories]]\nname = \"local\"\nurl = \"http://127.0.0.1:{port}/repo/\"\npublic_key = \"{}\"\n",
        prosody.modman_config(),
        repository.public_key
    );
    let _modman = Modman::start(&prosody, &config);
    let mut admin = Client::connect(&prosody, ADMIN);
    let modules = snapshot(&prosody.modules_dir());

    // The index is refused whole: one archive path out of the tree.
    let refresh = support::refresh_row(&mut admin, "local");
    assert_eq!(
        (&refresh["outcome"], &refresh["cause"]),
        (&json!("failed"), &json!("invalid")),
        "{refresh}"
    );
    let install = admin.chat_json(COMPONENT, "install lastlog");
    assert_eq!(
        (&install["error"], &install["outcome"]),
        (&json!("not_found"), &json!("nothing_changed")),
        "{install}"
    );
    assert_eq!(snapshot(&prosody.modules_dir()), modules);
    let _ = server.kill();
    let _ = server.wait();
    let log = std::fs::read_to_string(&requests).unwrap();
    assert!(log.contains("GET /repo/index.json "), "{log}");
    assert!(!log.contains("x.tar.gz"), "{log}");
}

#[test]
fn setup_refuses_a_planted_link_and_changes_nothing() {
    let prosody = Prosody::start_plain();
    let original = std::fs::read_to_string(prosody.config_path()).unwrap();
    // The prosody user owns the data directory and plants a link where
    // setup (as root) would create and chown modman's module directory.
    let data = prosody.path("data");
    let victim = prosody.path("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::os::unix::fs::symlink(&victim, data.join("modman")).unwrap();
    let modman_toml = prosody.path("etc/modman.toml");
    let names = || {
        let mut names: Vec<_> = std::fs::read_dir(prosody.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = names();
    let owner = || std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&victim).unwrap());
    let victim_owner = owner();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(["setup", "--domain", support::DOMAIN, "--prosody-config"])
        .arg(prosody.config_path())
        .arg("--config")
        .arg(&modman_toml)
        .arg("--data-dir")
        .arg(&data)
        .arg("--state-dir")
        .arg(prosody.path("modman-state"))
        .arg("--no-repository")
        .arg("--write")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "{} is a symbolic link where modman setup expects its own directory",
            data.join("modman").display()
        )) && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(prosody.config_path()).unwrap(),
        original
    );
    assert!(!modman_toml.exists());
    // No backup, no state dir, nothing created in or chowned through the link.
    assert_eq!(names(), before);
    assert_eq!(std::fs::read_link(data.join("modman")).unwrap(), victim);
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    assert_eq!(owner(), victim_owner);
}

/// Owner, group and mode of `path`.
fn owner_and_mode(path: &std::path::Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// A uid and gid from /etc/passwd.
fn account(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in /etc/passwd"));
    let ids: Vec<u32> = line
        .split(':')
        .skip(2)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    (ids[0], ids[1])
}

#[test]
fn setup_keeps_prosodys_config_readable_and_creates_what_it_needs_for_prosody() {
    use std::os::unix::fs::PermissionsExt;
    // As packaged: Prosody's config is the admin's, readable by Prosody
    // through its group only. Here its owner is `nobody`, so that a
    // rewrite as root:root shows.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (prosody_uid, prosody_gid) = account("prosody");
    let (nobody, _) = account("nobody");
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let config = etc.join("prosody.cfg.lua");
    let debian = std::fs::read_to_string("/etc/prosody/prosody.cfg.lua").unwrap();
    std::fs::write(&config, &debian).unwrap();
    std::os::unix::fs::chown(&config, Some(nobody), Some(prosody_gid)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (data, state) = (dir.path().join("data"), dir.path().join("state"));
    // Prosody's data directory, as the package makes it: Prosody's user's.
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(prosody_uid), Some(prosody_gid)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
    let modman_toml = etc.join("modman.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(["setup", "--domain", support::DOMAIN, "--prosody-config"])
        .arg(&config)
        .arg("--config")
        .arg(&modman_toml)
        .arg("--data-dir")
        .arg(&data)
        .arg("--state-dir")
        .arg(&state)
        .arg("--no-repository")
        .arg("--write")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("Include \"") && written.len() > debian.len());
    assert_eq!(owner_and_mode(&config), (nobody, prosody_gid, 0o640));
    let backups: Vec<_> = std::fs::read_dir(&etc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    let [backup] = backups.as_slice() else {
        panic!("one backup expected: {backups:?}")
    };
    assert_eq!(std::fs::read_to_string(backup).unwrap(), debian);
    assert_eq!(owner_and_mode(backup), (nobody, prosody_gid, 0o640));
    // What modman and Prosody, both running as prosody, need: theirs, and
    // nothing readable by every local user.
    for (path, mode) in [
        (state.clone(), 0o750),
        (data.join("modman"), 0o750),
        (data.join("modman.cfg.lua"), 0o640),
        (modman_toml.clone(), 0o600),
    ] {
        assert_eq!(
            owner_and_mode(&path),
            (prosody_uid, prosody_gid, mode),
            "{}",
            path.display()
        );
    }

    // check, run as root, reads as Prosody, stopped here, would: as the
    // owner of its data directory.
    let port = support::free_port();
    let toml = std::fs::read_to_string(&modman_toml)
        .unwrap()
        .replace("127.0.0.1:5347", &format!("127.0.0.1:{port}"));
    std::fs::write(&modman_toml, toml).unwrap();
    let row = |out: &str| support::json_rows(out, "check")["readable by prosody"].clone();
    let (_, out, _) = support::cli(&["check", "--json"], &modman_toml);
    assert_eq!(row(&out)["outcome"], "ok", "{out}");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, out, _) = support::cli(&["check", "--json"], &modman_toml);
    let row = row(&out);
    assert!(!ok, "{out}");
    assert_eq!(row["outcome"], "failed", "{out}");
    assert!(
        row["detail"]
            .as_str()
            .unwrap()
            .contains(&config.display().to_string()),
        "{out}"
    );
}

#[test]
fn check_fails_on_a_secret_readable_by_everyone_with_the_chmod_to_run() {
    use std::os::unix::fs::PermissionsExt;
    let prosody = Prosody::start();
    let secret = prosody.path("component.secret");
    let config = prosody.modman_config();
    let inline = config
        .lines()
        .find(|l| l.starts_with("secret = "))
        .unwrap()
        .to_owned();
    let value = inline.split('"').nth(1).unwrap();
    std::fs::write(&secret, format!("{value}\n")).unwrap();
    let path = prosody.path("check.toml");
    std::fs::write(
        &path,
        config.replace(&inline, &format!("secret_file = \"{}\"", secret.display())),
    )
    .unwrap();
    for (file, mode) in [(&path, 0o644), (&secret, 0o604)] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (ok, out, err) = support::cli(&["check", "--json"], &path);
    assert!(!ok, "{out}{err}");
    let row = support::json_rows(&out, "check")["secret"].clone();
    assert_eq!(row["outcome"], "failed", "{row}");
    let row = row["detail"].as_str().unwrap();
    for (file, mode) in [(&path, "644"), (&secret, "604")] {
        assert!(
            row.contains(&format!(
                "{} is readable by every local user (mode {mode})",
                file.display()
            )) && row.contains(&format!("chmod 600 {}", file.display())),
            "{row}"
        );
    }
    // Nothing was changed by check, and after the chmod it passes.
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o604
    );
    for file in [&path, &secret] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let (_, out, _) = support::cli(&["check", "--json"], &path);
    assert_eq!(
        support::json_rows(&out, "check")["secret"]["outcome"],
        "ok",
        "{out}"
    );
}

/// modman's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn a_20000_module_catalog_is_listed_again_and_again_without_growing() {
    let prosody = Prosody::start();
    let mut repository = Repository::start();
    // 20,000 entries with a README-sized description each, signed like a
    // real index (listing needs no archive).
    sign_modified_index(&repository, |index| {
        let template = index["modules"][0].clone();
        let modules = index["modules"].as_array_mut().unwrap();
        modules.clear();
        for i in 0..20_000 {
            let mut module = template.clone();
            module["name"] = format!("synthetic_{i:05}").into();
            module["summary"] = format!("Synthetic module {i}").into();
            module["description"] = "Text of the description. ".repeat(40).into();
            module["dependencies"] = serde_json::json!([]);
            modules.push(module);
        }
    });
    let size = std::fs::metadata(repository.served().join("index.json"))
        .unwrap()
        .len();
    let (modman, mut admin) = support::modman_with(&prosody, &repository);
    let list = |admin: &mut Client| {
        let answer = admin.chat_json(COMPONENT, "list synthetic_12345");
        assert!(
            rows_by(&answer, "module").contains_key("synthetic_12345"),
            "{answer}"
        );
    };
    for _ in 0..5 {
        list(&mut admin);
    }
    // The whole catalog in one reply would be over Prosody's stanza limit
    // (it would drop modman's stream): a reply holds 200 rows at most and
    // says how to narrow it, over ad-hoc and chat alike.
    let everything = admin.run("list", serde_json::json!({}));
    assert_eq!(
        support::last(&everything)["status"],
        "completed",
        "{everything}"
    );
    let items = support::last(&everything)["form"]["items"]
        .as_array()
        .map(Vec::len);
    assert_eq!(items, Some(200), "{everything}");
    let chat = admin.chat_json(COMPONENT, "list");
    assert_eq!(chat["rows"].as_array().map(Vec::len), Some(200));
    let settled = rss_kib(modman.pid());
    for _ in 0..50 {
        list(&mut admin);
    }
    let after = rss_kib(modman.pid());
    eprintln!(
        "index {} KiB; modman RSS {settled} KiB after 5 lists, {after} KiB after 55",
        size / 1024
    );
    assert!(
        after <= settled + 8 * 1024,
        "RSS grew from {settled} to {after} KiB over 50 lists"
    );
    // Refreshing the same index, or failing to, swaps or keeps one copy.
    for _ in 0..3 {
        assert_eq!(refresh_row(&mut admin, "local")["outcome"], "ok");
    }
    repository.stop();
    for _ in 0..3 {
        assert_eq!(refresh_row(&mut admin, "local")["outcome"], "failed");
    }
    list(&mut admin);
    let refreshed = rss_kib(modman.pid());
    eprintln!("modman RSS {refreshed} KiB after 6 refreshes");
    assert!(
        refreshed <= settled + 64 * 1024,
        "RSS grew from {settled} to {refreshed} KiB over 6 refreshes"
    );
    assert!(answers_admin(&mut admin));
    assert_eq!(connections(&modman), 1);
}

#[test]
fn a_repository_rotating_its_key_is_trusted_under_every_listed_key() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let config_path = prosody.path("modman.toml");
    let write_config = |keys: &str| {
        std::fs::write(
            &config_path,
            format!(
                "{}\n[[repositories]]\nname = \"local\"\nurl = \"http://127.0.0.1:{}/\"\n{keys}\n",
                prosody.modman_config(),
                repository.port
            ),
        )
        .unwrap();
    };
    // The maintainer makes a new key and signs with it from now on.
    let new_key = repository.dir.path().join("new.key");
    let keygen = std::process::Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(["repo", "keygen", "--out"])
        .arg(&new_key)
        .output()
        .unwrap();
    let new_public = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
    let build = std::process::Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(["repo", "build", "--from"])
        .arg(repository.dir.path().join("corpus"))
        .arg("--out")
        .arg(repository.served())
        .arg("--key")
        .arg(&new_key)
        .args(["--name", "local"])
        .output()
        .unwrap();
    assert!(build.status.success());

    // Trusting only the old key: refused, nothing kept.
    write_config(&format!("public_key = \"{}\"", repository.public_key));
    let (_, out, _) = support::cli(&["refresh", "--json"], &config_path);
    assert_eq!(
        support::json_rows(&out, "repository")["local"]["cause"],
        "signature",
        "{out}"
    );
    assert!(!state_dir(&prosody).join("indexes/local.json").exists());
    // Trusting both while clients move over: accepted.
    write_config(&format!(
        "public_keys = [\"{}\", \"{new_public}\"]",
        repository.public_key
    ));
    let (_, out, _) = support::cli(&["refresh", "--json"], &config_path);
    assert_eq!(
        support::json_rows(&out, "repository")["local"]["outcome"],
        "ok"
    );
}

/// A reply holding one line much longer than Prosody's 8 KiB read (a
/// README paragraph on one line, 45 KB) reaches the admin whole and at
/// once. Prosody 13's expat holds back a *client's* token that long until
/// more bytes come (see the test client's nudge); checked here that
/// modman's replies through the component stream are not held.
#[test]
fn a_reply_with_a_line_longer_than_a_read_arrives_at_once() {
    let prosody = Prosody::start();
    let tail = "and this is where the paragraph ends";
    let repository = Repository::start_with(|corpus| {
        let module = corpus.join("mod_wordy");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(module.join("mod_wordy.lua"), "-- wordy\n").unwrap();
        std::fs::write(
            module.join("README.markdown"),
            format!(
                "---\nsummary: Says a lot\n---\n\n{}{tail}\n",
                "A long sentence that goes on. ".repeat(1_500)
            ),
        )
        .unwrap();
    });
    let (_modman, mut admin) = support::modman_with(&prosody, &repository);
    // The client waits 20 s, well under modman's next keepalive (60 s),
    // which would have released it.
    let info = admin.chat(COMPONENT, "info wordy");
    assert!(info.contains(tail), "{info}");
}

/// The paths whose contents differ between two snapshots.
fn changed(
    before: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
    after: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
) -> Vec<std::path::PathBuf> {
    let paths: std::collections::BTreeSet<_> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter(|path| before.get(*path) != after.get(*path))
        .cloned()
        .collect()
}

/// Asserts that the only change to the state directory is the record of
/// why the last refresh of `local` failed.
fn only_the_failure_recorded(
    before: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
    after: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
) {
    assert_eq!(
        changed(before, after),
        [std::path::PathBuf::from("refresh/local.failed.json")]
    );
}

/// Copies the module tree of `repository` to `into`.
fn copy_tree(repository: &Repository, into: &std::path::Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(repository.dir.path().join("corpus"))
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success());
}

/// One key signs a `stable` and a `testing` repository. The testing
/// index served at the stable URL is validly signed and newer, but it is
/// not stable's: refused, both names said, and nothing installed or
/// changed (files, managed config, installed.json, the cached index, what
/// Prosody runs). An index naming no repository is refused the same way.
#[test]
fn another_repositorys_index_signed_with_the_same_key_is_refused_and_changes_nothing() {
    let prosody = Prosody::start();
    let stable = Repository::start_named("stable", support::debian_corpus);
    let testing = tempfile::tempdir().unwrap();
    let tree = testing.path().join("corpus");
    copy_tree(&stable, &tree);
    support::append(
        &tree.join("mod_lastlog").join("mod_lastlog.lua"),
        "\n-- the testing build\n",
    );
    let build = std::process::Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(["repo", "build", "--from"])
        .arg(&tree)
        .arg("--out")
        .arg(testing.path().join("repo"))
        .arg("--key")
        .arg(stable.dir.path().join("key"))
        .args(["--name", "testing"])
        .output()
        .unwrap();
    assert!(build.status.success());

    let modman = Modman::start(
        &prosody,
        &(prosody.modman_config() + &stable.config_section()),
    );
    let mut admin = Client::connect(&prosody, ADMIN);
    let refresh = admin.run_steps("refresh", json!([]));
    assert_eq!(last(&refresh)["form"]["items"][0]["outcome"], "ok");
    let installed = admin.run("install", json!({"modules": ["lastlog"], "enable": true}));
    assert_eq!(last(&installed)["status"], "completed", "{installed}");
    // Everything but the record of why the last refresh failed.
    let everything = || {
        let mut state = snapshot(&state_dir(&prosody));
        state.retain(|path, _| !path.starts_with("refresh"));
        (
            snapshot(&prosody.modules_dir()),
            state,
            std::fs::read(prosody.path("modman.cfg.lua")).unwrap(),
            prosody.module_list("localhost"),
        )
    };
    let before = everything();
    assert!(before.3.iter().any(|m| m == "lastlog"), "{:?}", before.3);
    let memory = rss_kib(modman.pid());

    // Someone serves the testing repository at the stable URL.
    std::fs::remove_dir_all(stable.served()).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(testing.path().join("repo"))
        .arg(stable.served())
        .status()
        .unwrap();
    assert!(status.success());
    let refresh = admin.run_steps("refresh", json!([]));
    let reply = last(&refresh);
    let row = &reply["form"]["items"][0];
    assert_eq!(row["repository"], "stable");
    assert_eq!(row["outcome"], "failed", "{reply}");
    assert_eq!(row["cause"], "other_repository", "{reply}");
    // The summary every client shows carries the failure too.
    let result = row["result"].as_str().unwrap();
    let notes = support::summary(reply);
    assert!(notes.contains(result), "{notes}");

    let update = admin.run("update", json!({"modules": ["lastlog"], "confirm": true}));
    assert_eq!(last(&update)["status"], "completed", "{update}");
    assert!(
        last(&update)["form"]["items"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{update}"
    );
    let after = everything();
    assert!(
        after == before,
        "changed: {:?}",
        changed(&before.1, &after.1)
    );

    // An index that names no repository (an older build) is refused too,
    // with the rebuild that fixes it.
    sign_modified_index(&stable, |index| {
        index.as_object_mut().unwrap().remove("repository");
    });
    let refresh = admin.run_steps("refresh", json!([]));
    let row = &last(&refresh)["form"]["items"][0];
    assert_eq!(row["outcome"], "failed", "{refresh}");
    assert_eq!(row["cause"], "unnamed", "{row}");
    let after = everything();
    assert!(
        after == before,
        "changed: {:?}",
        changed(&before.1, &after.1)
    );
    let grown = rss_kib(modman.pid()).saturating_sub(memory);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
}

/// A signed index (a mirror's, say) naming a module's archive the library
/// `share`: installing it would put `share/lua/5.4/mod_version.lua` where
/// Prosody's loader looks for its own mod_version. Refused naming the
/// file, and nothing is written.
#[test]
fn a_signed_library_named_share_installs_nothing() {
    let prosody = Prosody::start();
    let repository = Repository::start_with(|corpus| {
        let module = corpus.join("mod_evil");
        std::fs::create_dir_all(module.join("lua/5.4")).unwrap();
        std::fs::write(module.join("mod_evil.lua"), "return {}").unwrap();
        std::fs::write(
            module.join("lua/5.4/mod_version.lua"),
            "module:log('error', 'not Prosody')",
        )
        .unwrap();
    });
    sign_modified_index(&repository, |index| {
        for module in index["modules"].as_array_mut().unwrap() {
            if module["name"] == "evil" {
                module["library"] = "share".into();
            }
        }
    });
    let config = support::cli_config(&prosody, &repository);
    let (ok, out, err) = support::cli(&["refresh"], &config);
    assert!(ok, "{out}{err}");
    let state = || {
        (
            snapshot(&prosody.modules_dir()),
            std::fs::read(prosody.path("modman-state/installed.json")).ok(),
            std::fs::read(prosody.path("modman.cfg.lua")).ok(),
            prosody.loaded_modules(support::DOMAIN),
        )
    };
    let before = state();
    let (ok, _, err) = support::cli(&["install", "--yes", "evil"], &config);
    assert!(
        !ok && err.contains(
            "`share/lua/5.4/mod_version.lua` is where Prosody's loader looks for every module's files"
        ),
        "{err}"
    );
    assert_eq!(state(), before);
}

/// modman's CPU time so far, user and system, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / per_second as f64
}

/// Whether the process is still running (not gone, not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
}

/// `levels` elements inside one another: 30,000 are 210 KB, under
/// Prosody's 256 KiB limit for a client's stanza.
fn nested(levels: usize) -> String {
    format!("{}{}", "<a>".repeat(levels), "</a>".repeat(levels))
}

#[test]
fn stanzas_nested_30000_deep_are_refused_unread_and_modman_stays_up() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.join(ROOM, "alice", "anyone");
    let modman = Modman::start(&prosody, &chat_config(&prosody, &repository, &[ROOM]));
    admin.wait_for_occupant(ROOM, "modman");
    let mut mallory = Client::connect(&prosody, USER);
    mallory.join(ROOM, "mallory", "anyone");
    let before = (
        snapshot(&prosody.modules_dir()),
        snapshot(&state_dir(&prosody)),
        prosody.loaded_modules("localhost"),
    );
    let pid = modman.pid();
    let (cpu, rss) = (cpu_seconds(pid), rss_kib(pid));
    let deep = nested(30_000);

    // A direct chat, a command in modman's room, a join presence to it.
    mallory.send(&format!(
        "<message to='{COMPONENT}' type='chat'><body>list</body>{deep}</message>"
    ));
    mallory.send(&format!(
        "<message to='{ROOM}' type='groupchat'><body>modman: list</body>{deep}</message>"
    ));
    mallory.send(&format!(
        "<presence to='{ROOM}/deep'><x xmlns='http://jabber.org/protocol/muc'/>{deep}</presence>"
    ));
    // An IQ request, sent last: its answer means modman read the others.
    let reply = mallory.raw(
        &format!("<iq type='get' id='deep' to='{COMPONENT}'><query xmlns='http://jabber.org/protocol/disco#info'>{deep}</query></iq>"),
        "deep",
    );
    let (spent, grown) = (cpu_seconds(pid) - cpu, rss_kib(pid).saturating_sub(rss));
    let (kind, condition, _, text) = support::stanza_error(&reply);
    assert_eq!(
        (kind.as_str(), condition.as_str()),
        ("modify", "policy-violation")
    );
    assert!(
        text.contains(&modman::xmpp::stream::MAX_DEPTH.to_string()),
        "the error names the limit: {text}"
    );

    // Same process, same connection, answering an admin at once.
    assert_eq!(
        last(&admin.run("list", json!({"show": "all"})))["status"],
        "completed"
    );
    assert!(answers_admin(&mut admin));
    assert!(running(pid), "{}", modman.log());
    assert_eq!(connections(&modman), 1, "{}", modman.log());
    assert!(!modman.log().contains("lost the connection"));
    eprintln!("modman spent {spent:.2} s of CPU and grew {grown} KiB over the attack");
    assert!(spent < 1.0, "{spent} s of CPU");
    assert!(grown < 16 * 1024, "RSS grew {grown} KiB");
    let after = (
        snapshot(&prosody.modules_dir()),
        snapshot(&state_dir(&prosody)),
        prosody.loaded_modules("localhost"),
    );
    assert!(after == before, "something changed");
}

#[test]
fn a_flood_from_many_non_admins_neither_holds_up_an_admin_nor_fills_the_room() {
    use modman::xmpp::budget::{PER_ROOM, PER_SENDER};
    const FLOODERS: usize = 10;
    const LINES: usize = 300;
    const ROOM_LINES: usize = 20;
    let prosody = Prosody::start();
    let accounts: Vec<String> = (0..FLOODERS)
        .map(|i| {
            format!(
                "user:create(\"flood{i}@localhost\", \"{}\")",
                support::PASSWORD
            )
        })
        .collect();
    prosody.shell(&accounts.join("; "));
    let repository = Repository::start();
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.join(ROOM, "alice", "anyone");
    let modman = Modman::start(&prosody, &chat_config(&prosody, &repository, &[ROOM]));
    admin.wait_for_occupant(ROOM, "modman");
    let flooders: Vec<Client> = (0..FLOODERS)
        .map(|i| {
            let mut flooder = Client::connect(&prosody, &format!("flood{i}@localhost"));
            flooder.join(ROOM, &format!("flood{i}"), "anyone");
            flooder
        })
        .collect();
    let before = snapshot(&prosody.modules_dir());

    let started = std::time::Instant::now();
    let floods: Vec<_> = flooders
        .into_iter()
        .map(|mut flooder| {
            std::thread::spawn(move || {
                let answer = flooder.request(json!({
                    "op": "blast", "to": COMPONENT, "count": LINES, "body": "list",
                    "room": ROOM, "room_count": ROOM_LINES, "room_body": "modman: list",
                }));
                (flooder, answer)
            })
        })
        .collect();
    // Meanwhile an admin's commands are all answered.
    for _ in 0..4 {
        assert_eq!(
            last(&admin.run("list", json!({"show": "all"})))["status"],
            "completed"
        );
    }
    let answers: Vec<serde_json::Value> = floods
        .into_iter()
        .map(|flood| flood.join().unwrap().1)
        .collect();
    let elapsed = started.elapsed();

    // What each flooder got back is what its budget allows, not one
    // answer per line.
    let periods = |every: std::time::Duration| (elapsed.as_secs_f64() / every.as_secs_f64()) as u64;
    let allowed = u64::from(PER_SENDER.burst) + periods(PER_SENDER.every) + 1;
    let mut total = 0;
    for answer in &answers {
        assert_eq!(answer["read"], true, "modman never answered: {answer}");
        let replies = answer["replies"].as_u64().unwrap();
        assert!(
            replies <= allowed,
            "{replies} replies, over {allowed}: {answer}"
        );
        total += replies;
    }
    assert!(total > 0, "the flooders were refused at least once");
    // The room heard a refusal or two, not one per line.
    let in_room = admin.request(json!({"op": "count_from", "room": ROOM, "nick": "modman"}));
    let in_room = in_room["count"].as_u64().unwrap();
    let room_allowed = u64::from(PER_ROOM.burst) + periods(PER_ROOM.every) + 1;
    eprintln!(
        "{} lines from {FLOODERS} JIDs in {elapsed:?}: {total} refusals back, {in_room} in the room",
        FLOODERS * (LINES + ROOM_LINES)
    );
    assert!(in_room <= room_allowed, "{in_room} refusals in the room");
    assert!(modman.log().contains("over its budget"));
    assert_eq!(connections(&modman), 1);
    assert_eq!(snapshot(&prosody.modules_dir()), before);
}

#[test]
fn the_longest_readme_and_200_of_the_longest_summaries_an_index_allows_each_fit_one_reply() {
    const STANZA: usize = 256 * 1024;
    let prosody = Prosody::start();
    let repository = Repository::start();
    let name = repository.index()["modules"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    // As long as the index reader takes them: longer than one reply, a
    // README in lines and a row in cells.
    use modman::repo::index::limits;
    let mut readme = String::new();
    for i in 0.. {
        let line = format!("Line {i} of a README longer than any reply.\n");
        if readme.len() + line.len() > limits::DESCRIPTION {
            break;
        }
        readme += &line;
    }
    let summary: String = "A summary that says a great deal. "
        .repeat(limits::SUMMARY)
        .chars()
        .take(limits::SUMMARY)
        .collect();
    sign_modified_index(&repository, |index| {
        let template = index["modules"][0].clone();
        index["modules"][0]["description"] = readme.clone().into();
        let modules = index["modules"].as_array_mut().unwrap();
        for i in 0..200 {
            let mut module = template.clone();
            module["name"] = format!("wordy_{i:03}").into();
            module["summary"] = summary.clone().into();
            module["description"] = "".into();
            module["dependencies"] = json!([]);
            modules.push(module);
        }
    });
    let (modman, mut admin) = support::modman_with(&prosody, &repository);
    let archive = repository.entry(&name)["archive"]
        .as_str()
        .unwrap()
        .to_owned();

    // info, in chat and as a form: the README's start, how much more, and
    // where the whole of it is.
    let info = admin.chat(COMPONENT, &format!("info {name}"));
    assert!(info.len() < STANZA, "{} bytes", info.len());
    let facts = admin.chat_json(COMPONENT, &format!("info {name}"));
    let description = facts["fields"]["description"].as_str().unwrap_or_default();
    assert!(description.starts_with(&readme[..40]), "{facts}");
    let whole_at = facts["whole_at"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        whole_at.ends_with(&format!("127.0.0.1:{}/{archive}", repository.port)),
        "{facts}"
    );
    // The text read in chat and in the form says where the rest is.
    let more = |text: &str| text.contains(whole_at);
    assert!(more(&info), "{}", &info[info.len().saturating_sub(300)..]);
    let form = admin.run("info", json!({"module": name}));
    assert_eq!(last(&form)["status"], "completed");
    let description = last(&form)["form"]["values"]["description"].to_string();
    assert!(description.len() < STANZA && more(&description));

    // list: the first rows, and how many more there are.
    let listed = admin.chat(COMPONENT, "list wordy");
    assert!(listed.len() < STANZA, "{} bytes", listed.len());
    let shown = listed.lines().filter(|l| l.starts_with("wordy_")).count();
    assert!(shown > 0 && shown < 200, "{shown} rows");
    assert!(
        listed.contains(&format!("{} more rows", 200 - shown)),
        "{listed}"
    );
    let table = admin.run("list", json!({"query": "wordy"}));
    let reply = last(&table);
    assert_eq!(reply["status"], "completed");
    let items = reply["form"]["items"].as_array().unwrap().len();
    assert!(items > 0 && items < 200, "{items} rows");
    assert!(
        support::summary(reply).contains(&format!("{} more rows", 200 - items)),
        "{reply}"
    );

    // Nothing was too large to send, and the stream was never reset.
    assert_eq!(connections(&modman), 1, "{}", modman.log());
    assert!(!modman.log().contains("lost the connection"));
    assert!(
        !modman.log().contains("Prosody accepts from a component"),
        "{}",
        modman.log()
    );
}

/// A server process, killed when dropped.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `dir` over HTTPS on 127.0.0.1 with the certificate `cert` (its
/// key `key`), by Python's static file server behind its ssl module, as
/// an admin could serve a repository behind TLS; returns the server and
/// its port.
fn serve_https(
    dir: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> (Stopped, u16) {
    const SERVER: &str = "import functools, http.server, ssl, sys\n\
        directory, port, cert, key = sys.argv[1:]\n\
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)\n\
        httpd = http.server.ThreadingHTTPServer(('127.0.0.1', int(port)), handler)\n\
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
        context.load_cert_chain(cert, key)\n\
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)\n\
        httpd.serve_forever()\n";
    let port = support::free_port();
    let child = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(SERVER)
        .arg(dir)
        .arg(port.to_string())
        .arg(cert)
        .arg(key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let served = Stopped(child);
    support::wait_for("the repository's HTTPS server", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    });
    (served, port)
}

/// An https repository is read only through certificates the system
/// trusts (`SSL_CERT_FILE` stands for the system's roots here), and a
/// plain-HTTP one never needs them: modman reads the roots only for an
/// https URL, so a host whose roots cannot be read still installs from
/// a local repository.
#[test]
fn an_https_repository_is_trusted_only_through_the_systems_roots() {
    let prosody = Prosody::start_with_tls();
    let repository = Repository::start();
    let (_server, port) = serve_https(
        &repository.served(),
        &prosody.path("certs/localhost.crt"),
        &prosody.path("certs/localhost.key"),
    );
    let config = prosody.path("modman.toml");
    let plain = repository.config_section();
    let https = plain.replace(
        &format!("http://127.0.0.1:{}/", repository.port),
        &format!("https://localhost:{port}/"),
    );
    assert_ne!(https, plain);
    // The system's roots, or instead only those of a file (none from
    // /dev/null): `SSL_CERT_FILE` and `SSL_CERT_DIR` are where any TLS
    // client on the system looks instead of the system's store.
    let no_dir = prosody.path("no-such-directory");
    let run = |section: &str, roots: Option<&std::path::Path>, args: &[&str]| {
        std::fs::write(&config, prosody.modman_config() + section).unwrap();
        let mut command = support::Program::this_build().command();
        command
            .args(args)
            .arg("--json")
            .arg("--config")
            .arg(&config);
        if let Some(roots) = roots {
            command
                .env("SSL_CERT_FILE", roots)
                .env("SSL_CERT_DIR", &no_dir);
        }
        let output = command.output().unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        (output.status.success(), support::json_output(&out))
    };
    let refreshed = |(_, json): (bool, serde_json::Value)| json["rows"][0].clone();

    // No roots at all change nothing for plain HTTP.
    let none = std::path::Path::new("/dev/null");
    let row = refreshed(run(&plain, Some(none), &["refresh"]));
    assert_eq!(row["outcome"], "ok", "{row}");

    // The test's CA is not among the system's roots: refused, the index
    // read over HTTP stays the one in use.
    let row = refreshed(run(&https, None, &["refresh"]));
    assert_eq!(row["outcome"], "failed", "{row}");
    assert_eq!(row["cause"], "unreachable", "{row}");
    // Nor without roots at all.
    let row = refreshed(run(&https, Some(none), &["refresh"]));
    assert_eq!(row["cause"], "unreachable", "{row}");

    // Trusted, it is read and installed from.
    let ca = prosody.ca_path();
    let row = refreshed(run(&https, Some(&ca), &["refresh"]));
    assert_eq!(row["outcome"], "ok", "{row}");
    // The index the refresh verified and kept is remembered, so the
    // install below loads it by its digest.
    assert!(state_dir(&prosody)
        .join("indexes/local.verified.json")
        .is_file());
    let (ok, installed) = run(&https, Some(&ca), &["install", "--yes", "lastlog"]);
    assert!(ok, "{installed}");
    assert_eq!(installed["rows"][0]["module"], "lastlog", "{installed}");
    assert!(prosody
        .modules_dir()
        .join("mod_lastlog/mod_lastlog.lua")
        .is_file());
}
