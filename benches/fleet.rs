//! `cargo bench --bench fleet` (run by scripts/bench): modman across a
//! fleet of Prosody servers federated over s2s, each with its modman, in a
//! network namespace of the fleet's own (tests/support/fleet.rs).
//!
//! - `list updates` for the whole fleet of 3 and of 8 servers, asked of
//!   one modman, which relays it to its peers over s2s and merges their
//!   tables, against the same modman's `list updates` of its own server,
//!   timed in the same run through the same client (p50 of the round
//!   trip, slixmpp's XEP-0050 plugin included in both).
//!
//! Results: a table on stdout and target/bench/fleet.json.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};
use support::fleet::Fleet;

/// Round trips timed per figure.
const SAMPLES: usize = 40;

/// The median of `samples` round trips of `run`, in milliseconds.
fn p50(mut run: impl FnMut() -> Value) -> f64 {
    let mut times: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            let answer = run();
            let took = start.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(support::last(&answer)["status"], "completed", "{answer}");
            took
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let mut rows = Vec::new();
    for size in [3, 8] {
        let mut fleet = Fleet::start(size);
        let domains: Vec<String> = fleet.members.iter().map(|m| m.domain.clone()).collect();
        for domain in &domains {
            fleet.place_module(domain, "mod_lastlog");
            let peers: Vec<String> = domains
                .iter()
                .filter(|d| *d != domain)
                .map(|d| format!("modman.{d}"))
                .collect();
            let extra = format!("\n[fleet]\npeers = {}\n", json!(peers));
            let config = fleet
                .member(domain)
                .modman_config(&["admin@a.test"], &[], domain, &extra);
            fleet.start_modman(domain, &config);
        }
        let mut admin = fleet.client("admin@a.test");
        let mut list = |fields: Value| admin.run_at("modman.a.test", "list", json!([fields]));
        // Warm: the s2s links and each modman's view of the asking client.
        list(json!({"show": "updates", "servers": ["fleet"]}));
        let here = p50(|| list(json!({"show": "updates"})));
        let across = p50(|| list(json!({"show": "updates", "servers": ["fleet"]})));
        println!(
            "list updates, {size} servers: {across:.1} ms p50; one server: {here:.1} ms; ratio {:.2}",
            here / across
        );
        rows.push(json!({
            "measure": format!("list updates across {size} servers, p50"),
            "modman": across,
            "baseline": "list updates of one server, p50",
            "baseline_value": here,
            "unit": "ms",
            "ratio": here / across,
        }));
    }
    println!("\nratio = baseline / modman: below 1, the fleet answer takes longer.");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("fleet.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    )
    .unwrap();
}
