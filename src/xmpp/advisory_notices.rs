//! Advisory notices: after a refresh, tell the rooms and every admin, one
//! message per advisory, when a repository marks an installed copy as
//! insecure or withdrawn. Unlike update notices these go to the admins
//! whether or not `notify_admins` is set: a copy known to be insecure is
//! running on their server. What was announced is remembered by the
//! engine (in `state_dir`), so neither the next refresh nor
//! a restart repeats it; a change of kind or of the fix is news again.

use serde::{Deserialize, Serialize};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;

use super::chat::json_payload;
use crate::engine::records::Record;
use crate::ops::advisories;
use crate::ops::Context;
use crate::repo::index::AdvisoryKind;

/// One advisory as it was announced about one installed copy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Announced {
    repository: String,
    module: String,
    /// The installed version it concerned.
    version: String,
    kind: AdvisoryKind,
    fixed: Option<String>,
}

/// The messages announcing advisories not announced before, and
/// remembers them as announced.
pub fn announce(ctx: &Context) -> Vec<Message> {
    let config = &ctx.config;
    let Ok(installed) = ctx.engine.installed() else {
        return vec![];
    };
    let catalog = ctx.catalog();
    let mut announced = ctx
        .engine
        .remembered::<Announced>(Record::AnnouncedAdvisories);
    let mut news = Vec::new();
    for (name, record) in &installed.modules {
        for concern in advisories::concerning(&catalog, &config.repositories, name, record) {
            let key = Announced {
                repository: concern.repository.to_owned(),
                module: name.clone(),
                version: record.version.clone(),
                kind: concern.advisory.kind,
                fixed: concern.advisory.fixed.clone(),
            };
            if announced.insert(key) {
                news.push((
                    format!("Advisory: {}", concern.describe(name, &record.version)),
                    concern.to_json(name, &record.version).to_string(),
                ));
            }
        }
    }
    if news.is_empty() {
        return vec![];
    }
    announced.save("advisories");
    let me = Jid::from(config.component.jid.clone());
    let rooms = config
        .chat
        .rooms
        .iter()
        .map(|room| Message::groupchat(Jid::from(room.clone())));
    let admins = config
        .admins
        .iter()
        .map(|admin| Message::chat(Jid::from(admin.clone())));
    let to: Vec<Message> = rooms.chain(admins).collect();
    news.iter()
        .flat_map(|(text, facts)| {
            to.iter().cloned().map(|message| {
                let mut message = message.with_body(Default::default(), text.clone());
                message.from = Some(me.clone());
                message.payloads.push(json_payload(facts.clone()));
                message
            })
        })
        .collect()
}
