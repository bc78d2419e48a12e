//! A module stays with the repository it was installed from: when that
//! repository stops offering it and another offers the same name, update
//! says so and changes nothing; moving is an explicit remove and install.
//! Its dependencies come from that repository too, and from another only
//! after a question naming it.

mod support;

use serde_json::json;
use support::{last, rows_by, snapshot, Client, Modman, Prosody, Repository, ADMIN, COMPONENT};

/// Refreshes, and checks every repository's row says it went well.
fn refreshed_all(admin: &mut Client) {
    let answer = admin.chat_json(COMPONENT, "refresh");
    let rows = rows_by(&answer, "repository");
    assert!(
        !rows.is_empty() && rows.values().all(|row| row["outcome"] == "ok"),
        "{answer}"
    );
}

#[test]
fn update_never_moves_a_module_to_another_repository() {
    let prosody = Prosody::start();
    let first = Repository::start();
    let second = Repository::start_named("other", support::debian_corpus);
    let config = prosody.modman_config() + &first.config_section() + &second.config_section();
    let _modman = Modman::start(&prosody, &config);
    let mut admin = Client::connect(&prosody, ADMIN);
    refreshed_all(&mut admin);
    let installed = admin.run("install", json!({"modules": ["lastlog"]}));
    assert_eq!(last(&installed)["status"], "completed", "{installed}");
    let state = prosody.path("modman-state/installed.json");
    let record = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap()
    };
    assert_eq!(record()["modules"]["lastlog"]["repository"], "local");
    let before = (snapshot(&prosody.modules_dir()), record());

    // The first repository drops it; the other still offers it (with
    // other bytes, as another repository would).
    std::fs::remove_dir_all(first.corpus("mod_lastlog")).unwrap();
    first.rebuild();
    support::append(
        &second.corpus("mod_lastlog").join("mod_lastlog.lua"),
        "\n-- another repository's copy\n",
    );
    second.rebuild();
    refreshed_all(&mut admin);

    let update = admin.run("update", json!({"modules": ["lastlog"], "confirm": true}));
    let standing = &last(&update)["form"]["items"][0];
    assert_eq!(
        (&standing["module"], &standing["standing"]),
        (&json!("lastlog"), &json!("only_elsewhere")),
        "{update}"
    );
    assert_eq!((snapshot(&prosody.modules_dir()), record()), before);
    // Nor is it listed as an update.
    let updates = admin.chat_json(COMPONENT, "list updates");
    assert!(
        !rows_by(&updates, "module").contains_key("lastlog"),
        "{updates}"
    );
}

/// Writes module `name` (its code `code`, a README) into the tree `dir`.
fn module(dir: &std::path::Path, name: &str, code: &str) {
    let module = dir.join(format!("mod_{name}"));
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(module.join(format!("mod_{name}.lua")), code).unwrap();
    std::fs::write(
        module.join("README.markdown"),
        format!("---\nsummary: {name} for the test\n---\n\nText.\n"),
    )
    .unwrap();
}

/// A dependency comes from the repository of the module that needs it,
/// although a third party's repository listed first offers one of the
/// same name; from another repository only after a question that names
/// it, and "no" changes nothing.
#[test]
fn a_dependency_comes_from_the_modules_own_repository_or_after_a_question() {
    let prosody = Prosody::start();
    let third = Repository::start_named("third", |dir| {
        module(dir, "modman_util", "-- the third party's copy\n");
        module(dir, "modman_extra", "-- only the third party has it\n");
    });
    let main = Repository::start_named("main", |dir| {
        module(dir, "modman_app", "module:depends(\"modman_util\")\n");
        module(dir, "modman_util", "-- main's copy\n");
        module(dir, "modman_app2", "module:depends(\"modman_extra\")\n");
    });
    let config = prosody.modman_config() + &third.config_section() + &main.config_section();
    let _modman = Modman::start(&prosody, &config);
    let mut admin = Client::connect(&prosody, ADMIN);
    let refresh = admin.run_steps("refresh", json!([]));
    let outcomes: Vec<&serde_json::Value> = last(&refresh)["form"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| &row["outcome"])
        .collect();
    assert_eq!(outcomes, [&json!("ok"), &json!("ok")], "{refresh}");

    // Asked nothing: completed in one round trip, util from main.
    let installed = admin.run("install", json!({"modules": ["modman_app"]}));
    assert_eq!(last(&installed)["status"], "completed", "{installed}");
    let state = prosody.path("modman-state/installed.json");
    let record = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap()
    };
    let util = &record()["modules"]["modman_util"];
    assert_eq!(util["repository"], "main");
    assert_eq!(util["sha256"], main.entry("modman_util")["sha256"]);
    assert_ne!(util["sha256"], third.entry("modman_util")["sha256"]);

    // Only the third party offers app2's dependency: asked, and why.
    let before = (snapshot(&prosody.modules_dir()), record());
    let asked =
        admin.request(json!({"op": "chat", "to": COMPONENT, "body": "install modman_app2"}));
    assert_eq!(asked["json"]["kind"], "confirm", "{asked}");
    assert_eq!(asked["json"]["why"], json!(["other_repository"]), "{asked}");
    admin.chat(COMPONENT, "no");
    assert_eq!((snapshot(&prosody.modules_dir()), record()), before);
    assert!(record()["modules"].get("modman_app2").is_none());
}
