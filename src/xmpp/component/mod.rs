//! The server loop: connect, serve stanzas, reconnect when Prosody goes
//! away, stop gracefully on SIGINT or SIGTERM ([`super::shutdown`]).
//! Requests are handled in their own tasks so a slow command never stops
//! the stream from being read.
//!
//! The loop lives here; [`iq`] routes IQs, [`errors`] maps failures to
//! stanza errors, [`presence`] answers presence to the component,
//! [`schedule`] runs what the component does by itself, [`app`] is what
//! the request tasks share.

mod app;
mod errors;
mod iq;
mod memory;
mod presence;
mod schedule;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::ping::Ping;

use super::adhoc::Sessions;
use super::budget::{self, Budget, Caller};
use super::chat::rooms::{self, RoomAction};
use super::chat::{self, Chat};
use super::clients::Clients;
use super::fleet::chat as fleet_chat;
use super::fleet::relay::Relay;
use super::notices;
use super::shutdown::{Admission, Drained, Exit, Refused, Stop};
use super::stream::{Connection, Incoming};
use crate::access::Actor;
use crate::config::Config;
use crate::local;
use crate::ops::Context;
use app::App;
use iq::{invalid_iq_reply, refusal, server_version_query};
use memory::release_freed_memory;
use presence::presence_answers;
use schedule::{
    announcements, next_run, spawn_scheduled_refresh, watch_drift, Refresh, FAR_FUTURE,
};

/// First wait before reconnecting; doubled after each failure.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(10);
/// Requests handled at once; beyond it a request is answered at once with
/// `wait/resource-constraint` instead of piling up.
const MAX_IN_FLIGHT: usize = 64;
/// Requests from non-admins handled at once, in a pool apart from the
/// admins' (and within their [`Budget`]); beyond it they are dropped.
const MAX_OTHERS_IN_FLIGHT: usize = 8;
/// Pause before joining a room again after being kicked or refused.
const REJOIN_AFTER: Duration = Duration::from_secs(2);

/// Runs until SIGINT or SIGTERM, or until a SIGHUP finds `config_path`
/// changed, reconnecting whenever the stream is lost; either end lets the
/// requests in flight end first, and the outcome says which it was.
pub async fn run(ctx: Context, config_path: &Path) -> std::io::Result<Exit> {
    let stop = Stop::listen(MAX_IN_FLIGHT as u32)?;
    let config = ctx.config.clone();
    match super::reload::on_hangup(config_path.to_owned(), config.clone(), stop.restarter()) {
        Ok(hangups) => drop(tokio::spawn(hangups)),
        Err(e) => tracing::warn!("cannot listen for SIGHUP ({e}); a reload would stop modman"),
    }
    if let Err(e) = ctx.engine.live().await {
        tracing::warn!("{e}; enabling and live loading will fail until this is fixed");
    }
    // A change an earlier run could not finish was undone on disk at open;
    // what Prosody was told is undone now, before any request.
    if let Err(e) = ctx.engine.settle().await {
        tracing::error!(
            "cannot finish undoing an interrupted change: {e}; the next change tries again"
        );
    }
    // Empty directories for the next large change, made while idle.
    tokio::spawn(ctx.engine.clone().tidy_while_idle());
    let notices = ctx
        .watches
        .take_notices()
        .unwrap_or_else(|| mpsc::channel(1).1);
    let app = Arc::new(App {
        notices: tokio::sync::Mutex::new(notices),
        drift_watch: tokio::sync::Mutex::default(),
        chat: Chat::sharing(ctx.rooms.clone()),
        ctx,
        sessions: Sessions::default(),
        stop,
        others_in_flight: Arc::new(Semaphore::new(MAX_OTHERS_IN_FLIGHT)),
        budget: Budget::default(),
        clients: Clients::default(),
        relay: Relay::default(),
    });
    // Held until run returns, whichever way: the socket goes with it.
    let _shell = serve_the_shell(&app);
    // A stop ends the health watches: what they watch stands.
    let stopping = app.clone();
    tokio::spawn(async move {
        stopping.stop.requested().await;
        stopping.ctx.watches.stop_all();
    });
    let component = &config.component;
    let mut retry = FIRST_RETRY;
    loop {
        let attempt = tokio::select! {
            _ = app.stop.requested() => {
                drain(&app).await;
                return Ok(app.stop.exit());
            }
            attempt = Connection::open(&component.jid, &component.server, &component.secret) => attempt,
        };
        match attempt {
            Ok(connection) => {
                tracing::info!(
                    "connected to Prosody at {} as {}",
                    component.server,
                    component.jid
                );
                retry = FIRST_RETRY;
                app.ctx.engine.server.set_connected(true);
                let ended = serve(&app, connection).await;
                app.ctx.engine.server.set_connected(false);
                match ended {
                    Ended::Shutdown => return Ok(app.stop.exit()),
                    // Requests in flight still end; their answers cannot
                    // reach anyone any more.
                    Ended::Lost(reason) if app.stop.stopping() => {
                        tracing::warn!("lost the connection to Prosody while stopping: {reason}");
                        drain(&app).await;
                        return Ok(app.stop.exit());
                    }
                    Ended::Lost(reason) => {
                        tracing::warn!("lost the connection to Prosody: {reason}; reconnecting")
                    }
                }
            }
            Err(error) => tracing::warn!("{error}; retrying in {} ms", retry.as_millis()),
        }
        tokio::select! {
            _ = app.stop.requested() => {
                drain(&app).await;
                return Ok(app.stop.exit());
            }
            _ = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// Takes the commands `modman install` and the others hand over from the
/// shell ([`crate::local`]), admitted as this component's requests are, so
/// a stop waits for them too. Without the socket the command line makes
/// its changes itself. The socket is removed once the stop begins, and
/// at the latest when what this returns is dropped.
fn serve_the_shell(app: &Arc<App>) -> Option<local::serve::Unlink> {
    let listener = match local::serve::Listener::bind(&app.ctx.config) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!("{e}");
            return None;
        }
    };
    let unlink = listener.unlink();
    let gate = app.clone();
    let admit: local::serve::Admit = Arc::new(move || match gate.stop.admit() {
        Admission::Run(permit) => Ok(permit),
        Admission::Refused(Refused::Busy) => {
            Err("modman is handling as many requests as it takes at once".into())
        }
        Admission::Refused(Refused::Stopping) => Err(super::shutdown::REFUSAL.into()),
        Admission::Refused(Refused::Reloading) => Err(super::shutdown::RELOAD_REFUSAL.into()),
    });
    let stopping = app.clone();
    tokio::spawn(local::serve::serve(
        listener,
        app.ctx.clone(),
        admit,
        async move { stopping.stop.requested().await },
    ));
    Some(unlink)
}

enum Ended {
    Shutdown,
    Lost(String),
}

/// Waits, with no connection, for the requests in flight to end.
async fn drain(app: &App) {
    tracing::info!("stopping: waiting for the requests in flight");
    log_drained(app.stop.drained().await);
}

fn log_drained(drained: Drained) {
    match drained {
        Drained::All => tracing::info!("stopped: every request in flight has ended"),
        Drained::GraceOver(running) => tracing::warn!(
            "stopped with {running} request(s) still running after the grace period; a change among them is undone at the next start"
        ),
    }
}

async fn serve(app: &Arc<App>, mut connection: Connection) -> Ended {
    let (replies, mut outgoing) = mpsc::channel::<Stanza>(MAX_IN_FLIGHT);
    // Prosody may have been upgraded while we were away: ask again; and
    // the rooms were left when the connection went.
    let config = &app.ctx.config;
    let greetings = server_version_query(config)
        .map(Stanza::from)
        .into_iter()
        .chain(
            config
                .chat
                .rooms
                .iter()
                .map(|room| app.chat.rooms.join(config, room).into()),
        );
    for stanza in greetings {
        if let Err(reason) = connection.send(stanza).await {
            return Ended::Lost(reason);
        }
    }
    // With no repository index cached yet (a new install), fetch them at
    // once, so the first `list` shows modules; then refresh on schedule
    // (a day unless configured, off with 0), announcing updates.
    if !config.repositories.is_empty() && app.ctx.catalog().sources.is_empty() {
        spawn_scheduled_refresh(app, &replies, Refresh::First);
    }
    let clock = app.ctx.watches.clock().clone();
    let mut due = next_run(config, clock.now());
    let mut scheduled = clock.sleep_until(due.unwrap_or(FAR_FUTURE));
    let mut stopping = false;
    let mut notices = app.notices.lock().await;
    loop {
        let to_send = tokio::select! {
            Some(notice) = notices.recv() => {
                for message in notices::messages(config, &notice) {
                    if let Err(reason) = connection.send(message.into()).await {
                        return Ended::Lost(reason);
                    }
                }
                continue;
            }
            // A stop starts nothing new, a scheduled refresh included.
            () = &mut scheduled, if due.is_some() && !stopping => {
                spawn_scheduled_refresh(app, &replies, Refresh::Scheduled);
                due = next_run(config, clock.now());
                scheduled = clock.sleep_until(due.unwrap_or(FAR_FUTURE));
                continue;
            }
            _ = app.stop.requested(), if !stopping => {
                match app.stop.exit() {
                    Exit::Stopped => tracing::info!("shutting down: no new requests; waiting for those in flight"),
                    Exit::Reload(_) => tracing::info!("restarting to apply modman.toml: no new requests; waiting for those in flight"),
                }
                stopping = true;
                continue;
            }
            drained = app.stop.drained(), if stopping => {
                log_drained(drained);
                // Their answers are queued by now: send them, then leave.
                while let Ok(stanza) = outgoing.try_recv() {
                    if connection.send(stanza).await.is_err() {
                        break;
                    }
                }
                for room in &config.chat.rooms {
                    let _ = connection.send(rooms::leave(config, room).into()).await;
                }
                connection.close().await;
                return Ended::Shutdown;
            }
            Some(stanza) = outgoing.recv() => stanza,
            incoming = connection.next() => match incoming {
                Incoming::Stanza(stanza) => match *stanza {
                    Stanza::Presence(presence) => {
                        let mut answers = presence_answers(config, &presence);
                        let caller = Caller::of_sender(config, presence.from.as_ref());
                        if !answers.is_empty() && !app.budget.allows(&caller, Instant::now()) {
                            answers.clear();
                        }
                        for answer in answers {
                            if let Err(reason) = connection.send(answer.into()).await {
                                return Ended::Lost(reason);
                            }
                        }
                        if presence.from.as_ref().is_some_and(|from| Actor::admit(config, &from.to_bare()).is_some()) {
                            app.clients.on_presence(&presence);
                        }
                        match app.chat.rooms.on_presence(config, &presence) {
                            Some(RoomAction::Configure(iq)) => (*iq).into(),
                            Some(RoomAction::Rejoin(join)) => {
                                spawn_rejoin(join, &replies);
                                continue;
                            }
                            None => continue,
                        }
                    }
                    Stanza::Iq(iq) if app.clients.answered(&iq) => continue,
                    Stanza::Iq(iq) if app.relay.answered(&iq) => continue,
                    request => {
                        let caller = caller_of(config, &app.chat, &request);
                        let cost = app.budget.admit(&caller, Instant::now());
                        match spawn_request(app, cost, request, &replies) {
                            Some(busy) => busy,
                            None => continue,
                        }
                    }
                },
                Incoming::Invalid { head, problem } => {
                    let from = head.from.as_deref().and_then(|from| from.parse().ok());
                    let caller = Caller::of_sender(config, from.as_ref());
                    let reply = invalid_iq_reply(config, &head, &problem)
                        .filter(|_| app.budget.allows(&caller, Instant::now()));
                    let Some(reply) = reply else {
                        tracing::debug!("ignored a <{}/> that was not accepted: {problem}", head.name);
                        continue;
                    };
                    tracing::info!("refused an IQ from {}: {problem}", head.from.as_deref().unwrap_or("?"));
                    reply.into()
                }
                // Any stanza through Prosody proves the stream alive: ping
                // ourselves; Prosody routes it back and we answer it.
                Incoming::Idle => {
                    let me = Jid::from(app.ctx.config.component.jid.clone());
                    Iq::from_get(format!("keepalive-{}", rand::random::<u32>()), Ping)
                        .with_from(me.clone())
                        .with_to(me)
                        .into()
                }
                Incoming::Closed(reason) => return Ended::Lost(reason),
            },
        };
        if let Err(reason) = connection.send(to_send).await {
            return Ended::Lost(reason);
        }
    }
}

/// Handles an IQ or a message in its own task, within what its sender
/// may cost ([`budget::Admission`]); what it answers, and any update
/// notices its command caused, go to `replies`. When it cannot run now
/// (modman is full or stopping), returns the immediate answer saying why
/// instead, so nobody is left without one; a non-admin's request past the
/// non-admins' pool is dropped like one over budget.
fn spawn_request(
    app: &Arc<App>,
    cost: budget::Admission,
    request: Stanza,
    replies: &mpsc::Sender<Stanza>,
) -> Option<Stanza> {
    // A non-admin's request also takes a place in a pool of its own, so
    // non-admins never hold more than that of the places admins need.
    let others = match cost {
        budget::Admission::Dropped => return None,
        budget::Admission::Uncharged => None,
        budget::Admission::Other => match app.others_in_flight.clone().try_acquire_owned() {
            Ok(place) => Some(place),
            Err(_) => {
                tracing::debug!("dropped a request from a non-admin: their pool is full");
                return None;
            }
        },
    };
    let permit = match app.stop.admit() {
        Admission::Run(permit) => permit,
        Admission::Refused(why) => {
            return match request {
                Stanza::Iq(iq) => refusal(iq, why).map(Stanza::from),
                Stanza::Message(message) => {
                    chat::refusal(&app.ctx.config, &message, why).map(Stanza::from)
                }
                Stanza::Presence(_) => None,
            };
        }
    };
    let (app, replies) = (app.clone(), replies.clone());
    tokio::spawn(async move {
        let catalog = app.ctx.catalog();
        let reply: Option<Stanza> = match request {
            Stanza::Iq(iq) => app.handle_iq(iq, &replies).await.map(Stanza::from),
            Stanza::Message(message) => app
                .chat
                .on_message(
                    &app.ctx,
                    fleet_chat::Link {
                        relay: &app.relay,
                        replies: &replies,
                    },
                    &message,
                )
                .await
                .map(Stanza::from),
            Stanza::Presence(_) => None,
        };
        // Only a refresh replaces the catalog, and only then can there be
        // news.
        let refreshed = !Arc::ptr_eq(&catalog, &app.ctx.catalog());
        // The receiver is gone only if the connection died; the
        // requester then gets an error from Prosody and retries.
        for stanza in reply.into_iter().chain(announcements(&app, refreshed)) {
            let _ = replies.send(stanza).await;
        }
        if refreshed {
            watch_drift(&app, &replies).await;
            drop(catalog);
            release_freed_memory();
        }
        drop((permit, others));
    });
    None
}

/// Who a stanza on its way to be handled would cost modman an answer
/// for: a message by what the chat front end makes of it, an IQ or a
/// presence by its sender.
fn caller_of(config: &Config, chat: &Chat, stanza: &Stanza) -> Caller {
    match stanza {
        Stanza::Iq(iq) => Caller::of_sender(config, iq.from()),
        Stanza::Message(message) => chat.caller(config, message),
        Stanza::Presence(presence) => Caller::of_sender(config, presence.from.as_ref()),
    }
}

/// Joins a room again after a pause, so a room that keeps refusing is not
/// hammered.
fn spawn_rejoin(join: xmpp_parsers::presence::Presence, replies: &mpsc::Sender<Stanza>) {
    let replies = replies.clone();
    tokio::spawn(async move {
        tokio::time::sleep(REJOIN_AFTER).await;
        let _ = replies.send(join.into()).await;
    });
}
