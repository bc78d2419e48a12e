//! How modman looks after what it installed, as modman.toml sets it:
//! `[health]` (how long a change is watched before it stands) and
//! `[policy]` (what an update found on schedule does by default, and the
//! maintenance window automatic updates wait for). Read and checked once,
//! with the rest of the config; the per-module choices admins make with
//! the `policy` command live in the state (see [`crate::engine::policy`]).

use std::time::Duration;

use serde::Deserialize;
use time::{OffsetDateTime, Time, UtcOffset, Weekday};

/// What happens when a newer copy of a module is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Say so, in the rooms and (if configured) to each admin; an admin
    /// updates.
    Notify,
    /// Update within the maintenance window, health-checked, announced
    /// before and after.
    Auto,
    /// As `Auto`, but only to a copy that an advisory of the module's
    /// repository names as the fix of the installed one.
    Security,
}

impl Policy {
    /// Every policy, as the `policy` command offers them: (word, label).
    pub const CHOICES: &'static [(&'static str, &'static str)] = &[
        ("notify", "notify: announce new versions; an admin updates"),
        (
            "auto",
            "auto: update within the maintenance window, health-checked",
        ),
        (
            "security",
            "security: as auto, only to a version an advisory names as the fix",
        ),
    ];

    /// The word for it, in config, chat and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Notify => "notify",
            Policy::Auto => "auto",
            Policy::Security => "security",
        }
    }

    /// Reads the word for it.
    pub fn parse(word: &str) -> Option<Policy> {
        match word.trim().to_ascii_lowercase().as_str() {
            "notify" => Some(Policy::Notify),
            "auto" => Some(Policy::Auto),
            "security" => Some(Policy::Security),
            _ => None,
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[health]`: the watch after an update or an enable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// How long a changed module is watched; `None` (set to 0): not at all.
    pub watch: Option<Duration>,
}

/// Watched this long when modman.toml does not say: long enough for a
/// module's first timers to run, short enough that the admin who asked
/// still reads the verdict.
const DEFAULT_WATCH: Duration = Duration::from_secs(60);
/// The longest watch accepted.
const MAX_WATCH: Duration = Duration::from_secs(3600);

/// `[policy]`: the default for every module without its own, and when
/// automatic updates may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    pub default: Policy,
    /// `None`: automatic updates never run (the policy `auto` then only
    /// says it waits for a window).
    pub window: Option<Window>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    /// `60s`, `5m`; `0` turns the watch off.
    watch: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    default: Option<String>,
    window: Option<String>,
}

impl HealthConfig {
    pub(crate) fn from_raw(raw: RawHealth) -> Result<HealthConfig, String> {
        let watch = match raw.watch {
            None => Some(DEFAULT_WATCH),
            Some(text) => {
                let watch = parse_duration(&text)
                    .filter(|d| *d <= MAX_WATCH)
                    .ok_or_else(|| format!("key `health.watch`: `{text}` is not a time such as \"60s\" or \"5m\" (at most 1h); \"0\" turns the watch off"))?;
                (!watch.is_zero()).then_some(watch)
            }
        };
        Ok(HealthConfig { watch })
    }
}

impl PolicyConfig {
    pub(crate) fn from_raw(raw: RawPolicy) -> Result<PolicyConfig, String> {
        let default = match raw.default {
            None => Policy::Notify,
            Some(word) => Policy::parse(&word).ok_or_else(|| {
                format!("key `policy.default`: `{word}` is no policy; use \"notify\", \"auto\" or \"security\"")
            })?,
        };
        let window = raw
            .window
            .map(|text| {
                Window::parse(&text).map_err(|why| format!("key `policy.window`: `{text}`: {why}"))
            })
            .transpose()?;
        Ok(PolicyConfig { default, window })
    }
}

/// `60s`, `5m`, `1h`, or `0`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    number.checked_mul(unit).map(Duration::from_secs)
}

/// A weekly (or daily) maintenance window, such as `Sun 03:00-04:00`, in
/// UTC or at a stated offset (`Sun 03:00-04:00 +02:00`). An end at or
/// before the start runs into the next day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `None`: every day.
    pub day: Option<Weekday>,
    pub start: Time,
    pub end: Time,
    pub offset: UtcOffset,
}

impl Window {
    /// Reads `DAY HH:MM-HH:MM [ZONE]`: DAY a weekday (`Sun`, `sunday`) or
    /// `daily`; ZONE `UTC` (the default) or an offset such as `+02:00`.
    pub fn parse(text: &str) -> Result<Window, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (day, times, zone) = match words.as_slice() {
            [day, times] => (*day, *times, "UTC"),
            [day, times, zone] => (*day, *times, *zone),
            _ => return Err("write a day, a time range and optionally a zone, such as \"Sun 03:00-04:00\" or \"daily 02:00-03:00 +01:00\"".into()),
        };
        let day = match day.to_ascii_lowercase().as_str() {
            "daily" => None,
            word => Some(weekday(word).ok_or_else(|| {
                format!("`{day}` is no day; write Mon, Tue, Wed, Thu, Fri, Sat, Sun or daily")
            })?),
        };
        let (start, end) = times
            .split_once('-')
            .ok_or_else(|| format!("`{times}` is no time range such as 03:00-04:00"))?;
        let clock = |text: &str| {
            let (h, m) = text.split_once(':')?;
            Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
        };
        let start = clock(start).ok_or_else(|| format!("`{start}` is no time such as 03:00"))?;
        let end = clock(end).ok_or_else(|| format!("`{end}` is no time such as 04:00"))?;
        let offset = match zone {
            "UTC" | "utc" | "Z" => UtcOffset::UTC,
            zone => {
                let format = time::macros::format_description!(
                    "[offset_hour sign:mandatory]:[offset_minute]"
                );
                UtcOffset::parse(zone, &format).map_err(|_| {
                    format!(
                        "`{zone}` is no zone modman reads; write UTC or an offset such as +02:00"
                    )
                })?
            }
        };
        Ok(Window {
            day,
            start,
            end,
            offset,
        })
    }

    /// How long it lasts.
    fn length(&self) -> time::Duration {
        let length = self.end - self.start;
        match length <= time::Duration::ZERO {
            true => length + time::Duration::DAY,
            false => length,
        }
    }

    /// The start of the window opened on `date` (local), if it opens then.
    fn opening_on(&self, date: time::Date) -> Option<OffsetDateTime> {
        self.day
            .is_none_or(|day| date.weekday() == day)
            .then(|| date.with_time(self.start).assume_offset(self.offset))
    }

    /// Whether `at` falls within the window.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        let local = at.to_offset(self.offset).date();
        [local.previous_day(), Some(local)]
            .into_iter()
            .flatten()
            .filter_map(|date| self.opening_on(date))
            .any(|start| start <= at && at < start + self.length())
    }

    /// The first opening after `at`.
    pub fn next_opening(&self, at: OffsetDateTime) -> OffsetDateTime {
        let mut date = at.to_offset(self.offset).date();
        for _ in 0..=8 {
            if let Some(start) = self.opening_on(date).filter(|start| *start > at) {
                return start;
            }
            match date.next_day() {
                Some(next) => date = next,
                None => break,
            }
        }
        at + time::Duration::WEEK
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let day = match self.day {
            None => "daily".to_owned(),
            Some(day) => day.to_string()[..3].to_owned(),
        };
        let zone = match self.offset.is_utc() {
            true => "UTC".to_owned(),
            false => {
                let (h, m, _) = self.offset.as_hms();
                format!(
                    "{}{:02}:{:02}",
                    if h < 0 || m < 0 { '-' } else { '+' },
                    h.abs(),
                    m.abs()
                )
            }
        };
        write!(
            f,
            "{day} {:02}:{:02}-{:02}:{:02} {zone}",
            self.start.hour(),
            self.start.minute(),
            self.end.hour(),
            self.end.minute()
        )
    }
}

fn weekday(word: &str) -> Option<Weekday> {
    let days = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
    days.into_iter().find(|day| {
        let name = day.to_string().to_ascii_lowercase();
        word.len() >= 3 && name.starts_with(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_weekly_window_holds_its_hour_and_nothing_else() {
        let window = Window::parse("Sun 03:00-04:00").unwrap();
        assert_eq!(window.to_string(), "Sun 03:00-04:00 UTC");
        // 2026-12-06 is a Sunday.
        assert!(window.contains(datetime!(2026-12-06 03:00 UTC)));
        assert!(window.contains(datetime!(2026-12-06 03:59:59 UTC)));
        assert!(!window.contains(datetime!(2026-12-06 04:00 UTC)));
        assert!(!window.contains(datetime!(2026-12-05 03:30 UTC)));
        assert_eq!(
            window.next_opening(datetime!(2026-12-05 12:00 UTC)),
            datetime!(2026-12-06 03:00 UTC)
        );
        assert_eq!(
            window.next_opening(datetime!(2026-12-06 03:00 UTC)),
            datetime!(2026-12-13 03:00 UTC)
        );
    }

    #[test]
    fn a_window_at_an_offset_or_over_midnight_is_read_as_written() {
        let window = Window::parse("sat 23:30-00:30 +02:00").unwrap();
        assert_eq!(window.to_string(), "Sat 23:30-00:30 +02:00");
        // Saturday 23:45 at +02:00 is 21:45 UTC; Sunday 00:15 there too.
        assert!(window.contains(datetime!(2026-12-05 21:45 UTC)));
        assert!(window.contains(datetime!(2026-12-05 22:15 UTC)));
        assert!(!window.contains(datetime!(2026-12-05 22:31 UTC)));
        let daily = Window::parse("daily 02:00-03:00").unwrap();
        assert!(daily.contains(datetime!(2026-12-02 02:10 UTC)));
        assert_eq!(
            daily.next_opening(datetime!(2026-12-02 02:10 UTC)),
            datetime!(2026-12-03 02:00 UTC)
        );
    }

    #[test]
    fn mistakes_are_named() {
        for bad in [
            "Sun",
            "Sunday 3-4",
            "Funday 03:00-04:00",
            "Sun 25:00-26:00",
            "Sun 03:00-04:00 CET",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("60"), None);
        assert_eq!(parse_duration("-5s"), None);
    }
}
