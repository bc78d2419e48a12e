//! What someone who is not an admin may cost modman.
//!
//! Anyone on the network can send modman stanzas, and everything modman
//! can do for a non-admin is refuse (or answer disco, version and ping).
//! Answered one for one, a flood from many JIDs queued seconds of replies
//! on the component stream, ahead of an admin's answer, and every refusal
//! in a room went to the whole room. So each non-admin sender, each room
//! and all non-admins together draw from token buckets; a stanza with no
//! token left is dropped unanswered and only counted in a debug line.
//! Admins are never charged, and their requests run in a pool of their
//! own (see `component`), so no flood stands between an admin and the
//! answer.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xmpp_parsers::jid::{BareJid, Jid};

use crate::access::Actor;
use crate::config::Config;

/// A bucket's size and how fast it fills again: `burst` tokens at most,
/// one more each `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub every: Duration,
}

/// One non-admin sender: a client that comes online asks disco#info,
/// disco#items and a version or two at once, and a person typing a command
/// by mistake a few times gets each refusal; a script gets one answer
/// every two seconds.
pub const PER_SENDER: Rate = Rate {
    burst: 10,
    every: Duration::from_secs(2),
};
/// One room: refusals said there reach every occupant, so at most two in a
/// row and then one per half minute, whoever asks.
pub const PER_ROOM: Rate = Rate {
    burst: 2,
    every: Duration::from_secs(30),
};
/// All non-admins together, however many JIDs they use: a few dozen
/// small stanzas a second cost modman and the stream nothing worth
/// measuring.
pub const EVERYONE: Rate = Rate {
    burst: 50,
    every: Duration::from_millis(100),
};
/// Senders (and rooms) whose buckets are remembered. When that many are
/// spending at once, a new one gets nothing until some bucket is full
/// again (and so forgotten): the memory stays bounded whatever the number
/// of JIDs.
const MAX_REMEMBERED: usize = 4096;

/// Who sent a stanza, as far as its cost is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// One of the configured admins: never charged.
    Admin,
    /// Anyone else, by the JID that speaks for them (the real bare JID,
    /// or the occupant JID in a room that hides it), and the room it was
    /// said in.
    Other { sender: Jid, room: Option<BareJid> },
    /// The server modman is a component of, modman itself (its keepalive
    /// pings come back through Prosody), or a peer modman of its fleet
    /// (`[fleet] peers`; each relayed request's admin is checked again):
    /// never charged, or a flood could cost modman the server's version
    /// answer, which its compatibility checks need, and a fleet its
    /// members' answers.
    Own,
    /// Nothing that gets an answer (room talk, a message without a body,
    /// a stanza without a sender): it costs nothing further.
    Unanswered,
}

impl Caller {
    /// The caller behind an IQ or a presence, by its sender's bare JID.
    pub fn of_sender(config: &Config, from: Option<&Jid>) -> Caller {
        let Some(from) = from else {
            return Caller::Unanswered;
        };
        let bare = from.to_bare();
        let own_server = config
            .server_host()
            .is_some_and(|host| host.to_bare() == bare);
        let peer = config.fleet.peers.contains(&bare);
        if own_server || bare == config.component.jid || peer {
            return Caller::Own;
        }
        match Actor::admit(config, &bare) {
            Some(_) => Caller::Admin,
            None => Caller::Other {
                sender: Jid::from(bare),
                room: None,
            },
        }
    }
}

/// Whether a stanza is served, and in which pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Served without charge: an admin, or modman's own server.
    Uncharged,
    /// A non-admin within budget.
    Other,
    /// Not served: over budget, or nothing to answer.
    Dropped,
}

/// The buckets, shared by everything that reads the stream.
#[derive(Default)]
pub struct Budget {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    senders: Buckets<Jid>,
    rooms: Buckets<BareJid>,
    everyone: Option<Bucket>,
    dropped: u64,
}

impl Budget {
    /// Charges `caller` one stanza at `now` (passed in so tests can move
    /// the clock). A non-admin is served only if its own bucket, its
    /// room's, and everyone's each hold a token; then one is taken from
    /// each.
    pub fn admit(&self, caller: &Caller, now: Instant) -> Admission {
        let (sender, room) = match caller {
            Caller::Admin | Caller::Own => return Admission::Uncharged,
            Caller::Unanswered => return Admission::Dropped,
            Caller::Other { sender, room } => (sender, room.as_ref()),
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.charge(sender, room, now) {
            return Admission::Other;
        }
        state.dropped += 1;
        tracing::debug!(
            "dropped a stanza from {sender} over its budget ({} dropped so far)",
            state.dropped
        );
        Admission::Dropped
    }
}

impl Budget {
    /// Whether `caller` may have one answer now (charged as [`Budget::admit`]).
    pub fn allows(&self, caller: &Caller, now: Instant) -> bool {
        self.admit(caller, now) != Admission::Dropped
    }
}

impl State {
    fn charge(&mut self, sender: &Jid, room: Option<&BareJid>, now: Instant) -> bool {
        let everyone = self
            .everyone
            .get_or_insert_with(|| Bucket::full(EVERYONE, now));
        everyone.refill(EVERYONE, now);
        if everyone.tokens == 0 {
            return false;
        }
        let Some(mine) = self.senders.at(sender, PER_SENDER, now) else {
            return false;
        };
        if mine.tokens == 0 {
            return false;
        }
        if let Some(room) = room {
            let Some(theirs) = self.rooms.at(room, PER_ROOM, now) else {
                return false;
            };
            if theirs.tokens == 0 {
                return false;
            }
            theirs.tokens -= 1;
        }
        // Looked up again: the room's bucket borrowed the maps meanwhile.
        if let Some(mine) = self.senders.at(sender, PER_SENDER, now) {
            mine.tokens -= 1;
        }
        if let Some(everyone) = &mut self.everyone {
            everyone.tokens -= 1;
        }
        true
    }
}

/// Buckets by key, at most [`MAX_REMEMBERED`].
struct Buckets<K> {
    by_key: HashMap<K, Bucket>,
}

impl<K> Default for Buckets<K> {
    fn default() -> Self {
        Buckets {
            by_key: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// `key`'s bucket, refilled to `now`; a new key starts full. `None`
    /// when the table is full of buckets still being spent.
    fn at(&mut self, key: &K, rate: Rate, now: Instant) -> Option<&mut Bucket> {
        if !self.by_key.contains_key(key) {
            if self.by_key.len() >= MAX_REMEMBERED {
                // A full bucket says nothing a new one would not.
                self.by_key.retain(|_, bucket| {
                    bucket.refill(rate, now);
                    bucket.tokens < rate.burst
                });
            }
            if self.by_key.len() >= MAX_REMEMBERED {
                return None;
            }
            self.by_key.insert(key.clone(), Bucket::full(rate, now));
        }
        let bucket = self.by_key.get_mut(key)?;
        bucket.refill(rate, now);
        Some(bucket)
    }
}

/// Tokens left, and since when the next one is being earned.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    since: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            since: now,
        }
    }

    /// Adds the tokens earned since `since`, up to the burst; what was
    /// earned towards the next one is kept.
    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.since);
        let earned = elapsed.as_nanos() / rate.every.as_nanos().max(1);
        if earned == 0 {
            return;
        }
        let room = u128::from(rate.burst - self.tokens.min(rate.burst));
        if earned >= room {
            self.tokens = rate.burst;
            self.since = now;
        } else {
            // Below the burst, so `earned` fits in a u32.
            let earned = earned as u32;
            self.tokens += earned;
            self.since += rate.every * earned;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn other(sender: &str, room: Option<&str>) -> Caller {
        Caller::Other {
            sender: jid(sender),
            room: room.map(|r| r.parse().unwrap()),
        }
    }

    /// How many of `count` stanzas from `caller` at `now` are served.
    fn served(budget: &Budget, caller: &Caller, count: usize, now: Instant) -> usize {
        (0..count)
            .filter(|_| budget.admit(caller, now) == Admission::Other)
            .count()
    }

    #[test]
    fn a_sender_gets_its_burst_then_one_per_period() {
        let budget = Budget::default();
        let start = Instant::now();
        let mallory = other("mallory@evil.example", None);
        assert_eq!(
            served(&budget, &mallory, 100, start),
            PER_SENDER.burst as usize
        );
        // Half a period earns nothing; a whole one earns one token, and
        // what was earned towards the next is kept.
        assert_eq!(
            served(&budget, &mallory, 100, start + PER_SENDER.every / 2),
            0
        );
        assert_eq!(served(&budget, &mallory, 100, start + PER_SENDER.every), 1);
        assert_eq!(
            served(&budget, &mallory, 100, start + PER_SENDER.every * 5 / 2),
            1
        );
        // Idle long enough, the whole burst is back, and no more.
        let later = start + PER_SENDER.every * 1000;
        assert_eq!(
            served(&budget, &mallory, 100, later),
            PER_SENDER.burst as usize
        );
    }

    /// modman's own server, modman itself and its fleet's peers are never
    /// charged: after a flood has spent everyone's budget, the server's
    /// version answer (needed for compatibility checks), modman's keepalive
    /// and a peer's relayed request still count.
    #[test]
    fn the_own_server_and_modman_itself_are_never_charged() {
        let config = crate::config::Config::parse(
            &format!(
                "{}\n[fleet]\npeers = [\"modman.b.example.net\"]\n",
                crate::config::tests::GOOD
            ),
            std::path::Path::new("/"),
        )
        .unwrap();
        let budget = Budget::default();
        let now = Instant::now();
        for i in 0..1_000 {
            let flooder = jid(&format!("user{i}@evil.example"));
            budget.admit(&Caller::of_sender(&config, Some(&flooder)), now);
        }
        assert_eq!(
            budget.admit(&other("late@evil.example", None), now),
            Admission::Dropped
        );
        for own in [
            "example.org",
            "modman.example.org",
            "modman.example.org/x",
            "modman.b.example.net",
        ] {
            let caller = Caller::of_sender(&config, Some(&jid(own)));
            assert_eq!(caller, Caller::Own, "{own}");
            assert_eq!(budget.admit(&caller, now), Admission::Uncharged, "{own}");
        }
        let sub = Caller::of_sender(&config, Some(&jid("evil.example.org")));
        assert_ne!(sub, Caller::Own);
    }

    #[test]
    fn admins_are_never_charged_and_silence_is_free() {
        let budget = Budget::default();
        let now = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(budget.admit(&Caller::Admin, now), Admission::Uncharged);
        }
        assert_eq!(budget.admit(&Caller::Unanswered, now), Admission::Dropped);
        // Whatever non-admins spent, an admin is still served.
        let flood = other("a@evil.example", None);
        served(&budget, &flood, 1000, now);
        assert_eq!(budget.admit(&Caller::Admin, now), Admission::Uncharged);
    }

    #[test]
    fn a_room_hears_few_refusals_whoever_asks() {
        let budget = Budget::default();
        let now = Instant::now();
        let room = Some("ops@conference.example.org");
        let total: usize = (0..20)
            .map(|i| served(&budget, &other(&format!("u{i}@evil.example"), room), 5, now))
            .sum();
        assert_eq!(total, PER_ROOM.burst as usize);
        // The same senders are still answered in a direct chat: the room's
        // budget did not take theirs (the first spent two in the room).
        assert_eq!(
            served(&budget, &other("u0@evil.example", None), 100, now),
            (PER_SENDER.burst - PER_ROOM.burst) as usize
        );
        assert_eq!(
            served(
                &budget,
                &other("u19@evil.example", room),
                1,
                now + PER_ROOM.every
            ),
            1
        );
    }

    #[test]
    fn many_senders_together_get_no_more_than_everyone_s_budget() {
        let budget = Budget::default();
        let start = Instant::now();
        let senders: Vec<Caller> = (0..1000)
            .map(|i| other(&format!("u{i}@evil.example"), None))
            .collect();
        let at_once: usize = senders.iter().map(|s| served(&budget, s, 3, start)).sum();
        assert_eq!(at_once, EVERYONE.burst as usize);
        let second = start + Duration::from_secs(1);
        let then: usize = senders.iter().map(|s| served(&budget, s, 3, second)).sum();
        let per_second = Duration::from_secs(1).as_nanos() / EVERYONE.every.as_nanos();
        assert_eq!(then as u128, per_second);
    }

    #[test]
    fn the_buckets_remembered_are_bounded() {
        let mut buckets = Buckets::<Jid>::default();
        let now = Instant::now();
        for i in 0..MAX_REMEMBERED {
            let bucket = buckets
                .at(&jid(&format!("u{i}@evil.example")), PER_SENDER, now)
                .unwrap();
            bucket.tokens -= 1;
        }
        // Every remembered bucket is being spent: a newcomer gets nothing,
        // and nothing more is remembered.
        let newcomer = jid("newcomer@example.org");
        assert!(buckets.at(&newcomer, PER_SENDER, now).is_none());
        assert_eq!(buckets.by_key.len(), MAX_REMEMBERED);
        // Once they are full again they are forgotten, and the newcomer is
        // served.
        let later = now + PER_SENDER.every;
        assert!(buckets.at(&newcomer, PER_SENDER, later).is_some());
        assert_eq!(buckets.by_key.len(), 1);
    }
}
