//! What the component does by itself: the refresh schedule (period and
//! maintenance window), and what a refresh made known (update and
//! advisory notices, fleet drift).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_xmpp::Stanza;

use super::app::App;
use super::memory::release_freed_memory;
use crate::access::Actor;
use crate::config::Config;
use crate::ops;
use crate::xmpp::fleet::chat as fleet_chat;
use crate::xmpp::fleet::drift;
use crate::xmpp::{advisory_notices, notices};

/// Notices of advisories and updates a refresh made known.
pub(super) fn announcements(app: &App, refreshed: bool) -> Vec<Stanza> {
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
pub(super) enum Refresh {
    /// At once, with no index cached (a new install): the start said
    /// nothing of the repositories yet, so this one says each.
    First,
    /// On schedule.
    Scheduled,
}

/// After a refresh, tells the rooms where this modman speaks for the
/// fleet how the fleet differs, if that changed ([`drift::watch`]); one
/// watch at a time, so the rooms hear the drift in the order it was seen.
pub(super) async fn watch_drift(app: &App, replies: &mpsc::Sender<Stanza>) {
    let _one_at_a_time = app.drift_watch.lock().await;
    let config = &app.ctx.config;
    let rooms = config
        .chat
        .rooms
        .iter()
        .filter(|room| app.chat.rooms.coordinates(config, room))
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
pub(super) const FAR_FUTURE: time::OffsetDateTime = time::macros::datetime!(9999-01-01 00:00 UTC);

/// When the schedule runs next after `now`: a refresh period later
/// (`check_updates_hours`), or when the maintenance window opens (so
/// automatic updates run within it), whichever comes first; `None` when
/// neither is set.
pub(super) fn next_run(config: &Config, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
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
pub(super) fn spawn_scheduled_refresh(
    app: &Arc<App>,
    replies: &mpsc::Sender<Stanza>,
    which: Refresh,
) {
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
