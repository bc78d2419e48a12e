//! Update notices: after a refresh, tell the rooms (and, if configured,
//! each admin) which installed modules have a new version, once per new
//! version, with the same facts as JSON beside the text. What was announced
//! is remembered by the engine, so a restart does not repeat it.

use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;

use super::chat::json_payload;
use crate::config::Config;
use crate::engine::records::Record;
use crate::ops::health::Notice;
use crate::ops::updates::{self, UpdateStatus};
use crate::ops::Context;

/// The messages announcing updates not announced before, and remembers
/// them as announced. Empty when there is nothing new or nobody to tell.
pub fn announce(ctx: &Context) -> Vec<Message> {
    let config = &ctx.config;
    if config.chat.rooms.is_empty() && !config.chat.notify_admins {
        return vec![];
    }
    let Ok(installed) = ctx.engine.installed() else {
        return vec![];
    };
    let catalog = ctx.catalog();
    let mut announced = ctx.engine.remembered::<String>(Record::AnnouncedUpdates);
    let mut news = Vec::new();
    let mut facts = Vec::new();
    for (name, record) in &installed.modules {
        // What `update` would install, and nothing else.
        let UpdateStatus::Available { from, to, .. } =
            updates::status(&catalog, &config.repositories, name, record)
        else {
            continue;
        };
        if announced.insert(format!("{name} {}", to.sha256)) {
            news.push(format!("{name} {from} -> {}", to.version));
            facts.push(serde_json::json!({"module": name, "from": from, "to": to.version}));
        }
    }
    if news.is_empty() {
        return vec![];
    }
    announced.save("updates");
    let text = format!("Updates available: {}.", news.join(", "));
    // The same facts for a bot in the room: what `update` would do.
    let facts = serde_json::json!({"kind": "updates", "updates": facts}).to_string();
    let me = Jid::from(config.component.jid.clone());
    let nick = &config.chat.nick;
    let mut messages: Vec<Message> = config
        .chat
        .rooms
        .iter()
        .map(|room| {
            let mut message = Message::groupchat(Jid::from(room.clone())).with_body(
                Default::default(),
                format!("{text} Say \"{nick}: update\" to apply them."),
            );
            message.from = Some(me.clone());
            message.payloads.push(json_payload(facts.clone()));
            message
        })
        .collect();
    if config.chat.notify_admins {
        messages.extend(config.admins.iter().map(|admin| {
            let mut message = Message::chat(Jid::from(admin.clone())).with_body(
                Default::default(),
                format!("{text} Say \"update\" to apply them."),
            );
            message.from = Some(me.clone());
            message.payloads.push(json_payload(facts.clone()));
            message
        }));
    }
    messages
}

/// The messages carrying `notice`: a chat message to each admin it names
/// and, if it is for the rooms, one to each room, every one with the
/// facts beside the text (XEP-0335), as answers carry them.
pub fn messages(config: &Config, notice: &Notice) -> Vec<Message> {
    let me = Jid::from(config.component.jid.clone());
    let facts = notice.facts.to_string();
    let text = match &notice.result {
        Some(result) => format!("{} {}", notice.text, crate::text::render(result)),
        None => notice.text.clone(),
    };
    let with_facts = |mut message: Message| {
        message.from = Some(me.clone());
        if facts.len() <= crate::ops::REPLY_BYTES {
            message.payloads.push(
                minidom::Element::builder("json", super::chat::JSON_NS)
                    .append(facts.clone())
                    .build(),
            );
        }
        message
    };
    let rooms = config
        .chat
        .rooms
        .iter()
        .filter(|_| notice.rooms)
        .map(|room| {
            Message::groupchat(Jid::from(room.clone())).with_body(Default::default(), text.clone())
        });
    let admins = notice.admins.iter().map(|admin| {
        Message::chat(Jid::from(admin.clone())).with_body(Default::default(), text.clone())
    });
    admins.chain(rooms).map(with_facts).collect()
}
