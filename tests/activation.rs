//! Enabling and live loading against a real Prosody: the managed config,
//! the admin socket, a restart, and a module that refuses to load. What
//! Prosody runs is checked with `prosodyctl shell`, not through modman.

mod support;

use serde_json::json;
use support::{
    append, last, modman_with, snapshot, Client, Modman, Prosody, Repository, ADMIN, DOMAIN,
};

/// Marks a corpus module so Prosody's log shows which copy it loaded.
fn mark(repository: &Repository, module: &str, marker: &str) {
    append(
        &repository
            .corpus(&format!("mod_{module}"))
            .join(format!("mod_{module}.lua")),
        &format!("\nmodule:log(\"info\", \"{marker}\");\n"),
    );
    repository.rebuild();
}

#[test]
fn install_with_enable_loads_live_survives_a_restart_and_disable_and_remove_unload() {
    let mut prosody = Prosody::start();
    let repository = Repository::start();
    mark(&repository, "csi_battery_saver", "modman-marker-v1");
    let (modman, mut admin) = modman_with(&prosody, &repository);
    let managed = prosody.path("modman.cfg.lua");

    let install = admin.run(
        "install",
        json!({"modules": ["csi_battery_saver"], "enable": true, "hosts": [DOMAIN]}),
    );
    assert_eq!(last(&install)["status"], "completed", "{install}");
    let loaded = prosody.loaded_modules(DOMAIN);
    assert!(
        loaded.contains(&"csi_battery_saver".to_owned()),
        "{loaded:?}"
    );
    // Its built-in dependency came along (track_muc_joins is only needed
    // with csi_battery_saver_filter_muc set: a conditional module:depends).
    assert!(loaded.contains(&"csi".to_owned()), "{loaded:?}");
    assert!(
        prosody.log().contains("modman-marker-v1"),
        "Prosody loaded modman's copy"
    );
    let config = std::fs::read_to_string(&managed).unwrap();
    assert!(
        config
            .contains("VirtualHost \"localhost\"\n    modules_enabled = { \"csi_battery_saver\" }"),
        "{config}"
    );

    // list shows it enabled (config) and loaded (live).
    let list = admin.run("list", json!({"show": "installed", "query": "battery"}));
    let row = &last(&list)["form"]["items"][0];
    assert_eq!(
        (row["enabled"].as_str(), row["loaded"].as_str()),
        (Some(DOMAIN), Some(DOMAIN)),
        "{list}"
    );

    // Prosody restarts: the managed config loads it again.
    prosody.restart();
    assert!(prosody
        .loaded_modules(DOMAIN)
        .contains(&"csi_battery_saver".to_owned()));
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.wait_until_component_answers();

    // An update is reloaded live.
    mark(&repository, "csi_battery_saver", "modman-marker-v2");
    assert_eq!(
        last(&admin.run_steps("refresh", json!([])))["status"],
        "completed"
    );
    let update = admin.run_steps(
        "update",
        json!([{"modules": ["csi_battery_saver"]}, {"confirm": true}]),
    );
    assert_eq!(last(&update)["status"], "completed", "{update}");
    assert!(
        prosody.log().contains("modman-marker-v2"),
        "the new code runs without a restart"
    );

    // Where the module stands: (loaded now, named in the managed config).
    let standing = || {
        (
            prosody
                .loaded_modules(DOMAIN)
                .contains(&"csi_battery_saver".to_owned()),
            std::fs::read_to_string(&managed)
                .unwrap()
                .contains("csi_battery_saver"),
        )
    };

    // Disable: unloaded, out of the config, files stay.
    let disable = admin.run("disable", json!({"modules": ["csi_battery_saver"]}));
    assert_eq!(last(&disable)["status"], "completed", "{disable}");
    assert_eq!(standing(), (false, false));
    assert!(prosody.modules_dir().join("mod_csi_battery_saver").is_dir());

    // Remove of an enabled module unloads it first.
    let enable = admin.run("enable", json!({"modules": ["csi_battery_saver"]}));
    assert_eq!(last(&enable)["status"], "completed", "{enable}");
    assert_eq!(standing(), (true, true));
    let remove = admin.run("remove", json!({"modules": ["csi_battery_saver"]}));
    assert_eq!(last(&remove)["status"], "completed", "{remove}");
    assert_eq!(standing(), (false, false));
    assert!(!prosody.modules_dir().join("mod_csi_battery_saver").exists());

    let history = admin.run("history", json!({}));
    let operations: Vec<&str> = last(&history)["form"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        operations,
        // One line per change: install with enable is one change.
        ["remove", "enable", "disable", "update", "install"]
    );
    assert!(!modman.log().contains("panicked"));
}

#[test]
fn a_module_that_fails_to_load_leaves_files_config_and_prosody_as_before() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    repository.add_broken_module("---\nsummary: Fails to load\n---\n");
    let (_modman, mut admin) = modman_with(&prosody, &repository);
    // Something enabled already, so "as before" is not just "empty".
    let install = admin.run("install", json!({"modules": ["lastlog"], "enable": true}));
    assert_eq!(last(&install)["status"], "completed", "{install}");

    let managed = prosody.path("modman.cfg.lua");
    // Everything a failed install could leave changed.
    let everything = || {
        (
            snapshot(&prosody.modules_dir()),
            std::fs::read(&managed).unwrap(),
            prosody.loaded_modules(DOMAIN),
            std::fs::read(prosody.path("modman-state/installed.json")).unwrap(),
        )
    };
    let before = everything();
    let failed = admin.run("install", json!({"modules": ["broken"], "enable": true}));
    let error = &failed["error"];
    assert_eq!(error["condition"], "conflict", "{failed}");
    let failure = &last(&failed)["form"]["values"];
    assert_eq!(
        (&failure["cause"], &failure["state"]),
        (&json!("prosody_refused"), &json!("undone")),
        "{failed}"
    );
    // Prosody's own words for why, passed on whole.
    let text = error["text"].as_str().unwrap();
    assert!(text.contains("broken on purpose"), "{text}");
    assert!(
        text.ends_with("everything this change had done was undone, so nothing is changed"),
        "{text}"
    );
    let after = everything();
    assert_eq!(after.0, before.0, "files");
    assert_eq!(after.1, before.1, "managed config");
    assert_eq!(after.2, before.2, "loaded modules");
    assert_eq!(after.3, before.3, "state");
}

#[test]
fn without_the_admin_socket_enabling_fails_clearly_and_changes_nothing() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let config = (prosody.modman_config() + &repository.config_section())
        .replace("data/prosody.sock", "data/nowhere.sock");
    let _modman = Modman::start(&prosody, &config);
    let mut admin = Client::connect(&prosody, ADMIN);
    assert_eq!(
        last(&admin.run_steps("refresh", json!([])))["status"],
        "completed"
    );
    let managed = prosody.path("modman.cfg.lua");
    let before = (
        snapshot(&prosody.modules_dir()),
        std::fs::read(&managed).unwrap(),
    );

    for (node, fields) in [
        ("install", json!({"modules": ["lastlog"], "enable": true})),
        ("enable", json!({"modules": ["lastlog"]})),
    ] {
        let run = admin.run(node, fields);
        // The failure's facts: what kind, why, and that nothing changed.
        let failure = &last(&run)["form"]["values"];
        assert_eq!(
            (&failure["error"], &failure["cause"], &failure["state"]),
            (
                &json!("unavailable"),
                &json!("admin_socket_missing"),
                &json!("nothing_changed")
            ),
            "{node}: {run}"
        );
        assert_eq!(
            (
                snapshot(&prosody.modules_dir()),
                std::fs::read(&managed).unwrap()
            ),
            before,
            "{node}"
        );
    }
    // In chat, the same facts beside the text.
    let said = admin.chat_json(support::COMPONENT, "enable lastlog");
    assert_eq!(
        (&said["error"], &said["cause"], &said["outcome"]),
        (
            &json!("unavailable"),
            &json!("admin_socket_missing"),
            &json!("nothing_changed")
        ),
        "{said}"
    );
    // Installing without enabling needs no socket; list says what it cannot know.
    let install = admin.run("install", json!({"modules": ["lastlog"]}));
    assert_eq!(last(&install)["status"], "completed", "{install}");
    let list = admin.run("list", json!({"show": "installed"}));
    assert_eq!(last(&list)["form"]["items"][0]["loaded"], "?");
    assert!(
        support::summary(last(&list)).contains("nowhere.sock does not exist"),
        "{list}"
    );
}

/// A module that loads but reports a problem (`module:set_status`) is
/// loaded, and `list` and `info` say so with Prosody's words, so an admin
/// sees at once why it does nothing yet.
#[test]
fn list_and_info_show_the_status_prosody_reports_for_a_loaded_module() {
    let prosody = Prosody::start();
    let repository = Repository::start_with(|corpus| {
        let moody = corpus.join("mod_moody");
        std::fs::create_dir_all(&moody).unwrap();
        std::fs::write(
            moody.join("mod_moody.lua"),
            "module:set_status(\"warn\", \"No 'moody_moods' in config file\");\n",
        )
        .unwrap();
        std::fs::write(
            moody.join("README.markdown"),
            "---\nsummary: Has moods\n---\n",
        )
        .unwrap();
    });
    let (_modman, mut admin) = modman_with(&prosody, &repository);
    let install = admin.run("install", json!({"modules": ["moody"], "enable": true}));
    assert_eq!(last(&install)["status"], "completed", "{install}");
    assert!(prosody.loaded_modules(DOMAIN).iter().any(|m| m == "moody"));

    let shown = format!("{DOMAIN} (warn: No 'moody_moods' in config file)");
    let info = admin.chat(support::COMPONENT, "info moody");
    assert!(info.contains(&format!("loaded on: {shown}")), "{info}");
    let list = admin.chat(support::COMPONENT, "list moody");
    let row = list
        .lines()
        .find(|l| l.starts_with("moody"))
        .unwrap_or_else(|| panic!("moody not listed: {list}"));
    assert!(row.contains(&shown), "{row}");
}

/// A built-in that a community module pulled in (`module:depends("csi")`)
/// goes when the last module that needed it goes, and only then; one the
/// admin had loaded stays. What is loaded is asked of Prosody itself.
#[test]
fn removing_a_module_unloads_the_built_ins_only_it_pulled_in() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let (modman, mut admin) = modman_with(&prosody, &repository);
    let csi_loaded = || prosody.loaded_modules(DOMAIN).contains(&"csi".to_owned());
    let completed = |reply: &serde_json::Value| {
        assert_eq!(last(reply)["status"], "completed", "{reply}");
    };
    // The built-ins a change also unloaded: its rows in state `released`.
    let released = |reply: &serde_json::Value| -> Vec<(String, String)> {
        assert_eq!(last(reply)["status"], "completed", "{reply}");
        let items = last(reply)["form"]["items"].as_array().cloned();
        (items.unwrap_or_default().iter())
            .filter(|row| row["state"] == "released")
            .map(|row| {
                let cell = |var: &str| row[var].as_str().unwrap_or_default().to_owned();
                (cell("module"), cell("host"))
            })
            .collect()
    };
    let csi_on_localhost = vec![("csi".to_owned(), DOMAIN.to_owned())];
    assert!(!csi_loaded(), "the test's Prosody does not load csi itself");

    // Both filter_chatstates and throttle_presence depend on csi.
    completed(&admin.run(
        "install",
        json!({"modules": ["filter_chatstates", "throttle_presence"], "enable": true}),
    ));
    assert!(csi_loaded());

    // One of them goes: the other still needs csi, so it stays.
    let remove = released(&admin.run("remove", json!({"modules": ["filter_chatstates"]})));
    assert!(csi_loaded(), "throttle_presence still needs csi");
    assert_eq!(remove, [], "nothing released");

    // Disabling the last one unloads csi, and says so.
    let disable = admin.run("disable", json!({"modules": ["throttle_presence"]}));
    assert!(!csi_loaded(), "nothing needs csi any more");
    assert_eq!(released(&disable), csi_on_localhost, "{disable}");

    // Enabled again and removed: the same.
    completed(&admin.run("enable", json!({"modules": ["throttle_presence"]})));
    assert!(csi_loaded());
    let remove = admin.run("remove", json!({"modules": ["throttle_presence"]}));
    assert!(!csi_loaded());
    assert_eq!(released(&remove), csi_on_localhost, "{remove}");

    // csi loaded by the admin before: a module that needs it comes and
    // goes, and csi stays.
    prosody.shell("module:load(\"csi\", \"localhost\")");
    assert!(csi_loaded());
    completed(&admin.run(
        "install",
        json!({"modules": ["filter_chatstates"], "enable": true}),
    ));
    let remove = released(&admin.run("remove", json!({"modules": ["filter_chatstates"]})));
    assert!(csi_loaded(), "the admin loaded csi: it stays");
    assert_eq!(remove, [], "the admin's csi is not released");
    assert!(!modman.log().contains("panicked"));
}

/// A module Prosody runs from elsewhere (its own copy, loaded as a
/// dependency) is reloaded when modman installs a copy of the same name
/// and enables it, so Prosody runs modman's copy, not the old one.
#[test]
fn enabling_a_module_loaded_from_elsewhere_runs_modmans_copy() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    // A community copy of csi, marked so Prosody's log shows which runs.
    let copy = repository.corpus("mod_csi");
    std::fs::create_dir(&copy).unwrap();
    let builtin = std::fs::read_to_string(support::corpus_module("mod_csi.lua")).unwrap();
    std::fs::write(
        copy.join("mod_csi.lua"),
        format!("{builtin}\nmodule:log(\"info\", \"modman-copy-of-csi\");\n"),
    )
    .unwrap();
    std::fs::write(copy.join("README.markdown"), "---\nsummary: CSI\n---\n").unwrap();
    repository.rebuild();
    let (_modman, mut admin) = modman_with(&prosody, &repository);
    prosody.shell("module:load(\"csi\", \"localhost\")");
    assert!(!prosody.log().contains("modman-copy-of-csi"));

    // modman asks first, since the server has a csi of its own.
    let install = admin.run_steps(
        "install",
        json!([{"modules": ["csi"], "enable": true}, {"confirm": true}]),
    );
    assert_eq!(last(&install)["status"], "completed", "{install}");
    assert!(
        prosody.log().contains("modman-copy-of-csi"),
        "Prosody runs modman's copy now"
    );
    let info = prosody.shell("module:info(\"csi\")");
    assert!(
        info.contains(&prosody.modules_dir().display().to_string()),
        "{info}"
    );
}

/// A removed module's options stay in the managed config, and the removal
/// says which, so nobody takes them for gone (or is surprised to find them
/// after a rollback).
#[test]
fn removing_a_module_says_which_of_its_options_stay_set() {
    let repository = Repository::start();
    let prosody = Prosody::start();
    let config = support::cli_config(&prosody, &repository);
    let run = |args: &[&str]| {
        let (ok, out, err) = support::cli(args, &config);
        assert!(ok, "{args:?}: {out}{err}");
        out
    };
    run(&["refresh"]);
    run(&["install", "--yes", "lastlog"]);
    run(&[
        "configure",
        "lastlog",
        "--set",
        "lastlog_ip_address=true",
        "--yes",
    ]);
    let removed = run(&["remove", "--yes", "lastlog"]);
    let managed = std::fs::read_to_string(prosody.path("modman.cfg.lua")).unwrap();
    assert!(managed.contains("lastlog_ip_address"), "{managed}");
    let kept = removed
        .split(". ")
        .find(|s| s.contains("lastlog_ip_address"))
        .unwrap_or_else(|| panic!("the kept option is not named:\n{removed}"));
    assert!(
        kept.contains(&prosody.path("modman.cfg.lua").display().to_string()),
        "{kept}"
    );
    assert!(!prosody.modules_dir().join("mod_lastlog").exists());
}

/// `install --enable` of a module that will not load without an option
/// nobody set is refused before anything changes, as `enable` is, for
/// that cause, instead of installing a module Prosody then refuses.
#[test]
fn install_and_enable_refuses_a_module_missing_a_required_option_and_changes_nothing() {
    let repository = Repository::start();
    let prosody = Prosody::start();
    let config = support::cli_config(&prosody, &repository);
    let (ok, out, err) = support::cli(&["refresh"], &config);
    assert!(ok, "{out}{err}");
    let state = prosody.path("modman-state");
    let before = (
        snapshot(&prosody.modules_dir()),
        std::fs::read(prosody.path("modman.cfg.lua")).unwrap(),
        snapshot(&state),
        prosody.loaded_modules(DOMAIN),
    );
    let (ok, out, err) = support::cli(
        &[
            "install",
            "--enable",
            "--yes",
            "--json",
            "http_upload_external",
        ],
        &config,
    );
    assert!(!ok, "{out}{err}");
    let refused = support::json_output(&out);
    assert_eq!(
        (&refused["cause"], &refused["outcome"]),
        (&json!("options_unset"), &json!("nothing_changed")),
        "{out}{err}"
    );
    let after = (
        snapshot(&prosody.modules_dir()),
        std::fs::read(prosody.path("modman.cfg.lua")).unwrap(),
        snapshot(&state),
        prosody.loaded_modules(DOMAIN),
    );
    assert!(before == after, "the refused install changed something");
}
