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
//! - a staged install of one module on 8 servers (`servers` = `fleet`:
//!   a canary, then batches of 5, each server checked after its change),
//!   against the same install asked of each server's modman in turn,
//!   directly, with no stages and no checks, in the same run.
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
    rows.push(staged_install());
    println!("\nratio = baseline / modman: below 1, the fleet answer takes longer.");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("fleet.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    )
    .unwrap();
}

/// Rounds of each install timed (each is undone before the next).
const ROUNDS: usize = 3;

/// A staged install of `lastlog` on a fleet of 8 servers, asked of
/// a.test's modman, against the same install asked of each server's
/// modman one after another; each undone by a `remove` on every server,
/// untimed, before the next round. The median round of each.
fn staged_install() -> Value {
    let mut fleet = Fleet::start(8);
    let mut repository = support::Repository::start();
    fleet.serve_repository(&mut repository);
    let domains: Vec<String> = fleet.members.iter().map(|m| m.domain.clone()).collect();
    for domain in &domains {
        let peers: Vec<String> = match domain.as_str() {
            "a.test" => domains
                .iter()
                .filter(|d| *d != domain)
                .map(|d| format!("modman.{d}"))
                .collect(),
            _ => vec!["modman.a.test".to_owned()],
        };
        let extra = format!(
            "\n[fleet]\npeers = {}\n{}",
            json!(peers),
            repository.config_section()
        );
        let config = fleet
            .member(domain)
            .modman_config(&["admin@a.test"], &[], domain, &extra);
        fleet.start_modman(domain, &config);
    }
    let mut admin = fleet.client("admin@a.test");
    let completed = |run: &Value| {
        assert_eq!(support::last(run)["status"], "completed", "{run}");
    };
    for domain in &domains {
        completed(&admin.run_at(&format!("modman.{domain}"), "refresh", json!([])));
    }
    let install = |servers: Option<&str>| {
        let mut fields = json!({"modules": ["lastlog"], "confirm": true});
        if let Some(servers) = servers {
            fields["servers"] = json!([servers]);
        }
        json!([fields])
    };
    let timed = |admin: &mut support::Client, staged: bool| {
        let start = Instant::now();
        if staged {
            let run = admin.run_at("modman.a.test", "install", install(Some("fleet")));
            completed(&run);
            let done = support::last(&run)["form"]["items"]
                .as_array()
                .map_or(0, |items| {
                    items.iter().filter(|i| i["standing"] == "done").count()
                });
            assert_eq!(done, domains.len(), "{run}");
        } else {
            for domain in &domains {
                completed(&admin.run_at(&format!("modman.{domain}"), "install", install(None)));
            }
        }
        let took = start.elapsed().as_secs_f64() * 1000.0;
        for domain in &domains {
            let remove = json!([{"modules": ["lastlog"], "confirm": true}]);
            completed(&admin.run_at(&format!("modman.{domain}"), "remove", remove));
        }
        took
    };
    let mut median = |staged: bool| {
        let mut times: Vec<f64> = (0..ROUNDS).map(|_| timed(&mut admin, staged)).collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let staged = median(true);
    let one_by_one = median(false);
    let ratio = one_by_one / staged;
    let meaning = match ratio >= 1.0 {
        true => "the batches, changing up to 5 servers at once, save more than the canary's wait and the check after each change cost",
        false => "the canary's wait and the check after each change cost more than the batches save",
    };
    println!(
        "staged install, 8 servers: {staged:.0} ms; each server asked in turn: {one_by_one:.0} ms; ratio {ratio:.2}: {meaning}"
    );
    json!({
        "measure": "staged install of one module on 8 servers (canary, then batches of 5, each checked), median",
        "modman": staged,
        "baseline": "the same install asked of each server's modman in turn, unchecked, median",
        "baseline_value": one_by_one,
        "unit": "ms",
        "ratio": ratio,
    })
}
