//! What a bench reports beside each figure: the goal it is held to (issue
//! 26), whether this run met it, and a line of history per run in
//! `target/bench/history.jsonl`, so a slower hot path shows up as a
//! trend and not only as one noisy figure.

#![allow(dead_code)] // each bench has goals of its own kinds

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

/// The goal of one measure, against the baseline timed in the same run.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// modman at least this many times faster (or smaller).
    Faster(f64),
    /// modman's figure at most this many times the baseline's.
    Within(f64),
    /// modman's figure at most this, in the row's unit, whatever the
    /// baseline (the memory bounds of issue 26 are absolute).
    Under(f64),
    /// No goal: the figure is reported for its trend.
    None,
}

impl Goal {
    /// Whether `modman` against `baseline` meets it; `None` without a goal.
    pub fn met(self, modman: f64, baseline: f64) -> Option<bool> {
        match self {
            Goal::Faster(times) => Some(baseline / modman >= times),
            Goal::Within(times) => Some(modman <= baseline * times),
            Goal::Under(limit) => Some(modman <= limit),
            Goal::None => None,
        }
    }

    /// As the table prints it.
    pub fn describe(self) -> String {
        match self {
            Goal::Faster(times) => format!(">= {times}x faster"),
            Goal::Within(times) => format!("<= {times}x baseline"),
            Goal::Under(limit) => format!("<= {limit}"),
            Goal::None => "-".into(),
        }
    }

    /// As history.jsonl keeps it.
    pub fn json(self) -> Value {
        match self {
            Goal::Faster(times) => json!({"faster": times}),
            Goal::Within(times) => json!({"within": times}),
            Goal::Under(limit) => json!({"under": limit}),
            Goal::None => Value::Null,
        }
    }
}

/// "met", "MISSED" or "" as the table prints it.
pub fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    }
}

/// Appends one line for this run of `bench` to target/bench/history.jsonl:
/// the date, the commit measured and each result.
pub fn append_history(bench: &str, results: Vec<Value>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let line = json!({"date": date, "commit": commit, "bench": bench, "results": results});
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let mut history = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join("history.jsonl"))
        .unwrap();
    writeln!(history, "{line}").unwrap();
}
