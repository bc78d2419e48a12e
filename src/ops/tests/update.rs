//! `update`: up to date, the question it always asks with `from -> to`,
//! a yes bound to that copy, and held modules left alone.

use super::*;
use crate::ops::changes::FileChangeKind;
use crate::ops::updates::Direction;
use crate::ops::ErrorKind;

#[tokio::test]
async fn update_asks_with_the_copy_and_a_yes_to_an_older_plan_is_asked_again() {
    let host = Host::new().await;
    let old = host.offered("alpha");
    table(
        host.run("install", &[("modules", &["alpha"]), ("enable", &["true"])])
            .await,
    );
    let current = table(host.run("update", &[]).await);
    assert!(current.rows.is_empty(), "{current:?}");

    let new = host.publish("alpha", "-- alpha, fixed\n").await;
    assert_eq!(
        host.plan("update", &[]).await,
        [format!("alpha: {old} -> {new}")]
    );
    let asked = host.ask_and_refuse("update", &[]).await;
    assert_eq!(asked.why, [Why::AlwaysAsked]);
    let [changes] = &asked.changes[..] else {
        panic!("one module changes: {:?}", asked.changes);
    };
    assert_eq!(
        (&*changes.module, &*changes.from, &*changes.to),
        ("alpha", &*old, &*new)
    );
    assert_eq!(changes.direction, Direction::Forward);
    let files: Vec<_> = changes.files.iter().map(|f| (&*f.path, f.kind)).collect();
    // Published again with another summary in its README.
    let changed = FileChangeKind::Changed;
    assert_eq!(
        files,
        [("README.markdown", changed), ("mod_alpha.lua", changed)]
    );

    // Published once more before the answer: asked again.
    let newest = host.publish("alpha", "-- alpha, fixed twice\n").await;
    let stale = Consent::Approved(asked.approval);
    let again = question(host.run_with("update", &[], stale).await);
    assert_eq!(again.why, [Why::PlanChanged, Why::AlwaysAsked]);
    assert_eq!(host.installed("alpha").unwrap().version, old);

    let updated = table(
        host.ask_and_approve("update", &[("modules", &["alpha"])])
            .await,
    );
    let alpha = row(&updated, "alpha");
    assert_eq!(
        (&*alpha["from"], &*alpha["to"], &*alpha["standing"]),
        (&*old, &*newest, "updated")
    );
    assert_eq!(host.installed("alpha").unwrap().version, newest);
    assert!(host.loaded("alpha"), "reloaded with the new code");

    // A version named: back to one the repository still offers, which
    // is asked as a downgrade.
    let chosen = format!("alpha@{new}");
    let down = host
        .ask_and_refuse("update", &[("modules", &[&chosen])])
        .await;
    assert_eq!(down.why, [Why::AlwaysAsked, Why::Downgrade]);
    assert_eq!(down.changes[0].direction, Direction::Downgrade);
    let back = table(
        host.run_with("update", &[("modules", &[&chosen])], Consent::Given)
            .await,
    );
    assert_eq!(row(&back, "alpha")["to"], new);
    assert_eq!(host.installed("alpha").unwrap().version, new);
}

#[tokio::test]
async fn update_leaves_held_and_refuses_what_is_not_installed() {
    let host = Host::new().await;
    table(host.run("install", &[("modules", &["alpha"])]).await);
    let old = host.offered("alpha");
    host.publish("alpha", "-- alpha, fixed\n").await;
    table(host.run("hold", &[("modules", &["alpha"])]).await);
    let all = table(host.run_with("update", &[], Consent::Given).await);
    assert_eq!(column(&all, "standing"), ["held"], "{all:?}");
    let named = error(host.run("update", &[("modules", &["alpha"])]).await);
    assert_eq!(named.kind, ErrorKind::Conflict);
    assert_eq!(host.installed("alpha").unwrap().version, old);
    let missing = error(host.run("update", &[("modules", &["beta"])]).await);
    assert_eq!(missing.kind, ErrorKind::NotFound);
}
