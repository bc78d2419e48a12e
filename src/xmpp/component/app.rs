//! What every request task of the component shares.

use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};

use crate::ops::{self, Context};
use crate::xmpp::adhoc::Sessions;
use crate::xmpp::budget::Budget;
use crate::xmpp::chat::Chat;
use crate::xmpp::clients::Clients;
use crate::xmpp::fleet::relay::Relay;
use crate::xmpp::shutdown::Stop;

/// Shared by every request task.
pub(super) struct App {
    pub(super) ctx: Context,
    pub(super) sessions: Sessions,
    pub(super) chat: Chat,
    pub(super) stop: Stop,
    /// Places for non-admins' requests, apart from the admins'.
    pub(super) others_in_flight: Arc<Semaphore>,
    pub(super) budget: Budget,
    pub(super) clients: Clients,
    /// Questions to peer modmans awaiting their answers.
    pub(super) relay: Relay,
    /// What modman says on its own (health verdicts), sent on whichever
    /// connection is up.
    pub(super) notices: tokio::sync::Mutex<mpsc::Receiver<ops::health::Notice>>,
    /// Held through a drift watch, from asking the fleet to telling the
    /// rooms: the first refresh at start and an admin's refresh may end
    /// together, and a watch that asked first must not speak last, or
    /// the rooms (and the record of what they were told) keep a drift
    /// that is already gone.
    pub(super) drift_watch: tokio::sync::Mutex<()>,
}
