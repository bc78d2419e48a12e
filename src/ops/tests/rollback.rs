//! `rollback`: always asked, and puts back the copy before the change.

use super::*;
use crate::ops::ErrorKind;

#[tokio::test]
async fn rollback_asks_and_puts_back_the_copy_before_the_last_change() {
    let host = Host::new().await;
    let nothing = error(host.run("rollback", &[]).await);
    assert_eq!(nothing.kind, ErrorKind::NotFound);

    let old = host.offered("alpha");
    table(host.run("install", &[("modules", &["alpha"])]).await);
    let new = host.publish("alpha", "-- alpha, fixed\n").await;
    table(host.run_with("update", &[], Consent::Given).await);

    let alpha = [("modules", &["alpha"][..])];
    assert_eq!(
        host.plan("rollback", &alpha).await,
        [format!("alpha: {new} -> {old}")]
    );
    let asked = host.ask_and_refuse("rollback", &alpha).await;
    assert_eq!(asked.why, [Why::AlwaysAsked]);
    assert_eq!(host.installed("alpha").unwrap().version, new);
    let rolled = table(host.ask_and_approve("rollback", &alpha).await);
    let row = row(&rolled, "alpha");
    assert_eq!((&*row["from"], &*row["to"]), (&*new, &*old));
    assert_eq!(host.installed("alpha").unwrap().version, old);

    // The rollback is a change too: rolled back, the new copy is back.
    table(host.run_with("rollback", &[], Consent::Given).await);
    assert_eq!(host.installed("alpha").unwrap().version, new);
}
