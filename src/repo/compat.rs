//! Does a module work with this Prosody? Reads the "Compatibility" section
//! of a module's README leniently, in every shape the prosody-modules
//! READMEs of 2023 and 2025 use, and matches the server's version against
//! it.
//!
//! Shapes seen: pandoc simple and pipe tables (`0.12  Works`,
//! `13  Does not work`, `13.0.x  Works`, `trunk  Works as of 2025-05-25`,
//! `\<= 0.8  Not supported`), with or without a header row; bullet lists
//! (`-   Works with 0.8.x, successive versions and trunk.`); and sentences
//! (`Should work with Prosody >= 0.11.x`, `Compatible with Prosody 0.12
//! and later.`, `Requires Prosody trunk (April 2023), **not** compatible
//! with Prosody 0.12 or earlier.`). A sentence becomes one row per version
//! it names, written the way modman understood it (`0.11 and later`), with
//! the sentence as its status, so `info` shows both.

use std::fmt;

use super::index::Compatibility;

/// The rows of the README's Compatibility section, tables and prose.
pub fn from_readme(markdown: &str) -> Vec<Compatibility> {
    let Some(section) = section(markdown) else {
        return vec![];
    };
    let mut rows = Vec::new();
    let mut prose = String::new();
    let flush = |prose: &mut String, rows: &mut Vec<Compatibility>| {
        rows.extend(from_prose(prose));
        prose.clear();
    };
    for line in section {
        if let Some(row) = table_row(line) {
            flush(&mut prose, &mut rows);
            rows.push(row);
        } else if line.trim().is_empty() || is_rule(line) {
            flush(&mut prose, &mut rows);
        } else {
            let text = line.trim();
            // A bullet starts a sentence of its own.
            if let Some(item) = ["- ", "* ", "+ "].iter().find_map(|b| text.strip_prefix(b)) {
                flush(&mut prose, &mut rows);
                prose.push_str(item.trim());
            } else {
                if !prose.is_empty() {
                    prose.push(' ');
                }
                prose.push_str(text);
            }
        }
    }
    flush(&mut prose, &mut rows);
    rows
}

/// The lines after the heading "Compatibility", up to the next heading.
fn section(markdown: &str) -> Option<Vec<&str>> {
    let lines: Vec<&str> = markdown.lines().collect();
    let is_underline = |line: &str| {
        let line = line.trim_end();
        !line.is_empty() && (line.chars().all(|c| c == '=') || line.chars().all(|c| c == '-'))
    };
    let is_heading = |i: usize| {
        lines[i].starts_with('#')
            || (!lines[i].trim().is_empty()
                && !is_underline(lines[i])
                && !lines[i].starts_with(' ')
                && lines.get(i + 1).is_some_and(|l| is_underline(l)))
    };
    let start = (0..lines.len()).find(|&i| {
        is_heading(i)
            && lines[i]
                .trim_start_matches('#')
                .trim()
                .eq_ignore_ascii_case("compatibility")
    })?;
    let first = if lines[start].starts_with('#') {
        start + 1
    } else {
        start + 2
    };
    let end = (first..lines.len())
        .find(|&i| is_heading(i))
        .unwrap_or(lines.len());
    Some(lines[first.min(end)..end].to_vec())
}

/// A line of dashes or pipes and dashes: a table's rule.
fn is_rule(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty()
        && line
            .chars()
            .all(|c| matches!(c, '-' | '|' | ':' | ' ' | '='))
}

/// A table row: a version cell, then a status (pipes or two spaces apart).
fn table_row(line: &str) -> Option<Compatibility> {
    let cells: Vec<String> = if line.trim_start().starts_with('|') {
        line.split('|')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect()
    } else {
        line.trim()
            .split("  ")
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let [version, status @ ..] = cells.as_slice() else {
        return None;
    };
    let version = version.replace('\\', "");
    if status.is_empty() || range_of(&version).is_none() {
        return None;
    }
    let status = status.join(" ").replace('\\', "");
    Some(Compatibility {
        prosody: version,
        works: works(&status),
        status,
    })
}

/// Reads a status cell: "Works…" yes, "Doesn't work…" no, else unknown.
fn works(status: &str) -> Option<bool> {
    let lower = status.to_lowercase();
    let negative = [
        "doesn't work",
        "does not work",
        "not work",
        "not supported",
        "broken",
        "support dropped",
        "incompatible",
    ];
    if negative.iter().any(|n| lower.contains(n)) || lower == "no" {
        Some(false)
    } else if lower.starts_with("works") || lower.starts_with("should work") || lower == "yes" {
        Some(true)
    } else {
        None
    }
}

/// Words of a sentence that say whether the versions near them work;
/// a longer phrase wins over one inside it ("not compatible").
const VERDICTS: &[(&str, Option<bool>)] = &[
    ("not compatible", Some(false)),
    ("incompatible", Some(false)),
    ("doesn't work", Some(false)),
    ("does not work", Some(false)),
    ("not supported", Some(false)),
    ("compatible", Some(true)),
    ("requires", Some(true)),
    ("works", Some(true)),
    ("work", Some(true)),
];

/// Words that make a whole sentence a guess.
const HEDGES: &[&str] = &["not tested", "untested", "hopefully", "probably", "might"];

/// Rows from a sentence or bullet: each version it names, with the nearest
/// verdict before it (else the first after it). A sentence naming versions
/// without saying whether they work (`If you use it with Prosody 0.9...`)
/// gives nothing.
fn from_prose(prose: &str) -> Vec<Compatibility> {
    let mut rows = Vec::new();
    for sentence in prose.split_inclusive(". ") {
        let sentence = sentence.trim().replace(['*', '\\', '`'], "");
        let lower = sentence.to_lowercase();
        let hedged = HEDGES.iter().any(|h| contains_word(&lower, h));
        let verdicts = verdicts(&lower);
        if verdicts.is_empty() {
            continue;
        }
        for (at, range) in versions(&lower) {
            let before = verdicts.iter().rev().find(|(pos, _)| *pos < at);
            let after = verdicts.iter().find(|(pos, _)| *pos > at);
            let Some((_, verdict)) = before.or(after) else {
                continue;
            };
            rows.push(Compatibility {
                prosody: range.to_string(),
                status: sentence.clone(),
                works: if hedged { None } else { *verdict },
            });
        }
    }
    rows
}

/// Verdict words in `lower` by position, a phrase inside a longer one left
/// out.
fn verdicts(lower: &str) -> Vec<(usize, Option<bool>)> {
    let mut found: Vec<(usize, usize, Option<bool>)> = Vec::new();
    for (phrase, verdict) in VERDICTS {
        for (at, _) in lower.match_indices(phrase) {
            let end = at + phrase.len();
            if !is_word_at(lower, at, end) {
                continue;
            }
            if found.iter().any(|(a, e, _)| *a <= at && end <= *e) {
                continue;
            }
            found.push((at, end, *verdict));
        }
    }
    found.sort();
    found.into_iter().map(|(at, _, v)| (at, v)).collect()
}

fn is_word_at(text: &str, start: usize, end: usize) -> bool {
    let letter = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    !letter(text[..start].chars().next_back()) && !letter(text[end..].chars().next())
}

fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word)
        .any(|(at, _)| is_word_at(text, at, at + word.len()))
}

/// The versions a sentence names, by position, each with the range its
/// neighbouring words give it (`0.11 or later`, `>= 0.11.x`, `since 0.9`,
/// `0.8.x, successive versions`).
fn versions(lower: &str) -> Vec<(usize, Range)> {
    let mut out = Vec::new();
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < lower.len() {
        if bytes[i..].starts_with(b"trunk") && is_word_at(lower, i, i + 5) {
            out.push((i, Range::Trunk));
            i += 5;
            continue;
        }
        let starts_number = bytes[i].is_ascii_digit() && (i == 0 || !is_version_byte(bytes[i - 1]));
        if !starts_number {
            i += 1;
            continue;
        }
        let end = (i..lower.len())
            .find(|&j| !is_version_byte(bytes[j]))
            .unwrap_or(lower.len());
        let token = lower[i..end].trim_end_matches('.');
        // A bare number counts only right after "prosody" (`Prosody 13`):
        // elsewhere it is a date, a count, an XEP.
        let after_prosody = lower[..i].trim_end().ends_with("prosody");
        if let Some(version) = Version::parse(token).filter(|v| v.minor.is_some() || after_prosody)
        {
            let before = &lower[..i];
            let next = out_next_boundary(lower, end);
            let following = &lower[end..next];
            let range = if before.trim_end().ends_with(">=")
                || before.trim_end().ends_with("since")
                || ["later", "higher", "newer", "successive", "onwards", "+"]
                    .iter()
                    .any(|w| following.contains(w))
            {
                Range::AtLeast(version)
            } else if before.trim_end().ends_with("<=")
                || ["earlier", "lower", "older"]
                    .iter()
                    .any(|w| following.contains(w))
            {
                Range::AtMost(version)
            } else {
                Range::Exactly(version)
            };
            out.push((i, range));
        }
        i = end;
    }
    out
}

/// Where the words that qualify a version end: the next version, a
/// sentence's end, or a few words on.
fn out_next_boundary(lower: &str, from: usize) -> usize {
    let rest = &lower[from..];
    let stop = rest
        .find(|c: char| c.is_ascii_digit() || c == '(' || c == ';')
        .unwrap_or(rest.len());
    let stop = rest[..stop].find("trunk").map_or(stop, |t| t.min(stop));
    // A few words on, at a character's start.
    let near = (stop.min(40)..=rest.len())
        .find(|&k| rest.is_char_boundary(k))
        .unwrap_or(rest.len());
    from + near
}

fn is_version_byte(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.' || b == b'x'
}

/// A Prosody version as a README names it: `0.12`, `0.12.x`, `13`, `13.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    /// `None` for a whole series (`13`, `13.x`).
    pub minor: Option<u32>,
}

impl Version {
    /// Reads `N`, `N.M`, `N.M.P`, `N.x`, `N.M.x`.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = match parts.next() {
            None | Some("x") => None,
            Some(minor) => Some(minor.parse().ok()?),
        };
        Some(Version { major, minor })
    }

    fn key(self) -> (u32, u32) {
        (self.major, self.minor.unwrap_or(0))
    }

    fn covers(self, server: Version) -> bool {
        self.major == server.major && self.minor.is_none_or(|m| Some(m) == server.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            Some(minor) => write!(f, "{}.{minor}", self.major),
            None => write!(f, "{}", self.major),
        }
    }
}

/// The Prosody versions a row speaks for, as modman understood it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Exactly(Version),
    AtLeast(Version),
    AtMost(Version),
    /// Prosody's development branch: speaks for no release.
    Trunk,
    /// `Any`.
    Any,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Range::Exactly(v) => write!(f, "{v}"),
            Range::AtLeast(v) => write!(f, "{v} and later"),
            Range::AtMost(v) => write!(f, "{v} and earlier"),
            Range::Trunk => f.write_str("trunk"),
            Range::Any => f.write_str("any"),
        }
    }
}

/// What a row's version cell means: `0.12`, `13`, `13.0.x`, `trunk*`,
/// `0.10 and later`, `0.9 and earlier`, `<= 0.8`, `0.11+`, `Any`.
pub fn range_of(prosody: &str) -> Option<Range> {
    let text = prosody.to_lowercase().replace('\\', "");
    let text = text.trim();
    if text.starts_with("trunk") {
        return Some(Range::Trunk);
    }
    if text == "any" {
        return Some(Range::Any);
    }
    let (at, range) = versions(&format!("prosody {text}")).into_iter().next()?;
    // The cell is about that version only when it starts with it.
    let lead = &format!("prosody {text}")[..at];
    (lead.trim_end() == "prosody"
        || lead.trim_end().ends_with(">=")
        || lead.trim_end().ends_with("<="))
    .then_some(range)
}

/// The row that speaks for `server` (such as `0.12.3` or `13.0.1`), if
/// any: a row for its major.minor first, then one for its series (`13`),
/// then a range, then `Any`. `trunk` rows speak only for trunk.
pub fn row_for<'a>(rows: &'a [Compatibility], server: &str) -> Option<&'a Compatibility> {
    let server = Version::parse(
        server
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()?,
    )?;
    let ranged: Vec<(&Compatibility, Range)> = rows
        .iter()
        .filter_map(|row| range_of(&row.prosody).map(|r| (row, r)))
        .collect();
    let find = |accept: &dyn Fn(Range) -> bool| {
        ranged
            .iter()
            .find(|(_, range)| accept(*range))
            .map(|(row, _)| *row)
    };
    find(&|r| matches!(r, Range::Exactly(v) if v.minor.is_some() && v.covers(server)))
        .or_else(|| find(&|r| matches!(r, Range::Exactly(v) if v.covers(server))))
        .or_else(|| {
            find(&|r| match r {
                Range::AtLeast(v) => server.key() >= v.key(),
                Range::AtMost(v) => server.key() <= v.key() || v.covers(server),
                _ => false,
            })
        })
        .or_else(|| find(&|r| r == Range::Any))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(spec: &[(&str, Option<bool>)]) -> Vec<Compatibility> {
        spec.iter()
            .map(|(p, w)| Compatibility {
                prosody: p.to_string(),
                status: String::new(),
                works: *w,
            })
            .collect()
    }

    fn read(markdown: &str) -> Vec<(String, Option<bool>)> {
        from_readme(markdown)
            .into_iter()
            .map(|c| (c.prosody, c.works))
            .collect()
    }

    fn owned(rows: &[(&str, Option<bool>)]) -> Vec<(String, Option<bool>)> {
        rows.iter().map(|(p, w)| (p.to_string(), *w)).collect()
    }

    #[test]
    fn picks_the_row_that_speaks_for_the_server() {
        let table = rows(&[
            ("trunk", Some(true)),
            ("0.10 and later", Some(true)),
            ("0.9 and earlier", Some(false)),
        ]);
        assert_eq!(row_for(&table, "0.12.3").unwrap().prosody, "0.10 and later");
        assert_eq!(row_for(&table, "13.0.1").unwrap().prosody, "0.10 and later");
        assert_eq!(
            row_for(&table, "0.9.14").unwrap().prosody,
            "0.9 and earlier"
        );
        let table = rows(&[("0.12", Some(false)), ("0.11 and later", Some(true))]);
        assert_eq!(row_for(&table, "0.12.3").unwrap().works, Some(false));
        assert_eq!(row_for(&rows(&[("0.8", Some(true))]), "0.12.3"), None);
        assert_eq!(row_for(&rows(&[("0.12", Some(true))]), "trunk"), None);
        assert_eq!(
            row_for(&rows(&[("0.12.x", Some(true))]), "0.12.0")
                .unwrap()
                .works,
            Some(true)
        );
    }

    /// Prosody 13's own numbering: `13` is the whole series, `13.0` one
    /// release line; the more precise row wins.
    #[test]
    fn rows_for_prosody_13_speak_for_13_0_1() {
        let table = rows(&[("13", Some(false)), ("0.12", Some(true))]);
        assert_eq!(row_for(&table, "13.0.1").unwrap().works, Some(false));
        assert_eq!(row_for(&table, "0.12.3").unwrap().works, Some(true));
        let table = rows(&[("13", Some(false)), ("13.0", Some(true))]);
        assert_eq!(row_for(&table, "13.0.1").unwrap().prosody, "13.0");
        assert_eq!(row_for(&table, "13.1.0").unwrap().prosody, "13");
        assert_eq!(
            row_for(&rows(&[("13.0.x", Some(true))]), "13.0.1")
                .unwrap()
                .works,
            Some(true)
        );
        assert_eq!(
            row_for(&rows(&[("Any", None)]), "13.0.1").unwrap().prosody,
            "Any"
        );
        // 0.13 is not 13.
        assert_eq!(row_for(&rows(&[("0.13", Some(true))]), "13.0.1"), None);
    }

    /// Found by tests/properties.rs: qualifying words are cut at a
    /// character's start.
    #[test]
    fn text_after_a_version_is_cut_between_characters() {
        // A cell starting with a bare number names that series.
        assert_eq!(
            range_of("0\u{10190}\u{c66} :\u{de6}aa\u{3c2} \u{104d8}\u{111e1}:\u{16100}"),
            Some(Range::Exactly(Version {
                major: 0,
                minor: None
            }))
        );
        let long = format!("Works with Prosody 0.12 {}", "é".repeat(40));
        assert_eq!(from_prose(&long).len(), 1);
    }

    #[test]
    fn version_cells_in_every_spelling() {
        let v = |major, minor| Version { major, minor };
        assert_eq!(range_of("13"), Some(Range::Exactly(v(13, None))));
        assert_eq!(range_of("13.0"), Some(Range::Exactly(v(13, Some(0)))));
        assert_eq!(range_of("0.12.x"), Some(Range::Exactly(v(0, Some(12)))));
        assert_eq!(range_of("trunk*"), Some(Range::Trunk));
        assert_eq!(range_of("\\<= 0.8"), Some(Range::AtMost(v(0, Some(8)))));
        assert_eq!(range_of("0.11+"), Some(Range::AtLeast(v(0, Some(11)))));
        assert_eq!(
            range_of("0.10 and later"),
            Some(Range::AtLeast(v(0, Some(10))))
        );
        assert_eq!(range_of("Prosody-Version"), None);
        assert_eq!(range_of("Version"), None);
        assert_eq!(range_of("Works since 0.9"), None);
    }

    /// mod_admin_web (2025 corpus): a pandoc simple table with `\<=`.
    #[test]
    fn a_simple_table_with_an_escaped_range() {
        let readme = "Compatibility\n=============\n\n  --------- ---------------\n  trunk     Works\n  0.9       Works\n  \\<= 0.8   Not supported\n  --------- ---------------\n";
        assert_eq!(
            read(readme),
            owned(&[
                ("trunk", Some(true)),
                ("0.9", Some(true)),
                ("<= 0.8", Some(false))
            ])
        );
    }

    /// mod_http_upload_external and mod_invites_tracking (2025 corpus):
    /// a header row, `Works as of DATE`, `unknown`; mod_cloud_notify_encrypted:
    /// `13.0.x` with a `## Compatibility` heading.
    #[test]
    fn tables_with_a_header_row_and_dated_or_unknown_statuses() {
        let upload = "Compatibility\n=============\n\n  Prosody-Version   Status\n  ----------------  --------------------\n  trunk             Works as of 24-12-12\n  0.12              Works\n\nImplementation\n==============\n\n  0.9   Works\n";
        assert_eq!(
            read(upload),
            owned(&[("trunk", Some(true)), ("0.12", Some(true))])
        );
        let tracking = "Compatibility\n=============\n\nProsody-Version Status\n--------------- ---------------------\ntrunk           Works as of 24-12-08\n0.12            unknown\n";
        assert_eq!(
            read(tracking),
            owned(&[("trunk", Some(true)), ("0.12", None)])
        );
        let encrypted = "## Compatibility\n\n  Prosody Version   Status\n  ----------------- -----------------------------------\n  13.0.x            Works\n  0.12.x            Works (with `luaossl`, see above)\n";
        let rows = from_readme(encrypted);
        assert_eq!(row_for(&rows, "13.0.1").unwrap().prosody, "13.0.x");
        assert_eq!(row_for(&rows, "0.12.3").unwrap().works, Some(true));
    }

    /// The rows the issue names, written as module READMEs do.
    #[test]
    fn rows_written_13_and_dated_trunk_rows() {
        let readme = "# Compatibility\n\n  ------- ----------------------------\n  trunk   Works as of 2025-05-25\n  13      Does not work\n  0.12    Does not work\n  ------- ----------------------------\n";
        let rows = from_readme(readme);
        assert_eq!(
            read(readme),
            owned(&[
                ("trunk", Some(true)),
                ("13", Some(false)),
                ("0.12", Some(false))
            ])
        );
        assert_eq!(row_for(&rows, "13.0.1").unwrap().works, Some(false));
    }

    /// Sentences from the 2025 corpus (mod_muc_rtbl, mod_anti_spam,
    /// mod_http_muc_log, mod_pubsub_serverinfo, mod_muc_restrict_nick).
    #[test]
    fn sentences_become_rows_written_as_understood() {
        let section = |text: &str| format!("Compatibility\n=============\n\n{text}\n");
        assert_eq!(
            read(&section("Should work with Prosody >= 0.11.x")),
            owned(&[("0.11 and later", Some(true))])
        );
        assert_eq!(
            read(&section("Compatible with Prosody 0.12 and later.")),
            owned(&[("0.12 and later", Some(true))])
        );
        assert_eq!(
            read(&section(
                "Requires Prosody 0.11 or later and a storage backend with support for\nstanza archives. See [mod\\_storage\\_muc\\_log] for using legacy data from\n[mod\\_muc\\_log]."
            )),
            owned(&[("0.11 and later", Some(true))])
        );
        assert_eq!(
            read(&section("Incompatible with 0.11 or lower.")),
            owned(&[("0.11 and earlier", Some(false))])
        );
        assert_eq!(
            read(&section("Requires Prosody 0.11 or higher.")),
            owned(&[("0.11 and later", Some(true))])
        );
        let rtbl = from_readme(&section("Should work with Prosody >= 0.11.x"));
        assert_eq!(rtbl[0].status, "Should work with Prosody >= 0.11.x");
        assert_eq!(row_for(&rtbl, "13.0.1").unwrap().works, Some(true));
    }

    /// mod_http_oauth2 (2025): two verdicts in one sentence; mod_host_guard:
    /// a bullet; mod_cloud_notify_filters: a guess stays a guess.
    #[test]
    fn mixed_verdicts_bullets_and_guesses() {
        let oauth = "## Compatibility\n\nRequires Prosody trunk (April 2023), **not** compatible with Prosody 0.12 or\nearlier.\n";
        assert_eq!(
            read(oauth),
            owned(&[("trunk", Some(true)), ("0.12 and earlier", Some(false))])
        );
        assert_eq!(
            row_for(&from_readme(oauth), "0.12.3").unwrap().works,
            Some(false)
        );
        let guard = "Compatibility\n=============\n\n-   Works with 0.8.x, successive versions and trunk.\n";
        assert_eq!(
            read(guard),
            owned(&[("0.8 and later", Some(true)), ("trunk", Some(true))])
        );
        let filters = "Compatibility\n=============\n\nNot tested, but hopefully works on 0.11.x and later.\n";
        assert_eq!(read(filters), owned(&[("0.11 and later", None)]));
    }

    /// mod_delegation and mod_dnsbl (2025): versions named without a verdict
    /// on them are no rows.
    #[test]
    fn a_version_mentioned_without_a_verdict_is_no_row() {
        let delegation = "Compatibility\n=============\n\nIf you use it with Prosody 0.9 and a component, you need to patch\ncore/mod\\_component.lua to fire a new signal.\n";
        assert!(read(delegation).is_empty());
        let dnsbl = "## Compatibility\n\nCompatible with Prosody 0.12 and later.\n\nIf you are using Prosody 0.12, make sure you install mod_flags from the\ncommunity module repository. If you are using a later version, mod_flags is\nalready included with Prosody.\n";
        assert_eq!(read(dnsbl), owned(&[("0.12 and later", Some(true))]));
        // Dates and XEP numbers are no versions.
        let dated = "Compatibility\n=============\n\nWorks with Prosody trunk as of 2024-10-22, see XEP-0425.\n";
        assert_eq!(read(dated), owned(&[("trunk", Some(true))]));
    }
}
