//! A module stays with the repository it was installed from: when that
//! repository stops offering it and another offers the same name, update
//! says so and changes nothing; moving is an explicit remove and install.

mod support;

use serde_json::json;
use support::{last, snapshot, Client, Modman, Prosody, Repository, ADMIN, COMPONENT};

#[test]
fn update_never_moves_a_module_to_another_repository() {
    let prosody = Prosody::start();
    let first = Repository::start();
    let second = Repository::start_named("other", support::debian_corpus);
    let config = prosody.modman_config() + &first.config_section() + &second.config_section();
    let _modman = Modman::start(&prosody, &config);
    let mut admin = Client::connect(&prosody, ADMIN);
    assert!(admin.chat(COMPONENT, "refresh").contains("ok"));
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
    assert!(admin.chat(COMPONENT, "refresh").contains("ok"));

    let update = admin.run("update", json!({"modules": ["lastlog"], "confirm": true}));
    let text = update.to_string();
    assert!(
        text.contains("lastlog is not offered by local any more")
            && text.contains("other offers it")
            && text.contains("remove it and install it again"),
        "{text}"
    );
    assert_eq!((snapshot(&prosody.modules_dir()), record()), before);
    // Nor is it listed as an update.
    let updates = admin.chat(COMPONENT, "list updates");
    assert!(!updates.contains("lastlog"), "{updates}");
}
