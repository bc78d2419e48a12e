//! What each requester's client shows ([`Rendering`]), learnt from the
//! client itself: its XEP-0092 name and version when it answers, else its
//! disco#info identity and features, else the XEP-0115 caps node of its
//! presence, else nothing (single-item forms).
//!
//! Gajim answers XEP-0092 only to contacts its user shares presence with
//! (modman subscribes back to an admin who subscribes, see
//! [`super::component`]), but disco#info to anyone: so a Gajim that never
//! subscribed is known by its disco answer. What is known is per full JID
//! and forgotten when that resource goes offline or shows other caps, so
//! a resource that changes client is asked again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use minidom::Element;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::Stanza;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::version::{VersionQuery, VersionResult};

pub mod dialog;
pub mod rendering;

use rendering::Rendering;

/// A requester's [`Rendering`], asked for as its request arrives and
/// awaited only where a reply is rendered: the command runs while the
/// client answers, so the first command of a session (every command of
/// a script that connects for one) does not wait a round trip through
/// the server first, nor [`CLIENT_VERSION_WAIT`] for a client that never
/// answers.
#[derive(Clone)]
pub struct PendingRendering<'a>(Shared<BoxFuture<'a, Rendering>>);

impl<'a> PendingRendering<'a> {
    /// A rendering known already (a peer modman's, a bot's in a test).
    pub fn known(rendering: Rendering) -> Self {
        PendingRendering(futures::future::ready(rendering).boxed().shared())
    }

    /// What `client` shows, as [`Clients::rendering`] finds it: its
    /// queries go out when this is first awaited.
    pub fn asked(
        clients: &'a Clients,
        me: Jid,
        client: Jid,
        replies: &'a mpsc::Sender<Stanza>,
    ) -> Self {
        let asked = async move { clients.rendering(&me, &client, replies).await };
        PendingRendering(asked.boxed().shared())
    }

    /// The rendering, once the client told or its wait ended.
    pub async fn get(&self) -> Rendering {
        self.0.clone().await
    }
}

/// How long a command waits for the requester's XEP-0092 and disco#info
/// answers before its result goes out as the caps say, or in the form
/// every client shows.
const CLIENT_VERSION_WAIT: Duration = Duration::from_secs(3);
/// Clients whose rendering is remembered; beyond it the memory starts
/// afresh (each client is then asked once more).
const MAX_KNOWN_CLIENTS: usize = 4096;
/// The longest caps node kept; a longer one is nobody's home page.
const MAX_CAPS_NODE: usize = 256;

const NS_CAPS: &str = "http://jabber.org/protocol/caps";

/// What each requester's client shows.
#[derive(Default)]
pub struct Clients {
    /// From the client's own XEP-0092 answer (or its refusal).
    told: Mutex<HashMap<Jid, Rendering>>,
    /// The caps node of each full JID's last presence.
    caps: Mutex<HashMap<Jid, String>>,
    /// Our queries awaiting an answer: IQ id -> who was asked, what, and
    /// where the answer goes.
    asking: Mutex<HashMap<String, Asked>>,
}

/// What modman asks a client about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    /// XEP-0092: its name and version.
    Version,
    /// XEP-0030 disco#info: its identity and features.
    Disco,
}

/// One query awaiting its answer.
struct Asked {
    client: Jid,
    query: Query,
    /// What the answer tells of the client's rendering, or nothing (an
    /// error, or nothing known from it).
    told: oneshot::Sender<Option<Rendering>>,
}

/// A lock whose holder panicked still holds consistent maps: each change
/// to them is one call.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Inserts into a map that forgets everything once it is full.
fn remember<V>(map: &mut HashMap<Jid, V>, key: Jid, value: V) {
    if map.len() >= MAX_KNOWN_CLIENTS && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

impl Clients {
    /// How `client` shows results: as it told, or asked now (both
    /// queries go out at once through `replies`): by its version, else by
    /// its disco answer; if neither tells in time, as its caps node says;
    /// [`Rendering::SingleItem`] if nothing is known.
    pub async fn rendering(
        &self,
        me: &Jid,
        client: &Jid,
        replies: &mpsc::Sender<Stanza>,
    ) -> Rendering {
        if let Some(told) = lock(&self.told).get(client) {
            return *told;
        }
        let deadline = tokio::time::Instant::now() + CLIENT_VERSION_WAIT;
        let (version_id, version) = self.ask(me, client, Query::Version, replies).await;
        let (disco_id, disco) = self.ask(me, client, Query::Disco, replies).await;
        let answer = |waiter| async move {
            tokio::time::timeout_at(deadline, waiter)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
        };
        let told = match answer(version).await {
            Some(told) => Some(told),
            None => answer(disco).await,
        };
        {
            let mut asking = lock(&self.asking);
            asking.remove(&version_id);
            asking.remove(&disco_id);
        }
        if let Some(told) = told {
            remember(&mut lock(&self.told), client.clone(), told);
            return told;
        }
        let by_caps = lock(&self.caps)
            .get(client)
            .map(|node| Rendering::of_caps_node(node));
        match by_caps {
            Some(rendering) => {
                tracing::info!(
                    "{client} did not tell its software version; its caps say {rendering:?}"
                );
                rendering
            }
            None => {
                tracing::info!("{client} did not tell what it is nor send caps; results go to it as single-item forms");
                Rendering::SingleItem
            }
        }
    }

    /// Sends `query` to `client`: its IQ id, and where the answer comes.
    async fn ask(
        &self,
        me: &Jid,
        client: &Jid,
        query: Query,
        replies: &mpsc::Sender<Stanza>,
    ) -> (String, oneshot::Receiver<Option<Rendering>>) {
        let id = format!("modman-client-{query:?}-{:016x}", rand::random::<u64>());
        let (told, answer) = oneshot::channel();
        lock(&self.asking).insert(
            id.clone(),
            Asked {
                client: client.clone(),
                query,
                told,
            },
        );
        let iq = match query {
            Query::Version => Iq::from_get(id.clone(), VersionQuery),
            Query::Disco => Iq::from_get(id.clone(), DiscoInfoQuery { node: None }),
        };
        let iq = iq.with_from(me.clone()).with_to(client.clone());
        let _ = replies.send(iq.into()).await;
        (id, answer)
    }

    /// Takes `iq` if it answers one of our queries, from the client that
    /// was asked; an error answer means "not told".
    pub fn answered(&self, iq: &Iq) -> bool {
        let (id, from, payload) = match iq {
            Iq::Result {
                id, from, payload, ..
            } => (id, from, payload.clone()),
            Iq::Error { id, from, .. } => (id, from, None),
            Iq::Get { .. } | Iq::Set { .. } => return false,
        };
        let mut asking = lock(&self.asking);
        match asking.get(id) {
            Some(asked) if from.as_ref() == Some(&asked.client) => {}
            _ => return false,
        }
        let Some(asked) = asking.remove(id) else {
            return false;
        };
        let client = &asked.client;
        let told = payload.and_then(|payload| match asked.query {
            Query::Version => VersionResult::try_from(payload).ok().map(|v| {
                let rendering = Rendering::of_client(&v.name, &v.version);
                tracing::info!("{client} runs {} {}: {rendering:?}", v.name, v.version);
                rendering
            }),
            Query::Disco => DiscoInfoResult::try_from(payload)
                .ok()
                .and_then(|info| Rendering::of_disco(&info))
                .inspect(|rendering| {
                    tracing::info!("{client}'s disco#info says {rendering:?}");
                }),
        });
        let _ = asked.told.send(told);
        true
    }

    /// Learns from an admin's presence: its caps node, or that the
    /// resource went offline (everything about it is forgotten). Other
    /// caps than before mean another client: what it told is forgotten.
    pub fn on_presence(&self, presence: &Presence) {
        let Some(from) = presence
            .from
            .as_ref()
            .filter(|jid| jid.try_as_full().is_ok())
        else {
            return;
        };
        match presence.type_ {
            PresenceType::Unavailable => {
                lock(&self.told).remove(from);
                lock(&self.caps).remove(from);
            }
            PresenceType::None => {
                let Some(node) = caps_node(&presence.payloads) else {
                    return;
                };
                let mut caps = lock(&self.caps);
                if caps.get(from) != Some(&node) {
                    lock(&self.told).remove(from);
                    remember(&mut caps, from.clone(), node);
                }
            }
            _ => {}
        }
    }
}

/// The XEP-0115 caps node among a presence's payloads, if sane.
fn caps_node(payloads: &[Element]) -> Option<String> {
    let node = payloads.iter().find(|p| p.is("c", NS_CAPS))?.attr("node")?;
    (!node.is_empty() && node.len() <= MAX_CAPS_NODE).then(|| node.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(xml: &str) -> Presence {
        Presence::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    const FROM: &str = "admin@example.org/laptop";

    fn available(node: &str) -> Presence {
        presence(&format!(
            "<presence xmlns='jabber:component:accept' from='{FROM}' to='modman.example.org'>\
             <c xmlns='{NS_CAPS}' hash='sha-1' node='{node}' ver='x'/></presence>"
        ))
    }

    #[test]
    fn caps_are_kept_per_resource_and_forgotten_when_it_goes() {
        let clients = Clients::default();
        let jid: Jid = FROM.parse().unwrap();
        clients.on_presence(&available("https://poez.io"));
        assert_eq!(
            lock(&clients.caps).get(&jid).map(String::as_str),
            Some("https://poez.io")
        );
        // What it told stays while its caps are the same...
        lock(&clients.told).insert(jid.clone(), Rendering::WithChatCopy);
        clients.on_presence(&available("https://poez.io"));
        assert!(lock(&clients.told).contains_key(&jid));
        // ...and goes when another client takes the resource.
        clients.on_presence(&available("https://gajim.org"));
        assert!(!lock(&clients.told).contains_key(&jid));
        lock(&clients.told).insert(jid.clone(), Rendering::Tables);
        clients.on_presence(&presence(&format!(
            "<presence xmlns='jabber:component:accept' type='unavailable' from='{FROM}' to='modman.example.org'/>"
        )));
        assert!(lock(&clients.told).is_empty() && lock(&clients.caps).is_empty());
        // A node nobody would have is not kept.
        clients.on_presence(&available(&"x".repeat(MAX_CAPS_NODE + 1)));
        assert!(lock(&clients.caps).is_empty());
    }

    /// A client's answer to one of modman's queries: the version refused,
    /// as Gajim refuses a non-contact, and `info` for disco#info.
    fn answer(asked: &Iq, info: &str) -> Iq {
        let Iq::Get {
            id,
            to,
            from,
            payload,
        } = asked
        else {
            panic!("not a query: {asked:?}");
        };
        let (id, me, client) = (id.clone(), from.clone().unwrap(), to.clone().unwrap());
        if payload.is("query", "jabber:iq:version") {
            let refused = xmpp_parsers::stanza_error::StanzaError::new(
                xmpp_parsers::stanza_error::ErrorType::Auth,
                xmpp_parsers::stanza_error::DefinedCondition::Forbidden,
                "en",
                "",
            );
            return Iq::from_error(id, refused).with_from(client).with_to(me);
        }
        let info = DiscoInfoResult::try_from(info.parse::<Element>().unwrap()).unwrap();
        Iq::from_result(id, Some(info))
            .with_from(client)
            .with_to(me)
    }

    #[tokio::test]
    async fn a_client_that_refuses_its_version_is_known_by_its_disco_answer() {
        let clients = Clients::default();
        let me: Jid = "modman.example.org".parse().unwrap();
        let client: Jid = FROM.parse().unwrap();
        let gajim_2 = "<query xmlns='http://jabber.org/protocol/disco#info'>\
                       <identity category='client' type='pc' name='Gajim'/>\
                       <feature var='urn:xmpp:reply:0'/></query>";
        let (replies, mut sent) = mpsc::channel(4);
        let answering = async {
            for _ in 0..2 {
                let Some(Stanza::Iq(asked)) = sent.recv().await else {
                    panic!("no query sent");
                };
                let answer = answer(&asked, gajim_2);
                // An answer from anyone but the client asked is not taken.
                let mut forged = answer.clone();
                if let Iq::Result { from, .. } | Iq::Error { from, .. } = &mut forged {
                    *from = Some("mallory@example.org/x".parse().unwrap());
                }
                assert!(!clients.answered(&forged));
                assert!(clients.answered(&answer));
            }
        };
        let (rendering, ()) = tokio::join!(clients.rendering(&me, &client, &replies), answering);
        assert_eq!(rendering, Rendering::TitledTables);
        assert_eq!(
            lock(&clients.told).get(&client),
            Some(&Rendering::TitledTables)
        );
        assert!(lock(&clients.asking).is_empty());
    }
}
