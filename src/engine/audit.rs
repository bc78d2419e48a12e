//! The audit log: `history.jsonl` in `state_dir`, one JSON object per line,
//! only ever appended to. Each change says who asked, what, from which
//! version to which, and how it ended.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

const FILE: &str = "history.jsonl";

/// One change to one module within an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleChange {
    pub module: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339.
    pub time: String,
    pub actor: String,
    pub operation: String,
    pub changes: Vec<ModuleChange>,
    /// `ok`, or what went wrong.
    pub result: String,
    /// The transaction, for `rollback` of a whole change; empty for changes
    /// that touch no files.
    pub transaction: String,
    /// The change this line ends (see [`super::journal`]), so recovery
    /// knows a change whose line was written is whole.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub change: String,
    /// The hosts a change to the managed config concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Module options set or unset; secrets as "(secret, set)", never
    /// their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// Why: as the admin said it (`hold ... because`), or why modman
    /// made the change on its own (a failed health check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Appends one entry, synced before returning.
pub fn append(state_dir: &Path, entry: &Entry) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join(FILE))?;
    file.write_all(&line)?;
    file.sync_data()
}

/// All entries, oldest first. A line that does not parse (a torn write at
/// a crash) is skipped rather than hiding the rest.
pub fn read(state_dir: &Path) -> std::io::Result<Vec<Entry>> {
    match std::fs::read_to_string(state_dir.join(FILE)) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e),
    }
}

/// Now, as RFC 3339 in UTC.
pub fn now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// Now, as RFC 3339 in UTC to the second: for times shown beside what
/// they date (a hold), where a fraction would only be noise.
pub fn now_to_the_second() -> String {
    let now = time::OffsetDateTime::now_utc();
    rfc3339(now.replace_nanosecond(0).unwrap_or(now))
}

fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}
