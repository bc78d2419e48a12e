//! `xmpp-load SERVER JID PASSWORD COMPONENT NODE CLIENTS REQUESTS`: logs in
//! CLIENTS times (one resource each), then each runs REQUESTS one-shot
//! ad-hoc commands NODE (a submitted empty form with the first execute)
//! back to back; NODE `disco#info` sends a disco#info query instead, the
//! baseline round trip. Prints one JSON object: latencies (p50, p99, max in ms),
//! completed and failed requests, and the wall time.
//!
//! Like every real client it answers XEP-0092 version queries, as
//! `xmpp-load`: modman asks once per client to learn what forms it shows,
//! and an unknown client gets the single-item result every client shows,
//! the reply measured here.

use std::time::{Duration, Instant};

use minidom::Element;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Client, Event, IqRequest, IqResponse, Stanza};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::version::VersionResult;

const COMMANDS: &str = "http://jabber.org/protocol/commands";

/// The answer to a version query; nothing for other stanzas.
fn version_answer(stanza: Stanza) -> Option<Stanza> {
    match stanza {
        Stanza::Iq(Iq::Get { from: Some(from), id, payload, .. })
            if payload.is("query", "jabber:iq:version") =>
        {
            let version = VersionResult { name: "xmpp-load".into(), version: "1".into(), os: None };
            Some(Iq::from_result(id, Some(version)).with_to(from).into())
        }
        _ => None,
    }
}

fn command(node: &str) -> Element {
    format!("<command xmlns='{COMMANDS}' node='{node}'><x xmlns='jabber:x:data' type='submit'/></command>")
        .parse()
        .expect("a valid command element")
}

use futures::StreamExt;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, server, jid, password, component, node, clients, requests] = args.as_slice() else {
        eprintln!("usage: xmpp-load SERVER JID PASSWORD COMPONENT NODE CLIENTS REQUESTS");
        std::process::exit(2);
    };
    let clients: usize = clients.parse().expect("CLIENTS is a number");
    let requests: usize = requests.parse().expect("REQUESTS is a number");
    let component: Jid = component.parse().expect("COMPONENT is a JID");
    let jid: BareJid = jid.parse().expect("JID is a bare JID");

    // Log everyone in first, so only the commands are timed.
    let mut logged_in = Vec::new();
    for i in 0..clients {
        let full: Jid = format!("{jid}/load{i}").parse().expect("a full JID");
        let timeouts = Timeouts { read_timeout: Duration::from_secs(120), response_timeout: Duration::from_secs(60) };
        let mut client = Client::new_plaintext(full, password.clone(), DnsConfig::addr(server), timeouts);
        // Wait until online (the first event).
        while let Some(event) = client.next().await {
            if matches!(event, tokio_xmpp::Event::Online { .. }) {
                break;
            }
        }
        logged_in.push(client);
    }

    let started = Instant::now();
    let tasks: Vec<_> = logged_in
        .into_iter()
        .map(|mut client| {
            let (component, node) = (component.clone(), node.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failed = 0usize;
                for _ in 0..requests {
                    let sent = Instant::now();
                    let request = if node == "disco#info" {
                        IqRequest::Get(Element::bare("query", "http://jabber.org/protocol/disco#info"))
                    } else {
                        IqRequest::Set(command(&node))
                    };
                    let token = client.send_iq(Some(component.clone()), request).await;
                    let mut token = std::pin::pin!(token);
                    // Answer what modman asks meanwhile (its version query).
                    let response = loop {
                        let event = tokio::select! {
                            response = &mut token => break response,
                            event = client.next() => event,
                        };
                        let Some(Event::Stanza(stanza)) = event else { continue };
                        if let Some(answer) = version_answer(stanza) {
                            let _ = client.send_stanza(answer).await;
                        }
                    };
                    match response {
                        Ok(IqResponse::Result(_)) => latencies.push(sent.elapsed()),
                        _ => failed += 1,
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (l, f) = task.await.expect("a client task");
        latencies.extend(l);
        failed += f;
    }
    let wall = started.elapsed();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).map_or(0.0, |d| ms(*d));
    println!(
        "{}",
        serde_json::json!({
            "clients": clients, "completed": latencies.len(), "failed": failed,
            "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": latencies.last().map_or(0.0, |d| ms(*d)),
            "wall_ms": ms(wall),
        })
    );
}
