//! Seeing what an update changes before saying yes, and advisories: from
//! a repository built from a git checkout of Debian's prosody-modules,
//! against a real Prosody, through chat, a room, ad-hoc and the CLI.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::*;

const ROOM: &str = "ops@conference.localhost";
const COMMIT: &str = "Record the client's software when asked";

/// `git` in `tree`, as a person with a name.
fn git(tree: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args(["-c", "user.name=Maintainer", "-c", "user.email=m@localhost"])
        .args(args)
        .current_dir(tree)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
}

/// The rows of a `check --json` whose check is `name`.
fn check_row(config: &Path, name: &str) -> Option<Value> {
    let (_, out, _) = cli(&["check", "--json"], config);
    json_rows(&out, "check").remove(name)
}

#[test]
fn an_update_shows_its_commits_and_files_and_an_advisory_reaches_the_admin_once() {
    let prosody = Prosody::start();
    let repository = Repository::start_with(|corpus| {
        debian_corpus(corpus);
        git(corpus, &["init", "-q"]);
        git(corpus, &["add", "-A"]);
        git(
            corpus,
            &["commit", "-q", "-m", "Import Debian's prosody-modules"],
        );
    });
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.join(ROOM, "alice", "anyone");
    let _modman = Modman::start(&prosody, &chat_config(&prosody, &repository, &[ROOM]));
    admin.wait_for_occupant(ROOM, "modman");
    let config = cli_config(&prosody, &repository);
    admin.chat(COMPONENT, "refresh");
    let installed = admin.chat_json(COMPONENT, "install lastlog");
    assert_eq!(installed["kind"], "table", "{installed}");
    let old = repository.entry("lastlog")["version"]
        .as_str()
        .unwrap()
        .to_owned();

    // Upstream changes the module: one line changed, an option added.
    let lua = repository.corpus("mod_lastlog").join("mod_lastlog.lua");
    let code = std::fs::read_to_string(&lua).unwrap();
    let changed = code.replacen(
        "local time = os.time;\n",
        "local time = os.time; -- seconds\nlocal log_client = module:get_option_boolean(\"lastlog_client\", false);\n",
        1,
    );
    assert_ne!(changed, code);
    std::fs::write(&lua, changed).unwrap();
    let corpus = repository.dir.path().join("corpus");
    git(&corpus, &["commit", "-q", "-a", "-m", COMMIT]);
    repository.rebuild();
    let new = repository.entry("lastlog")["version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    admin.chat(COMPONENT, "refresh");
    let notice = admin
        .next_from(ROOM, "modman", 20)
        .expect("an update notice");
    assert!(notice.starts_with("Updates available"), "{notice}");

    // The repository marks the installed copy insecure, fixed by the new.
    repository.advise_insecure(
        "lastlog",
        &old,
        &new,
        "logs every address\u{1b}[2J for ever",
    );
    admin.chat(COMPONENT, "refresh");
    // The room first (the admin's own message comes after it).
    let in_room = admin
        .next_json_from(ROOM, "modman", 20)
        .expect("an advisory in the room");
    let direct = admin.request(json!({"op": "next_chat", "from": COMPONENT}));
    let direct = &direct["json"];
    for facts in [&in_room, direct] {
        assert_eq!(facts["kind"], "advisory", "{facts}");
        assert_eq!(facts["module"], "lastlog");
        assert_eq!(facts["installed"], old.as_str());
        assert_eq!(facts["advisory"], "insecure");
        assert_eq!(facts["fixed"], new.as_str());
        assert_eq!(facts["remedy"], "update");
        assert_eq!(facts["fails_check"], true);
        // Cleaned of the control character it was sent with.
        assert!(!facts["reason"].as_str().unwrap().contains('\u{1b}'));
    }
    // Once: the next refresh says nothing new, so the next message is
    // the answer to list.
    admin.chat(COMPONENT, "refresh");
    let listed = admin.chat_json(COMPONENT, "list installed");
    assert_eq!(listed["kind"], "table", "a second notice came: {listed}");
    assert_eq!(
        rows_by(&listed, "module")["lastlog"]["advisory"],
        "insecure"
    );

    let (_, out, _) = cli(&["info", "lastlog", "--json"], &config);
    let info = json_output(&out);
    assert_eq!(info["fields"]["advisory"], "insecure", "{info}");
    assert_eq!(info["fields"]["fixed_in"], new.as_str());
    let row = check_row(&config, "advisory lastlog").expect("an advisory check");
    assert_eq!(row["outcome"], "failed", "{row}");
    assert!(!cli(&["check"], &config).0);

    // The code change itself.
    let (ok, out, err) = cli(&["diff", "lastlog", "--json"], &config);
    assert!(ok, "{err}");
    let diff = json_output(&out);
    let text = diff["fields"]["diff"].as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "--- a/mod_lastlog.lua",
        "+++ b/mod_lastlog.lua",
        "-local time = os.time;",
        "+local time = os.time; -- seconds",
        "+local log_client = module:get_option_boolean(\"lastlog_client\", false);",
    ] {
        assert!(lines.contains(&expected), "{expected:?} not in:\n{text}");
    }
    assert_eq!(lines.iter().filter(|l| l.starts_with("@@")).count(), 1);

    // The question, in chat: the commit, the file, the new option.
    let question = admin.chat_json(COMPONENT, "update lastlog");
    assert_eq!(question["kind"], "confirm", "{question}");
    let changes = &question["changes"][0];
    assert_eq!(changes["module"], "lastlog");
    assert_eq!(
        (&changes["from"], &changes["to"]),
        (&json!(old), &json!(new))
    );
    let log: Vec<&str> = (changes["log"].as_array().unwrap().iter())
        .map(|c| c["summary"].as_str().unwrap())
        .collect();
    assert_eq!(log, [COMMIT]);
    assert_eq!(
        changes["files"],
        json!([{"path": "mod_lastlog.lua", "change": "changed", "added": 2, "removed": 1}])
    );
    assert_eq!(changes["options"]["new"], json!(["lastlog_client"]));
    admin.chat(COMPONENT, "no");

    // In a form, in the plan, once; answered yes with the plan sent back.
    let run = admin.run_steps(
        "update",
        json!([{"modules": ["lastlog"]}, {"confirm": true, "plan": "sent back"}]),
    );
    let asked = &run["steps"][1]["form"];
    // The reason rides in a hidden field, for bots: no client shows it.
    assert_eq!(
        asked["fields"],
        json!(["plan", "confirm", "why", "by_chat"]),
        "{asked}"
    );
    assert_eq!(asked["types"]["why"], "hidden", "{asked}");
    assert_eq!(asked["values"]["why"], json!(["always_asked"]), "{asked}");
    assert_eq!(
        asked["values"]["by_chat"],
        json!(["update lastlog"]),
        "{asked}"
    );
    // slixmpp gives a text-multi field's values as one text.
    let plan = asked["values"]["plan"].as_str().unwrap_or_default();
    assert_eq!(
        plan.lines().filter(|l| l.ends_with(COMMIT)).count(),
        1,
        "{asked}"
    );
    assert_eq!(last(&run)["status"], "completed", "{run}");
    assert_eq!(
        admin.chat_json(COMPONENT, "list installed")["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["module"] == "lastlog")
            .map(|r| (r["installed"].clone(), r["advisory"].clone())),
        Some((json!(new), json!("")))
    );
    assert!(check_row(&config, "advisory lastlog").is_none());
}
