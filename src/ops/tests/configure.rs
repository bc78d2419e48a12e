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

    let Ok(Response::Form(form)) = host.run("configure", &alpha).await else {
        panic!("configure without options shows them");
    };
    let url = &form.fields[0];
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
    let Ok(Response::Form(form)) = host.run("configure", &alpha).await else {
        panic!("configure without options shows them");
    };
    assert_eq!(form.fields[0].values, ["https://x.example/"]);
    let unknown = [
        ("module", &["alpha"][..]),
        ("options", &["beta_url = x"][..]),
    ];
    assert_eq!(
        error(host.run("configure", &unknown).await).kind,
        ErrorKind::BadInput
    );
}
