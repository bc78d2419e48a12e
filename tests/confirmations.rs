//! A "yes" applies exactly the plan its question showed: when the
//! repository moves on between the question and the answer, the admin is
//! asked again, told what changed, and nothing is installed meanwhile;
//! the copies verified for the question are the ones put in place.

mod support;

use serde_json::json;
use support::{
    append, last, modman_with, refresh_row, rows_by, snapshot, Prosody, Repository, COMPONENT,
};

const COMMANDS: &str = "http://jabber.org/protocol/commands";

/// What a question (a chat answer's facts) asks to change: (module, from,
/// to) each; panics if the answer is not a question.
fn asked(answer: &serde_json::Value) -> Vec<(String, String, String)> {
    assert_eq!(answer["kind"], "confirm", "{answer}");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    (answer["changes"].as_array().into_iter().flatten())
        .map(|c| (text(&c["module"]), text(&c["from"]), text(&c["to"])))
        .collect()
}

#[test]
fn yes_to_an_update_never_installs_a_version_published_after_the_question() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let (_modman, mut admin) = modman_with(&prosody, &repository);
    let installed = admin.run("install", json!({"modules": ["firewall"]}));
    assert_eq!(last(&installed)["status"], "completed", "{installed}");
    let version = |repository: &Repository| {
        repository.entry("firewall")["version"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let code = repository.corpus("mod_firewall").join("mod_firewall.lua");
    let on_disk = || snapshot(&prosody.modules_dir().join("mod_firewall"));
    let a = version(&repository);
    let as_installed = on_disk();

    // B is published; the admin asks for the update and is shown a -> b.
    append(&code, "\n-- version B\n");
    repository.rebuild();
    let b = version(&repository);
    assert_eq!(refresh_row(&mut admin, "local")["outcome"], "ok");
    let question = admin.chat_json(COMPONENT, "update firewall");
    assert_eq!(
        asked(&question),
        [("firewall".to_owned(), a.clone(), b.clone())]
    );

    // C is published and refreshed before the answer.
    append(&code, "\n-- version C\n");
    repository.rebuild();
    let c = version(&repository);
    assert_ne!(b, c);
    assert_eq!(refresh_row(&mut admin, "local")["outcome"], "ok");

    // "yes" was about B: C is not installed; the admin is asked again.
    let again = admin.chat_json(COMPONENT, "yes");
    assert_eq!(
        asked(&again),
        [("firewall".to_owned(), a.clone(), c.clone())]
    );
    assert_eq!(
        on_disk(),
        as_installed,
        "nothing changed before the new answer"
    );

    // A "yes" to the new question installs C, the copy fetched and
    // verified for that question: the repository is not asked again, so
    // other bytes served now are never seen.
    let archive = repository.entry("firewall")["archive"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(repository.served().join(archive), "other bytes").unwrap();
    let done = admin.chat_json(COMPONENT, "yes");
    let updated = rows_by(&done, "module");
    assert_eq!(updated.len(), 1, "{done}");
    assert_eq!(
        (&updated["firewall"]["from"], &updated["firewall"]["to"]),
        (&json!(a), &json!(c))
    );
    assert_eq!(on_disk(), snapshot(&repository.corpus("mod_firewall")));
}

#[test]
fn info_shows_the_readme_as_plain_text_everywhere() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let (_modman, mut admin) = modman_with(&prosody, &repository);
    // The firewall README has headings underlined with '=', links and
    // escaped underscores.
    let reply = admin.iq(&format!(
        "<iq type='set' to='{COMPONENT}' id='i'><command xmlns='{COMMANDS}' node='info'>\
         <x xmlns='jabber:x:data' type='submit'><field var='module'><value>firewall</value></field></x>\
         </command></iq>"
    ));
    let description: String = reply
        .get_child("command", COMMANDS)
        .and_then(|c| c.get_child("x", "jabber:x:data"))
        .and_then(|x| {
            x.children()
                .find(|f| f.attr("var") == Some("description"))
                .map(|f| {
                    f.children()
                        .map(|v| v.text())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
        })
        .unwrap_or_else(|| panic!("no description: {reply:?}"));
    let chat = admin.chat(COMPONENT, "info firewall");
    let (ok, cli, err) = support::cli(&["info", "firewall"], &prosody.path("modman.toml"));
    assert!(ok, "{err}");
    for (front_end, text) in [("ad-hoc", &description), ("chat", &chat), ("cli", &cli)] {
        assert!(text.contains("mod_firewall"), "{front_end}: {text}");
        for markup in ["\n===", "\n---", "](", "\\_", "**"] {
            assert!(
                !text.contains(markup),
                "{front_end} shows {markup:?}: {text}"
            );
        }
    }
}

#[test]
fn update_never_goes_back_to_an_older_copy() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let (_modman, mut admin) = modman_with(&prosody, &repository);
    let installed = admin.run("install", json!({"modules": ["firewall"]}));
    assert_eq!(last(&installed)["status"], "completed", "{installed}");
    let on_disk = || snapshot(&prosody.modules_dir().join("mod_firewall"));
    let before = on_disk();
    // The repository now offers other bytes dated years earlier: a newer,
    // validly signed index, but an older module.
    let code = repository.corpus("mod_firewall").join("mod_firewall.lua");
    append(&code, "\n-- an old branch\n");
    let status = std::process::Command::new("find")
        .arg(repository.corpus("mod_firewall"))
        .args(["-exec", "touch", "-d", "2001-01-01", "{}", "+"])
        .status()
        .unwrap();
    assert!(status.success());
    repository.rebuild();
    let offered = repository.entry("firewall")["version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(offered.starts_with("2001"), "{offered}");
    assert_eq!(refresh_row(&mut admin, "local")["outcome"], "ok");
    let update = admin.run("update", json!({"modules": ["firewall"], "confirm": true}));
    let standing = &last(&update)["form"]["items"][0];
    assert_eq!(
        (&standing["module"], &standing["standing"]),
        (&json!("firewall"), &json!("older_offered")),
        "{update}"
    );
    assert_eq!(on_disk(), before);
    let listed = admin.chat_json(COMPONENT, "list updates");
    assert!(
        !rows_by(&listed, "module").contains_key("firewall"),
        "{listed}"
    );
}
