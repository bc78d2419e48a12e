//! modman across a fleet of Prosody servers federated over s2s, each
//! server with its own modman, in a network namespace of the fleet's own
//! (tests/support/fleet.rs).

mod support;

use serde_json::json;
use support::fleet::Fleet;

const ROOM: &str = "ops@conference.a.test";

/// Three federated servers come up with one modman each: every modman
/// answers a client of another server over s2s, and the modmans of the
/// two other servers join the room that lives on a.test under their own
/// server's name.
#[test]
fn three_servers_each_with_its_modman_meet_in_one_room() {
    let mut fleet = Fleet::start(3);
    let alice = fleet.members[0].admin.clone();
    let mut admin = fleet.client(&alice);
    admin.join(ROOM, "alice", "anyone");
    for domain in ["a.test", "b.test", "c.test"] {
        let member = fleet.member(domain);
        let config = member.modman_config(&[&member.admin], &[ROOM], domain, "");
        fleet.start_modman(domain, &config);
    }
    for domain in ["b.test", "c.test"] {
        let to = fleet.member(domain).component();
        let reply = admin.iq(&format!(
            "<iq type='get' to='{to}' id='s2s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ));
        assert_eq!(reply.attr("type"), Some("result"), "{to} over s2s");
        assert_eq!(reply.attr("from"), Some(to.as_str()));
    }
    for domain in ["a.test", "b.test", "c.test"] {
        admin.wait_for_occupant(ROOM, domain);
    }
    // An admin of a.test is no admin of b.test: its modman refuses her.
    let refused = admin.run_at(&fleet.member("b.test").component(), "list", json!([]));
    assert_eq!(refused["error"]["condition"], "forbidden", "{refused}");
}
