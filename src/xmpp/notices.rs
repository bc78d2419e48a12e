//! Update notices: after a refresh, tell the rooms (and, if configured,
//! each admin) which installed modules have a new version, once per new
//! version. What was announced is kept in `state_dir/announced.json`, so a
//! restart does not repeat it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;

use crate::config::Config;
use crate::fsutil;
use crate::ops::health::Notice;
use crate::ops::updates::{self, UpdateStatus};
use crate::ops::Context;

const FILE: &str = "announced.json";

/// What was announced, kept in a file of `state_dir` so that neither the
/// next refresh nor a restart says it again.
pub(super) struct Remembered<T> {
    path: PathBuf,
    set: BTreeSet<T>,
}

impl<T: Ord + Serialize + DeserializeOwned> Remembered<T> {
    /// What `state_dir/file` holds; nothing when it is missing or
    /// damaged (then something may be said twice, never left unsaid).
    pub(super) fn load(state_dir: &Path, file: &str) -> Remembered<T> {
        let path = state_dir.join(file);
        let set = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Remembered { path, set }
    }

    /// Remembers `item`; whether it is news.
    pub(super) fn insert(&mut self, item: T) -> bool {
        self.set.insert(item)
    }

    /// Writes it back; a failure is logged, naming `what` was announced.
    pub(super) fn save(&self, what: &str) {
        let saved = serde_json::to_vec(&self.set)
            .map_err(std::io::Error::other)
            .and_then(|b| fsutil::atomic_write(&self.path, &b));
        if let Err(e) = saved {
            tracing::warn!(
                "cannot remember announced {what} in {}: {e}; they may be announced again",
                self.path.display()
            );
        }
    }
}

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
    let mut announced: Remembered<String> = Remembered::load(&config.state_dir, FILE);
    let mut news = Vec::new();
    for (name, record) in &installed.modules {
        // What `update` would install, and nothing else.
        let UpdateStatus::Available { from, to, .. } =
            updates::status(&catalog, &config.repositories, name, record)
        else {
            continue;
        };
        if announced.insert(format!("{name} {}", to.sha256)) {
            news.push(format!("{name} {from} -> {}", to.version));
        }
    }
    if news.is_empty() {
        return vec![];
    }
    announced.save("updates");
    let text = format!("Updates available: {}.", news.join(", "));
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
            Message::groupchat(Jid::from(room.clone()))
                .with_body(Default::default(), notice.text.clone())
        });
    let admins = notice.admins.iter().map(|admin| {
        Message::chat(Jid::from(admin.clone())).with_body(Default::default(), notice.text.clone())
    });
    admins.chain(rooms).map(with_facts).collect()
}
