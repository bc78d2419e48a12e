//! Module options over XMPP: mod_http_upload_external refuses to load
//! without its URL and secret; `configure` sets them (the secret as a
//! hidden field, never shown back or logged), Prosody holds them, the
//! module then loads and keeps loading after a restart, and `rollback`
//! puts the previous options back. Hostile values change nothing.

mod support;

use serde_json::{json, Value};
use support::{last, modman_with, Client, Prosody, Repository, ADMIN, COMPONENT};

const MODULE: &str = "http_upload_external";
const URL: &str = "http_upload_external_base_url";
const SECRET_OPTION: &str = "http_upload_external_secret";
const SECRET: &str = "s3cr3t-Never-Shown-7f1c";
const COMMANDS: &str = "http://jabber.org/protocol/commands";

fn error_text(run: &Value) -> String {
    run["error"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {run}"))
        .to_owned()
}

fn rows(run: &Value) -> String {
    last(run)["form"]["items"].to_string()
}

#[test]
fn options_are_set_over_xmpp_load_the_module_survive_a_restart_and_roll_back() {
    let mut prosody = Prosody::start();
    let repository = Repository::start();
    let (modman, mut admin) = modman_with(&prosody, &repository);
    let managed = prosody.path("modman.cfg.lua");
    let mut replies = String::new();
    // A secret is written only where other users cannot read it: modman
    // asks first otherwise (Prosody, as root here, still reads it).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&managed, std::fs::Permissions::from_mode(0o640)).unwrap();

    // Without its options the module does not load: Prosody says which.
    let refused = admin.run("install", json!({"modules": [MODULE], "enable": true}));
    let text = error_text(&refused);
    assert!(
        text.contains(URL) && text.contains("nothing is changed"),
        "{text}"
    );
    let installed = admin.run("install", json!({"modules": [MODULE]}));
    assert_eq!(last(&installed)["status"], "completed", "{installed}");
    let refused = admin.run(
        "enable",
        json!({"modules": [MODULE], "hosts": ["localhost"]}),
    );
    let text = error_text(&refused);
    assert!(
        text.contains(&format!("without {URL} and {SECRET_OPTION}")) && text.contains("configure"),
        "{text}"
    );
    assert!(!prosody
        .loaded_modules("localhost")
        .contains(&MODULE.to_owned()));

    // The first step shows the options, the secret as a hidden field.
    let form = admin.iq(&format!(
        "<iq type='set' to='{COMPONENT}' id='c'><command xmlns='{COMMANDS}' node='configure'>\
         <x xmlns='jabber:x:data' type='submit'><field var='module'><value>{MODULE}</value></field>\
         <field var='hosts'><value>localhost</value></field></x></command></iq>"
    ));
    let x = form
        .get_child("command", COMMANDS)
        .and_then(|c| c.get_child("x", "jabber:x:data"))
        .unwrap_or_else(|| panic!("no form: {form:?}"));
    let field_type = |var: &str| {
        x.children()
            .find(|f| f.attr("var") == Some(var))
            .and_then(|f| f.attr("type"))
            .map(str::to_owned)
    };
    assert_eq!(field_type(SECRET_OPTION).as_deref(), Some("text-private"));
    assert_eq!(field_type(URL).as_deref(), Some("text-single"));
    assert_eq!(
        field_type("http_upload_external_file_size_limit").as_deref(),
        Some("text-single")
    );

    // One round trip sets both.
    let set = admin.run(
        "configure",
        json!({"module": MODULE, "hosts": ["localhost"], URL: "https://upload.example/share/", SECRET_OPTION: SECRET}),
    );
    assert_eq!(last(&set)["status"], "completed", "{set}");
    replies += &set.to_string();
    assert!(rows(&set).contains("(secret, set)"), "{set}");
    assert_eq!(
        prosody.config_get("localhost", URL),
        "\"https://upload.example/share/\""
    );

    // Rollback of the configure puts the options back, in the file and in
    // Prosody.
    let rolled = admin.run("rollback", json!({"modules": [MODULE], "confirm": true}));
    assert_eq!(last(&rolled)["status"], "completed", "{rolled}");
    replies += &rolled.to_string();
    assert_eq!(prosody.config_get("localhost", URL), "nil");
    assert!(!std::fs::read_to_string(&managed).unwrap().contains(URL));

    // Set again by chat, then enable: it loads, and again after a restart.
    let chat = admin.chat(
        COMPONENT,
        &format!("configure {MODULE} on localhost {URL}=https://upload.example/share/ {SECRET_OPTION}=\"{SECRET}\""),
    );
    replies += &chat;
    assert!(
        chat.contains("Reloaded") || chat.contains("not loaded"),
        "{chat}"
    );
    let enabled = admin.run(
        "enable",
        json!({"modules": [MODULE], "hosts": ["localhost"]}),
    );
    assert_eq!(last(&enabled)["status"], "completed", "{enabled}");
    assert!(prosody
        .loaded_modules("localhost")
        .contains(&MODULE.to_owned()));
    prosody.restart();
    assert!(prosody
        .loaded_modules("localhost")
        .contains(&MODULE.to_owned()));
    // The restart closed the admin's session too.
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.wait_until_component_answers();

    // The secret is in the managed config (Prosody needs it) and nowhere
    // modman speaks or writes for people.
    assert!(std::fs::read_to_string(&managed).unwrap().contains(SECRET));
    let history = admin.run("history", json!({}));
    replies += &history.to_string();
    replies += &admin.chat(COMPONENT, "history");
    let info = admin.chat(COMPONENT, &format!("info {MODULE}"));
    assert!(
        info.contains(&format!(
            "{URL} = \"https://upload.example/share/\" on localhost"
        )) && info.contains(&format!("{SECRET_OPTION} = (secret, set) on localhost")),
        "{info}"
    );
    replies += &info;
    let history_file = std::fs::read_to_string(prosody.path("modman-state/history.jsonl")).unwrap();
    assert!(history_file.contains("configure"), "{history_file}");
    for (what, text) in [
        ("replies", &replies),
        ("history", &history_file),
        ("log", &modman.log()),
    ] {
        assert!(!text.contains(SECRET), "the secret is in the {what}");
    }
}

#[test]
fn hostile_values_and_names_change_nothing() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let (_modman, mut admin) = modman_with(&prosody, &repository);
    let installed = admin.run("install", json!({"modules": [MODULE]}));
    assert_eq!(last(&installed)["status"], "completed", "{installed}");
    let managed = prosody.path("modman.cfg.lua");
    let before = std::fs::read(&managed).unwrap();
    let many: Vec<String> = (0..300).map(|i| format!("h{i}.example")).collect();
    for (fields, expected) in [
        (
            json!({"module": "no_such_module"}),
            "neither installed nor one of Prosody's own",
        ),
        (
            json!({"module": MODULE, "hosts": ["nowhere.example"]}),
            "Prosody serves no host",
        ),
        (
            json!({"module": MODULE, "options": "os.exit() = 1"}),
            "is not an option name",
        ),
        (
            json!({"module": MODULE, "options": "admins = x@y"}),
            "one of Prosody's own settings",
        ),
        (
            json!({"module": MODULE, "http_upload_external_file_size_limit": "100; os.exit()"}),
            "takes a number",
        ),
        // A form carries a text with a line break as two values.
        (
            json!({"module": MODULE, URL: "a\nb"}),
            "takes one value, got 2",
        ),
        (
            json!({"module": MODULE, "http_upload_external_access": many}),
            "at most 256",
        ),
    ] {
        let run = admin.run("configure", fields.clone());
        let text = error_text(&run);
        assert!(
            text.contains(expected) && text.contains("nothing was changed"),
            "{fields}: {text}"
        );
        assert_eq!(std::fs::read(&managed).unwrap(), before, "{fields}");
    }
    // Quotes, brackets and Lua in a text value are text, nothing more.
    let value = "x\" .. os.exit() .. \"]] --";
    let set = admin.run("configure", json!({"module": MODULE, URL: value}));
    assert_eq!(last(&set)["status"], "completed", "{set}");
    assert_eq!(
        prosody.config_get("*", URL),
        "\"x\\\" .. os.exit() .. \\\"]] --\""
    );
}
