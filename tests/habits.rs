//! What admins expect of a package manager, against a real Prosody and a
//! repository served over HTTP: a dry run changes nothing, a held module
//! keeps its copy through `update all`, a chosen version is installed,
//! a downgrade is asked first, and a version not on offer is refused.
//! One Prosody and one modman for all of it, driven from the command
//! line, ad-hoc commands and chat, as admins do.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::{
    append, cli, json_output, json_rows, last, rows_by, snapshot, Client, Modman, Prosody,
    Repository, ADMIN, COMPONENT, DOMAIN,
};

/// Two real community modules from the Debian corpus, in the upstream
/// layout.
fn two_modules(tree: &Path) {
    for name in ["mod_lastlog", "mod_lastlog2"] {
        let into = tree.join(name);
        std::fs::create_dir_all(&into).unwrap();
        for entry in std::fs::read_dir(support::corpus_module(name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), into.join(entry.file_name())).unwrap();
        }
    }
}

/// Everything a change could touch: module files, the managed config,
/// the state and history, and what Prosody runs.
#[derive(Debug, PartialEq)]
struct Everything {
    files: BTreeMap<PathBuf, Vec<u8>>,
    managed_config: Vec<u8>,
    installed: Vec<u8>,
    history: Vec<u8>,
    running: Vec<String>,
}

fn everything(prosody: &Prosody) -> Everything {
    let read = |relative: &str| std::fs::read(prosody.path(relative)).unwrap_or_default();
    Everything {
        files: snapshot(&prosody.modules_dir()),
        managed_config: read("modman.cfg.lua"),
        installed: read("modman-state/installed.json"),
        history: read("modman-state/history.jsonl"),
        running: prosody.module_list(DOMAIN),
    }
}

fn record(prosody: &Prosody, module: &str) -> Value {
    let state = std::fs::read(prosody.path("modman-state/installed.json")).unwrap();
    serde_json::from_slice::<Value>(&state).unwrap()["modules"][module].clone()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

#[test]
fn hold_choose_a_version_and_dry_run_against_a_real_prosody() {
    let prosody = Prosody::start();
    let repository = Repository::start_with(two_modules);
    let _modman = Modman::start(
        &prosody,
        &(prosody.modman_config() + &repository.config_section()),
    );
    let config = prosody.path("modman.toml");
    let run = |args: &[&str]| {
        let (ok, out, err) = cli(args, &config);
        (ok, out, err)
    };
    let (ok, out, err) = run(&["refresh", "--json"]);
    assert!(ok, "{out}{err}");
    // A dry run of install --enable plans, beside the install, the
    // enabling and the check of required options (which needs the code).
    let before = everything(&prosody);
    let planned = |args: &[&str]| {
        let (ok, out, err) = run(args);
        assert!(ok, "{out}{err}");
        json_rows(&out, "planned").len()
    };
    let install_only = planned(&["install", "lastlog", "--dry-run", "--json"]);
    let enabling = planned(&["install", "lastlog", "--enable", "--dry-run", "--json"]);
    assert_eq!(enabling, install_only + 2);
    assert_eq!(everything(&prosody), before);
    let (ok, out, err) = run(&[
        "install", "lastlog", "lastlog2", "--enable", "--yes", "--json",
    ]);
    assert!(ok, "{out}{err}");
    let first: BTreeMap<&str, Value> = ["lastlog", "lastlog2"]
        .map(|m| (m, repository.entry(m)))
        .into();
    let first_files = snapshot(&prosody.modules_dir().join("mod_lastlog2"));

    // Both change upstream; the rebuild keeps the first builds on offer.
    for module in ["mod_lastlog", "mod_lastlog2"] {
        append(
            &repository.corpus(module).join(format!("{module}.lua")),
            "\n-- fixed upstream\n",
        );
    }
    repository.rebuild();
    let second: BTreeMap<&str, Value> = ["lastlog", "lastlog2"]
        .map(|m| (m, repository.entry(m)))
        .into();
    for module in ["lastlog", "lastlog2"] {
        assert_eq!(
            second[module]["previous"][0]["sha256"], first[module]["sha256"],
            "{module}"
        );
    }
    let (ok, out, err) = run(&["refresh", "--json"]);
    assert!(ok, "{out}{err}");

    // A dry run, from each front end, shows the plan and changes nothing.
    let before = everything(&prosody);
    let (ok, out, err) = run(&["update", "--dry-run", "--json"]);
    assert!(ok, "{out}{err}");
    let planned = json_rows(&out, "planned");
    assert_eq!(planned.len(), 2, "{out}");
    let (ok, out, err) = run(&["remove", "lastlog", "--dry-run", "--json"]);
    assert!(ok, "{out}{err}");
    assert_eq!(json_rows(&out, "planned").len(), 1, "{out}");
    let mut admin = Client::connect(&prosody, ADMIN);
    // The component reads the new index too (refresh changes no module).
    let refreshed = admin.chat_json(COMPONENT, "refresh");
    assert_eq!(rows_by(&refreshed, "repository")["local"]["outcome"], "ok");
    let chat = admin.chat_json(COMPONENT, "plan update all");
    assert_eq!(rows_by(&chat, "planned").len(), 2, "{chat}");
    let form = admin.run_steps(
        "disable",
        json!([{"modules": ["lastlog"], "dry_run": true}]),
    );
    let shown = last(&form);
    assert_eq!(shown["status"], "completed", "{form}");
    assert_eq!(shown["form"]["reported"], json!(["planned"]), "{form}");
    assert_eq!(everything(&prosody), before);

    // Held, with a reason from outside: cleaned, shown, kept in history.
    let (ok, out, err) = run(&[
        "hold",
        "lastlog",
        "--because",
        "breaks with\u{1b}[2J our LDAP",
        "--json",
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = run(&["info", "lastlog", "--json"]);
    assert!(ok);
    let fields = &json_output(&out)["fields"];
    assert_eq!(fields["held_because"], "breaks with\u{FFFD}[2J our LDAP");
    assert!(!text(&fields["held_by"]).is_empty(), "{out}");
    let (ok, out, _) = run(&["list", "--show", "installed", "--json"]);
    assert!(ok);
    let listed = json_rows(&out, "module");
    assert!(!text(&listed["lastlog"]["held"]).is_empty(), "{out}");
    assert_eq!(listed["lastlog2"]["held"], "", "{out}");
    let history = String::from_utf8(everything(&prosody).history).unwrap();
    let held: Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(
        (
            held["operation"].clone(),
            held["changes"][0]["module"].clone()
        ),
        (json!("hold"), json!("lastlog"))
    );

    // update all: the held module keeps its copy, the other is updated.
    let held_files = snapshot(&prosody.modules_dir().join("mod_lastlog"));
    let chat = admin.chat_json(COMPONENT, "plan update all");
    assert_eq!(rows_by(&chat, "planned").len(), 1, "{chat}");
    let (ok, out, err) = run(&["update", "--yes", "--json"]);
    assert!(ok, "{out}{err}");
    let standing: Vec<_> = (json_rows(&out, "module").into_iter())
        .map(|(module, row)| (module, row["standing"].clone()))
        .collect();
    assert_eq!(
        standing,
        [
            ("lastlog".to_owned(), json!("held")),
            ("lastlog2".to_owned(), json!("updated"))
        ]
    );
    let lastlog = record(&prosody, "lastlog");
    assert_eq!(lastlog["sha256"], first["lastlog"]["sha256"]);
    assert_eq!(lastlog["version"], first["lastlog"]["version"]);
    assert_eq!(
        snapshot(&prosody.modules_dir().join("mod_lastlog")),
        held_files
    );
    assert_eq!(
        record(&prosody, "lastlog2")["sha256"],
        second["lastlog2"]["sha256"]
    );
    // Named, it is refused, and nothing changes; so is a rollback of it.
    refused(&prosody, &["update", "lastlog", "--yes"], "conflict");
    refused(&prosody, &["rollback", "lastlog", "--yes"], "conflict");
    let unheld = admin.chat_json(COMPONENT, "unhold lastlog");
    assert_eq!(rows_by(&unheld, "module").len(), 1, "{unheld}");
    assert!(record(&prosody, "lastlog")["held"].is_null());

    // The update form offers the earlier builds by version; a downgrade
    // is asked first, "no" changes nothing, "yes" downgrades.
    let v1 = text(&first["lastlog2"]["version"]);
    let v2 = text(&second["lastlog2"]["version"]);
    let chosen = format!("lastlog2@{v1}");
    let before = everything(&prosody);
    let (ok, out, _) = run(&["update", &chosen, "--json"]);
    assert!(!ok, "a question, unanswered: {out}");
    let question = json_output(&out);
    assert_eq!(question["kind"], "confirm", "{out}");
    let change = &question["changes"][0];
    assert_eq!(
        (&change["from"], &change["to"], &change["downgrade"]),
        (&json!(v2), &json!(v1), &json!(true)),
        "{out}"
    );
    assert_eq!(everything(&prosody), before);
    let declined = admin.run_steps(
        "update",
        json!([{"modules_version": chosen}, {"confirm": false}]),
    );
    let parameters = &declined["steps"][0]["form"];
    assert_eq!(parameters["types"]["modules_version"], "list-single");
    assert_eq!(parameters["types"]["dry_run"], "boolean");
    let question = &declined["steps"][1];
    assert_eq!(
        question["form"]["types"]["confirm"], "list-single",
        "{declined}"
    );
    // The question carries what the downgrade changes in its plan, once;
    // why it asks and the chat line that asks the same ride in hidden
    // fields, for bots and for clients that cannot answer a form.
    assert_eq!(
        question["form"]["fields"],
        json!(["plan", "confirm", "why", "by_chat"]),
        "{question}"
    );
    assert_eq!(
        question["form"]["values"]["by_chat"],
        json!([format!("update {chosen}")]),
        "{question}"
    );
    assert_eq!(
        question["form"]["values"]["why"],
        json!(["always_asked", "downgrade"]),
        "{question}"
    );
    let plan = question["form"]["values"]["plan"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        plan.lines()
            .filter(|l| l.starts_with("What changes in lastlog2"))
            .count(),
        1,
        "{question}"
    );
    assert_eq!(last(&declined)["status"], "completed");
    assert_eq!(everything(&prosody), before);
    let downgraded = admin.run_steps(
        "update",
        json!([{"modules_version": chosen}, {"confirm": true}]),
    );
    assert_eq!(last(&downgraded)["status"], "completed", "{downgraded}");
    assert_eq!(
        record(&prosody, "lastlog2")["sha256"],
        first["lastlog2"]["sha256"]
    );
    assert_eq!(
        snapshot(&prosody.modules_dir().join("mod_lastlog2")),
        first_files
    );
    assert!(prosody
        .loaded_modules(DOMAIN)
        .contains(&"lastlog2".to_owned()));

    // Install at an earlier version.
    let (ok, out, err) = run(&["remove", "lastlog", "--yes", "--json"]);
    assert!(ok, "{out}{err}");
    let v1 = text(&first["lastlog"]["version"]);
    let (ok, out, err) = run(&["install", &format!("lastlog@{v1}"), "--yes", "--json"]);
    assert!(ok, "{out}{err}");
    assert_eq!(json_rows(&out, "module")["lastlog"]["version"], json!(v1));
    assert_eq!(
        record(&prosody, "lastlog")["sha256"],
        first["lastlog"]["sha256"]
    );
    // A chosen version of an installed module is update's to do.
    let v2 = text(&second["lastlog"]["version"]);
    refused(
        &prosody,
        &["install", &format!("lastlog@{v2}"), "--yes"],
        "conflict",
    );

    // A version no repository offers: refused, naming those offered.
    let refusal = refused(
        &prosody,
        &["update", "lastlog@19990101.dead", "--yes"],
        "not_found",
    );
    let offered = text(&refusal["text"]);
    for version in [&second["lastlog"]["version"], &first["lastlog"]["version"]] {
        assert!(offered.contains(&text(version)), "{offered}");
    }
}

/// Runs `args` with `--json`, which must fail with `error` and change
/// nothing; returns the refusal.
fn refused(prosody: &Prosody, args: &[&str], error: &str) -> Value {
    let before = everything(prosody);
    let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    let (ok, out, _) = cli(&args, &prosody.path("modman.toml"));
    assert!(!ok, "{out}");
    let refusal = json_output(&out);
    assert_eq!(
        (refusal["error"].clone(), refusal["outcome"].clone()),
        (json!(error), json!("nothing_changed")),
        "{out}"
    );
    assert_eq!(everything(prosody), before);
    refusal
}
