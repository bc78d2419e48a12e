//! A hostile world (issue 13): stanzas from ordinary accounts, in a direct
//! message and in a room modman sits in, never take modman down or make it
//! act for someone it cannot prove is an admin; and nothing changes where
//! nothing should.

mod support;

use serde_json::json;
use support::{last, snapshot, Client, Modman, Prosody, Repository, ADMIN, COMPONENT, USER};

const ROOM: &str = "ops@conference.localhost";

fn chat_config(prosody: &Prosody, repository: &Repository, rooms: &[&str]) -> String {
    let rooms: Vec<String> = rooms.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "{}{}\n[chat]\nrooms = [{}]\nnick = \"modman\"\n",
        prosody.modman_config(),
        repository.config_section(),
        rooms.join(", ")
    )
}

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
    admin.say(ROOM, "modman: help", false);
    let help = admin
        .next_from(ROOM, "modman", 20)
        .expect("an answer in the room");
    assert!(help.contains("install MODULE"), "{help}");
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

/// A module tree of one module whose README says it does not work with
/// Prosody 0.12 (the test server's version).
fn fragile_corpus(corpus: &std::path::Path) {
    let module = corpus.join("mod_fragile");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(
        module.join("mod_fragile.lua"),
        "module:log(\"info\", \"fragile\");\n",
    )
    .unwrap();
    std::fs::write(
        module.join("README.markdown"),
        "---\nsummary: Crashes old servers\n---\n\nCompatibility\n=============\n\n  ------ ----------------------------\n  13     Works\n  0.12   Does not work (crashes the server)\n  ------ ----------------------------\n",
    )
    .unwrap();
}

#[test]
fn a_version_result_from_anyone_but_the_server_is_ignored() {
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
        "<iq type='result' to='{COMPONENT}' id='modman-server-version'><query xmlns='jabber:iq:version'><name>Prosody</name><version>13.0.0</version></query></iq>"
    ));
    assert!(answers_admin(&mut user));

    let question = admin.chat(COMPONENT, "install fragile");
    assert!(
        question.contains("fragile is marked as not working with Prosody 0.12")
            && question.contains("Answer yes or no"),
        "{question}"
    );
    assert_eq!(admin.chat(COMPONENT, "no"), "Nothing was changed.");
    assert_eq!(snapshot(&prosody.modules_dir()), before);
    assert!(
        !modman.log().contains("the server runs Prosody 13"),
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
    let refreshed = admin.next_from(ROOM, "modman", 20).expect("an answer");
    assert!(refreshed.starts_with("alice: "), "{refreshed}");
    assert!(!refreshed.contains("not a modman admin"), "{refreshed}");
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
