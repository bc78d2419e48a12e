//! `list`: what is on offer, installed, updatable and held, by column.

use super::*;

#[tokio::test]
async fn list_shows_each_filter_by_its_facts() {
    let host = Host::new().await;
    let before = host.snapshot();
    let all = table(host.run("list", &[]).await);
    assert_eq!(column(&all, "module"), ["alpha", "beta", "gamma"]);
    assert_eq!(row(&all, "alpha")["available"], host.offered("alpha"));
    assert_eq!(column(&all, "installed"), ["", "", ""]);
    let installed = table(host.run("list", &[("show", &["installed"])]).await);
    assert!(installed.rows.is_empty());
    assert_eq!(
        host.snapshot(),
        before,
        "a list asks nothing and changes nothing"
    );

    let alpha = host.offered("alpha");
    table(
        host.run("install", &[("modules", &["alpha"]), ("enable", &["true"])])
            .await,
    );
    std::fs::write(host.root.join("modules/mod_mine.lua"), "-- by hand\n").unwrap();
    let installed = table(host.run("list", &[("show", &["installed"])]).await);
    assert_eq!(column(&installed, "module"), ["alpha", "mine"]);
    let alpha_row = row(&installed, "alpha");
    assert_eq!(alpha_row["installed"], alpha);
    assert_eq!(
        (&*alpha_row["enabled"], &*alpha_row["loaded"]),
        (HOST, HOST)
    );
    assert_eq!(alpha_row["update"], "");
    assert_eq!(row(&installed, "mine")["installed"], "unmanaged");
    let available = table(host.run("list", &[("show", &["available"])]).await);
    assert_eq!(column(&available, "module"), ["beta", "gamma"]);
    let searched = table(host.run("list", &[("query", &["BUILDS ON"])]).await);
    assert_eq!(column(&searched, "module"), ["beta"]);

    assert!(table(host.run("list", &[("show", &["updates"])]).await)
        .rows
        .is_empty());
    host.publish("alpha", "-- alpha, fixed\n").await;
    let updates = table(host.run("list", &[("show", &["updates"])]).await);
    assert_eq!(column(&updates, "module"), ["alpha"]);
    assert_eq!(row(&updates, "alpha")["update"], "yes");

    table(host.run("hold", &[("modules", &["alpha"])]).await);
    let held = table(host.run("list", &[("show", &["installed"])]).await);
    assert_ne!(row(&held, "alpha")["held"], "");
    assert_eq!(row(&held, "alpha")["update"], "", "held: no update");
}
