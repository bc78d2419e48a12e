//! The component against a real Prosody: discovery, the ad-hoc framework,
//! access control, hostile requests, reconnection and shutdown.

mod support;

use std::process::Command;

use serde_json::json;
use support::{failed_command, stanza_error, Client, Modman, Prosody, ADMIN, COMPONENT, USER};

const COMMANDS: &str = "http://jabber.org/protocol/commands";

/// Copies real community modules from Debian's prosody-modules package.
fn install_from_corpus(prosody: &Prosody, names: &[&str]) {
    for name in names {
        let status = Command::new("cp")
            .arg("-r")
            .arg(support::corpus_module(name))
            .arg(prosody.modules_dir())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{name} is in prosody-modules (scripts/test installs it)"
        );
    }
}

fn execute(node: &str, extra: &str) -> String {
    format!("<iq type='set' to='{COMPONENT}' id='c'><command xmlns='{COMMANDS}' node='{node}' {extra}/></iq>")
}

#[test]
fn an_admin_discovers_the_commands_and_lists_real_modules_with_slixmpp() {
    let prosody = Prosody::start();
    install_from_corpus(&prosody, &["mod_firewall", "mod_lastlog", "mod_lastlog2"]);
    let _modman = Modman::start(&prosody, &prosody.modman_config());
    let mut admin = Client::connect(&prosody, ADMIN);

    let commands = admin.commands();
    let items = commands["items"].as_array().unwrap();
    for expected in [
        json!(["list", "List modules"]),
        json!(["install", "Install modules"]),
        json!(["rollback", "Roll back"]),
    ] {
        assert!(items.contains(&expected), "{expected} not in {commands}");
    }

    let run = admin.run("list", json!({"query": "LAST"}));
    let steps = run["steps"].as_array().unwrap_or_else(|| panic!("{run}"));
    assert_eq!(steps[0]["status"], "executing");
    assert_eq!(steps[0]["form"]["fields"], json!(["show", "query"]));
    let result = &steps[1];
    assert_eq!(result["status"], "completed");
    assert_eq!(
        result["form"]["reported"],
        json!([
            "module",
            "installed",
            "available",
            "update",
            "advisory",
            "held",
            "enabled",
            "loaded",
            "stage",
            "summary"
        ])
    );
    let rows: Vec<_> = result["form"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["module"].as_str().unwrap().to_owned(),
                i["installed"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Copied in by hand: present, but not modman's to manage.
    assert_eq!(
        rows,
        [
            ("lastlog".to_owned(), "unmanaged".to_owned()),
            ("lastlog2".to_owned(), "unmanaged".to_owned())
        ]
    );
    assert_eq!(
        support::summary(result),
        "2 modules: 0 installed by modman, 0 with an update. No repository is configured: add a [[repositories]] section to modman.toml and restart modman."
    );

    // A form submitted with the first execute finishes in one round trip.
    let one_shot = admin.iq(&format!(
        "<iq type='set' to='{COMPONENT}' id='c'><command xmlns='{COMMANDS}' node='list'>\
         <x xmlns='jabber:x:data' type='submit'><field var='query'><value>firewall</value></field></x>\
         </command></iq>"
    ));
    let command = one_shot.get_child("command", COMMANDS).unwrap();
    assert_eq!(command.attr("status"), Some("completed"));
    let item = command
        .get_child("x", "jabber:x:data")
        .unwrap()
        .get_child("item", "jabber:x:data")
        .unwrap();
    let cells: Vec<String> = item
        .children()
        .map(|f| f.get_child("value", "jabber:x:data").unwrap().text())
        .collect();
    assert_eq!(cells[..2], ["firewall".to_owned(), "unmanaged".to_owned()]);
}

#[test]
fn the_command_line_lists_the_same_modules() {
    let prosody = Prosody::start();
    install_from_corpus(&prosody, &["mod_lastlog"]);
    let config = prosody.path("modman.toml");
    std::fs::write(&config, prosody.modman_config()).unwrap();
    let (ok, out, err) = support::cli(&["list", "--json"], &config);
    assert!(ok, "{out}{err}");
    let listed = support::json_rows(&out, "module");
    assert_eq!(listed["lastlog"]["installed"], "unmanaged", "{out}");
}

#[test]
fn version_and_disco_describe_the_component() {
    let prosody = Prosody::start();
    let _modman = Modman::start(&prosody, &prosody.modman_config());
    let mut user = Client::connect(&prosody, USER);

    let info = user.iq(&format!(
        "<iq type='get' to='{COMPONENT}' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ));
    let query = info
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    let features: Vec<_> = query.children().filter_map(|c| c.attr("var")).collect();
    assert!(features.contains(&COMMANDS), "{features:?}");
    let identity = query
        .get_child("identity", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert_eq!(
        (identity.attr("category"), identity.attr("type")),
        (Some("component"), Some("generic"))
    );

    let version = user.iq(&format!(
        "<iq type='get' to='{COMPONENT}' id='v'><query xmlns='jabber:iq:version'/></iq>"
    ));
    let query = version.get_child("query", "jabber:iq:version").unwrap();
    assert_eq!(
        query.get_child("name", "jabber:iq:version").unwrap().text(),
        "modman"
    );
    assert_eq!(
        query
            .get_child("version", "jabber:iq:version")
            .unwrap()
            .text(),
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn nobody_but_an_admin_sees_or_runs_a_command() {
    let prosody = Prosody::start();
    // A second host with an account named like the admin: the domain counts.
    let mut config = std::fs::read_to_string(prosody.config_path()).unwrap();
    config.push_str("\nVirtualHost \"other.localhost\"\n");
    std::fs::write(prosody.config_path(), config).unwrap();
    let output = support::prosodyctl(
        &prosody,
        &["register", "admin", "other.localhost", support::PASSWORD],
    );
    assert!(output.status.success());
    let mut prosody = prosody;
    prosody.restart();
    install_from_corpus(&prosody, &["mod_lastlog"]);
    let modman = Modman::start(&prosody, &prosody.modman_config());

    for jid in [USER, "admin@other.localhost"] {
        let mut client = Client::connect(&prosody, jid);
        assert_eq!(
            client.commands(),
            json!({"items": []}),
            "{jid} sees commands"
        );
        let run = client.run("list", json!({}));
        assert_eq!(run["error"]["condition"], "forbidden", "{jid}: {run}");
        assert_eq!(run["error"]["type"], "auth");
        let reply = client.iq(&execute("list", ""));
        let (type_, condition, _, _) = stanza_error(&reply);
        assert_eq!((type_.as_str(), condition.as_str()), ("auth", "forbidden"));
        // An unknown node and a session id are refused the same way: no
        // probing for what exists.
        let (_, condition, _, _) = stanza_error(&client.iq(&execute("install", "sessionid='x'")));
        assert_eq!(condition, "forbidden");
        let node_info = client.iq(&format!(
            "<iq type='get' to='{COMPONENT}' id='i'><query xmlns='http://jabber.org/protocol/disco#info' node='list'/></iq>"
        ));
        assert_eq!(stanza_error(&node_info).1, "forbidden");
    }
    assert!(modman
        .log()
        .contains("refused a command from user@localhost/"));
}

#[test]
fn malformed_and_out_of_turn_requests_get_xmpp_errors() {
    let prosody = Prosody::start();
    let modman = Modman::start(&prosody, &prosody.modman_config());
    let mut admin = Client::connect(&prosody, ADMIN);
    let mut other_resource = Client::connect(&prosody, ADMIN);

    let cases: &[(&str, &str, Option<&str>)] = &[
        (&execute("no-such-command", ""), "item-not-found", None),
        (
            &execute("list", "sessionid='not-a-session' action='complete'"),
            "bad-request",
            Some("bad-sessionid"),
        ),
        (
            &execute("list", "action='jump'"),
            "bad-request",
            Some("malformed-action"),
        ),
        (
            &execute("list", "action='complete'"),
            "bad-request",
            Some("bad-sessionid"),
        ),
        (
            &format!("<iq type='set' to='{COMPONENT}' id='c'><command xmlns='{COMMANDS}'/></iq>"),
            "bad-request",
            None,
        ),
        (
            &format!(
                "<iq type='get' to='{COMPONENT}' id='c'><query xmlns='urn:example:nothing'/></iq>"
            ),
            "service-unavailable",
            None,
        ),
        (
            &format!(
                "<iq type='set' to='{COMPONENT}' id='c'><command xmlns='{COMMANDS}' node='list'>\
                 <x xmlns='jabber:x:data' type='sideways'/></command></iq>"
            ),
            "bad-request",
            Some("bad-payload"),
        ),
    ];
    for (xml, condition, app_condition) in cases {
        let (_, got, got_app, text) = stanza_error(&admin.iq(xml));
        assert_eq!(
            (got.as_str(), got_app.as_deref()),
            (*condition, *app_condition),
            "{xml}: {text}"
        );
        assert!(!text.is_empty(), "{xml}: an error says what to do");
    }
    // A form that does not fit the command is answered as a failed
    // change is: completed, with the condition as a field.
    for field in [
        "<field var='colour'><value>red</value></field>",
        "<field var='query'><value>a</value><value>b</value></field>",
    ] {
        let reply = admin.iq(&format!(
            "<iq type='set' to='{COMPONENT}' id='c'><command xmlns='{COMMANDS}' node='list'>\
             <x xmlns='jabber:x:data' type='submit'>{field}</x></command></iq>"
        ));
        assert_eq!(failed_command(&reply).0, "bad-request", "{field}");
    }

    // A session belongs to the full JID that opened it.
    let opened = admin.iq(&execute("list", ""));
    let session = opened
        .get_child("command", COMMANDS)
        .unwrap()
        .attr("sessionid")
        .unwrap()
        .to_owned();
    let stolen = other_resource.iq(&execute(
        "list",
        &format!("sessionid='{session}' action='complete'"),
    ));
    assert_eq!(stanza_error(&stolen).2.as_deref(), Some("bad-sessionid"));
    // Actions not offered at this step are refused, and the session lives on.
    let prev = admin.iq(&execute(
        "list",
        &format!("sessionid='{session}' action='prev'"),
    ));
    assert_eq!(stanza_error(&prev).2.as_deref(), Some("bad-action"));
    let cancel = admin.iq(&execute(
        "list",
        &format!("sessionid='{session}' action='cancel'"),
    ));
    assert_eq!(
        cancel
            .get_child("command", COMMANDS)
            .unwrap()
            .attr("status"),
        Some("canceled")
    );
    let after_cancel = admin.iq(&execute(
        "list",
        &format!("sessionid='{session}' action='complete'"),
    ));
    assert_eq!(
        stanza_error(&after_cancel).2.as_deref(),
        Some("bad-sessionid")
    );

    // Stanzas Prosody routes but xmpp-parsers refuses must not cost the
    // connection (tokio-xmpp's Component wrapper would end the stream).
    admin.send(&format!(
        "<message to='{COMPONENT}' type='bogus'><body>x</body></message>"
    ));
    admin.send(&format!("<presence to='{COMPONENT}' type='bogus'/>"));
    admin.wait_until_component_answers();
    let log = modman.log();
    assert!(!log.contains("lost the connection"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn modman_reconnects_after_prosody_is_killed_and_restarted() {
    let mut prosody = Prosody::start();
    let modman = Modman::start(&prosody, &prosody.modman_config());
    for round in 1..=2 {
        prosody.restart();
        let mut admin = Client::connect(&prosody, ADMIN);
        admin.wait_until_component_answers();
        let run = admin.run("list", json!({}));
        assert_eq!(
            run["steps"][1]["status"], "completed",
            "round {round}: {run}"
        );
    }
    let log = modman.log();
    assert_eq!(
        log.matches("lost the connection to Prosody").count(),
        2,
        "{log}"
    );
    assert_eq!(log.matches("connected to Prosody at").count(), 3, "{log}");
}

#[test]
fn sigterm_stops_modman_cleanly() {
    let prosody = Prosody::start();
    let modman = Modman::start(&prosody, &prosody.modman_config());
    // The fact a service manager reads: modman ended by itself, status 0.
    assert!(modman.terminate(), "modman exits 0 on SIGTERM");
}

#[test]
fn a_wrong_secret_is_reported_with_what_to_check_and_retried() {
    let prosody = Prosody::start();
    let config = prosody
        .modman_config()
        .replace("test-secret", "wrong-secret");
    let config_path = prosody.path("modman.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_modman"))
        .args(["run", "--config"])
        .arg(&config_path)
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(prosody.path("modman.log")).unwrap())
        .spawn()
        .unwrap();
    let log = support::wait_for("two refused attempts", || {
        let log = std::fs::read_to_string(prosody.path("modman.log")).unwrap();
        (log.matches("Prosody refused the component modman.localhost")
            .count()
            >= 2)
            .then_some(log)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        log.contains("NotAuthorized")
            && log.contains("the secret in modman.toml differs from component_secret"),
        "{log}"
    );
}

#[test]
fn a_bad_config_fails_at_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("modman.toml");
    let cases = [
        ("", "cannot read the file"),
        (
            "admins = [\"admin@localhost\"]\nstate_dir = \"/x\"\n",
            "missing field `component`",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        if i > 0 {
            std::fs::write(&config, text).unwrap();
        }
        let output = Command::new(env!("CARGO_BIN_EXE_modman"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: config ") && stderr.contains(expected),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
}
