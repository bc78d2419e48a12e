//! `configure`: the form of a module's options with Prosody's values, the
//! plan, and the values written and shown back.

use super::*;
use crate::engine::managed_config::{LuaValue, Scope};
use crate::ops::{ErrorKind, FieldKind};

#[tokio::test]
async fn configure_offers_the_options_then_writes_what_was_given() {
    let host = Host::new().await;
    let alpha = [("module", &["alpha"][..])];
    let missing = error(host.run("configure", &alpha).await);
    assert_eq!(missing.kind, ErrorKind::NotFound);
    table(
        host.run("install", &[("modules", &["alpha"]), ("enable", &["true"])])
            .await,
    );

    let shown = form(host.run("configure", &alpha).await);
    let url = &shown.fields[0];
    assert_eq!((url.var.as_str(), url.kind), ("alpha_url", FieldKind::Text));
    assert!(url.values.is_empty(), "Prosody holds no value yet");

    let set = [
        ("module", &["alpha"][..]),
        ("options", &["alpha_url = https://x.example/"][..]),
    ];
    assert_eq!(
        host.plan("configure", &set).await,
        ["alpha_url = \"https://x.example/\" on the whole server"]
    );
    let value = LuaValue::Text("https://x.example/".into());
    let written = table(host.run("configure", &set).await);
    let row = row(&written, "alpha_url");
    assert_eq!(row["from"], LuaValue::shown(None, false));
    assert_eq!(row["to"], LuaValue::shown(Some(&value), false));
    let managed = host.ctx.engine.managed_config().unwrap();
    assert_eq!(
        managed.options(&Scope::Global).get("alpha_url"),
        Some(&value)
    );
    assert_eq!(host.server.0.lock().unwrap().config_reloads, 1);

    // What Prosody holds is what the form shows.
    let held = (
        Scope::Global.prosody_host().to_owned(),
        "alpha_url".to_owned(),
    );
    (host.server.0.lock().unwrap().config).insert(held, value.render());
    let shown = form(host.run("configure", &alpha).await);
    assert_eq!(shown.fields[0].values, ["https://x.example/"]);
    let unknown = [
        ("module", &["alpha"][..]),
        ("options", &["beta_url = x"][..]),
    ];
    assert_eq!(
        error(host.run("configure", &unknown).await).kind,
        ErrorKind::BadInput
    );
}

#[tokio::test]
async fn a_secret_is_never_shown_and_asked_about_while_everyone_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let host = Host::new().await;
    table(host.run("install", &[("modules", &["gamma"])]).await);
    let gamma = [("module", &["gamma"][..])];
    let shown = form(host.run("configure", &gamma).await);
    let key = shown.fields.iter().find(|f| f.var == "gamma_key").unwrap();
    assert_eq!((key.kind, key.needed), (FieldKind::Secret, true));

    let managed = host.root.join("modman.cfg.lua");
    std::fs::set_permissions(&managed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let set = [
        ("module", &["gamma"][..]),
        ("options", &["gamma_key = hunter2"][..]),
    ];
    assert_eq!(
        host.plan("configure", &set).await,
        ["gamma_key = (secret, set) on the whole server"]
    );
    let asked = host.ask_and_refuse("configure", &set).await;
    assert_eq!(asked.why, [Why::SecretReadable]);
    let options = |host: &Host| host.ctx.engine.managed_config().unwrap().global;

    let approved = Consent::Approved(asked.approval);
    let written = table(host.run_with("configure", &set, approved).await);
    let value = LuaValue::Text("hunter2".into());
    assert_eq!(
        row(&written, "gamma_key")["to"],
        LuaValue::shown(Some(&value), true)
    );
    assert_eq!(options(&host).get("gamma_key"), Some(&value));

    // Prosody holds it now: the form says so, never with the value.
    let held = (
        Scope::Global.prosody_host().to_owned(),
        "gamma_key".to_owned(),
    );
    (host.server.0.lock().unwrap().config).insert(held, value.render());
    let shown = form(host.run("configure", &gamma).await);
    let key = shown.fields.iter().find(|f| f.var == "gamma_key").unwrap();
    assert!(key.values.is_empty() && !key.needed, "{key:?}");
}
