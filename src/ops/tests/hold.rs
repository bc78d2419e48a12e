//! `hold` and `unhold`: who holds what and why, and releasing it.

use super::*;
use crate::ops::{ErrorKind, ModuleChoice};

#[tokio::test]
async fn hold_keeps_the_reason_and_unhold_releases_once() {
    let host = Host::new().await;
    let version = host.offered("alpha");
    table(host.run("install", &[("modules", &["alpha"])]).await);
    let hold = [
        ("modules", &["alpha"][..]),
        ("because", &["breaks our LDAP"][..]),
    ];
    assert_eq!(
        host.plan("hold", &hold).await,
        [format!("hold alpha at {version}")]
    );
    assert_eq!(host.installed("alpha").unwrap().held, None);

    let held = table(host.run("hold", &hold).await);
    assert_eq!(row(&held, "alpha")["version"], version);
    let record = host.installed("alpha").unwrap().held.unwrap();
    assert_eq!(record.reason.unwrap().to_string(), "breaks our LDAP");
    assert_eq!(record.by, Actor::local_user().to_string());

    // The module pickers (unhold, remove, rollback, policy) mark it held.
    let label = |ctx: &Context| {
        ctx.module_choices(ModuleChoice::Installed)
            .into_iter()
            .find(|(name, _)| name == "alpha")
            .map(|(_, label)| label)
            .unwrap()
    };
    let picked = label(&host.ctx);
    assert!(picked.contains("breaks our LDAP"), "{picked}");

    let alpha = [("modules", &["alpha"][..])];
    let released = table(host.run("unhold", &alpha).await);
    assert_ne!(row(&released, "alpha")["was_held"], "");
    assert_eq!(host.installed("alpha").unwrap().held, None);
    assert!(!label(&host.ctx).contains("breaks our LDAP"));
    let again = error(host.run("unhold", &alpha).await);
    assert_eq!(again.kind, ErrorKind::Conflict);

    let missing = error(host.run("hold", &[("modules", &["beta"])]).await);
    assert_eq!(missing.kind, ErrorKind::NotFound);
}
