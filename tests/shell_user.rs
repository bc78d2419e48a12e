//! Changes from the shell run as the owner of modman's state, or not at
//! all: a change made as root would leave files the daemon (as prosody)
//! cannot replace, and every later change would fail.

mod support;

use std::os::unix::fs::MetadataExt;

use serde_json::json;
use support::{cli, snapshot, Prosody, Repository};

/// `nobody`, on every Debian system.
const NOBODY: u32 = 65534;

fn chown_tree(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

#[test]
fn a_change_as_another_user_than_the_states_owner_is_refused_with_the_command_to_use() {
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        panic!("this test gives modman's state to another user, which needs root; run the suite as root (CI does)");
    }
    let prosody = Prosody::start();
    let repository = Repository::start();
    let config = support::cli_config(&prosody, &repository);
    let state = prosody.path("modman-state");
    std::fs::create_dir_all(&state).unwrap();
    chown_tree(&state, NOBODY);
    let before = (snapshot(&state), snapshot(&prosody.modules_dir()));

    for change in [
        &["install", "--yes", "lastlog", "--json"][..],
        &["refresh", "--json"][..],
    ] {
        let (ok, out, err) = cli(change, &config);
        assert!(!ok, "{change:?}: {out}{err}");
        // Refused because this is not the state's owner (whose command
        // the text gives), and nothing changed.
        let refused = support::json_output(&out);
        assert_eq!(
            (&refused["cause"], &refused["outcome"]),
            (&json!("not_the_owner"), &json!("nothing_changed")),
            "{change:?}: {out}{err}"
        );
        assert_eq!(
            (snapshot(&state), snapshot(&prosody.modules_dir())),
            before,
            "{change:?}"
        );
    }
    // Reading is anyone's.
    let (ok, out, err) = cli(&["history"], &config);
    assert!(ok, "{out}{err}");
    assert!(walk_owners(&state).iter().all(|uid| *uid == NOBODY));
}

fn walk_owners(path: &std::path::Path) -> Vec<u32> {
    let mut owners = vec![std::fs::symlink_metadata(path).unwrap().uid()];
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            owners.extend(walk_owners(&entry.unwrap().path()));
        }
    }
    owners
}
