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
use super::index::{is_valid_module_name, Dependency, DependencyKind, Index, ModuleEntry, SCHEMA};
use super::metadata;
use super::signing;

/// What to build from where.
pub struct BuildOptions<'a> {
    /// A tree in the upstream layout: `mod_x/mod_x.lua`, `mod_x/README.markdown`.
    pub tree: &'a Path,
    pub out: &'a Path,
    pub key: &'a Path,
    /// Prosody's own module directory, to tell built-in dependencies from
    /// missing ones.
    pub builtin_dir: &'a Path,
}

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
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::Io {
        path: path.to_owned(),
        problem: e.to_string(),
    }
}

/// A module packed and described, before dependency kinds are known.
struct Packed {
    entry: ModuleEntry,
    depends: Vec<String>,
    archive: Vec<u8>,
}

/// Builds the repository. See the module documentation.
pub fn build(options: &BuildOptions) -> Result<BuildReport, BuildError> {
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
    for name in names {
        match pack_module(tree, &name, &history) {
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

    let community: BTreeSet<String> = packed.iter().map(|p| p.entry.name.clone()).collect();
    for module in &mut packed {
        for name in std::mem::take(&mut module.depends) {
            let kind = dependency_kind(&name, &community, options.builtin_dir);
            if kind == DependencyKind::Missing {
                warnings.push(format!(
                    "mod_{}: depends on {name}, which is neither in the tree nor in {}",
                    module.entry.name,
                    options.builtin_dir.display()
                ));
            }
            module.entry.dependencies.push(Dependency { name, kind });
        }
    }

    let modules = packed.len();
    publish(
        options.out,
        &key,
        packed.into_iter().map(|p| (p.entry, p.archive)).collect(),
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
    } else if crate::prosody::has_module(builtin_dir, name) {
        DependencyKind::Builtin
    } else {
        DependencyKind::Missing
    }
}

/// Writes a signed repository of `modules` (sorted by name, each entry
/// with its archive's bytes) at `out`: built beside it, then renamed into
/// place (see [`replace_dir`]).
pub(crate) fn publish(
    out: &Path,
    key: &ed25519_dalek::SigningKey,
    modules: Vec<(ModuleEntry, Vec<u8>)>,
) -> Result<(), BuildError> {
    let staging = staging_dir(out)?;
    let archives = staging.path().join("archives");
    std::fs::create_dir(&archives).map_err(io_error(&archives))?;
    let mut entries = Vec::with_capacity(modules.len());
    for (entry, archive) in modules {
        let path = staging.path().join(&entry.archive);
        std::fs::write(&path, &archive).map_err(io_error(&path))?;
        entries.push(entry);
    }
    let index = Index {
        schema: SCHEMA,
        modules: entries,
    }
    .to_json();
    let index_path = staging.path().join("index.json");
    std::fs::write(&index_path, &index).map_err(io_error(&index_path))?;
    let signature_path = staging.path().join("index.json.sig");
    std::fs::write(&signature_path, signing::sign(key, &index))
        .map_err(io_error(&signature_path))?;
    replace_dir(staging, out)
}

/// Packs one module and describes it; `Err` says why it is skipped.
fn pack_module(
    tree: &Path,
    name: &str,
    history: &History,
) -> Result<(Packed, Option<String>), String> {
    if !is_valid_module_name(name) {
        return Err("not a valid module name".into());
    }
    let dir = tree.join(format!("mod_{name}"));
    // Only the layouts that live inside the module's own directory.
    let [nested, flat, ..] = crate::prosody::module_file_candidates(name);
    if !tree.join(&nested).is_file() && !tree.join(&flat).is_file() {
        return Err(format!("neither {flat} nor {nested} in it"));
    }
    let (bytes, files) = archive::pack(&dir, tree, name).map_err(|e| e.to_string())?;
    // Read back what was packed: the archive checks itself, and the Lua
    // files are scanned as shipped.
    let contents = archive::read(&bytes, name).map_err(|e| e.to_string())?;
    let mut depends: Vec<String> = contents
        .iter()
        .filter(|f| f.path.ends_with(".lua"))
        .flat_map(|f| metadata::depends(&String::from_utf8_lossy(&f.data)))
        .filter(|d| d != name)
        .collect();
    depends.sort();
    depends.dedup();

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
    let entry = ModuleEntry {
        name: name.to_owned(),
        archive: format!("archives/mod_{name}-{version}.tar.gz"),
        version,
        summary: readme.summary,
        labels: readme.labels,
        stage: readme.stage,
        description: readme.description,
        dependencies: vec![],
        compatibility: readme.compatibility,
        size: bytes.len() as u64,
        sha256,
        files,
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
fn staging_dir(out: &Path) -> Result<tempfile::TempDir, BuildError> {
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
fn replace_dir(staging: tempfile::TempDir, out: &Path) -> Result<(), BuildError> {
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
