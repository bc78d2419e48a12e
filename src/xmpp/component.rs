//! The server loop: connect, serve stanzas, reconnect when Prosody goes
//! away, stop gracefully on SIGINT or SIGTERM ([`super::shutdown`]).
//! Requests are handled in their own tasks so a slow command never stops
//! the stream from being read.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minidom::Element;
use tokio::sync::{mpsc, Semaphore};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;
use xmpp_parsers::ns;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_parsers::version::{VersionQuery, VersionResult};

use super::adhoc::{self, AdhocError, Sessions};
use super::budget::{self, Budget, Caller};
use super::chat::{self, Chat, RoomAction};
use super::clients::rendering::Rendering;
use super::clients::Clients;
use super::command::{CommandRequest, RequestError, NS as NS_COMMANDS};
use super::disco::{self, DiscoError};
use super::fleet::chat as fleet_chat;
use super::fleet::drift;
use super::fleet::relay::Relay;
use super::fleet::request as fleet_request;
use super::fleet::trust::{self, Refusal};
use super::forms::{plain, results};
use super::shutdown::{Admission, Drained, Exit, Refused, Stop};
use super::stream::{Connection, Head, Incoming, Problem};
use super::{advisory_notices, notices};
use crate::access::Actor;
use crate::config::Config;
use crate::ops::{self, Context, ErrorKind};

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
/// Shared by every request task.
struct App {
    ctx: Context,
    sessions: Sessions,
    chat: Chat,
    stop: Stop,
    others_in_flight: Arc<Semaphore>,
    budget: Budget,
    clients: Clients,
    /// Questions to peer modmans awaiting their answers.
    relay: Relay,
    /// What modman says on its own (health verdicts), sent on whichever
    /// connection is up.
    notices: tokio::sync::Mutex<mpsc::Receiver<ops::health::Notice>>,
}

/// The id of our XEP-0092 query to the server, so its answer is known.
const SERVER_VERSION_ID: &str = "modman-server-version";

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
    let notices = ctx
        .watches
        .take_notices()
        .unwrap_or_else(|| mpsc::channel(1).1);
    let app = Arc::new(App {
        notices: tokio::sync::Mutex::new(notices),
        chat: Chat::sharing(ctx.rooms.clone()),
        ctx,
        sessions: Sessions::default(),
        stop,
        others_in_flight: Arc::new(Semaphore::new(MAX_OTHERS_IN_FLIGHT)),
        budget: Budget::default(),
        clients: Clients::default(),
        relay: Relay::default(),
    });
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
                .map(|room| app.chat.join(config, room).into()),
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
                    let _ = connection.send(chat::leave(config, room).into()).await;
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
                        match app.chat.on_presence(config, &presence) {
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
                        let caller = Caller::of_stanza(config, &app.chat, &request);
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

/// Notices of advisories and updates a refresh made known.
fn announcements(app: &App, refreshed: bool) -> Vec<Stanza> {
    if !refreshed {
        return vec![];
    }
    // Advisories first: an insecure copy matters more than an update.
    advisory_notices::announce(&app.ctx)
        .into_iter()
        .chain(notices::announce(&app.ctx))
        .map(Stanza::from)
        .collect()
}

/// Which refresh the component runs by itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// At once, with no index cached (a new install): the start said
    /// nothing of the repositories yet, so this one says each.
    First,
    /// On schedule.
    Scheduled,
}

/// After a refresh, tells the rooms where this modman speaks for the
/// fleet how the fleet differs, if that changed ([`drift::watch`]).
async fn watch_drift(app: &App, replies: &mpsc::Sender<Stanza>) {
    let config = &app.ctx.config;
    let rooms = config
        .chat
        .rooms
        .iter()
        .filter(|room| app.chat.coordinates(config, room))
        .cloned()
        .collect();
    let link = fleet_chat::Link {
        relay: &app.relay,
        replies,
    };
    for message in drift::watch(&app.ctx, link, rooms).await {
        let _ = replies.send(message.into()).await;
    }
}

/// A moment the schedule never reaches.
const FAR_FUTURE: time::OffsetDateTime = time::macros::datetime!(9999-01-01 00:00 UTC);

/// When the schedule runs next after `now`: a refresh period later
/// (`check_updates_hours`), or when the maintenance window opens (so
/// automatic updates run within it), whichever comes first; `None` when
/// neither is set.
fn next_run(config: &Config, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
    let refresh = config
        .chat
        .check_updates
        .and_then(|period| time::Duration::try_from(period).ok())
        .map(|period| now + period);
    let window = config.policy.window.as_ref().map(|w| w.next_opening(now));
    refresh.into_iter().chain(window).min()
}

/// Runs `refresh` on schedule, announces what it found, and within the
/// maintenance window applies the updates whose policy is auto.
fn spawn_scheduled_refresh(app: &Arc<App>, replies: &mpsc::Sender<Stanza>, which: Refresh) {
    let (app, replies) = (app.clone(), replies.clone());
    tokio::spawn(async move {
        let Some(refresh) = ops::find("refresh") else {
            return;
        };
        match refresh
            .run(&app.ctx, &Actor::schedule(), &ops::Input::default())
            .await
        {
            // A repository that failed is a warning with its reason, not
            // "done": the note names each failure.
            Ok(ops::Response::Table(table)) if table.failed() => {
                tracing::warn!("scheduled refresh: {}", table.note)
            }
            Ok(_) => tracing::info!("scheduled refresh done"),
            Err(e) => tracing::warn!("scheduled refresh failed: {e}"),
        }
        if which == Refresh::First {
            ops::check::say_repositories(&app.ctx);
        }
        // Updates applied now are not announced as available after.
        let now = app.ctx.watches.clock().now();
        let tell = |notice: ops::health::Notice| {
            for message in notices::messages(&app.ctx.config, &notice) {
                if replies.try_send(message.into()).is_err() {
                    tracing::warn!("an automatic update notice was not sent: {}", notice.text);
                }
            }
        };
        ops::policy::auto_updates(&app.ctx, now, tell).await;
        for stanza in announcements(&app, true) {
            let _ = replies.send(stanza).await;
        }
        watch_drift(&app, &replies).await;
        release_freed_memory();
    });
}

/// Hands the pages a replaced catalog freed back to the system. glibc keeps
/// freed memory in per-thread arenas, and a refresh of a large index frees
/// tens of MiB on whichever worker thread ran it, so without this modman's
/// resident size steps up with each refresh until every arena has held a
/// catalog (measured: +70 MiB over 12 refreshes of a 29 MiB index).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the kernel; it takes
    // the allocator's own locks and touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
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

impl App {
    /// Answers one IQ. Authorisation is decided here, once, from the
    /// sender's bare JID as stamped by Prosody, before anything runs.
    async fn handle_iq(&self, iq: Iq, replies: &mpsc::Sender<Stanza>) -> Option<Iq> {
        let (from, to, id, payload, is_set) = match iq {
            Iq::Get {
                from,
                to,
                id,
                payload,
            } => (from, to, id, payload, false),
            Iq::Set {
                from,
                to,
                id,
                payload,
            } => (from, to, id, payload, true),
            // Only the server's own answer counts: any user can send a
            // result with this id.
            Iq::Result {
                from,
                id,
                payload: Some(payload),
                ..
            } if id == SERVER_VERSION_ID && from == self.ctx.config.server_host() => {
                match VersionResult::try_from(payload) {
                    Ok(version) => {
                        tracing::info!("the server runs {} {}", version.name, version.version);
                        self.ctx.engine.server.set_version(Some(version.version));
                    }
                    Err(e) => tracing::warn!("the server's version answer did not parse: {e}"),
                }
                return None;
            }
            Iq::Error {
                from, id, error, ..
            } if id == SERVER_VERSION_ID && from == self.ctx.config.server_host() => {
                tracing::warn!(
                    "the server did not tell its version ({:?}); enable mod_version in Prosody so modman can check module compatibility",
                    error.defined_condition
                );
                return None;
            }
            // Answers to our keepalive pings; nothing to do.
            Iq::Result { .. } | Iq::Error { .. } => return None,
        };
        let Some(from) = from else {
            tracing::debug!("dropped an IQ without a sender");
            return None;
        };
        let is_admin = Actor::admit(&self.ctx.config, &from.to_bare()).is_some();
        let result = match (is_set, payload.name(), payload.ns().as_str()) {
            (false, "query", ns::DISCO_INFO) => {
                disco::info(payload.attr("node"), is_admin).map_err(|e| disco_error(e, payload.attr("node")))
            }
            (false, "query", ns::DISCO_ITEMS) => {
                disco::items(&self.ctx.config.component.jid, payload.attr("node"), is_admin)
                    .map_err(|e| disco_error(e, payload.attr("node")))
            }
            (false, "query", ns::VERSION) => Ok(disco::version()),
            (false, "ping", ns::PING) => return Some(reply_to(Iq::empty_result(from.clone(), id), to)),
            (true, "command", NS_COMMANDS) => {
                match trust::admit(&self.ctx.config, &from.to_bare(), &payload) {
                    Ok(admission) => self.command(&admission, &from, &payload, replies).await,
                    Err(refusal) => {
                        tracing::info!("refused a command from {from}: {refusal}");
                        Err(forbidden(&refusal))
                    }
                }
            }
            _ => Err(StanzaError::new(
                ErrorType::Cancel,
                DefinedCondition::ServiceUnavailable,
                "en",
                "modman does not serve this request; it answers disco, version, ping and ad-hoc commands",
            )),
        };
        let reply = match result {
            Ok(payload) => Iq::Result {
                from: None,
                to: Some(from),
                id,
                payload: Some(payload),
            },
            Err(error) => Iq::from_error(id, error).with_to(from),
        };
        Some(reply_to(reply, to))
    }

    async fn command(
        &self,
        admission: &trust::Admission,
        from: &Jid,
        payload: &Element,
        replies: &mpsc::Sender<Stanza>,
    ) -> Result<Element, StanzaError> {
        let mut request = CommandRequest::try_from(payload).map_err(|e| {
            let app_condition = match e {
                RequestError::MalformedAction(_) => Some("malformed-action"),
                RequestError::MissingNode => None,
            };
            command_error(
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                app_condition,
                e.to_string(),
            )
        })?;
        let node = request.node.clone();
        let session_id = request.session_id.clone();
        let later_stage = session_id.is_some();
        let me = Jid::from(self.ctx.config.component.jid.clone());
        // A peer reads the rows of the table it relays.
        let (actor, rendering) = match admission {
            trust::Admission::Direct(actor) => {
                (actor, self.clients.rendering(&me, from, replies).await)
            }
            trust::Admission::Relayed(actor) => (actor, Rendering::Tables),
        };
        let across = match admission {
            trust::Admission::Direct(_) => fleet_request::take_servers(&mut request),
            trust::Admission::Relayed(_) => None,
        };
        let handled = match across {
            None => adhoc::handle(&self.ctx, &self.sessions, actor, from, rendering, request).await,
            Some(names) => match fleet_request::targets(&self.ctx, &names) {
                Ok(targets) => {
                    fleet_request::run(
                        &self.ctx,
                        &self.sessions,
                        &self.relay,
                        actor,
                        from,
                        rendering,
                        request,
                        targets,
                        replies,
                    )
                    .await
                }
                Err(error) => Err(error.into()),
            },
        };
        let reply = match (handled, admission) {
            (Ok(reply), _) => {
                tracing::info!("{from} ran {node}: {:?}", reply.status);
                reply
            }
            // A person's client shows a completed command where some show
            // nothing of a stanza error (Poezio, Profanity 0.13), whether
            // the change failed or the form was refused; a peer modman
            // reads the error.
            (
                Err(AdhocError::Operation(error) | AdhocError::Form(error)),
                trust::Admission::Direct(_),
            ) => {
                tracing::info!("{from} ran {node}: {error}");
                let (_, condition, _) = op_error_condition(&error);
                let title = ops::find(&node).map_or(node.as_str(), |op| op.spec().name);
                results::failed_reply(
                    &node,
                    session_id.unwrap_or_else(adhoc::new_session_id),
                    title,
                    &condition_name(condition),
                    &error,
                )
            }
            (Err(error), _) => {
                tracing::info!("{from} ran {node}: {error}");
                return Err(adhoc_error(error));
            }
        };
        if rendering.copies_to_chat(later_stage, &reply) {
            if let Some(form) = &reply.form {
                let answerable = rendering != Rendering::FirstReplyOnly;
                let text = plain::plain_text(form, answerable);
                let mut message =
                    Message::chat(Some(from.clone())).with_body(Default::default(), text);
                message.from = Some(me);
                let _ = replies.send(message.into()).await;
            }
        }
        Ok(reply.into())
    }
}

/// What modman answers a presence addressed to the component itself: a
/// subscription request is accepted and followed by modman's presence, a
/// probe gets its presence, so rosters show modman online. Room
/// presences (from an occupant) are the chat front end's.
fn presence_answers(config: &Config, presence: &Presence) -> Vec<Presence> {
    let (Some(from), Some(to)) = (&presence.from, &presence.to) else {
        return vec![];
    };
    let to_me = to.to_bare() == config.component.jid;
    if !to_me || config.chat.rooms.contains(&from.to_bare()) {
        return vec![];
    }
    let me = Jid::from(config.component.jid.clone());
    let them = Jid::from(from.to_bare());
    let answer = |type_| {
        Presence::new(type_)
            .with_from(me.clone())
            .with_to(them.clone())
    };
    match presence.type_ {
        // Back to an admin, so their client shares its presence (and
        // caps) and answers XEP-0092, which Gajim does only then.
        PresenceType::Subscribe if Actor::admit(config, &them.to_bare()).is_some() => vec![
            answer(PresenceType::Subscribed),
            answer(PresenceType::None),
            answer(PresenceType::Subscribe),
        ],
        PresenceType::Subscribe => {
            vec![answer(PresenceType::Subscribed), answer(PresenceType::None)]
        }
        PresenceType::Probe => vec![answer(PresenceType::None)],
        PresenceType::Unsubscribe => vec![answer(PresenceType::Unsubscribed)],
        _ => vec![],
    }
}

/// The reply comes from the address the request was sent to, which is
/// always inside our domain (Prosody closes the stream on any other).
fn reply_to(mut reply: Iq, request_to: Option<Jid>) -> Iq {
    *reply.from_mut() = request_to;
    reply
}

fn forbidden(refusal: &Refusal) -> StanzaError {
    StanzaError::new(
        ErrorType::Auth,
        DefinedCondition::Forbidden,
        "en",
        refusal.to_string(),
    )
}

fn disco_error(error: DiscoError, node: Option<&str>) -> StanzaError {
    let node = node.unwrap_or_default();
    match error {
        DiscoError::UnknownNode => StanzaError::new(
            ErrorType::Cancel,
            DefinedCondition::ItemNotFound,
            "en",
            format!(
                "there is no node `{}`",
                node.chars().take(64).collect::<String>()
            ),
        ),
        DiscoError::Forbidden => StanzaError::new(
            ErrorType::Auth,
            DefinedCondition::Forbidden,
            "en",
            format!("command `{node}` is for modman admins only"),
        ),
    }
}

/// A stanza error with XEP-0050's specific condition element, if any.
fn command_error(
    type_: ErrorType,
    condition: DefinedCondition,
    app_condition: Option<&str>,
    text: String,
) -> StanzaError {
    let mut error = StanzaError::new(type_, condition, "en", text);
    error.other = app_condition.map(|name| Element::bare(name, NS_COMMANDS));
    error
}

fn adhoc_error(error: AdhocError) -> StanzaError {
    let text = error.to_string();
    let (type_, condition, app_condition) = match &error {
        AdhocError::UnknownNode(_) => (ErrorType::Cancel, DefinedCondition::ItemNotFound, None),
        AdhocError::BadSessionId(_) => (
            ErrorType::Modify,
            DefinedCondition::BadRequest,
            Some("bad-sessionid"),
        ),
        AdhocError::SessionExpired => (
            ErrorType::Cancel,
            DefinedCondition::NotAllowed,
            Some("session-expired"),
        ),
        AdhocError::BadAction(_) => (
            ErrorType::Modify,
            DefinedCondition::BadRequest,
            Some("bad-action"),
        ),
        AdhocError::BadPayload(_) => (
            ErrorType::Modify,
            DefinedCondition::BadRequest,
            Some("bad-payload"),
        ),
        AdhocError::Form(op) | AdhocError::Operation(op) => op_error_condition(op),
    };
    command_error(type_, condition, app_condition, text)
}

/// The stanza error an operation's failure is.
fn op_error_condition(error: &ops::OpError) -> (ErrorType, DefinedCondition, Option<&'static str>) {
    match error.kind {
        ErrorKind::BadInput => (ErrorType::Modify, DefinedCondition::BadRequest, None),
        ErrorKind::NotFound => (ErrorType::Cancel, DefinedCondition::ItemNotFound, None),
        ErrorKind::Conflict => (ErrorType::Cancel, DefinedCondition::Conflict, None),
        ErrorKind::Unavailable => (ErrorType::Wait, DefinedCondition::InternalServerError, None),
    }
}

/// A condition's element name (`bad-request`), as bots know it from
/// stanza errors.
fn condition_name(condition: DefinedCondition) -> String {
    Element::from(condition).name().to_owned()
}

/// The error owed to an IQ request that was not accepted. Its addresses
/// come raw from the wire: if they do not parse either, there is nobody to
/// answer.
fn invalid_iq_reply(config: &Config, head: &Head, problem: &Problem) -> Option<Iq> {
    if !head.is_iq_request() {
        return None;
    }
    let from: Jid = head.from.as_deref()?.parse().ok()?;
    let to: Jid = match head.to.as_deref() {
        Some(to) => to.parse().ok()?,
        None => Jid::from(config.component.jid.clone()),
    };
    let (condition, text) = match problem {
        Problem::Unreadable(reason) => (
            DefinedCondition::BadRequest,
            format!("modman could not read this IQ: {reason}"),
        ),
        Problem::OverLimit(limit) => (
            DefinedCondition::PolicyViolation,
            format!("modman refused this IQ unread: {limit}, past what it accepts; nothing was done, send it within that bound"),
        ),
    };
    let error = StanzaError::new(ErrorType::Modify, condition, "en", text);
    Some(
        Iq::from_error(head.id.clone()?, error)
            .with_to(from)
            .with_from(to),
    )
}

/// The immediate error for an IQ request that cannot run now, saying why;
/// none for a result or an error.
fn refusal(iq: Iq, why: Refused) -> Option<Iq> {
    let (from, to, id) = match iq {
        Iq::Get { from, to, id, .. } | Iq::Set { from, to, id, .. } => (from?, to, id),
        Iq::Result { .. } | Iq::Error { .. } => return None,
    };
    let error = match why {
        Refused::Stopping => StanzaError::new(
            ErrorType::Wait,
            DefinedCondition::ServiceUnavailable,
            "en",
            super::shutdown::REFUSAL,
        ),
        Refused::Reloading => StanzaError::new(
            ErrorType::Wait,
            DefinedCondition::ServiceUnavailable,
            "en",
            super::shutdown::RELOAD_REFUSAL,
        ),
        Refused::Busy => StanzaError::new(
            ErrorType::Wait,
            DefinedCondition::ResourceConstraint,
            "en",
            "modman is busy with other requests; try again in a moment",
        ),
    };
    Some(reply_to(Iq::from_error(id, error).with_to(from), to))
}

/// An XEP-0092 query to the Prosody host modman's component hangs under
/// (`modman.example.org` -> `example.org`), whose answer feeds the
/// compatibility checks.
fn server_version_query(config: &Config) -> Option<Iq> {
    Some(
        Iq::from_get(SERVER_VERSION_ID, VersionQuery)
            .with_from(Jid::from(config.component.jid.clone()))
            .with_to(config.server_host()?),
    )
}

/// The Prosody host modman's component hangs under, which answers the
/// version query.
#[cfg(test)]
mod tests {
    use super::*;

    fn presence(xml: &str) -> Presence {
        Presence::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    #[test]
    fn subscriptions_and_probes_get_modmans_presence() {
        let toml = include_str!("../../modman.example.toml")
            .replace("rooms = []", "rooms = [\"ops@conference.example.org\"]");
        let config = Config::parse(&toml, std::path::Path::new("/etc/modman")).unwrap();
        let answers = |xml: &str| -> Vec<(PresenceType, String, String)> {
            presence_answers(&config, &presence(xml))
                .into_iter()
                .map(|p| {
                    (
                        p.type_,
                        p.from.map(|j| j.to_string()).unwrap_or_default(),
                        p.to.map(|j| j.to_string()).unwrap_or_default(),
                    )
                })
                .collect()
        };
        let from_admin = |type_: &str| {
            format!("<presence xmlns='jabber:component:accept' type='{type_}' from='admin@example.org/phone' to='modman.example.org'/>")
        };
        let me = "modman.example.org".to_owned();
        let admin = "admin@example.org".to_owned();
        // An admin is subscribed to in return, so their client tells
        // modman what it is.
        assert_eq!(
            answers(&from_admin("subscribe")),
            [
                (PresenceType::Subscribed, me.clone(), admin.clone()),
                (PresenceType::None, me.clone(), admin.clone()),
                (PresenceType::Subscribe, me.clone(), admin.clone())
            ]
        );
        let stranger = "someone@example.org".to_owned();
        assert_eq!(
            answers("<presence xmlns='jabber:component:accept' type='subscribe' from='someone@example.org/x' to='modman.example.org'/>"),
            [
                (PresenceType::Subscribed, me.clone(), stranger.clone()),
                (PresenceType::None, me.clone(), stranger)
            ]
        );
        assert_eq!(
            answers(&from_admin("probe")),
            [(PresenceType::None, me.clone(), admin.clone())]
        );
        assert_eq!(
            answers(&from_admin("unsubscribe")),
            [(PresenceType::Unsubscribed, me, admin)]
        );
        // Presence that asks nothing, and room presences, get no answer.
        assert!(answers(&from_admin("unavailable")).is_empty());
        assert!(answers("<presence xmlns='jabber:component:accept' from='ops@conference.example.org/alice' to='modman.example.org'/>").is_empty());
        assert!(answers("<presence xmlns='jabber:component:accept' type='probe' from='ops@conference.example.org/alice' to='modman.example.org'/>").is_empty());
    }
}
