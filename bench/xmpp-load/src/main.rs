//! `xmpp-load SERVER JID PASSWORD COMPONENT NODE CLIENTS REQUESTS`: logs in
//! CLIENTS times (one resource each), then each runs REQUESTS one-shot
//! ad-hoc commands NODE (a submitted form with the first execute: empty,
//! or with the fields of `NODE?var=value&var=value`) back to back, each
//! counted failed unless it completed without an error note; NODE
//! `disco#info` sends a disco#info query instead, the baseline round trip. Prints one JSON object: latencies (p50, p99, max in ms),
//! completed and failed requests, and the wall time.
//!
//! `xmpp-load SERVER JID PASSWORD COMPONENT install:MODULE[:enable] 1 ROUNDS`:
//! ROUNDS times, installs MODULE (and enables it) with one request, the
//! fields submitted with the first execute as a script or bot does, and
//! times it; then removes it, untimed (the request, then the "yes" to its
//! question). A round whose install does not complete counts as failed.
//! One round more goes first, untimed: the one in which modman asks this
//! client's version. The JSON has every latency too (`latencies_ms`).
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

/// `node`, or `node?var=value&var=value`: the command and the fields
/// submitted with its first execute.
fn command(node: &str) -> Element {
    let (node, query) = node.split_once('?').unwrap_or((node, ""));
    let fields: Vec<(&str, &str)> = query.split('&').filter_map(|pair| pair.split_once('=')).collect();
    submit(node, None, &fields)
}

/// A command element submitting `fields` (name, value) to `node`, in the
/// session `session` or as the first execute.
fn submit(node: &str, session: Option<&str>, fields: &[(&str, &str)]) -> Element {
    let session = session.map_or(String::new(), |id| format!(" sessionid='{id}'"));
    let fields: String =
        fields.iter().map(|(var, value)| format!("<field var='{var}'><value>{value}</value></field>")).collect();
    format!(
        "<command xmlns='{COMMANDS}' node='{node}' action='execute'{session}><x xmlns='jabber:x:data' type='submit'>{fields}</x></command>"
    )
    .parse()
    .expect("a valid command element")
}

/// Sends `payload` to `to` and waits for its answer, answering modman's
/// version query meanwhile: the answer's command element, or None for an
/// error.
async fn ask(client: &mut Client, to: &Jid, request: IqRequest) -> Option<Element> {
    let shown = format!("{request:?}");
    let token = client.send_iq(Some(to.clone()), request).await;
    let mut token = std::pin::pin!(token);
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = tokio::select! {
                response = &mut token => break response,
                event = client.next() => event,
            };
            match event {
                Some(Event::Stanza(stanza)) => {
                    if let Some(answer) = version_answer(stanza) {
                        let _ = client.send_stanza(answer).await;
                    }
                }
                Some(other) => eprintln!("xmpp-load: while waiting: {other:?}"),
                None => {
                    eprintln!("xmpp-load: the stream ended");
                    std::future::pending::<()>().await
                }
            }
        }
    })
    .await;
    match answered {
        Ok(Ok(IqResponse::Result(payload))) => Some(payload.unwrap_or_else(|| Element::bare("none", COMMANDS))),
        Ok(other) => {
            eprintln!("xmpp-load: {shown}: {other:?}");
            None
        }
        Err(_) => {
            eprintln!("xmpp-load: no answer in 30 s to {shown}");
            None
        }
    }
}

/// `install:MODULE[:enable]`: installs and removes MODULE `rounds` times;
/// the latencies of the installs that completed, and how many did not.
async fn cycle(client: &mut Client, component: &Jid, spec: &str, rounds: usize) -> (Vec<Duration>, usize) {
    let mut parts = spec.split(':').skip(1);
    let module = parts.next().expect("install:MODULE");
    let enable = parts.next() == Some("enable");
    let mut fields = vec![("modules", module)];
    if enable {
        fields.push(("enable", "true"));
    }
    let (mut latencies, mut failed) = (Vec::new(), 0);
    for round in 0..=rounds {
        let sent = Instant::now();
        let done = ask(client, component, IqRequest::Set(submit("install", None, &fields))).await;
        let took = sent.elapsed();
        match done {
            Some(command) if command.attr("status") == Some("completed") && !failed_note(&command) => {
                if round > 0 {
                    latencies.push(took)
                }
            }
            other => {
                eprintln!("xmpp-load: install of {module} did not complete: {other:?}");
                failed += 1
            }
        }
        let question = ask(client, component, IqRequest::Set(submit("remove", None, &[("modules", module)])))
            .await
            .expect("remove answers");
        if question.attr("status") == Some("executing") {
            let session = question.attr("sessionid").expect("a session").to_owned();
            let removed =
                ask(client, component, IqRequest::Set(submit("remove", Some(&session), &[("confirm", "yes")]))).await;
            assert!(removed.is_some_and(|c| c.attr("status") == Some("completed")), "remove did not complete");
        }
    }
    (latencies, failed)
}

/// Whether a completed command says it failed (an error note).
fn failed_note(command: &Element) -> bool {
    command.children().any(|child| child.name() == "note" && child.attr("type") == Some("error"))
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
                if node.starts_with("install:") {
                    return cycle(&mut client, &component, &node, requests).await;
                }
                let mut latencies = Vec::new();
                let mut failed = 0usize;
                for _ in 0..requests {
                    let sent = Instant::now();
                    let request = if node == "disco#info" {
                        IqRequest::Get(Element::bare("query", "http://jabber.org/protocol/disco#info"))
                    } else {
                        IqRequest::Set(command(&node))
                    };
                    match ask(&mut client, &component, request).await {
                        // A command's answer must be its end, and not a failure.
                        Some(answer) if node != "disco#info" && (answer.attr("status") != Some("completed") || failed_note(&answer)) => {
                            eprintln!("xmpp-load: {node} did not complete: {answer:?}");
                            failed += 1
                        }
                        Some(_) => latencies.push(sent.elapsed()),
                        None => failed += 1,
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
            "latencies_ms": latencies.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        })
    );
}
