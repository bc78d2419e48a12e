//! `info`: one module's facts, field by field.

use super::*;
use crate::ops::ErrorKind;

#[tokio::test]
async fn info_gives_the_facts_of_a_module_on_offer_installed_and_held() {
    let host = Host::new().await;
    let before = host.snapshot();
    let offered = details(host.run("info", &[("module", &["mod_alpha"])]).await);
    assert_eq!(
        host.snapshot(),
        before,
        "info asks nothing and changes nothing"
    );
    assert_eq!(field(&offered, "module").as_deref(), Some("alpha"));
    assert_eq!(
        field(&offered, "summary").as_deref(),
        Some("Alpha says hello")
    );
    assert_eq!(
        field(&offered, "files").as_deref(),
        Some("README.markdown\nmod_alpha.lua")
    );
    assert_eq!(field(&offered, "versions"), None, "one version on offer");
    assert_eq!(field(&offered, "held_by"), None);

    let first = host.offered("alpha");
    table(host.run("install", &[("modules", &["alpha"])]).await);
    let second = host.publish("alpha", "-- alpha, fixed\n").await;
    table(
        host.run(
            "hold",
            &[("modules", &["alpha"]), ("because", &["breaks our LDAP"])],
        )
        .await,
    );
    let held = details(host.run("info", &[("module", &["alpha"])]).await);
    assert_eq!(field(&held, "versions"), Some(format!("{second}, {first}")));
    assert_eq!(
        field(&held, "held_by"),
        Some(Actor::local_user().to_string())
    );
    assert_eq!(
        field(&held, "held_because").as_deref(),
        Some("breaks our LDAP")
    );

    let missing = error(host.run("info", &[("module", &["nosuch"])]).await);
    assert_eq!(missing.kind, ErrorKind::NotFound);
    let two = error(host.run("info", &[("module", &["alpha beta"])]).await);
    assert_eq!(two.kind, ErrorKind::BadInput);
}
