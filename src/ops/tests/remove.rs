//! `remove`: asks while another module needs it, and removes.

use super::*;
use crate::ops::ErrorKind;

#[tokio::test]
async fn remove_asks_while_another_module_needs_it_and_then_removes() {
    let host = Host::new().await;
    table(
        host.run("install", &[("modules", &["beta"]), ("enable", &["true"])])
            .await,
    );
    let alpha = host.offered("alpha");
    let needed = [("modules", &["alpha"][..])];
    assert_eq!(
        host.plan("remove", &needed).await,
        [format!("alpha {alpha}")]
    );
    let asked = host.ask_and_refuse("remove", &needed).await;
    assert_eq!(asked.why, [Why::Needed]);

    let removed = table(host.ask_and_approve("remove", &needed).await);
    assert_eq!(row(&removed, "alpha")["version"], alpha);
    assert_eq!(host.installed("alpha"), None);
    assert!(!host.root.join("modules/mod_alpha").exists());

    // Nothing needs beta: removed unasked, and unloaded first.
    assert!(host.loaded("beta"));
    let removed = table(host.run("remove", &[("modules", &["beta"])]).await);
    assert_eq!(column(&removed, "module"), ["beta"]);
    assert!(!host.loaded("beta"));
    assert!(host.enabled_on("beta").is_empty());

    let missing = error(host.run("remove", &[("modules", &["beta"])]).await);
    assert_eq!(missing.kind, ErrorKind::NotFound);
    std::fs::write(host.root.join("modules/mod_mine.lua"), "-- by hand\n").unwrap();
    let unmanaged = error(host.run("remove", &[("modules", &["mine"])]).await);
    assert_eq!(unmanaged.kind, ErrorKind::Conflict);
    assert!(host.root.join("modules/mod_mine.lua").is_file());
}
