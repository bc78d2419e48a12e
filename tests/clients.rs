//! What real clients see: a client that says it is Gajim 1.7.3 (which
//! hangs on multi-item forms and crashes on `canceled` after a form) gets
//! every result as a single-item form; Profanity in tmux shows the module
//! list; a new modman lists and installs without anyone running refresh;
//! rosters show modman online.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use modman::ops::response::OUTCOME;
use modman::xmpp::command::NOTE_WIDTH;
use modman::xmpp::forms::question::{ANSWERS, PLAN_LABEL};
use modman::xmpp::forms::results::{CELL_WIDTH, RESULT_LABEL};
use serde_json::{json, Value};
use support::{
    last, server, wait_for, Client, Modman, Prosody, Repository, Version, ADMIN, COMPONENT,
    PASSWORD,
};

const GAJIM_1_7: &[&str] = &["Gajim", "1.7.3", "https://gajim.org"];
/// Gajim 2 announces message replies (XEP-0461), which Gajim 1.7 does not.
const GAJIM_2: &[&str] = &["Gajim", "2.1.1", "https://gajim.org", "urn:xmpp:reply:0"];
const POEZIO: &[&str] = &["Poezio", "0.15.1", "https://poez.io"];

/// Every reply of a run reads in every client: each note is one line
/// that fits Gajim 2's window, and a question carries its plan in a
/// field (Poezio shows fields, not instructions).
fn assert_readable(run: &Value) {
    let steps = run["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {run}"));
    for step in steps {
        for note in step["notes"].as_array().into_iter().flatten() {
            let text = note[1].as_str().unwrap_or_default();
            assert!(
                text.chars().count() <= NOTE_WIDTH && !text.contains('\n'),
                "a note longer than a line: {run}"
            );
        }
        let form = &step["form"];
        if form["types"].get("confirm").is_some() {
            assert_eq!(form["types"]["plan"], "text-multi", "{run}");
            let plan = form["values"]["plan"].as_str().unwrap_or_default();
            assert!(
                plan.lines().count() > 1,
                "a question without its plan: {run}"
            );
        }
    }
}

/// A table result as Gajim 2 gets it: no note, whose label would push the
/// table into a strip at the bottom of the window; the outcome as the
/// form's title, which Gajim 2 shows as the table's heading, and every
/// cell, in lines that fit its window (it neither wraps nor cuts them
/// visibly: what passes the edge is hidden).
fn assert_outcome_in_title(run: &Value) {
    let result = last(run);
    assert_ne!(result["form"]["reported"], json!([]), "not a table: {run}");
    assert_eq!(result["notes"], json!([]), "a note beside a table: {run}");
    let title = result["form"]["title"].as_str().unwrap_or_default();
    assert!(
        !title.is_empty() && title.lines().all(|l| l.chars().count() <= NOTE_WIDTH),
        "the outcome is not the title: {run}"
    );
    for item in result["form"]["items"].as_array().into_iter().flatten() {
        for cell in item
            .as_object()
            .into_iter()
            .flat_map(|cells| cells.values())
        {
            let text = cell.as_str().unwrap_or_default();
            assert!(
                text.lines().all(|l| l.chars().count() <= CELL_WIDTH),
                "a cell wider than Gajim 2's window: {run}"
            );
        }
    }
}

/// Every reply of a run: readable, a single-item form if any, never
/// `canceled`.
fn assert_gajim_1_7_shows(run: &Value) {
    assert_readable(run);
    let steps = run["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {run}"));
    for step in steps {
        assert_ne!(step["status"], "canceled", "{run}");
        if let Some(form) = step.get("form") {
            assert_eq!(
                form["reported"],
                json!([]),
                "a table reached Gajim 1.7: {run}"
            );
            assert_eq!(form["items"], json!([]), "a table reached Gajim 1.7: {run}");
        }
    }
}

/// What modman declares of command `node`: its name, as clients list it,
/// and its fields' labels.
fn spec(node: &str) -> &'static modman::ops::Spec {
    let op = modman::ops::all().iter().find(|op| op.spec().node == node);
    op.unwrap_or_else(|| panic!("no command {node}")).spec()
}

fn command_name(node: &str) -> &'static str {
    spec(node).name
}

/// The label modman declares for field `var` of command `node`.
fn param_label(node: &str, var: &str) -> &'static str {
    let param = spec(node).params.iter().find(|p| p.var == var);
    param
        .unwrap_or_else(|| panic!("no field {var} in {node}"))
        .label
}

/// The text a single-item result carries, all fields joined.
fn shown(step: &Value) -> String {
    step["form"]["values"]
        .as_object()
        .map(|values| {
            values
                .values()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// modman with `repository` configured and nobody having run refresh.
fn fresh_modman(prosody: &Prosody, repository: &Repository) -> Modman {
    Modman::start(
        prosody,
        &(prosody.modman_config() + &repository.config_section()),
    )
}

/// A Prosody, the tests' repository and a modman nobody ran refresh on,
/// with an admin (slixmpp) logged in once `list` shows the index.
fn started_with_admin() -> (Prosody, Repository, Modman, Client) {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let modman = fresh_modman(&prosody, &repository);
    let mut admin = Client::connect(&prosody, ADMIN);
    wait_for_index(&mut admin);
    (prosody, repository, modman, admin)
}

/// Waits until `list` shows what the repository offers.
fn wait_for_index(admin: &mut Client) {
    wait_for("the index fetched at start", || {
        let run = admin.run("list", json!({"query": "firewall"}));
        let result = last(&run);
        let in_table = result["form"]["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["module"] == "firewall"));
        (in_table || shown(result).contains("firewall")).then_some(())
    });
}

#[test]
fn gajim_1_7_gets_every_result_as_a_single_item_form_and_no_completes() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let _modman = fresh_modman(&prosody, &repository);
    let mut gajim = Client::connect_as(&prosody, ADMIN, GAJIM_1_7);
    wait_for_index(&mut gajim);
    // A bot beside it reads the same results as facts (tables, JSON).
    let mut bot = Client::connect(&prosody, ADMIN);

    let list = gajim.run("list", json!({}));
    assert_gajim_1_7_shows(&list);
    let result = last(&list);
    assert_eq!(result["status"], "completed");
    let text = shown(result);
    assert!(
        text.lines()
            .any(|l| l.starts_with("firewall (stage: ") || l.starts_with("firewall - ")),
        "{text}"
    );
    // The summary the table carries is in Gajim 1.7's form too.
    let summary = bot.chat_json(COMPONENT, "list");
    let summary = summary["note"].as_str().unwrap_or_default();
    assert!(!summary.is_empty() && text.contains(summary), "{text}");

    let info = gajim.run("info", json!({"module": "firewall"}));
    assert_gajim_1_7_shows(&info);
    assert_eq!(last(&info)["form"]["values"]["module"], "firewall");

    let install = gajim.run("install", json!({"modules": ["csi_battery_saver"]}));
    assert_gajim_1_7_shows(&install);
    // Its dependency came with it.
    let removed_dir = prosody.modules_dir().join("mod_track_muc_joins");
    assert!(removed_dir.is_dir(), "{install}");

    // The question is a required yes/no choice; "no" completes with a
    // note and changes nothing.
    let refused = gajim.run_steps(
        "remove",
        json!([{"modules": ["track_muc_joins"]}, {"confirm": "no"}]),
    );
    assert_gajim_1_7_shows(&refused);
    let question = &refused["steps"][1]["form"];
    assert_eq!(question["types"]["confirm"], "list-single", "{refused}");
    assert_eq!(last(&refused)["status"], "completed");
    assert_eq!(
        last(&refused)["notes"],
        json!([["info", "Not confirmed; nothing was changed."]])
    );
    assert!(removed_dir.is_dir());

    // Going back from the question keeps what was ticked.
    let back = gajim.iq(&format!(
        "<iq type='set' to='{COMPONENT}' id='b'><command xmlns='http://jabber.org/protocol/commands' node='remove'>\
         <x xmlns='jabber:x:data' type='submit'><field var='modules'><value>track_muc_joins</value></field></x></command></iq>"
    ));
    let command = back
        .get_child("command", "http://jabber.org/protocol/commands")
        .unwrap();
    let session = command.attr("sessionid").unwrap().to_owned();
    let prev = gajim.iq(&format!(
        "<iq type='set' to='{COMPONENT}' id='p'><command xmlns='http://jabber.org/protocol/commands' node='remove' sessionid='{session}' action='prev'/></iq>"
    ));
    let form = prev
        .get_child("command", "http://jabber.org/protocol/commands")
        .and_then(|c| c.get_child("x", "jabber:x:data"))
        .unwrap_or_else(|| panic!("{}", String::from(&prev)));
    let ticked: Vec<String> = form
        .children()
        .filter(|f| f.attr("var") == Some("modules"))
        .flat_map(|f| {
            f.children()
                .filter(|v| v.name() == "value")
                .map(|v| v.text())
        })
        .collect();
    assert_eq!(ticked, ["track_muc_joins"]);

    let accepted = gajim.run_steps(
        "remove",
        json!([{"modules": ["track_muc_joins"]}, {"confirm": "yes"}]),
    );
    assert_gajim_1_7_shows(&accepted);
    assert_eq!(last(&accepted)["status"], "completed", "{accepted}");
    assert!(!removed_dir.exists());

    // Prosody's own modules are offered by enable, and shown as such.
    let enable_form = gajim.iq(&format!(
        "<iq type='set' to='{COMPONENT}' id='e'><command xmlns='http://jabber.org/protocol/commands' node='enable'/></iq>"
    ));
    let labels: Vec<String> = enable_form
        .get_child("command", "http://jabber.org/protocol/commands")
        .and_then(|c| c.get_child("x", "jabber:x:data"))
        .into_iter()
        .flat_map(|x| x.children())
        .filter(|f| f.attr("var") == Some("modules"))
        .flat_map(|f| {
            f.children()
                .filter_map(|o| o.attr("label").map(str::to_owned))
        })
        .collect();
    assert!(
        labels.contains(
            &"csi_battery_saver - Pause unimportant traffic while the client is inactive"
                .to_owned()
        ) || labels.iter().any(|l| l.starts_with("csi_battery_saver - ")),
        "{labels:?}"
    );
    assert!(
        labels.contains(&"mam - Prosody's own".to_owned()),
        "{labels:?}"
    );
    // Debian's prosody-modules sits among Prosody's own, and is told apart.
    assert!(
        labels.contains(&"lastlog - Debian's prosody-modules".to_owned()),
        "{labels:?}"
    );
    // The host typed beside the host picker, as in Movim, which shows no
    // list-multi.
    let enable = gajim.run(
        "enable",
        json!({"modules": ["mam"], "hosts_typed": "localhost"}),
    );
    assert_gajim_1_7_shows(&enable);
    assert_eq!(last(&enable)["status"], "completed", "{enable}");
    assert_eq!(last(&enable)["notes"][0][0], "info", "{enable}");
    let builtin = gajim.run("list", json!({"show": "installed", "query": "mam"}));
    assert!(
        shown(last(&builtin)).contains("mam (installed: Prosody's own"),
        "{builtin}"
    );
    let info = gajim.run("info", json!({"module": "mam"}));
    assert!(shown(last(&info)).contains("builtin: one of Prosody's own modules"));

    for node in ["check", "history", "refresh"] {
        let run = gajim.run(node, json!({}));
        assert_gajim_1_7_shows(&run);
        assert_eq!(last(&run)["status"], "completed", "{run}");
        assert!(!shown(last(&run)).is_empty(), "{node} shows nothing: {run}");
    }
    let history = bot.chat_json(COMPONENT, "history");
    let latest = &history["rows"][0];
    assert_eq!(
        (&latest["operation"], &latest["result"]),
        (&json!("enable"), &json!("ok")),
        "{history}"
    );
}

/// Psi 1.5 shows only the reply to a command's first execute: what
/// follows a form reaches it as a chat message too.
#[test]
fn psi_gets_what_follows_a_form_as_a_chat_message() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    let _modman = fresh_modman(&prosody, &repository);
    let mut psi = Client::connect_as(
        &prosody,
        ADMIN,
        &["Psi", "1.5-dev (2021-08-22)", "https://psi-im.org"],
    );
    wait_for_index(&mut psi);
    let list = psi.run("list", json!({"query": "lastlog"}));
    assert_eq!(last(&list)["status"], "completed", "{list}");
    // wait_for_index's own runs sent theirs first.
    let body = next_saying(&mut psi, "lastlog2");
    assert!(
        body.starts_with("Modules:\nlastlog ") && body.contains("\nlastlog2 "),
        "{body}"
    );

    // Details keep their labels.
    psi.run("info", json!({"module": "lastlog"}));
    let info = next_saying(&mut psi, "lastlog");
    assert!(
        info.contains("\nSummary: ") && info.contains("\nFiles:\n"),
        "{info}"
    );
    // A first reply Psi's dialog cuts (refresh's long lines) or squeezes
    // into a scrolling box (check's rows) comes as a chat message too,
    // every value of it.
    for node in ["refresh", "check"] {
        let run = psi.run(node, json!({}));
        let result = last(&run);
        assert_eq!(run["steps"].as_array().map(Vec::len), Some(1), "{run}");
        let types = result["form"]["types"].as_object().unwrap();
        let shown: Vec<&str> = (types.iter())
            .filter(|(_, kind)| ["text-single", "text-multi"].contains(&kind.as_str().unwrap()))
            .filter_map(|(var, _)| result["form"]["values"][var].as_str())
            .flat_map(str::lines)
            .collect();
        let said = next_saying(&mut psi, shown.first().unwrap_or_else(|| panic!("{run}")));
        assert!(
            shown.iter().all(|line| said.contains(line)),
            "{run} in {said}"
        );
    }

    // A question cannot be answered in Psi: the message says so, and
    // gives the chat line that asks the same; nothing is changed.
    psi.run("install", json!({"modules": ["csi_battery_saver"]}));
    next_saying(&mut psi, "Installed:");
    let asked = psi.run("remove", json!({"modules": ["track_muc_joins"]}));
    assert_eq!(last(&asked)["status"], "executing", "{asked}");
    let form = &last(&asked)["form"]["values"];
    let line = form["by_chat"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no chat line: {asked}"))
        .to_owned();
    let question = next_saying(&mut psi, "track_muc_joins");
    assert!(question.lines().any(|l| l == line), "{line} in {question}");
    assert!(prosody.modules_dir().join("mod_track_muc_joins").is_dir());
    // Sent as it is, the line asks the same question, with the same plan.
    let by_chat = psi.chat_json(COMPONENT, &line);
    assert_eq!(by_chat["kind"], "confirm", "{by_chat}");
    assert_eq!(by_chat["question"], form["plan"], "{by_chat}");
    psi.chat(COMPONENT, "no");
    assert!(prosody.modules_dir().join("mod_track_muc_joins").is_dir());
}

/// The next chat message from modman to `client` that contains `marker`.
fn next_saying(client: &mut Client, marker: &str) -> String {
    loop {
        let message = client.request(json!({"op": "next_chat", "from": COMPONENT}));
        let body = message["body"]
            .as_str()
            .unwrap_or_else(|| panic!("no message saying {marker:?}: {message}"));
        if body.contains(marker) {
            return body.to_owned();
        }
    }
}

/// A README saying the module does not work with Prosody, so installing
/// it asks first.
const NOT_WORKING: &str = "---\nsummary: Fails to load\n---\n\n# Compatibility\n\n  ------- ---------------\n  13      Does not work\n  0.12    Does not work\n  ------- ---------------\n";

/// Gajim answers XEP-0092 only once subscribed (modman subscribes back),
/// but disco#info to anyone: a Gajim 2 gets tables before and after. A failed change is a completed command
/// with an error note and its facts as fields, which every client shows;
/// Poezio, which reads multi-line fields poorly, gets each result and
/// question as a chat message as well.
#[test]
fn gajim_2_gets_tables_once_subscribed_and_a_failed_change_is_seen_everywhere() {
    let prosody = Prosody::start();
    let repository = Repository::start();
    repository.add_broken_module(NOT_WORKING);
    let _modman = fresh_modman(&prosody, &repository);
    let mut gajim = Client::connect_as(&prosody, ADMIN, GAJIM_2);
    wait_for_index(&mut gajim);
    let unsubscribed = gajim.run("list", json!({"query": "firewall"}));
    assert_readable(&unsubscribed);
    assert_outcome_in_title(&unsubscribed);
    let subscribe =
        gajim.request(json!({"op": "presences", "to": COMPONENT, "type": "subscribe", "count": 3}));
    assert_eq!(
        subscribe["types"],
        json!(["subscribed", "available", "subscribe"]),
        "{subscribe}"
    );
    let list = gajim.run("list", json!({"query": "firewall"}));
    assert_readable(&list);
    let items = last(&list)["form"]["items"].as_array().unwrap().clone();
    assert!(items.iter().any(|i| i["module"] == "firewall"), "{list}");
    assert_outcome_in_title(&list);

    let installed = gajim.run("install", json!({"modules": ["csi_battery_saver"]}));
    assert_readable(&installed);
    assert_eq!(last(&installed)["status"], "completed", "{installed}");
    // A time reads the same in info as in history.
    let history = gajim.run("history", json!({}));
    let when = last(&history)["form"]["items"][0]["time"]
        .as_str()
        .unwrap_or_else(|| panic!("{history}"))
        .to_owned();
    let info = gajim.run("info", json!({"module": "csi_battery_saver"}));
    let status = last(&info)["form"]["values"]["status"].to_string();
    assert!(status.contains(&when), "{when} in {status}");
    // Gajim and Poezio submit every field of the question, the plan too.
    let asked = gajim.run_steps(
        "remove",
        json!([{"modules": ["track_muc_joins"]}, {"confirm": "no", "plan": ["Remove:", "x"]}]),
    );
    assert_readable(&asked);
    assert_eq!(asked["steps"][1]["form"]["types"]["confirm"], "list-single");
    // Gajim 2 counts a required list-single without a value as
    // unanswered whatever its drop-down shows: the question comes with
    // "no" chosen, so Complete answers it at once, changing nothing.
    assert_eq!(
        asked["steps"][1]["form"]["values"]["confirm"], "no",
        "{asked}"
    );
    assert_eq!(last(&asked)["status"], "completed", "{asked}");
    // Said once, in the form: no note above it saying the same.
    assert_eq!(last(&asked)["notes"], json!([]), "{asked}");
    assert_eq!(last(&asked)["form"]["fields"], json!(["note"]), "{asked}");
    assert!(prosody.modules_dir().join("mod_track_muc_joins").is_dir());

    let failed = gajim.run(
        "install",
        json!({"modules": ["broken"], "enable": true, "confirm": true}),
    );
    assert_readable(&failed);
    let result = last(&failed);
    assert_eq!(result["status"], "completed", "{failed}");
    assert_eq!(result["notes"][0][0], "error", "{failed}");
    let facts = &result["form"]["values"];
    assert_eq!(facts["outcome"], "failed", "{failed}");
    // The condition is for bots, hidden beside the kind a person reads.
    assert_eq!(facts["condition"], json!(["conflict"]), "{failed}");
    assert_eq!(result["form"]["types"]["condition"], "hidden", "{failed}");
    assert_eq!(facts["error"], "conflict", "{failed}");
    assert_eq!(facts["state"], "undone", "{failed}");
    assert!(!prosody.modules_dir().join("mod_broken").exists());
    for node in ["check", "history", "update", "rollback"] {
        let run = gajim.run(node, json!({}));
        assert_readable(&run);
        if last(&run)["form"]["reported"]
            .as_array()
            .is_some_and(|columns| !columns.is_empty())
        {
            assert_outcome_in_title(&run);
        }
    }

    let mut poezio = Client::connect_as(&prosody, ADMIN, POEZIO);
    let failed = poezio.run(
        "install",
        json!({"modules": ["broken"], "enable": true, "confirm": true}),
    );
    assert_readable(&failed);
    let text = last(&failed)["form"]["values"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{failed}"))
        .to_owned();
    assert_eq!(last(&failed)["form"]["items"], json!([]), "{failed}");
    let said = next_saying(&mut poezio, text.lines().next().unwrap_or_default());
    assert!(text.lines().all(|line| said.contains(line)), "{said}");
    let asked = poezio.run("remove", json!({"modules": ["track_muc_joins"]}));
    assert_readable(&asked);
    let plan = last(&asked)["form"]["values"]["plan"]
        .as_str()
        .unwrap_or_else(|| panic!("{asked}"))
        .to_owned();
    next_saying(&mut poezio, &plan);
    assert!(prosody.modules_dir().join("mod_track_muc_joins").is_dir());
    // A refused form is shown as a failed change is, not as a stanza
    // error Poezio drops.
    let refused = poezio.run(
        "configure",
        json!({"module": "track_muc_joins", "options": ["no equals sign"]}),
    );
    assert_readable(&refused);
    let result = last(&refused);
    assert_eq!(result["status"], "completed", "{refused}");
    assert_eq!(result["notes"][0][0], "error", "{refused}");
    assert_eq!(result["form"]["values"]["outcome"], "failed", "{refused}");
    assert_eq!(
        result["form"]["values"]["condition"],
        json!(["bad-request"]),
        "{refused}"
    );
    assert_eq!(
        result["form"]["values"]["state"], "nothing_changed",
        "{refused}"
    );
}

#[test]
fn a_bot_still_reads_tables() {
    let (_prosody, _repository, _modman, mut bot) = started_with_admin();
    let list = bot.run("list", json!({"query": "firewall"}));
    let items = last(&list)["form"]["items"].as_array().unwrap().clone();
    assert!(items.iter().any(|i| i["module"] == "firewall"), "{list}");
    // A bot keeps the outcome as a note and the table's own title.
    assert_eq!(last(&list)["notes"][0][0], "info", "{list}");
    assert_ne!(
        last(&list)["form"]["title"],
        last(&list)["notes"][0][1],
        "{list}"
    );
}

#[test]
fn a_fresh_modman_lists_and_installs_without_anyone_running_refresh() {
    let (prosody, _repository, _modman, mut admin) = started_with_admin();
    let install = admin.run("install", json!({"modules": ["lastlog"]}));
    assert_eq!(last(&install)["status"], "completed", "{install}");
    assert!(prosody.modules_dir().join("mod_lastlog").is_dir());
}

/// A command runs while its requester's client is still asked what it
/// is, and its reply is rendered once the client said: a script that
/// connects for one command waits one round trip less, and no command
/// waits on a client slow to answer. Gajim 2 says what it is only in its
/// version (its disco#info and caps would get single-item forms): the
/// reply is its table because the version, answered only once the module
/// was in place, was still awaited when the change was done.
#[test]
fn a_command_runs_while_its_client_is_asked_what_it_is() {
    let (prosody, _repository, _modman, _admin) = started_with_admin();
    // Known from now on by its full JID: another resource asks afresh.
    let mut gajim = Client::connect_as(
        &prosody,
        &format!("{ADMIN}/held"),
        &["Gajim", "2.1.1", "https://gajim.org"],
    );
    gajim.hold_versions();
    gajim.iq_later(&format!(
        "<iq type='set' to='{COMPONENT}' id='one-shot'><command xmlns='http://jabber.org/protocol/commands' node='install' action='execute'>\
         <x xmlns='jabber:x:data' type='submit'><field var='modules'><value>lastlog</value></field><field var='confirm'><value>true</value></field></x>\
         </command></iq>"
    ));
    wait_for("the module installed while the client is asked", || {
        let installed = prosody.modules_dir().join("mod_lastlog").is_dir();
        (installed && gajim.held_versions() == 1).then_some(())
    });
    assert_eq!(gajim.release_versions(), 1, "one version query, held");
    let reply = gajim.iq_reply();
    let command = reply
        .get_child("command", "http://jabber.org/protocol/commands")
        .unwrap_or_else(|| panic!("{}", String::from(&reply)));
    assert_eq!(command.attr("status"), Some("completed"));
    let form = command.get_child("x", "jabber:x:data").unwrap();
    assert!(
        form.get_child("reported", "jabber:x:data").is_some(),
        "rendered as the version says (Gajim 2: tables): {}",
        String::from(&reply)
    );
}

#[test]
fn rosters_show_modman_online() {
    let prosody = Prosody::start();
    let _modman = Modman::start(&prosody, &prosody.modman_config());
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.wait_until_component_answers();
    let subscribe =
        admin.request(json!({"op": "presences", "to": COMPONENT, "type": "subscribe", "count": 3}));
    // An admin is subscribed to in return, so their client tells modman
    // what it is.
    assert_eq!(
        subscribe["types"],
        json!(["subscribed", "available", "subscribe"]),
        "{subscribe}"
    );
    let probe =
        admin.request(json!({"op": "presences", "to": COMPONENT, "type": "probe", "count": 1}));
    assert_eq!(probe["types"], json!(["available"]), "{probe}");
}

/// Profanity 0.13 in tmux, as an admin types: `/cmd exec list` then
/// `/form submit`; the screen shows module names.
#[test]
fn profanity_shows_the_module_list() {
    // Profanity offers /cmd only when the user's server announces ad-hoc
    // commands, as every real server does.
    let prosody =
        Prosody::start_with(|config| config.replace("\"disco\", ", "\"disco\", \"adhoc\", "));
    let repository = Repository::start();
    let _modman = fresh_modman(&prosody, &repository);
    let mut admin = Client::connect(&prosody, ADMIN);
    wait_for_index(&mut admin);
    drop(admin);

    let home = prosody.path("profanity-home");
    std::fs::create_dir_all(&home).unwrap();
    let terminal = Terminal::start(
        &format!("modman-test-{}", prosody.c2s_port),
        &format!("env HOME={} TERM=xterm-256color profanity", home.display()),
    );
    let screen = || terminal.screen();
    let type_line = |line: &str| terminal.type_line(line);
    wait_for("profanity to start", || {
        screen()
            .contains("Type /help for help information")
            .then_some(())
    });
    type_line(&format!(
        "/connect {ADMIN} server 127.0.0.1 port {} tls disable",
        prosody.c2s_port
    ));
    wait_for("the password prompt", || {
        screen().contains("password").then_some(())
    });
    type_line(PASSWORD);
    wait_for("profanity to log in", || {
        screen().contains("logged in successfully").then_some(())
    });
    type_line(&format!("/cmd exec list {COMPONENT}"));
    let show = format!("[field1] {}", param_label("list", "show"));
    wait_for("the list form", || screen().contains(&show).then_some(()));
    std::thread::sleep(Duration::from_millis(200));
    type_line("/form submit");
    let index = repository.index();
    let offered = index["modules"].as_array().unwrap();
    let last = offered
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .max()
        .unwrap();
    let total = format!("Result: {} modules: 0 installed by modman", offered.len());
    let shown = wait_for("module names on the screen", || {
        let text = screen();
        // The end of the list (the top has scrolled away) and its note.
        (text.lines().any(|line| line.contains(&format!("{last} "))) && text.contains(&total))
            .then_some(text)
    });
    assert!(!shown.contains("canceled"), "{shown}");
}

/// Poezio in tmux, as an admin uses it: `/ad-hoc`, then each command's
/// form. It shows fields (not instructions, not a stanza error after a
/// form), and each multi-line field one line at a time, so what modman
/// also sends as a chat message is read there: the module list, the plan
/// of a question answered no then yes, the error of the install that
/// failed, and the history entry it left. On Prosody 0.12 it is the
/// Poezio of this machine (0.14); on Prosody 13, Poezio 0.15.1 from the
/// same Debian 13 chroot, which logs in only over TLS: so Prosody offers
/// TLS with a certificate from a CA of the test's own, which Poezio trusts.
#[test]
fn poezio_shows_the_plan_the_error_and_the_history() {
    let Some(poezio) = PoezioProgram::find() else {
        return;
    };
    let prosody = Prosody::start_with_tls();
    let repository = Repository::start();
    repository.add_broken_module(NOT_WORKING);
    let _modman = fresh_modman(&prosody, &repository);
    let mut admin = Client::connect(&prosody, ADMIN);
    wait_for_index(&mut admin);
    drop(admin);
    let index = repository.index();
    let version_of = |name: &str| -> String {
        index["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["version"].as_str())
            .unwrap_or_else(|| panic!("{name} is not in the index"))
            .to_owned()
    };

    // Poezio refuses to run as root: it runs as nobody, in a home of
    // its own.
    let home = PoezioHome::new(&prosody, poezio);
    let terminal = Terminal::start(
        &format!("modman-test-poezio-{}", prosody.c2s_port),
        &home.command(),
    );
    terminal.wait_until("poezio to log in", |s| s.contains("Authentication success"));
    // Poezio reads the keyboard once its first screen is drawn.
    // "/" opens the command line only alone, once the first screen is
    // drawn; what follows is typed on it.
    terminal.wait_until("the command line to open", |s| {
        let open = s
            .lines()
            .last()
            .is_some_and(|l| l.trim_end().ends_with('/'));
        if !open {
            terminal.keys(&["/"]);
        }
        open
    });
    terminal.type_line(&format!("ad-hoc {COMPONENT}"));
    terminal.wait_until("the command list", |s| s.contains(command_name("history")));
    // Each command's result form is closed with Ctrl+G, then back to the
    // list (tab 1), whose cursor stays on the command last run. Forms open
    // in tab 3, after the chat with modman (tab 2). The list is in the
    // order modman declares its commands.
    let close = || terminal.keys(&["C-g", "M-1"]);
    let cursor = std::cell::Cell::new(0);
    let run = |node: &str, fill: &dyn Fn(), what: &str, shows: &dyn Fn(&str) -> bool| {
        let row = modman::ops::all()
            .iter()
            .position(|op| op.spec().node == node)
            .unwrap_or_else(|| panic!("no command {node}"));
        let key = if row > cursor.get() { "Down" } else { "Up" };
        for _ in 0..row.abs_diff(cursor.get()) {
            terminal.keys(&[key]);
        }
        cursor.set(row);
        terminal.keys(&["Enter"]);
        terminal.wait_until("the form", |s| s.contains("Ctrl+Y: send form"));
        fill();
        terminal.keys(&["C-y"]);
        terminal.wait_until(what, shows)
    };
    let chat = |marker: &str| -> String {
        terminal.keys(&["M-2"]);
        let screen = terminal.wait_until(&format!("{marker} in the chat"), |s| s.contains(marker));
        terminal.keys(&["M-3"]);
        screen
    };

    // list: the first module in the form, the last one in the chat.
    let names: Vec<&str> = index["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    let (first, last) = (names.iter().min().unwrap(), names.iter().max().unwrap());
    run("list", &|| {}, "the list", &|s| {
        s.contains(&format!("{first} "))
    });
    chat(&format!("{last} "));
    close();

    // info: the module's version.
    let lastlog = version_of("lastlog");
    run(
        "info",
        &|| terminal.type_text("lastlog"),
        "lastlog's details",
        &|s| s.contains(&lastlog),
    );
    close();

    // install, answered no: the plan names the module and its version.
    let broken = version_of("broken");
    let modules_dir = prosody.modules_dir();
    let fill_install = || {
        terminal.keys(&["Down"]);
        terminal.type_text("broken");
        terminal.keys(&["Down", "Right"]);
    };
    run("install", &fill_install, "the question", &|s| {
        s.contains(PLAN_LABEL)
    });
    chat(&format!("broken {broken}"));
    terminal.keys(&["Down"]);
    terminal.wait_until("no chosen", |s| s.contains(ANSWERS[0].1));
    terminal.keys(&["C-y"]);
    terminal.wait_until("the answer's result", |s| s.contains(RESULT_LABEL));
    chat("Not confirmed");
    assert!(!modules_dir.join("mod_broken").exists());
    close();

    // install, answered yes: it fails to load, and the error is read.
    run("install", &fill_install, "the question", &|s| {
        s.contains(PLAN_LABEL)
    });
    terminal.keys(&["Down", "Right"]);
    terminal.wait_until("yes chosen", |s| s.contains(ANSWERS[1].1));
    terminal.keys(&["C-y"]);
    terminal.wait_until("the outcome field", |s| {
        s.lines()
            .any(|l| l.contains(OUTCOME.1) && l.trim_end().ends_with(" failed"))
    });
    chat("mod_broken.lua");
    assert!(!modules_dir.join("mod_broken").exists());
    close();

    // history: the failed install is an entry.
    run("history", &|| {}, "the history", &|s| s.contains("History"));
    chat(&format!("broken {broken} new"));
    close();

    // configure with a line that is not `name = value`: refused, and the
    // refusal is shown as a failed change is, not dropped.
    let fill_configure = || {
        // Past the host picker and the hosts typed beside it.
        terminal.type_text("lastlog");
        terminal.keys(&["Down", "Down", "Down", "Enter"]);
        terminal.type_text("no equals sign");
        terminal.keys(&["Enter"]);
    };
    run("configure", &fill_configure, "the refusal", &|s| {
        s.lines()
            .any(|l| l.contains(OUTCOME.1) && l.trim_end().ends_with(" failed"))
    });
    chat("no equals sign");
}

/// Where Poezio runs: this machine's, or the Debian 13 chroot's for a run
/// on Prosody 13.
#[derive(Clone, Copy)]
enum PoezioProgram {
    Host,
    Chroot(&'static Path),
}

impl PoezioProgram {
    /// The Poezio that goes with the Prosody under test; `None`, said on
    /// stderr, when the Prosody 13 chroot has none (one made before
    /// scripts/test added it: scripts/test adds it).
    fn find() -> Option<PoezioProgram> {
        let server = server();
        match server.version {
            Version::V0_12 => Some(PoezioProgram::Host),
            Version::V13 if server.host_path("/usr/bin/poezio").is_file() => {
                Some(PoezioProgram::Chroot(&server.root))
            }
            Version::V13 => {
                eprintln!(
                    "skipped: the Prosody 13 chroot at {} has no poezio; scripts/test installs \
                     it there on its next run",
                    server.root.display()
                );
                None
            }
        }
    }
}

/// A home for Poezio that the unprivileged user it runs as can write,
/// set to log in as the admin on the test's Prosody, trusting its CA;
/// removed at the end. It lies where both this machine and the chroot
/// see it at the same path.
struct PoezioHome {
    dir: PathBuf,
    program: PoezioProgram,
}

impl PoezioHome {
    fn new(prosody: &Prosody, program: PoezioProgram) -> PoezioHome {
        let dir = server().host_path(
            &std::env::temp_dir()
                .join(format!("modman-poezio-{}", prosody.c2s_port))
                .display()
                .to_string(),
        );
        let config = dir.join(".config/poezio");
        std::fs::create_dir_all(&config).unwrap();
        // A copy: Prosody's directory is closed to the user Poezio runs as.
        let ca = dir.join("ca.crt");
        std::fs::copy(prosody.ca_path(), &ca).unwrap();
        std::fs::write(
            config.join("poezio.cfg"),
            format!(
                "[Poezio]\njid = {ADMIN}\npassword = {PASSWORD}\ncustom_host = 127.0.0.1\n\
                 custom_port = {}\nca_cert_path = {}\n",
                prosody.c2s_port,
                ca.display()
            ),
        )
        .unwrap();
        let home = PoezioHome { dir, program };
        if Self::as_root() {
            Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&home.dir)
                .status()
                .unwrap();
        }
        home
    }

    fn as_root() -> bool {
        // SAFETY: geteuid only reads the process's user id.
        unsafe { libc::geteuid() == 0 }
    }

    /// The command line that runs Poezio in this home.
    fn command(&self) -> String {
        let poezio = format!(
            "env -i HOME={} TERM=xterm-256color LANG=C.UTF-8 PATH=/usr/bin:/bin poezio",
            self.dir.display()
        );
        let unprivileged = match Self::as_root() {
            true => {
                format!("setpriv --reuid=nobody --regid=nogroup --clear-groups {poezio}")
            }
            false => poezio,
        };
        match self.program {
            PoezioProgram::Host => unprivileged,
            PoezioProgram::Chroot(root) => format!("chroot {} {unprivileged}", root.display()),
        }
    }
}

impl Drop for PoezioHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The time between two keys pressed in a terminal.
const KEY_PACE: Duration = Duration::from_millis(150);

/// A terminal client in a tmux session of its own, killed when the test
/// ends, passed or not; a failed test shows the last screen.
struct Terminal(String);

impl Terminal {
    /// Runs `command` in a new tmux session named `session`.
    fn start(session: &str, command: &str) -> Terminal {
        let terminal = Terminal(session.to_owned());
        let started = terminal.tmux(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "200",
            "-y",
            "60",
            command,
        ]);
        assert!(started.status.success(), "{started:?}");
        terminal
    }

    /// On a tmux server of this test process's own (`-L`), so a test never
    /// touches, or is touched by, the sessions of whoever runs it; the
    /// server ends with its last session.
    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &format!("modman-test-{}", std::process::id())])
            .args(args)
            .output()
            .expect("tmux runs (scripts/test installs it)")
    }

    /// What the terminal shows now.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", &self.0]).stdout)
            .into_owned()
    }

    /// Types `line` and Enter.
    fn type_line(&self, line: &str) {
        self.type_text(line);
        self.keys(&["Enter"]);
    }

    /// Types `text` as it is.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.0, "-l", text]);
        std::thread::sleep(KEY_PACE);
    }

    /// Presses `keys` (tmux names: `Down`, `C-y`, `M-2`) one by one, at
    /// a person's pace: Poezio takes keys that come at once for a paste,
    /// where Enter is a new line.
    fn keys(&self, keys: &[&str]) {
        for key in keys {
            self.tmux(&["send-keys", "-t", &self.0, key]);
            std::thread::sleep(KEY_PACE);
        }
    }

    /// Waits until the screen shows what `shows` looks for; the screen.
    fn wait_until(&self, what: &str, shows: impl Fn(&str) -> bool) -> String {
        wait_for(what, || {
            let screen = self.screen();
            shows(&screen).then_some(screen)
        })
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the screen:\n{}", self.screen());
        }
        let _ = self.tmux(&["kill-session", "-t", &self.0]);
    }
}

/// In a room, the asker's bare "no" answers their question; a second
/// question says it replaces the first; other room talk is left alone.
#[test]
fn in_a_room_a_bare_no_answers_and_a_second_question_says_it_replaces_the_first() {
    const ROOM: &str = "ops@conference.localhost";
    let prosody = Prosody::start();
    let repository = Repository::start();
    let mut admin = Client::connect(&prosody, ADMIN);
    admin.join(ROOM, "alice", "anyone");
    let config = format!(
        "{}{}\n[chat]\nrooms = [\"{ROOM}\"]\n",
        prosody.modman_config(),
        repository.config_section()
    );
    let _modman = Modman::start(&prosody, &config);
    admin.wait_for_occupant(ROOM, "modman");
    wait_for_index(&mut admin);
    let installed = admin.run("install", json!({"modules": ["csi_battery_saver"]}));
    assert_eq!(last(&installed)["status"], "completed", "{installed}");

    admin.say(ROOM, "modman: remove track_muc_joins", false);
    let first = admin.next_from(ROOM, "modman", 20).expect("a question");
    assert!(
        first.contains("used by csi_battery_saver in some set-ups only"),
        "{first}"
    );
    admin.say(ROOM, "modman: rollback", false);
    let second = admin
        .next_from(ROOM, "modman", 20)
        .expect("a second question");
    assert!(
        second.starts_with("alice: This question replaces your earlier one (remove)"),
        "{second}"
    );
    admin.say(ROOM, "no", false);
    let answered = admin
        .next_from(ROOM, "modman", 20)
        .expect("an answer to the bare no");
    assert_eq!(answered, "alice: Nothing was changed.");
    // With no question waiting, a bare "no" is room talk.
    admin.say(ROOM, "no", false);
    assert_eq!(admin.next_from(ROOM, "modman", 2), None);
    assert!(prosody.modules_dir().join("mod_track_muc_joins").is_dir());
}
