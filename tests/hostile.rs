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
