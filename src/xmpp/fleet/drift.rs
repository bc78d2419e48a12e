//! Drift watch: after a refresh, a modman with peers asks its whole fleet
//! for `list` (the same merged answer as `fleet: list`) and tells its
//! rooms when servers start to differ in a module's version or enabled
//! state, or stop answering, and once more when that is gone. What the
//! rooms were last told is kept by the engine ([`Record::FleetDrift`]), so
//! the next refresh, or a restart, does not say it again.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::Message;

use super::merge::{self, Row};
use super::relay::Link;
use super::request::across;
use crate::access::Actor;
use crate::engine::records::Record;
use crate::ops::{Context, Input, OpError, Response};

/// Whether a module is enabled on a server (on any of its hosts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Use {
    Enabled,
    Disabled,
}

/// One server's copy of a module: its version (`None`: not installed
/// there) and whether it is enabled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Copy {
    pub installed: Option<String>,
    #[serde(rename = "use")]
    pub use_: Use,
}

/// Where the fleet differs: each module whose copies are not the same on
/// every server that answered, by module and server, and the servers
/// that did not answer. Empty when the fleet is alike.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub modules: BTreeMap<String, BTreeMap<String, Copy>>,
    pub silent: BTreeSet<String>,
}

impl Drift {
    /// The drift in a merged fleet `list`, row by row.
    pub fn of(table: &crate::ops::Table) -> Drift {
        let rows = merge::rows_of_table(table);
        let cell = |row: &Row, var: &str| row.get(var).cloned().unwrap_or_default();
        let mut drift = Drift::default();
        let mut servers = BTreeSet::new();
        let mut copies: BTreeMap<String, BTreeMap<String, Copy>> = BTreeMap::new();
        for row in &rows {
            let (module, server) = (cell(row, "module"), cell(row, "server"));
            if module.is_empty() {
                drift.silent.insert(server);
                continue;
            }
            servers.insert(server.clone());
            let installed = Some(cell(row, "installed")).filter(|v| !v.is_empty());
            let use_ = match cell(row, "enabled").is_empty() {
                true => Use::Disabled,
                false => Use::Enabled,
            };
            copies
                .entry(module)
                .or_default()
                .insert(server, Copy { installed, use_ });
        }
        let absent = Copy {
            installed: None,
            use_: Use::Disabled,
        };
        for (module, mut by_server) in copies {
            for server in &servers {
                by_server
                    .entry(server.clone())
                    .or_insert_with(|| absent.clone());
            }
            let kinds: BTreeSet<&Copy> = by_server.values().collect();
            if kinds.len() > 1 {
                drift.modules.insert(module, by_server);
            }
        }
        drift
    }

    fn is_empty(&self) -> bool {
        self.modules.is_empty() && self.silent.is_empty()
    }

    /// The message's text: a line per module that differs, a line for
    /// the servers that did not answer, or that the drift is gone.
    fn text(&self) -> String {
        if self.is_empty() {
            return "Fleet drift is gone: every server that answered has the same version of each module, enabled alike, and every server answered.".to_owned();
        }
        let mut lines = vec!["Fleet drift after the refresh:".to_owned()];
        for (module, by_server) in &self.modules {
            let copies: Vec<String> = by_server
                .iter()
                .map(|(server, copy)| match (&copy.installed, copy.use_) {
                    (None, _) => format!("{server} not installed"),
                    (Some(v), Use::Enabled) => format!("{server} {v} enabled"),
                    (Some(v), Use::Disabled) => format!("{server} {v} disabled"),
                })
                .collect();
            lines.push(format!("{module}: {}", copies.join(", ")));
        }
        if !self.silent.is_empty() {
            let silent: Vec<&str> = self.silent.iter().map(String::as_str).collect();
            lines.push(format!("No answer from {}.", silent.join(", ")));
        }
        lines.push("`fleet: list` shows the whole table; `fleet: update ... confirm` or `fleet: install ... confirm` brings the servers in line.".to_owned());
        lines.join("\n")
    }
}

/// After a refresh: the messages for `rooms` (those of `[chat] rooms`
/// where this modman speaks for the fleet) when the fleet's drift is not
/// what they were last told; none when it is, or when this modman has no
/// peers. The fleet is asked on behalf of the first of `admins`, who must
/// be an admin of each peer too, as for any fleet request.
pub async fn watch(ctx: &Context, link: Link<'_>, rooms: Vec<BareJid>) -> Vec<Message> {
    let config = &ctx.config;
    let Some(admin) = config.admins.first() else {
        return vec![];
    };
    if config.fleet.peers.is_empty() || rooms.is_empty() {
        return vec![];
    }
    let here = async {
        let list = crate::ops::find(super::across::ACROSS)
            .ok_or_else(|| OpError::unavailable("no list command"))?;
        match list.run(ctx, &Actor::schedule(), &Input::default()).await? {
            Response::Table(table) => Ok(Some(Ok(merge::rows_of_table(&table)))),
            _ => Err(OpError::unavailable("`list` did not answer a table")),
        }
    };
    let peers = config.fleet.peers.iter().cloned().collect();
    // An empty form submitted, so each peer answers its list at once.
    let form = Some(super::rollout::form(&[]));
    let table = match across(ctx, link, admin, form, peers, here).await {
        Ok(table) => table,
        Err(e) => {
            tracing::warn!("drift watch: cannot list this server's modules: {e}");
            return vec![];
        }
    };
    let drift = Drift::of(&table);
    let told: Drift = ctx.engine.recalled(Record::FleetDrift);
    if drift == told {
        return vec![];
    }
    ctx.engine.remember(
        Record::FleetDrift,
        &drift,
        "what the rooms were told of the fleet's drift",
    );
    let facts = serde_json::json!({ "fleet_drift": drift }).to_string();
    let me = Jid::from(config.component.jid.clone());
    rooms
        .into_iter()
        .map(|room| {
            let mut message =
                Message::groupchat(Jid::from(room)).with_body(Default::default(), drift.text());
            message.from = Some(me.clone());
            message
                .payloads
                .push(crate::xmpp::chat::json_payload(facts.clone()));
            message
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Table;

    fn table(rows: &[[&str; 4]]) -> Table {
        Table {
            title: String::new(),
            columns: vec![
                ("module", ""),
                ("server", ""),
                ("installed", ""),
                ("enabled", ""),
            ],
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
                .collect(),
            note: String::new(),
        }
    }

    #[test]
    fn a_module_differs_by_version_use_or_absence_and_silence_counts() {
        let alike = table(&[
            ["lastlog", "a.test", "1", "a.test"],
            ["lastlog", "b.test", "1", "b.test"],
        ]);
        assert_eq!(Drift::of(&alike), Drift::default());
        let drift = Drift::of(&table(&[
            ["lastlog", "a.test", "1", "a.test"],
            ["lastlog", "b.test", "1", ""],
            ["motd", "a.test", "2", ""],
            ["", "c.test", "", ""],
        ]));
        assert_eq!(
            drift.modules.keys().collect::<Vec<_>>(),
            ["lastlog", "motd"]
        );
        assert_eq!(drift.modules["motd"]["b.test"].installed, None);
        assert_eq!(drift.modules["lastlog"]["b.test"].use_, Use::Disabled);
        assert_eq!(drift.silent, BTreeSet::from(["c.test".to_owned()]));
    }
}
