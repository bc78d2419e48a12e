//! `install`: the plan with its dependencies, the question when
//! prosody.cfg.lua would fight the change, and what was installed.

use super::*;
use crate::ops::ErrorKind;

#[tokio::test]
async fn install_plans_the_dependencies_and_installs_them_unasked() {
    let host = Host::new().await;
    let (alpha, beta) = (host.offered("alpha"), host.offered("beta"));
    let planned = host.plan("install", &[("modules", &["beta"])]).await;
    assert_eq!(
        planned,
        [
            format!("beta {beta}"),
            format!("alpha {alpha} (needed by beta)")
        ]
    );
    assert_eq!(host.installed("beta"), None, "a dry run changes nothing");

    // Nothing to worry about: no question, the change is made.
    let installed = table(host.run("install", &[("modules", &["mod_beta"])]).await);
    assert_eq!(column(&installed, "module"), ["beta", "alpha"]);
    assert_eq!(column(&installed, "version"), [beta.clone(), alpha.clone()]);
    assert_eq!(
        column(&installed, "reason"),
        ["requested", "needed by beta"]
    );
    assert_eq!(column(&installed, "repository"), [REPOSITORY; 2]);
    let record = host.installed("alpha").unwrap();
    assert_eq!(
        (record.version, record.repository),
        (alpha, REPOSITORY.into())
    );
    assert!(host.root.join("modules/mod_beta/mod_beta.lua").is_file());
    assert!(!host.loaded("beta"), "installed, not enabled");

    // Again: nothing more to install.
    let again = table(host.run("install", &[("modules", &["beta"])]).await);
    assert!(again.rows.is_empty(), "{again:?}");
}

#[tokio::test]
async fn install_with_enable_loads_and_refuses_a_module_missing_its_option() {
    let host = Host::new().await;
    let installed = table(
        host.run("install", &[("modules", &["alpha"]), ("enable", &["true"])])
            .await,
    );
    assert_eq!(row(&installed, "alpha")["enabled"], HOST);
    assert!(host.loaded("alpha"));
    assert_eq!(host.enabled_on("alpha"), [HOST]);

    // gamma will not load without gamma_key: refused before anything
    // changes.
    let refused = error(
        host.run("install", &[("modules", &["gamma"]), ("enable", &["yes"])])
            .await,
    );
    assert_eq!(refused.kind, ErrorKind::BadInput);
    assert_eq!(refused.outcome, crate::engine::Outcome::NothingChanged);
    assert_eq!(host.installed("gamma"), None);
    assert!(!host.loaded("gamma"));
}

#[tokio::test]
async fn install_refuses_what_no_repository_offers_and_what_it_does_not_own() {
    let host = Host::new().await;
    let missing = error(host.run("install", &[("modules", &["nosuch"])]).await);
    assert_eq!(missing.kind, ErrorKind::NotFound);
    std::fs::write(host.root.join("modules/mod_alpha.lua"), "-- by hand\n").unwrap();
    let unmanaged = error(host.run("install", &[("modules", &["alpha"])]).await);
    assert_eq!(unmanaged.kind, ErrorKind::Conflict);
    assert_eq!(host.installed("alpha"), None);
}

#[tokio::test]
async fn install_asks_when_the_host_has_its_own_list_and_yes_applies_that_plan_only() {
    let cfg = format!("VirtualHost \"{HOST}\"\n    modules_enabled = {{ \"roster\" }}\n");
    let host = Host::with_prosody_cfg(&cfg).await;
    let enable = [("modules", &["alpha"][..]), ("enable", &["true"][..])];
    let asked = host.ask_and_refuse("install", &enable).await;
    assert_eq!(asked.why, [Why::OwnModulesList]);
    assert!(
        asked.changes.is_empty(),
        "nothing installed to compare with"
    );
    let alpha = host.offered("alpha");
    // The third row is the check of required options, which needs the
    // downloaded code.
    let plan = host.plan("install", &enable).await;
    assert_eq!(plan.len(), 3, "{plan:?}");
    assert_eq!(
        plan[..2],
        [format!("alpha {alpha}"), format!("enable alpha on {HOST}")]
    );

    // A new copy was published meanwhile: the yes was to another plan.
    let newer = host.publish("alpha", "-- alpha, fixed\n").await;
    let stale = Consent::Approved(asked.approval);
    question(host.run_with("install", &enable, stale).await);
    assert_eq!(host.installed("alpha"), None);

    let installed = table(host.ask_and_approve("install", &enable).await);
    assert_eq!(row(&installed, "alpha")["version"], newer);
    assert!(host.loaded("alpha"));
}
