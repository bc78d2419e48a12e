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
//! - a staged install, then a staged update, of one module on 8 servers
//!   (`servers` = `fleet`: a canary, then batches of 5, each server
//!   checked after its change), each against the same change asked of
//!   each server's modman in turn, directly, with no stages and no
//!   checks, in the same run on the same fleet.
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
    rows.extend(staged_changes());
    println!("\nratio = baseline / modman: below 1, the fleet answer takes longer.");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("fleet.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    )
    .unwrap();
}

/// Rounds of each change timed (each is undone before the next).
const ROUNDS: usize = 3;

/// A change of `lastlog` on every server that the bench times.
#[derive(Debug, Clone, Copy)]
enum Change {
    Install,
    Update,
}

impl Change {
    /// Its node.
    fn node(self) -> &'static str {
        match self {
            Change::Install => "install",
            Change::Update => "update",
        }
    }

    /// The node that undoes it on one server, so the next round finds
    /// the same work: a remove after an install, a rollback to the
    /// earlier version after an update.
    fn undo(self) -> &'static str {
        match self {
            Change::Install => "remove",
            Change::Update => "rollback",
        }
    }
}

/// A staged install, then a staged update, of `lastlog` on a fleet of 8
/// servers, asked of a.test's modman, each against the same change asked
/// of each server's modman one after another; each round undone on every
/// server, untimed, before the next. The median round of each.
fn staged_changes() -> Vec<Value> {
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
    let everywhere = |admin: &mut support::Client, node: &str| {
        for domain in &domains {
            let fields = json!([{"modules": ["lastlog"], "confirm": true}]);
            completed(&admin.run_at(&format!("modman.{domain}"), node, fields));
        }
    };
    for domain in &domains {
        completed(&admin.run_at(&format!("modman.{domain}"), "refresh", json!([])));
    }
    let install = staged(&mut admin, &domains, Change::Install);
    // An update to offer: lastlog installed everywhere, then a newer
    // build of it in the repository, which keeps the earlier one.
    everywhere(&mut admin, "install");
    support::append(
        &repository.corpus("mod_lastlog").join("mod_lastlog.lua"),
        "\n-- a newer upstream\n",
    );
    repository.rebuild();
    for domain in &domains {
        completed(&admin.run_at(&format!("modman.{domain}"), "refresh", json!([])));
    }
    let update = staged(&mut admin, &domains, Change::Update);
    vec![install, update]
}

/// Asserts that a command completed.
fn completed(run: &Value) {
    assert_eq!(support::last(run)["status"], "completed", "{run}");
}

/// [`ROUNDS`] of `change` on every one of `domains`: staged, asked of
/// a.test's modman, and asked of each modman in turn; the medians and
/// their ratio.
fn staged(admin: &mut support::Client, domains: &[String], change: Change) -> Value {
    let node = change.node();
    let fields = |servers: Option<&str>| {
        let mut fields = json!({"modules": ["lastlog"], "confirm": true});
        if let Some(servers) = servers {
            fields["servers"] = json!([servers]);
        }
        json!([fields])
    };
    let mut timed = |staged: bool| {
        let start = Instant::now();
        if staged {
            let run = admin.run_at("modman.a.test", node, fields(Some("fleet")));
            completed(&run);
            let done = support::last(&run)["form"]["items"]
                .as_array()
                .map_or(0, |items| {
                    items.iter().filter(|i| i["standing"] == "done").count()
                });
            assert_eq!(done, domains.len(), "{run}");
        } else {
            for domain in domains {
                completed(&admin.run_at(&format!("modman.{domain}"), node, fields(None)));
            }
        }
        let took = start.elapsed().as_secs_f64() * 1000.0;
        for domain in domains {
            let undo = json!([{"modules": ["lastlog"], "confirm": true}]);
            completed(&admin.run_at(&format!("modman.{domain}"), change.undo(), undo));
        }
        took
    };
    let mut median = |staged: bool| {
        let mut times: Vec<f64> = (0..ROUNDS).map(|_| timed(staged)).collect();
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
        "staged {node}, 8 servers: {staged:.0} ms; each server asked in turn: {one_by_one:.0} ms; ratio {ratio:.2}: {meaning}"
    );
    json!({
        "measure": format!("staged {node} of one module on 8 servers (canary, then batches of 5, each checked), median"),
        "modman": staged,
        "baseline": format!("the same {node} asked of each server's modman in turn, unchecked, median"),
        "baseline_value": one_by_one,
        "unit": "ms",
        "ratio": ratio,
    })
}
