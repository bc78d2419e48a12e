//! `enable` and `disable`: what they plan, when enable asks, what a yes
//! applies, and where modules end up enabled and loaded.

use super::*;
use crate::engine::admin_socket::ModuleAction;
use crate::engine::Outcome;
use crate::ops::ErrorKind;

#[tokio::test]
async fn enable_and_disable_plan_load_and_unload() {
    let host = Host::new().await;
    let carbons = [("modules", &["carbons"][..])];
    assert_eq!(host.plan("enable", &carbons).await, [on_host("carbons")]);
    assert!(!host.loaded("carbons"), "a dry run changes nothing");

    let enabled = table(host.run("enable", &carbons).await);
    let carbons_row = row(&enabled, "carbons");
    assert_eq!(carbons_row["host"], HOST);
    assert_eq!(carbons_row["state"], "loaded now");
    assert!(host.loaded("carbons"));
    assert_eq!(host.enabled_on("carbons"), [HOST]);

    assert_eq!(host.plan("disable", &carbons).await, [on_host("carbons")]);
    let disabled = table(host.run("disable", &carbons).await);
    assert_eq!(row(&disabled, "carbons")["state"], "unloaded now");
    assert!(!host.loaded("carbons"));
    assert!(host.enabled_on("carbons").is_empty());
    let nothing = table(host.run("disable", &carbons).await);
    assert!(nothing.rows.is_empty(), "{nothing:?}");

    let missing = error(host.run("enable", &[("modules", &["nosuch"])]).await);
    assert_eq!(missing.kind, ErrorKind::NotFound);
    let elsewhere = [("modules", &["carbons"][..]), ("hosts", &["b.example"][..])];
    assert_eq!(
        error(host.run("enable", &elsewhere).await).kind,
        ErrorKind::BadInput
    );
}

#[tokio::test]
async fn enable_refuses_a_module_without_its_required_option_until_prosody_has_it() {
    let host = Host::new().await;
    table(host.run("install", &[("modules", &["gamma"])]).await);
    let gamma = [("modules", &["gamma"][..])];
    let refused = error(host.run("enable", &gamma).await);
    assert_eq!(refused.kind, ErrorKind::BadInput);
    assert!(!host.loaded("gamma"));
    assert!(host.enabled_on("gamma").is_empty());

    let set = (HOST.to_owned(), "gamma_key".to_owned());
    host.server
        .0
        .lock()
        .unwrap()
        .config
        .insert(set, "\"k\"".into());
    table(host.run("enable", &gamma).await);
    assert!(host.loaded("gamma"));
}

#[tokio::test]
async fn enable_asks_when_prosody_cfg_sets_the_hosts_list_and_yes_is_bound_to_the_plan() {
    let cfg = format!(
        "--[[ VirtualHost \"{HOST}\" is below ]]\nVirtualHost \"{HOST}\"\n    modules_enabled = {{ \"roster\" }}\n"
    );
    let host = Host::with_prosody_cfg(&cfg).await;
    let carbons = [("modules", &["carbons"][..])];
    let asked = host.ask_and_refuse("enable", &carbons).await;
    assert_eq!(asked.why, [Why::OwnModulesList]);

    // A yes to that plan does not enable another module.
    let other = [("modules", &["carbons", "mam"][..])];
    std::fs::write(host.root.join("builtin/mod_mam.lua"), "-- Prosody's own\n").unwrap();
    let approved = Consent::Approved(asked.approval.clone());
    question(host.run_with("enable", &other, approved.clone()).await);
    assert!(!host.loaded("mam") && !host.loaded("carbons"));

    table(host.run_with("enable", &carbons, approved).await);
    assert!(host.loaded("carbons"));
}

#[tokio::test]
async fn a_module_prosody_refuses_to_load_is_undone_and_said_so() {
    let host = Host::new().await;
    let refuse = Some((ModuleAction::Load, "carbons".to_owned()));
    host.server.0.lock().unwrap().refuse = refuse;
    let refused = error(host.run("enable", &[("modules", &["carbons"])]).await);
    assert_eq!(
        (refused.kind, refused.outcome),
        (ErrorKind::Conflict, Outcome::Undone)
    );
    assert!(host.enabled_on("carbons").is_empty());

    // install --enable: the files go again with the config.
    let refuse = Some((ModuleAction::Load, "alpha".to_owned()));
    host.server.0.lock().unwrap().refuse = refuse;
    let install = [("modules", &["alpha"][..]), ("enable", &["true"][..])];
    let refused = error(host.run("install", &install).await);
    assert_eq!(
        (refused.kind, refused.outcome),
        (ErrorKind::Conflict, Outcome::Undone)
    );
    assert_eq!(host.installed("alpha"), None);
    assert!(!host.root.join("modules/mod_alpha").exists());
}
