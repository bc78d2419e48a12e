//! `check`'s rows for a fleet: whether XMPP federation (s2s) reaches each
//! modman of `[fleet] peers`, asked of this server's Prosody through its
//! admin socket (`xmpp:ping` from this server's domain to the peer's
//! component). A pong proves what a relayed request needs: the peer's
//! name resolves, its Prosody takes our s2s link (dialback or
//! certificates) and its modman is connected there.

use futures::stream::{self, StreamExt};

use super::response::Outcome;
use super::Context;

/// Peers pinged at once: a fleet of 100 answers in a few rounds of the
/// slowest, each over its own admin socket session.
const PEERS_AT_ONCE: usize = 16;

/// Why a peer was not reached, read from Prosody's answer to the ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreached {
    /// `remote-server-not-found`: the peer's name does not resolve, or
    /// nothing takes s2s connections there.
    NotFound,
    /// No answer in time (`remote-server-timeout`, or Prosody's own).
    Timeout,
    /// `service-unavailable`: its server answers, but no modman is
    /// connected there as that component.
    NoModman,
    /// This server cannot send from its domain: it is not one of its
    /// hosts, or the peer is on this server itself.
    NoRoute,
    /// Anything else Prosody said.
    Other,
}

impl Unreached {
    /// The kind of `prosody`'s words (its error conditions are stable
    /// names, whatever the text around them).
    pub fn of(prosody: &str) -> Unreached {
        let said = prosody.to_lowercase();
        let has = |word: &str| said.contains(word);
        if has("remote-server-not-found") {
            Unreached::NotFound
        } else if has("timeout") || has("timed out") {
            Unreached::Timeout
        } else if has("service-unavailable") {
            Unreached::NoModman
        } else if has("no such local host") || has("both hosts are local") {
            Unreached::NoRoute
        } else {
            Unreached::Other
        }
    }

    /// What to do about it.
    fn fix(self, peer: &str, server: &str) -> String {
        let host = peer.split_once('.').map_or(peer, |(_, host)| host);
        match self {
            Unreached::NotFound => format!(
                "check that {peer} resolves from here (an SRV record _xmpp-server._tcp.{peer}, or an A/AAAA record), that {host}'s Prosody runs and takes s2s connections (port 5269 open), and that {peer} is a Component there"
            ),
            Unreached::Timeout => format!(
                "{host}'s Prosody did not answer in time: check that it runs, and that no firewall drops s2s (port 5269) between {server} and it"
            ),
            Unreached::NoModman => format!(
                "{host}'s Prosody answers, but no modman is connected as {peer}: start modman there (`systemctl status modman` on {host})"
            ),
            Unreached::NoRoute => format!(
                "{server} is not a host of this Prosody, or {peer} is on this server: fix [component] jid or [fleet] peers in modman.toml"
            ),
            Unreached::Other => format!(
                "see Prosody's log on {server} and on {host} for the s2s link to {peer}"
            ),
        }
    }
}

/// One row per peer: `peer <jid>`, whether s2s reaches it (with the
/// round trip) or why not and the fix. A peer out of reach is
/// [`Outcome::Unavailable`], as a repository is: modman runs without it,
/// so the check at service start accepts it and a check by hand fails.
pub async fn rows(ctx: &Context) -> Vec<(String, Outcome, String)> {
    let config = &ctx.config;
    let server = config.server_host().map(|s| s.to_string());
    let peers: Vec<String> = config.fleet.peers.iter().map(ToString::to_string).collect();
    let mut rows: Vec<(String, Outcome, String)> = stream::iter(peers)
        .map(|peer| row(ctx, server.as_deref(), peer))
        .buffer_unordered(PEERS_AT_ONCE)
        .collect()
        .await;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// The row of `peer`, pinged from `server`.
async fn row(ctx: &Context, server: Option<&str>, peer: String) -> (String, Outcome, String) {
    let check = format!("peer {peer}");
    let Some(server) = server else {
        return (check, Outcome::Failed, "not checked: the component's JID names no server to send from; fix [component] jid in modman.toml".to_owned());
    };
    let pinged = match ctx.engine.live().await {
        Ok(mut live) => {
            live.ping(server, &peer, ctx.config.fleet.answer_within)
                .await
        }
        Err(e) => Err(e),
    };
    match pinged {
        Ok(Ok(took)) => (
            check,
            Outcome::Ok,
            format!(
                "reached over s2s: a ping from {server} answered in {} ms",
                took.as_millis()
            ),
        ),
        Ok(Err(said)) => {
            let why = Unreached::of(&said);
            let said = crate::clean::one_line(&said);
            (
                check,
                Outcome::Unavailable,
                format!(
                    "not reached over s2s from {server} ({said}); fleet requests get no answer from it until this is fixed: {}",
                    why.fix(&peer, server)
                ),
            )
        }
        Err(e) => (
            check,
            Outcome::Failed,
            format!("not checked: it needs Prosody's admin socket ({e})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prosodys_conditions_say_why_a_peer_was_not_reached() {
        for (said, why) in [
            ("error: cancel/remote-server-not-found", Unreached::NotFound),
            ("cancel/remote-server-timeout", Unreached::Timeout),
            ("request timed out", Unreached::Timeout),
            ("cancel/service-unavailable", Unreached::NoModman),
            ("No such local host", Unreached::NoRoute),
            ("something new", Unreached::Other),
        ] {
            assert_eq!(Unreached::of(said), why, "{said}");
        }
    }
}
