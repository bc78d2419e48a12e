//! The corpus sweep: every module of the Debian corpus of the Prosody
//! under test (0.12's 2023 prosody-modules, 13's 2025 one), one at a
//! time, is installed and enabled, disabled and removed through the real
//! CLI against a real Prosody. Each either loads, or is refused (by
//! modman before it changes anything, or by Prosody, whose reason is
//! shown and whose refusal undoes the change). After each, the module
//! files, the managed config, installed.json and what Prosody itself
//! lists with `prosodyctl shell module:list()` equal what they were
//! before.
//!
//! What each module did is published in doc/corpus-sweep-VERSION.md, and
//! the sweep checks every module still does the same (loads or refused).
//! `MODMAN_SWEEP_RECORD=1` writes that file from the run instead.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::{cli, server, snapshot, Prosody, Repository, Version, DOMAIN};

/// The MUC component of the tests' Prosody, where MUC modules go.
const MUC: &str = "conference.localhost";

/// Prosodys that sweep at once, each its share of the corpus (the suite
/// runs on two cores).
const WORKERS: usize = 2;

/// What happened to one module.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Loaded on `host`; with the warn or error status Prosody listed for
    /// it, if any (such as a missing option).
    Loads {
        host: &'static str,
        status: Option<String>,
    },
    /// Not loaded: modman's or Prosody's reason, as the CLI printed it.
    Refused(String),
}

impl Outcome {
    fn word(&self) -> &'static str {
        match self {
            Outcome::Loads { .. } => "loads",
            Outcome::Refused(_) => "refused",
        }
    }
}

/// Everything a change may touch, as modman's files and Prosody say.
#[derive(Debug, PartialEq, Eq)]
struct State {
    files: BTreeMap<PathBuf, Vec<u8>>,
    managed_config: String,
    /// The modules in installed.json.
    installed: Vec<String>,
    /// `module:list()`: every host and the global context.
    loaded: String,
}

fn state(prosody: &Prosody) -> State {
    State {
        files: snapshot(&prosody.modules_dir()),
        // Its sections; the header comment appears with the first write.
        managed_config: std::fs::read_to_string(prosody.path("modman.cfg.lua"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        installed: installed(prosody),
        loaded: prosody.shell("module:list()"),
    }
}

/// The modules installed by modman now, from installed.json.
fn installed(prosody: &Prosody) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(prosody.path("modman-state/installed.json")) else {
        return vec![];
    };
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["modules"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// One line of what the CLI printed, for the table: the part that says
/// why, without the temp dir it ran in.
fn reason(output: &str, dir: &Path) -> String {
    // From the line that starts with `error: `, not the log lines before.
    let from = match output.strip_prefix("error: ") {
        Some(_) => "error: ".len(),
        None => output
            .find("\nerror: ")
            .map_or(0, |at| at + "\nerror: ".len()),
    };
    let text = output[from..]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .replace(&dir.display().to_string(), "…")
        .replace("Error: Last error: ", "")
        // The table's header says so once.
        .replace(
            "; everything this change had done was undone, so nothing is changed",
            "",
        );
    // Prosody shortens long paths: `...kv/modules/`, the temp dir's tail.
    let text = text
        .split("...")
        .enumerate()
        .map(|(i, part)| match (i, part.find("/modules/")) {
            (0, _) | (_, None) => part.to_owned(),
            (_, Some(at))
                if part[..at]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                part[at..].to_owned()
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("...");
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short.replace('|', "\\|")
}

/// Sweeps `modules` on a Prosody of its own; what each did.
fn sweep(modules: &[String], repository_section: &str) -> Vec<(String, Outcome)> {
    let prosody = Prosody::start();
    let config = prosody.path("modman.toml");
    std::fs::write(&config, prosody.modman_config() + repository_section).unwrap();
    let (ok, out, err) = cli(&["refresh"], &config);
    assert!(ok, "refresh: {out}{err}");
    let dir = prosody.path("");
    let mut outcomes = Vec::new();
    for module in modules {
        let before = state(&prosody);
        let already: Vec<String> = installed(&prosody);
        let mut host = DOMAIN;
        let (mut ok, mut out, mut err) = cli(&["install", "--yes", "--enable", module], &config);
        if !ok && err.contains("MUC should be loaded as a component") {
            // Where an admin puts it: on the MUC component.
            host = MUC;
            (ok, out, err) = cli(
                &["install", "--yes", "--enable", "--hosts", MUC, module],
                &config,
            );
        }
        let outcome = if ok {
            let status = prosody.module_list(host).into_iter().find_map(|line| {
                let (name, status) = line.split_once(" (")?;
                (name == module).then(|| status.trim_end_matches(')').to_owned())
            });
            Outcome::Loads {
                host,
                status: status.map(|s| s.replace('|', "\\|")),
            }
        } else {
            // A refusal says what failed and that nothing is changed.
            assert!(
                err.contains("nothing is changed")
                    || err.contains("nothing was changed")
                    || err.contains("Nothing was changed"),
                "mod_{module}: a refusal that does not say what is left: {err}"
            );
            Outcome::Refused(reason(&err, &dir))
        };
        if let Outcome::Loads { .. } = outcome {
            // It and what it brought: disabled, then removed.
            let brought: Vec<String> = installed(&prosody)
                .into_iter()
                .filter(|m| !already.contains(m))
                .collect();
            let mut args = vec!["disable", "--yes"];
            args.extend(brought.iter().map(String::as_str));
            let (ok, out, err) = cli(&args, &config);
            assert!(ok, "mod_{module}: disable {brought:?}: {out}{err}");
            let mut args = vec!["remove", "--yes"];
            args.extend(brought.iter().map(String::as_str));
            let (ok, out, err) = cli(&args, &config);
            assert!(ok, "mod_{module}: remove {brought:?}: {out}{err}");
        }
        let after = state(&prosody);
        assert_eq!(
            after.files.keys().collect::<Vec<_>>(),
            before.files.keys().collect::<Vec<_>>(),
            "mod_{module}: module files ({outcome:?})"
        );
        assert_eq!(
            after.managed_config, before.managed_config,
            "mod_{module}: managed config ({outcome:?})"
        );
        assert_eq!(
            after.installed, before.installed,
            "mod_{module}: installed.json ({outcome:?})"
        );
        assert_eq!(
            after.loaded, before.loaded,
            "mod_{module}: what Prosody has loaded ({outcome:?}, install said: {out}{err})"
        );
        outcomes.push((module.clone(), outcome));
    }
    outcomes
}

/// The published table of `version`.
fn table_path(version: Version) -> PathBuf {
    let name = match version {
        Version::V0_12 => "corpus-sweep-0.12.md",
        Version::V13 => "corpus-sweep-13.md",
    };
    Path::new(env!("CARGO_MANIFEST_DIR")).join("doc").join(name)
}

fn render(version: Version, outcomes: &[(String, Outcome)]) -> String {
    let (prosody, corpus) = match version {
        Version::V0_12 => ("Prosody 0.12.3 (Debian 12)", "Debian 12's prosody-modules"),
        Version::V13 => ("Prosody 13.0.1 (Debian 13)", "Debian 13's prosody-modules"),
    };
    let loads = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Loads { .. }))
        .count();
    let mut text = format!(
        "# Corpus sweep: {prosody}\n\n\
         Every module of {corpus} ({} modules), one at a time, installed with\n\
         `modman install --yes --enable` on a VirtualHost (on the MUC component\n\
         when Prosody says it belongs there), then disabled and\n\
         removed with what it brought; after each, the module files, the managed\n\
         config, installed.json and Prosody's own `module:list()` were as before.\n\
         {loads} load (some with the status Prosody reports until they are\n\
         configured); {} are refused, by modman before anything changes or by\n\
         Prosody, whose refusal undoes the change. Written by\n\
         `MODMAN_SWEEP_RECORD=1 cargo test --test sweep` (tests/sweep.rs), which\n\
         otherwise checks that each module still does what this table says.\n\n\
         | module | result | Prosody's status, or why it was refused |\n\
         |---|---|---|\n",
        outcomes.len(),
        outcomes.len() - loads
    );
    for (module, outcome) in outcomes {
        let why = match outcome {
            Outcome::Loads { host, status } => {
                let on = match *host {
                    MUC => format!("on {MUC}"),
                    _ => String::new(),
                };
                [on, status.clone().unwrap_or_default()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            Outcome::Refused(why) => why.clone(),
        };
        text += &format!("| {module} | {} | {why} |\n", outcome.word());
    }
    text
}

/// module → `loads` or `refused`, from a published table.
fn published(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| ")?.split(" | ");
            let module = cells.next()?;
            let result = cells.next()?;
            matches!(result, "loads" | "refused").then(|| (module.to_owned(), result.to_owned()))
        })
        .collect()
}

#[test]
fn every_corpus_module_loads_or_is_refused_and_leaves_everything_as_it_was() {
    let repository = Repository::start();
    let mut modules: Vec<String> = repository.index()["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    modules.sort();
    let section = repository.config_section();
    let share = modules.len().div_ceil(WORKERS);
    let outcomes: Vec<(String, Outcome)> = std::thread::scope(|scope| {
        let workers: Vec<_> = modules
            .chunks(share)
            .map(|chunk| scope.spawn(|| sweep(chunk, &section)))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a sweep worker failed"))
            .collect()
    });
    assert_eq!(outcomes.len(), modules.len());
    let version = server().version;
    let path = table_path(version);
    let table = render(version, &outcomes);
    if std::env::var_os("MODMAN_SWEEP_RECORD").is_some() {
        std::fs::write(&path, &table).unwrap();
        return;
    }
    let expected = published(&std::fs::read_to_string(&path).unwrap_or_default());
    let now = published(&table);
    let differ: Vec<String> = now
        .iter()
        .filter(|(module, result)| expected.get(*module) != Some(result))
        .map(|(module, result)| {
            format!(
                "mod_{module}: {result} now, {} in {}",
                expected.get(module).map_or("absent", String::as_str),
                path.display()
            )
        })
        .collect();
    assert!(
        differ.is_empty() && expected.len() == now.len(),
        "the sweep differs from the published table (MODMAN_SWEEP_RECORD=1 writes it anew):\n{}\n\nThis run:\n{table}",
        differ.join("\n")
    );
}
