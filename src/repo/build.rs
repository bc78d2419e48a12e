//! `modman repo build`: a signed repository from a prosody-modules tree.
//!
//! The output is built in a temp dir beside `out` and renamed into place,
//! so a server never serves half a repository. Problems with one module
//! (no main `.lua`, a link out of the tree, an unreadable file, broken
//! front matter) are warnings and that module is skipped or kept without
//! metadata; problems with the whole build are errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use super::archive;
use super::index::{
    is_valid_module_name, limits, Change, Dependency, DependencyKind, Earlier, Index, ModuleEntry,
    Timestamp, SCHEMA,
};
use super::metadata;
use super::signing;
use crate::config::is_valid_repository_name;

/// What to build from where.
pub struct BuildOptions<'a> {
    /// A tree in the upstream layout: `mod_x/mod_x.lua`, `mod_x/README.markdown`.
    pub tree: &'a Path,
    pub out: &'a Path,
    /// The repository's name, as modman.toml's `[[repositories]]` entry
    /// names it: signed into the index (see `Index::repository`).
    pub name: &'a str,
    pub key: &'a Path,
    /// Prosody's own module directory, to tell built-in dependencies from
    /// missing ones.
    pub builtin_dir: &'a Path,
    /// How long clients may use the index; rebuild (and publish) before
    /// it runs out.
    pub valid_for: time::Duration,
    /// Earlier builds of each module to keep serving beside the newest,
    /// so admins can choose one (`install x@VERSION`) or step back to it.
    pub keep: usize,
}

/// `--keep` when not given: enough to step back past a bad build or two
/// without the repository growing without end.
pub const DEFAULT_KEEP: usize = 3;

/// `--valid-for` when not given: a month, as Debian's archive does a week
/// for its most active suites; a repository rebuilt by a cron job any
/// less often than that would be refused.
pub const DEFAULT_VALID_DAYS: u32 = 30;

/// What a build did.
#[derive(Debug)]
pub struct BuildReport {
    pub modules: usize,
    /// One line per problem, each starting with the module or file.
    pub warnings: Vec<String>,
}

/// A problem that stops the whole build; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Key(#[from] signing::KeyError),
    #[error("{path}: {problem}")]
    Io { path: PathBuf, problem: String },
    #[error("{0}: no modules found (expected mod_x/mod_x.lua directories, as in prosody-modules)")]
    Empty(PathBuf),
    #[error("{0} exists and is not a modman repository; refusing to replace it")]
    NotARepository(PathBuf),
    #[error("repository name `{0}`: use letters, digits, `-` and `_` (at most 64), the name modman.toml's [[repositories]] entry gives it")]
    Name(String),
    #[error("{found} modules, more than the {} an index may hold; nothing was written (split the tree into several repositories)", limits::MODULES)]
    TooManyModules { found: usize },
    #[error("mod_{module}: {problem}; nothing was written")]
    Bounds { module: String, problem: String },
    #[error("--valid-for must be at least 1 day")]
    ValidFor,
    #[error("SOURCE_DATE_EPOCH `{0}` is not a Unix time in seconds")]
    SourceDate(String),
}

pub(super) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::Io {
        path: path.to_owned(),
        problem: e.to_string(),
    }
}

/// A module packed and described, before dependency kinds are known.
struct Packed {
    entry: ModuleEntry,
    depends: Vec<metadata::Declared>,
    archive: Vec<u8>,
}

/// Builds the repository. See the module documentation.
pub fn build(options: &BuildOptions) -> Result<BuildReport, BuildError> {
    if options.valid_for < time::Duration::days(1) {
        return Err(BuildError::ValidFor);
    }
    check_name(options.name)?;
    let key = signing::read_private(options.key)?;
    let tree = options.tree;
    let mut names: Vec<String> = std::fs::read_dir(tree)
        .map_err(io_error(tree))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("mod_"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();

    let mut warnings = Vec::new();
    let history = History::detect(tree);
    let mut packed = Vec::new();
    let packs = on_every_core(&names, |name| pack_module(tree, name, &history));
    for (name, result) in names.iter().zip(packs) {
        match result {
            Ok((module, warning)) => {
                warnings.extend(warning.map(|w| format!("mod_{name}: {w}")));
                packed.push(module);
            }
            Err(problem) => warnings.push(format!("mod_{name}: {problem}; skipped")),
        }
    }
    if packed.is_empty() {
        return Err(BuildError::Empty(tree.to_owned()));
    }

    let before = published(options.out, &key);
    for module in &mut packed {
        let entry = &mut module.entry;
        let previous = before.as_ref().and_then(|index| index.get(&entry.name));
        entry.changes = history.changes(tree, &entry.name, &entry.version, previous);
    }

    let community: BTreeSet<String> = packed.iter().map(|p| p.entry.name.clone()).collect();
    for module in &mut packed {
        for metadata::Declared { name, need } in std::mem::take(&mut module.depends) {
            let kind = dependency_kind(&name, &community, options.builtin_dir);
            if kind == DependencyKind::Missing {
                warnings.push(format!(
                    "mod_{}: depends on {name}, which is neither in the tree nor in {}",
                    module.entry.name,
                    options.builtin_dir.display()
                ));
            }
            module
                .entry
                .dependencies
                .push(Dependency { name, kind, need });
        }
    }

    let modules = packed.len();
    publish(
        options.out,
        options.name,
        &key,
        options.valid_for,
        packed.into_iter().map(|p| (p.entry, p.archive)).collect(),
        Keep::Published(options.keep),
        before,
    )?;
    Ok(BuildReport { modules, warnings })
}

/// Where dependency `name` comes from: the modules on offer (`community`),
/// Prosody itself (`builtin_dir`), or neither.
pub(crate) fn dependency_kind(
    name: &str,
    community: &BTreeSet<String>,
    builtin_dir: &Path,
) -> DependencyKind {
    if community.contains(name) {
        DependencyKind::Community
    } else if crate::repo::placement::has_module(builtin_dir, name) {
        DependencyKind::Builtin
    } else {
        DependencyKind::Missing
    }
}

fn check_name(name: &str) -> Result<(), BuildError> {
    match is_valid_repository_name(name) {
        true => Ok(()),
        false => Err(BuildError::Name(
            crate::clean::clean(name).chars().take(64).collect(),
        )),
    }
}

/// Where the earlier builds a published index lists come from.
pub(crate) enum Keep {
    /// Those the index already at `out` listed (and its newest builds),
    /// at most this many per module, their archives copied over: `repo
    /// build --keep`.
    Published(usize),
    /// Those each entry comes with (a mirror's, read from its server),
    /// with their archives' bytes by path under `archives/`.
    Given(Vec<(String, Vec<u8>)>),
}

/// Writes a signed repository `name` of `modules` (sorted by name, each
/// entry with its archive's bytes) at `out`, with a serial above the last
/// one and an expiry `valid_for` from now: built beside it, then renamed
/// into place (see [`replace_dir`]). An index clients would refuse (over
/// [`limits`]) is not written. `before` is what [`published`] found at
/// `out`: the caller has read it already, and reading, verifying and
/// parsing a 2,000-module index again cost a rebuild some 5% of its time.
pub(crate) fn publish(
    out: &Path,
    name: &str,
    key: &ed25519_dalek::SigningKey,
    valid_for: time::Duration,
    modules: Vec<(ModuleEntry, Vec<u8>)>,
    keep: Keep,
    before: Option<Index>,
) -> Result<(), BuildError> {
    check_name(name)?;
    if modules.len() > limits::MODULES {
        return Err(BuildError::TooManyModules {
            found: modules.len(),
        });
    }
    if let Some((entry, problem)) = modules
        .iter()
        .find_map(|(entry, _)| entry.check_bounds().err().map(|p| (entry, p)))
    {
        return Err(BuildError::Bounds {
            module: entry.name.clone(),
            problem,
        });
    }
    let staging = staging_dir(out)?;
    let archives = staging.path().join("archives");
    std::fs::create_dir(&archives).map_err(io_error(&archives))?;
    let mut entries = Vec::with_capacity(modules.len());
    let (count, given) = match keep {
        Keep::Published(count) => (Some(count), vec![]),
        Keep::Given(archives) => (None, archives),
    };
    for (path, archive) in given {
        // Only archives this command names: one file under archives/.
        let plain = path
            .strip_prefix("archives/")
            .is_some_and(is_plain_file_name);
        if !plain {
            return Err(BuildError::Bounds {
                module: path,
                problem: "an earlier build's archive must be one file under archives/".into(),
            });
        }
        place(out, staging.path(), &path, &archive)?;
    }
    // Each module's files apart from the others': on every core, as
    // packing was.
    let placed = on_every_core(&modules, |(entry, archive)| {
        let kept = count
            .map(|count| keep_earlier(out, before.as_ref(), entry, count, staging.path()))
            .transpose()?;
        place(out, staging.path(), &entry.archive, archive)?;
        Ok::<_, BuildError>(kept)
    });
    for ((mut entry, _), kept) in modules.into_iter().zip(placed) {
        if let Some(kept) = kept? {
            entry.previous = kept;
        }
        entries.push(entry);
    }
    let (generated, clock) = build_time()?;
    let index = Index {
        schema: SCHEMA,
        repository: name.to_owned(),
        serial: match &before {
            Some(index) => index.serial.saturating_add(1).max(micros(clock)),
            None => next_serial(out, clock),
        },
        generated,
        expires: Timestamp(generated.0 + valid_for),
        modules: entries,
        // Kept from build to build: they concern versions installed out
        // there, whatever the tree holds now.
        advisories: before.map_or_else(Vec::new, |index| index.advisories),
    }
    .to_json();
    let index_path = staging.path().join("index.json");
    std::fs::write(&index_path, &index).map_err(io_error(&index_path))?;
    let signature_path = staging.path().join("index.json.sig");
    std::fs::write(&signature_path, signing::sign(key, &index))
        .map_err(io_error(&signature_path))?;
    replace_dir(staging, out)
}

/// The index already published at `out`, when this key signed it:
/// where the earlier builds to keep are listed.
pub(crate) fn published(out: &Path, key: &ed25519_dalek::SigningKey) -> Option<Index> {
    let index = std::fs::read(out.join("index.json")).ok()?;
    let signature = std::fs::read(out.join("index.json.sig")).ok()?;
    signing::verify(&key.verifying_key(), &index, &signature).ok()?;
    Index::parse(&index).ok()
}

/// The earlier builds of `entry` to list, newest first, at most `keep`:
/// the build `before` had, if it differs, then those it listed. Each
/// archive is copied from `out` into `staging`; one that is gone or no
/// longer matches its SHA-256 is no longer offered.
fn keep_earlier(
    out: &Path,
    before: Option<&Index>,
    entry: &ModuleEntry,
    keep: usize,
    staging: &Path,
) -> Result<Vec<Earlier>, BuildError> {
    let Some(old) = before.and_then(|index| index.get(&entry.name)) else {
        return Ok(vec![]);
    };
    let mut kept: Vec<Earlier> = Vec::new();
    for earlier in std::iter::once(old.as_earlier()).chain(old.previous.iter().cloned()) {
        if kept.len() >= keep {
            break;
        }
        // Only archives this command names: one file under archives/.
        let plain = earlier
            .archive
            .strip_prefix("archives/")
            .is_some_and(is_plain_file_name);
        let clash = earlier.version == entry.version
            || earlier.archive == entry.archive
            || kept
                .iter()
                .any(|k| k.version == earlier.version || k.archive == earlier.archive);
        if !plain || clash {
            continue;
        }
        let Ok(bytes) = std::fs::read(out.join(&earlier.archive)) else {
            continue;
        };
        if bytes.len() as u64 != earlier.size || super::sha256_hex(&bytes) != earlier.sha256 {
            continue;
        }
        place(out, staging, &earlier.archive, &bytes)?;
        kept.push(earlier);
    }
    Ok(kept)
}

/// Puts the archive `bytes` at `relative` (a plain path under
/// `archives/`) in `staging`. Where the repository published at `out`
/// already serves those very bytes at that path (a module unchanged
/// since the last build, an earlier build kept), the file is linked
/// rather than written: a rebuild then allocates no file for what did
/// not change, and on a busy file system creating 2,000 files cost
/// several times what packing them did. What is linked is read back
/// through the link and compared, so the index never lists bytes it did
/// not pack (an archive tampered with since is written anew); opened
/// without following links, as `hard_link` links a symbolic link itself,
/// and its length taken from that open file, one look-up in all (and
/// without blocking, should it be a FIFO).
fn place(out: &Path, staging: &Path, relative: &str, bytes: &[u8]) -> Result<(), BuildError> {
    let target = staging.join(relative);
    if std::fs::hard_link(out.join(relative), &target).is_ok() {
        if holds(&target, bytes) {
            return Ok(());
        }
        std::fs::remove_file(&target).map_err(io_error(&target))?;
    }
    std::fs::write(&target, bytes).map_err(io_error(&target))
}

/// Whether `path` is a regular file (not a link to one) of exactly
/// `bytes`.
fn holds(path: &Path, bytes: &[u8]) -> bool {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    let same_size = file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64);
    let mut held = vec![0; bytes.len()];
    same_size && file.read_exact(&mut held).is_ok() && held == bytes
}

/// A file name without directories, escapes or anything a URL or a
/// path would read differently.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}

/// The index's generation time (to the second) and the clock its serial
/// starts from (to the microsecond): now, or `SOURCE_DATE_EPOCH` for both
/// if set, so that two builds of one tree can be byte-identical, as
/// reproducible builds expect.
pub(super) fn build_time() -> Result<(Timestamp, time::OffsetDateTime), BuildError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
            .map(|time| (Timestamp(time), time))
            .ok_or(BuildError::SourceDate(text)),
        Err(_) => {
            let now = time::OffsetDateTime::now_utc();
            Ok((Timestamp::to_the_second(now), now))
        }
    }
}

/// A serial above the one `out` holds now, and at least `clock` in
/// microseconds since 1970: two builds within one second (into the same
/// directory or not) get different serials, where seconds gave the same
/// one and every modman refused the second index as a replay. Serials of
/// earlier builds (seconds) are far below, so they still move forward.
pub(super) fn next_serial(out: &Path, clock: time::OffsetDateTime) -> u64 {
    #[derive(serde::Deserialize)]
    struct SerialOnly {
        serial: u64,
    }
    let previous = std::fs::read(out.join("index.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<SerialOnly>(&bytes).ok())
        .map_or(0, |index| index.serial);
    previous.saturating_add(1).max(micros(clock))
}

/// `clock` in microseconds since 1970, where serials start from.
fn micros(clock: time::OffsetDateTime) -> u64 {
    u64::try_from(clock.unix_timestamp_nanos() / 1_000).unwrap_or(0)
}

/// Packs one module and describes it; `Err` says why it is skipped.
fn pack_module(tree: &Path, name: &str, history: &History) -> PackResult {
    if !is_valid_module_name(name) {
        return Err("not a valid module name".into());
    }
    let dir = tree.join(format!("mod_{name}"));
    // Only the layouts that live inside the module's own directory; the
    // flat one first, as nearly every module has it: one look-up each.
    let [nested, flat, ..] = crate::repo::placement::module_file_candidates(name);
    if !tree.join(&flat).is_file() && !tree.join(&nested).is_file() {
        return Err(format!("neither {flat} nor {nested} in it"));
    }
    let (bytes, files) = archive::pack(&dir, tree, name).map_err(|e| e.to_string())?;
    // Read back what was packed: the archive checks itself, and the Lua
    // files are scanned as shipped.
    let contents = archive::read(&bytes, name).map_err(|e| e.to_string())?;
    let mut depends: Vec<metadata::Declared> = contents
        .iter()
        .filter(|f| f.path.ends_with(".lua"))
        .flat_map(|f| metadata::depends(&String::from_utf8_lossy(&f.data)))
        .filter(|d| d.name != name)
        .collect();
    // One entry per name; required in any file wins.
    depends.sort();
    depends.dedup_by(|later, first| later.name == first.name);

    // Prosody reads the headers of the file it loads: the main one.
    let headers = contents
        .iter()
        .find(|f| f.path == format!("mod_{name}.lua") || f.path == format!("{name}/mod_{name}.lua"))
        .map(|f| metadata::headers(&String::from_utf8_lossy(&f.data)))
        .unwrap_or_default();
    let readme_file = contents
        .iter()
        .find(|f| matches!(f.path.as_str(), "README.markdown" | "README.md"));
    let (readme, warning) = match readme_file {
        Some(file) => metadata::parse_readme(&String::from_utf8_lossy(&file.data)),
        None => (
            metadata::Readme::default(),
            Some("no README.markdown; summary and description left empty".into()),
        ),
    };
    let sha256 = super::sha256_hex(&bytes);
    let version = history
        .version(tree, &dir, &files, &sha256)
        .map_err(|e| format!("cannot date it: {e}"))?;
    let mut entry = ModuleEntry {
        name: name.to_owned(),
        archive: format!("archives/mod_{name}-{version}.tar.gz"),
        version,
        summary: readme.summary,
        labels: readme.labels,
        stage: readme.stage,
        description: readme.description,
        dependencies: vec![],
        compatibility: readme.compatibility,
        headers,
        size: bytes.len() as u64,
        sha256,
        files,
        // A tree in the prosody-modules layout holds modules only.
        library: None,
        // Read from the history once every module is packed.
        changes: vec![],
        // The next step, publishing, lists the builds it keeps.
        previous: vec![],
        listed: vec![],
    };
    // Copied as they are, an ESC or NUL from a README would break every
    // reply that carries it, or reach an admin's terminal.
    let cleaned = entry.clean_text();
    // Clients refuse an index with a module over the limits: leave it out.
    entry.check_bounds()?;
    let warning = match (cleaned, warning) {
        (false, warning) => warning,
        (true, warning) => Some(
            warning
                .into_iter()
                .chain(["control characters in its README replaced with U+FFFD".to_owned()])
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    Ok((
        Packed {
            entry,
            depends,
            archive: bytes,
        },
        warning,
    ))
}

/// A module packed, with a warning, or why it was left out.
type PackResult = Result<(Packed, Option<String>), String>;

/// `work` done on every item of `items`, on every core, the results
/// in the items' order: packing a module and placing its archive are
/// CPU and file-system work apart from every other module's. Workers
/// take the next item as they finish one, so a large module does not
/// hold the rest.
fn on_every_core<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let at = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(at) else {
                            return mine;
                        };
                        mine.push((at, work(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(at, _)| *at);
    done.into_iter().map(|(_, result)| result).collect()
}

/// Where versions come from: the checkout's history, or the files.
enum History {
    Git,
    Mercurial,
    Files,
}

impl History {
    fn detect(tree: &Path) -> History {
        if tree.join(".git").exists() {
            History::Git
        } else if tree.join(".hg").exists() {
            History::Mercurial
        } else {
            History::Files
        }
    }

    /// `YYYYMMDD.<id>`: the date of the module's last change, then the
    /// commit that made it (checkouts) or the start of the archive's hash.
    /// Dates order versions for people; the id tells equal dates apart.
    fn version(
        &self,
        tree: &Path,
        dir: &Path,
        files: &[String],
        sha256: &str,
    ) -> Result<String, String> {
        let module = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let from_vcs = |program: &str, args: &[&str]| -> Result<Option<(i64, String)>, String> {
            let output = Command::new(program)
                .args(args)
                .current_dir(tree)
                .output()
                .map_err(|e| format!("{program} did not run: {e}"))?;
            let text = String::from_utf8_lossy(&output.stdout);
            let mut parts = text.split_whitespace();
            Ok(
                match (parts.next().and_then(|t| t.parse().ok()), parts.next()) {
                    (Some(time), Some(id)) if output.status.success() => {
                        Some((time, id.to_owned()))
                    }
                    _ => None,
                },
            )
        };
        let found = match self {
            History::Git => from_vcs("git", &["log", "-1", "--format=%ct %h", "--", module])?,
            History::Mercurial => from_vcs(
                "hg",
                &[
                    "log",
                    "-l",
                    "1",
                    "--template",
                    "{date|hgdate} {node|short}",
                    module,
                ],
            )?
            .map(|(time, rest)| {
                (
                    time,
                    rest.split_whitespace()
                        .last()
                        .unwrap_or_default()
                        .to_owned(),
                )
            }),
            History::Files => None,
        };
        let (time, id) = match found {
            Some(found) => found,
            // Not in the history (new, untracked) or no checkout: the
            // newest file and the content hash.
            None => (newest_mtime(dir, files)?, sha256[..8].to_owned()),
        };
        let date = time::OffsetDateTime::from_unix_timestamp(time)
            .map_err(|e| e.to_string())?
            .date();
        Ok(format!(
            "{:04}{:02}{:02}.{id}",
            date.year(),
            date.month() as u8,
            date.day()
        ))
    }
}

impl History {
    /// The change log of module `name` at `version`: the commits that
    /// touched it since the previous build's version (`previous`), newest
    /// first, then what that build recorded, at most [`limits::CHANGES`].
    /// The same version keeps the log it had; without a previous build,
    /// or a history to read, there is none. Commits the history no longer
    /// knows (rewritten) are left out rather than guessed.
    fn changes(
        &self,
        tree: &Path,
        name: &str,
        version: &str,
        previous: Option<&ModuleEntry>,
    ) -> Vec<Change> {
        let Some(previous) = previous else {
            return vec![];
        };
        if previous.version == version {
            return previous.changes.clone();
        }
        let since = previous.version.split_once('.').map_or("", |(_, id)| id);
        let module = format!("mod_{name}");
        let limit = limits::CHANGES.to_string();
        // Fields apart by US (0x1f), which no commit line holds.
        let (program, args): (&str, Vec<String>) = match self {
            History::Git => (
                "git",
                vec![
                    "log".into(),
                    "-n".into(),
                    limit,
                    "--format=%h%x1f%ct%x1f%s".into(),
                    format!("{since}..HEAD"),
                    "--".into(),
                    module,
                ],
            ),
            History::Mercurial => (
                "hg",
                vec![
                    "log".into(),
                    "-l".into(),
                    limit,
                    "--template".into(),
                    "{node|short}\x1f{date|hgdate}\x1f{desc|firstline}\n".into(),
                    "-r".into(),
                    format!("reverse({since}::. - {since})"),
                    module,
                ],
            ),
            History::Files => return vec![],
        };
        // Only a commit id goes on the command line.
        if since.is_empty() || !since.bytes().all(|b| b.is_ascii_hexdigit()) {
            return vec![];
        }
        let output = Command::new(program).args(&args).current_dir(tree).output();
        let Some(output) = output.ok().filter(|o| o.status.success()) else {
            return vec![];
        };
        let text = String::from_utf8_lossy(&output.stdout);
        let mut changes: Vec<Change> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, '\u{1f}');
                let (id, time, summary) = (fields.next()?, fields.next()?, fields.next()?);
                let seconds: i64 = time.split_whitespace().next()?.parse().ok()?;
                let date = time::OffsetDateTime::from_unix_timestamp(seconds).ok()?;
                let mut summary: String = summary.to_owned();
                if summary.len() > limits::SHORT_TEXT {
                    let mut end = limits::SHORT_TEXT - 3;
                    while !summary.is_char_boundary(end) {
                        end -= 1;
                    }
                    summary.truncate(end);
                    summary.push('…');
                }
                Some(Change {
                    id: id.chars().take(40).collect(),
                    date: Timestamp(date),
                    summary,
                })
            })
            .collect();
        for earlier in &previous.changes {
            if !changes.iter().any(|c| c.id == earlier.id) {
                changes.push(earlier.clone());
            }
        }
        changes.truncate(limits::CHANGES);
        changes
    }
}

fn newest_mtime(dir: &Path, files: &[String]) -> Result<i64, String> {
    let mut newest = 0;
    for file in files {
        let modified = std::fs::metadata(dir.join(file))
            .and_then(|m| m.modified())
            .map_err(|e| format!("{file}: {e}"))?;
        let seconds = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        newest = newest.max(seconds);
    }
    Ok(newest)
}

/// A temp dir beside `out`, on the same file system so the final rename
/// is atomic.
pub(super) fn staging_dir(out: &Path) -> Result<tempfile::TempDir, BuildError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    tempfile::Builder::new()
        .prefix(".modman-repo-")
        .tempdir_in(parent)
        .map_err(io_error(parent))
}

/// Puts `staging` at `out`, readable by a web server. An existing `out`
/// is replaced only if it is empty or a previous repository; if the swap
/// fails half-way, the previous repository is put back.
pub(super) fn replace_dir(staging: tempfile::TempDir, out: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(io_error(staging.path()))?;
    if !out.exists() {
        return std::fs::rename(staging.keep(), out).map_err(io_error(out));
    }
    let is_repo = out.join("index.json").is_file();
    let is_empty = std::fs::read_dir(out)
        .map_err(io_error(out))?
        .next()
        .is_none();
    if !is_repo && !is_empty {
        return Err(BuildError::NotARepository(out.to_owned()));
    }
    let parent = staging.path().parent().unwrap_or(Path::new(".")).to_owned();
    let old = tempfile::Builder::new()
        .prefix(".modman-repo-old-")
        .tempdir_in(&parent)
        .map_err(io_error(&parent))?;
    let old_repo = old.path().join("repo");
    std::fs::rename(out, &old_repo).map_err(io_error(out))?;
    if let Err(e) = std::fs::rename(staging.path(), out) {
        // Put the previous repository back; `staging` cleans itself up.
        let _ = std::fs::rename(&old_repo, out);
        return Err(io_error(out)(e));
    }
    // `staging` now names nothing; `old` removes the previous repository.
    let _ = staging.keep();
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What a test builds with, in `dir`: a new key at `dir/key`, the
    /// output at `dir/repo`.
    pub(crate) struct TestBuild {
        pub key: PathBuf,
        pub out: PathBuf,
        pub builtin: PathBuf,
    }

    impl TestBuild {
        pub(crate) fn new(dir: &Path) -> TestBuild {
            let key = dir.join("key");
            signing::generate(&key).unwrap();
            TestBuild {
                key,
                out: dir.join("repo"),
                builtin: dir.to_owned(),
            }
        }

        /// `tree` built into `out` as `local`, valid for a day.
        pub(crate) fn options<'a>(&'a self, tree: &'a Path) -> BuildOptions<'a> {
            BuildOptions {
                tree,
                out: &self.out,
                name: "local",
                key: &self.key,
                builtin_dir: &self.builtin,
                valid_for: time::Duration::days(1),
                keep: DEFAULT_KEEP,
            }
        }
    }

    #[test]
    fn serials_differ_within_a_second_and_stay_above_the_one_in_out() {
        let out = tempfile::tempdir().unwrap();
        let second = time::OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap();
        let later = second + time::Duration::milliseconds(300);
        // No previous index: two builds in one second still differ.
        let first = next_serial(out.path(), second);
        assert_eq!(first, 1_793_491_200_000_000);
        assert!(next_serial(out.path(), later) > first);
        // Above what `out` holds, even if the clock went back.
        std::fs::write(
            out.path().join("index.json"),
            format!(r#"{{"serial": {}}}"#, first + 5),
        )
        .unwrap();
        assert_eq!(next_serial(out.path(), second), first + 6);
        // Serials of builds that counted seconds are far below.
        std::fs::write(out.path().join("index.json"), r#"{"serial": 1793491200}"#).unwrap();
        assert_eq!(next_serial(out.path(), later), first + 300_000);
    }

    #[test]
    fn a_module_over_the_index_limits_is_left_out_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        for (name, summary) in [("small", "fine".to_owned()), ("big", "s".repeat(2000))] {
            let module = tree.join(format!("mod_{name}"));
            std::fs::create_dir_all(&module).unwrap();
            std::fs::write(module.join(format!("mod_{name}.lua")), "-- code\n").unwrap();
            std::fs::write(
                module.join("README.markdown"),
                format!("---\nsummary: {summary}\n---\n"),
            )
            .unwrap();
        }
        let built = TestBuild::new(dir.path());
        let out = &built.out;
        let report = build(&built.options(&tree)).unwrap();
        assert_eq!(report.modules, 1);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.starts_with("mod_big: the summary is 2000 bytes")
                    && w.contains(&format!("{}", limits::SUMMARY))
                    && w.ends_with("skipped")),
            "{:?}",
            report.warnings
        );
        let index = Index::parse(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        assert_eq!(index.repository, "local");
        assert!(index.get("big").is_none() && index.get("small").is_some());
    }

    #[test]
    fn a_checkout_gives_each_build_the_commits_since_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let module = tree.join("mod_a");
        std::fs::create_dir_all(&module).unwrap();
        let git = |args: &[&str]| {
            let output = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
                .args(args)
                .current_dir(&tree)
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
        };
        let commit = |text: &str, message: &str| {
            std::fs::write(module.join("mod_a.lua"), text).unwrap();
            git(&["add", "-A"]);
            git(&["commit", "-q", "-m", message]);
        };
        git(&["init", "-q"]);
        commit("-- one\n", "First");
        let built = TestBuild::new(dir.path());
        let (options, out) = (built.options(&tree), &built.out);
        let changes = || {
            build(&options).unwrap();
            let index = Index::parse(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
            let summaries: Vec<String> = (index.modules[0].changes.iter())
                .map(|c| c.summary.clone())
                .collect();
            summaries
        };
        // No previous build: no log.
        assert!(changes().is_empty());
        commit("-- two\n", "Second");
        commit("-- three\n", "Third");
        assert_eq!(changes(), ["Third", "Second"]);
        // Unchanged: the same log; then the next commit goes on top.
        assert_eq!(changes(), ["Third", "Second"]);
        commit("-- four\n", "Fourth");
        assert_eq!(changes(), ["Fourth", "Third", "Second"]);
    }

    #[test]
    fn earlier_builds_are_kept_served_and_listed_newest_first_up_to_keep() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let module = tree.join("mod_lastlog");
        std::fs::create_dir_all(&module).unwrap();
        let key = dir.path().join("key");
        signing::generate(&key).unwrap();
        let out = dir.path().join("repo");
        let mut newest = Vec::new();
        for build_number in 0..4 {
            let code = format!("-- build {build_number}\n");
            std::fs::write(module.join("mod_lastlog.lua"), code).unwrap();
            build(&BuildOptions {
                tree: &tree,
                out: &out,
                name: "local",
                key: &key,
                builtin_dir: dir.path(),
                valid_for: time::Duration::days(1),
                keep: 2,
            })
            .unwrap();
            let index = Index::parse(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
            newest.push(index.get("lastlog").unwrap().clone());
        }
        let last = newest.last().unwrap();
        let listed: Vec<&str> = last.previous.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(listed, [&newest[2].version, &newest[1].version]);
        for earlier in &last.previous {
            let bytes = std::fs::read(out.join(&earlier.archive)).unwrap();
            assert_eq!(super::super::sha256_hex(&bytes), earlier.sha256);
        }
        // The build before those is no longer served, and what is served
        // verifies, earlier builds and all.
        assert!(!out.join(&newest[0].archive).exists());
        let public = signing::read_private(&key).unwrap().verifying_key();
        assert_eq!(super::super::verify::verify(&out, &public).problems, []);
        std::fs::write(out.join(&last.previous[1].archive), b"other bytes").unwrap();
        let problems = super::super::verify::verify(&out, &public).problems;
        assert!(!problems.is_empty());
        assert!(
            problems.iter().all(|p| p.file == last.previous[1].archive),
            "{problems:?}"
        );
        let chosen = last.at_version(&newest[1].version).unwrap();
        assert_eq!(chosen.sha256, newest[1].sha256);
        assert!(last.at_version("19700101.0").is_none());
    }

    #[test]
    fn an_unchanged_archive_is_linked_from_the_last_build_and_a_tampered_one_rewritten() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        for name in ["a", "b", "c"] {
            let module = tree.join(format!("mod_{name}"));
            std::fs::create_dir_all(&module).unwrap();
            std::fs::write(module.join(format!("mod_{name}.lua")), "-- code\n").unwrap();
        }
        let built = TestBuild::new(dir.path());
        let out = &built.out;
        let archives = || {
            let index = Index::parse(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
            index
                .modules
                .iter()
                .map(|m| out.join(&m.archive))
                .collect::<Vec<_>>()
        };
        build(&built.options(&tree)).unwrap();
        let first = archives();
        let inode = |path: &Path| std::fs::metadata(path).unwrap().ino();
        let inodes: Vec<u64> = first.iter().map(|p| inode(p)).collect();
        let packed = std::fs::read(&first[1]).unwrap();
        // Changed in place on the server, length kept.
        let mut tampered = packed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0xff;
        std::fs::write(&first[1], &tampered).unwrap();
        // Replaced by a link to the very bytes: never linked in.
        let elsewhere = dir.path().join("elsewhere.tar.gz");
        std::fs::rename(&first[2], &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &first[2]).unwrap();

        build(&built.options(&tree)).unwrap();
        let second = archives();
        assert_eq!(first, second);
        assert_eq!(
            inode(&second[0]),
            inodes[0],
            "an unchanged archive is linked"
        );
        assert_eq!(std::fs::read(&second[1]).unwrap(), packed);
        assert!(std::fs::symlink_metadata(&second[2]).unwrap().is_file());
        let public = signing::read_private(&built.key).unwrap().verifying_key();
        assert_eq!(super::super::verify::verify(out, &public).problems, []);
    }

    #[test]
    fn a_bad_repository_name_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let out = dir.path().join("repo");
        for name in ["", "../x", "a b", &"n".repeat(65)] {
            let error = publish(
                &out,
                name,
                &key,
                time::Duration::days(1),
                vec![],
                Keep::Published(0),
                None,
            );
            assert!(matches!(error, Err(BuildError::Name(_))), "{name}");
        }
        assert!(!out.exists());
    }
}
