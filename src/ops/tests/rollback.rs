//! `rollback`: always asked, and puts back the copy before the change.

use super::*;
use crate::engine::managed_config::{LuaValue, Scope};
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

/// A rollback of a `configure` puts option values back: each row names
/// the module and the option, where it applies and its values, never an
/// option in a copy's version columns; with a copy beside it, the copy's
/// option cells are empty.
#[tokio::test]
async fn a_rolled_back_option_is_a_row_of_its_module_option_and_values() {
    let host = Host::new().await;
    table(host.run("install", &[("modules", &["alpha"])]).await);
    let set = [
        ("module", &["alpha"][..]),
        ("options", &["alpha_url = https://x.example/"][..]),
    ];
    table(host.run("configure", &set).await);
    let value = LuaValue::Text("https://x.example/".into());

    let rolled = table(host.run_with("rollback", &[], Consent::Given).await);
    let vars: Vec<&str> = rolled.columns.iter().map(|(var, _)| *var).collect();
    assert_eq!(vars, ["module", "option", "where", "from", "to"]);
    let option = row(&rolled, "alpha");
    assert_eq!(option["option"], "alpha_url");
    assert_eq!(option["where"], Scope::Global.to_string());
    assert_eq!(option["from"], LuaValue::shown(Some(&value), false));
    assert_eq!(option["to"], LuaValue::shown(None, false));
    let managed = host.ctx.engine.managed_config().unwrap();
    assert_eq!(managed.options(&Scope::Global).get("alpha_url"), None);

    // Rolled back by name, beta's update and alpha's configure together:
    // the copy of the one and the option values of the other.
    table(host.run_with("rollback", &[], Consent::Given).await);
    table(host.run("install", &[("modules", &["beta"])]).await);
    let old = host.offered("beta");
    let new = host.publish("beta", "-- beta, fixed\n").await;
    table(host.run_with("update", &[], Consent::Given).await);
    let both = table(
        host.run_with(
            "rollback",
            &[("modules", &["beta", "alpha"])],
            Consent::Given,
        )
        .await,
    );
    assert_eq!(both.columns, rolled.columns);
    let copy = row(&both, "beta");
    assert_eq!((&*copy["option"], &*copy["where"]), ("", ""));
    assert_eq!((&*copy["from"], &*copy["to"]), (&*new, &*old));
    let option = row(&both, "alpha");
    assert_eq!(option["option"], "alpha_url");
    assert_eq!(option["to"], LuaValue::shown(None, false));
}
