//! `index.json`: what a repository offers. Written by `repo build`, checked
//! by `repo verify`, and read by modman only after its signature has been
//! verified. Parsing validates every field that later becomes a path or a
//! name, so nothing downstream has to trust the file.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::is_valid_repository_name;

pub use super::advisory::{Advisory, AdvisoryKind};
pub use super::metadata::{Headers, Need};

/// Bumped on any incompatible change; readers refuse other values.
///
/// Schema 2 added `serial`, `generated` and `expires`. Schema 1 indexes
/// are refused rather than read without them: an index that carries no
/// serial or expiry could be replayed forever, so accepting one would
/// switch the replay protection off for anyone who serves an old file.
/// Schema 3 added `repository`, refused without it for the same reason
/// (see [`Index::repository`]); an older modman reading a schema 3 index
/// says to upgrade, rather than stumbling on an unknown field.
pub const SCHEMA: u32 = 3;

/// The whole index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub schema: u32,
    /// The repository this index was built for (`repo build --name`),
    /// inside what is signed. One key may sign several repositories (a
    /// `stable` and a `testing`); without the name, one of them served at
    /// the other's URL would pass as it, signature and serial being valid.
    /// modman refuses an index whose name is not the one its
    /// `[[repositories]]` entry gives, and one without a name (schema 2,
    /// built before names existed): nothing can tell which repository
    /// such an index belongs to, so accepting it would keep that
    /// substitution open. The fix is to rebuild with `--name`.
    pub repository: String,
    /// Raised by every build of the repository (microseconds since 1970
    /// at least, so two builds within one second differ, and above the
    /// serial in the output directory). modman keeps the highest
    /// serial it accepted per repository and refuses a lower one, or the
    /// same one with other content: an old index replayed by a man in the
    /// middle or a stale mirror would otherwise downgrade modules.
    pub serial: u64,
    /// When `repo build` made it.
    pub generated: Timestamp,
    /// After this, the index is not used for installs and updates: an
    /// index frozen by someone in the middle stops working rather than
    /// hiding new versions forever.
    pub expires: Timestamp,
    /// Sorted by name, names unique.
    pub modules: Vec<ModuleEntry>,
    /// Versions the repository marks as insecure or withdrawn (`repo
    /// advise`), whether or not it still offers them. Left out when there
    /// are none, so indexes without advisories read as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<Advisory>,
}

/// Checks what one build of a module names (the newest or an earlier
/// one): its archive path, its files, its SHA-256 and its dependencies,
/// which later become paths, a comparison and names.
fn check_build(
    archive: &str,
    files: &[String],
    sha256: &str,
    dependencies: &[Dependency],
) -> Result<(), String> {
    if !is_safe_url_path(archive) {
        return Err(format!(
            "archive path `{}` is not a plain relative path (after percent-decoding)",
            crate::clean::clean(archive)
        ));
    }
    if let Some(bad) = files.iter().find(|f| !is_safe_relative_path(f)) {
        return Err(format!(
            "file `{}` is not a plain relative path",
            crate::clean::clean(bad)
        ));
    }
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("sha256 is not 64 lower-case hex digits".into());
    }
    if let Some(bad) = dependencies.iter().find(|d| !is_valid_module_name(&d.name)) {
        return Err(format!(
            "dependency `{}` is not a valid module name",
            crate::clean::clean(&bad.name)
        ));
    }
    Ok(())
}

/// Which index: its repository's name, serial and dates.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub repository: String,
    pub serial: u64,
    pub generated: Timestamp,
    pub expires: Timestamp,
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "repository {}, serial {}, generated {}, expires {}",
            self.repository, self.serial, self.generated, self.expires
        )
    }
}

/// A point in time, written as RFC 3339 in UTC (`2026-11-24T15:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// Now, to the second: finer would only make the index harder to read.
    pub fn now() -> Timestamp {
        Timestamp::to_the_second(OffsetDateTime::now_utc())
    }

    /// `time` without its fraction of a second.
    pub fn to_the_second(time: OffsetDateTime) -> Timestamp {
        Timestamp(time.replace_nanosecond(0).unwrap_or(time))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let utc = self.0.to_offset(time::UtcOffset::UTC);
        match utc.format(&Rfc3339) {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "{}", utc.unix_timestamp()),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(Timestamp)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}")))
    }
}

/// One module as the repository offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleEntry {
    /// Without the `mod_` prefix, as in `modules_enabled`.
    pub name: String,
    /// Readable and ordered by date (`YYYYMMDD.<id>`); an update is a
    /// changed `sha256`, never a version comparison alone.
    pub version: String,
    pub summary: String,
    /// Upstream labels, such as `Stage-Beta`.
    pub labels: Vec<String>,
    /// From a `Stage-*` label, lower case: alpha, beta, stable, deprecated…
    pub stage: Option<String>,
    /// The README without its front matter (Markdown). Parsed for the
    /// catalog, it goes to disk as it is read (see
    /// [`super::descriptions::Descriptions::parse`]).
    #[serde(deserialize_with = "super::descriptions::read")]
    pub description: String,
    pub dependencies: Vec<Dependency>,
    pub compatibility: Vec<Compatibility>,
    /// The main file's `--% requires/conflicts/lua` headers; left out of
    /// the index when there are none, so older indexes read the same.
    #[serde(default, skip_serializing_if = "Headers::is_empty")]
    pub headers: Headers,
    /// Path of the archive, relative to the repository root.
    pub archive: String,
    /// Size of the archive in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the archive.
    pub sha256: String,
    /// Files in the archive, relative to the module directory, sorted.
    pub files: Vec<String>,
    /// Set when this is a Lua library that other modules load with
    /// `module:require` (a LuaRocks library rock, such as mod_lib_ldap:
    /// `ldap`) rather than a module Prosody loads: installed as
    /// `LIBRARY/` in the module directory, where Prosody finds it by that
    /// name, and never enabled. Left out of the index otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
    /// The commits that touched the module, newest first, as `repo
    /// build` read them from the tree's history (git or Mercurial): those
    /// since the previous build, then what that build recorded, at most
    /// [`limits::CHANGES`]. An update's question shows those after the
    /// installed copy. Left out when there are none (no checkout).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Earlier builds the repository still serves (`repo build --keep`),
    /// newest first, so an admin can choose one (`install x@VERSION`).
    /// Left out of the index when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<Earlier>,
    /// Every earlier version a LuaRocks server's manifest lists, newest
    /// first, by version only: a refresh downloads no rock but the
    /// newest, and one of these is downloaded, read and pinned only when
    /// an admin chooses it (it then joins `previous`). Left out when
    /// there are none (always, in a signed index).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listed: Vec<String>,
}

/// One commit of a module's change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The commit, abbreviated as the version's id is (`ab12cd34`).
    pub id: String,
    /// When it was committed.
    pub date: Timestamp,
    /// The first line of its message.
    pub summary: String,
}

impl Change {
    /// Whether this is the commit `version` (`YYYYMMDD.<id>`) was built
    /// from; ids compare abbreviated, as they are written.
    pub fn is(&self, version: &str) -> bool {
        version.split_once('.').is_some_and(|(_, id)| {
            !id.is_empty() && (self.id.starts_with(id) || id.starts_with(&self.id))
        })
    }
}

/// An earlier build of a module that a repository still serves: what
/// tells it apart from the newest (its archive, checked the same way, and
/// what it holds and needs). Its summary, README and compatibility are
/// the newest's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Earlier {
    pub version: String,
    pub archive: String,
    pub size: u64,
    pub sha256: String,
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

impl ModuleEntry {
    /// Every version on offer, the newest (this entry's) first: then the
    /// versions a LuaRocks server lists, when it lists some (they hold
    /// those of its rocks already read, in the manifest's order), else
    /// the earlier builds.
    pub fn versions(&self) -> impl Iterator<Item = &str> {
        let builds = self.previous.iter().filter(|_| self.listed.is_empty());
        std::iter::once(self.version.as_str())
            .chain(builds.map(|e| e.version.as_str()))
            .chain(self.listed.iter().map(String::as_str))
    }

    /// Whether `version` is listed by a LuaRocks server but not read yet:
    /// choosing it downloads its rock first.
    pub fn is_only_listed(&self, version: &str) -> bool {
        self.listed.iter().any(|v| v == version)
            && self.previous.iter().all(|e| e.version != version)
    }

    /// The module as offered at `version`: this entry, or one of its
    /// earlier builds in its place; `None` when it is not on offer.
    pub fn at_version(&self, version: &str) -> Option<ModuleEntry> {
        if self.version == version {
            return Some(self.clone());
        }
        let earlier = self.previous.iter().find(|e| e.version == version)?;
        Some(ModuleEntry {
            version: earlier.version.clone(),
            archive: earlier.archive.clone(),
            size: earlier.size,
            sha256: earlier.sha256.clone(),
            files: earlier.files.clone(),
            dependencies: earlier.dependencies.clone(),
            previous: vec![],
            listed: vec![],
            // Its log is the newest's, from its own commit down.
            changes: (self.changes.iter())
                .skip_while(|c| !c.is(version))
                .cloned()
                .collect(),
            ..self.clone()
        })
    }

    /// This build as an earlier one, for the next build's index.
    pub fn as_earlier(&self) -> Earlier {
        Earlier {
            version: self.version.clone(),
            archive: self.archive.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            files: self.files.clone(),
            dependencies: self.dependencies.clone(),
        }
    }

    /// Replaces control characters in every text shown to people (see
    /// [`crate::clean::clean`]); returns whether there were any. Names,
    /// paths and hashes are validated instead, since they must match.
    pub fn clean_text(&mut self) -> bool {
        use crate::clean::clean_in_place;
        let mut changed = false;
        for text in [&mut self.version, &mut self.summary, &mut self.description]
            .into_iter()
            .chain(self.previous.iter_mut().map(|e| &mut e.version))
            .chain(self.listed.iter_mut())
            .chain(self.labels.iter_mut())
            .chain(self.stage.iter_mut())
            .chain(
                self.changes
                    .iter_mut()
                    .flat_map(|change| [&mut change.id, &mut change.summary]),
            )
            .chain(
                self.compatibility
                    .iter_mut()
                    .flat_map(|row| [&mut row.prosody, &mut row.status]),
            )
        {
            changed |= clean_in_place(text);
        }
        changed
    }
}

/// A `module:depends("x")` found in the module's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub name: String,
    pub kind: DependencyKind,
    /// Left out of the index when required, so indexes without optional
    /// dependencies read as before.
    #[serde(default, skip_serializing_if = "Need::is_required")]
    pub need: Need,
}

/// Where a dependency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    /// Another module of this repository: installed along with it.
    Community,
    /// Shipped with Prosody itself.
    Builtin,
    /// Neither: the module will not load unless the admin provides it.
    Missing,
}

/// One row of the README's Compatibility table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compatibility {
    /// As written: `0.12`, `trunk`, `0.10 and later`…
    pub prosody: String,
    /// As written: `Works`, `Doesn't work (uses is_admin)`…
    pub status: String,
    /// `Some(true)` for works, `Some(false)` for does not, `None` when the
    /// status says neither (untested, not needed).
    pub works: Option<bool>,
}

/// Why an index was refused.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("not a valid index: {0}")]
    Json(#[from] serde_json::Error),
    #[error("index schema {found} is not supported (this modman reads schema {SCHEMA}); upgrade modman or rebuild the repository")]
    Schema { found: u32 },
    #[error("module `{name}`: {problem}")]
    Module { name: String, problem: String },
    #[error("the index's repository name `{0}` is not a repository name (letters, digits, `-` and `_`, at most 64)")]
    RepositoryName(String),
    #[error("the index names no repository (it was built before `repo build --name`), so nothing tells it from another repository's index signed with the same key; rebuild it with `modman repo build --name NAME`, NAME as in modman.toml")]
    Unnamed,
    #[error("{what}: {found}, more than the {limit} modman accepts; the index was refused (rebuild the repository with fewer)")]
    TooMany {
        what: String,
        found: usize,
        limit: usize,
    },
    #[error("the index expires ({expires}) no later than it was generated ({generated})")]
    Dates {
        generated: Timestamp,
        expires: Timestamp,
    },
}

impl Index {
    /// Parses and validates index bytes (already signature-checked).
    pub fn parse(bytes: &[u8]) -> Result<Index, IndexError> {
        // Schema and name first, so an older or newer index gets the
        // clear message rather than a missing- or unknown-field error.
        #[derive(Deserialize)]
        struct Preamble {
            schema: u32,
            repository: Option<serde::de::IgnoredAny>,
        }
        let Preamble { schema, repository } = serde_json::from_slice(bytes)?;
        match (schema, repository) {
            (2, _) | (SCHEMA, None) => return Err(IndexError::Unnamed),
            (SCHEMA, Some(_)) => {}
            (found, _) => return Err(IndexError::Schema { found }),
        }
        let mut index: Index = serde_json::from_slice(bytes)?;
        if !is_valid_repository_name(&index.repository) {
            return Err(IndexError::RepositoryName(
                crate::clean::clean(&index.repository)
                    .chars()
                    .take(64)
                    .collect(),
            ));
        }
        if index.modules.len() > limits::MODULES {
            return Err(IndexError::TooMany {
                what: "modules".into(),
                found: index.modules.len(),
                limit: limits::MODULES,
            });
        }
        if index.expires <= index.generated {
            return Err(IndexError::Dates {
                generated: index.generated,
                expires: index.expires,
            });
        }
        if index.advisories.len() > limits::ADVISORIES {
            return Err(IndexError::TooMany {
                what: "advisories".into(),
                found: index.advisories.len(),
                limit: limits::ADVISORIES,
            });
        }
        for advisory in &mut index.advisories {
            advisory.clean_text();
            advisory.check().map_err(|problem| IndexError::Module {
                name: crate::clean::clean(&advisory.module)
                    .chars()
                    .take(64)
                    .collect(),
                problem: format!("an advisory: {problem}"),
            })?;
        }
        for module in &mut index.modules {
            if module.clean_text() {
                tracing::warn!(
                    "module `{}`: control characters in the index replaced with U+FFFD; rebuild the repository with this modman",
                    module.name.chars().filter(char::is_ascii_graphic).take(64).collect::<String>()
                );
            }
        }
        let mut previous: Option<&str> = None;
        for module in &index.modules {
            let problem = |problem: String| IndexError::Module {
                name: crate::clean::clean(&module.name).chars().take(64).collect(),
                problem,
            };
            if !is_valid_module_name(&module.name) {
                return Err(problem("not a valid module name".into()));
            }
            if previous.is_some_and(|p| p >= module.name.as_str()) {
                return Err(problem(
                    "modules are not sorted by name, or one is listed twice".into(),
                ));
            }
            previous = Some(&module.name);
            module.check_bounds().map_err(problem)?;
            for earlier in &module.previous {
                check_build(
                    &earlier.archive,
                    &earlier.files,
                    &earlier.sha256,
                    &earlier.dependencies,
                )
                .map_err(|p| problem(format!("earlier version {}: {p}", earlier.version)))?;
                if earlier.version == module.version {
                    return Err(problem(format!(
                        "version {} is listed twice",
                        earlier.version
                    )));
                }
            }
            check_build(
                &module.archive,
                &module.files,
                &module.sha256,
                &module.dependencies,
            )
            .map_err(problem)?;
            if let Some(library) = &module.library {
                if !is_valid_library_name(library) {
                    return Err(problem(format!(
                        "library `{}` is not a plain Lua library name",
                        crate::clean::clean(library)
                    )));
                }
            }
        }
        Ok(index)
    }

    /// Serialises deterministically (field order fixed, modules sorted).
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_else(|e| {
            unreachable!("an index of strings and numbers always serialises: {e}")
        });
        bytes.push(b'\n');
        bytes
    }

    /// Whether the index is past its expiry at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires <= now
    }

    /// The catalog of an unsigned source (a LuaRocks server), kept in the
    /// same shape. Nothing signs it, so there is no serial to replay and
    /// no expiry to freeze: TLS and the pins of each rock protect it, and
    /// it is as fresh as the last refresh.
    pub fn unsigned(repository: &str, modules: Vec<ModuleEntry>) -> Index {
        let now = Timestamp::now();
        Index {
            schema: SCHEMA,
            repository: repository.to_owned(),
            serial: 0,
            generated: now,
            expires: Timestamp(time::OffsetDateTime::new_utc(
                time::Date::MAX,
                time::Time::MIDNIGHT,
            )),
            modules,
            advisories: Vec::new(),
        }
    }

    /// Name, serial and dates, for `repo verify`, `info` and error
    /// messages.
    pub fn freshness(&self) -> String {
        self.stamp().to_string()
    }

    /// Which index this is, as facts.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            repository: self.repository.clone(),
            serial: self.serial,
            generated: self.generated,
            expires: self.expires,
        }
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&ModuleEntry> {
        self.modules
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.modules[i])
    }

    /// The advisories that concern version `version` of `module`, the
    /// insecure ones first.
    pub fn advisories_for(&self, module: &str, version: &str) -> Vec<&Advisory> {
        let mut found: Vec<&Advisory> = self
            .advisories
            .iter()
            .filter(|a| a.concerns(module, version))
            .collect();
        found.sort_by_key(|a| std::cmp::Reverse(a.kind));
        found
    }
}

/// The bounds of an index, the same when `repo build` writes one and
/// when modman reads one: each is far above what prosody-modules needs
/// (82 modules in Debian's package, its longest README about 40 KiB, a
/// handful of files and dependencies a module), and together they keep
/// what one index can make modman hold and send (in `list`, `info`, a
/// reply) small, whatever a repository serves within its 32 MiB.
pub mod limits {
    /// Modules in one index.
    pub const MODULES: usize = 20_000;
    /// Bytes of a summary (one line of the README).
    pub const SUMMARY: usize = 1_024;
    /// Bytes of a description (the README).
    pub const DESCRIPTION: usize = 256 * 1024;
    /// Bytes of a version, a label, a stage or a compatibility cell.
    pub const SHORT_TEXT: usize = 256;
    /// Labels of one module; also the entries of each of its headers
    /// (`requires`, `conflicts`, `lua`).
    pub const LABELS: usize = 64;
    /// Bytes of a path (the archive's, or a file's in it).
    pub const PATH: usize = 1_024;
    /// Rows of one module's compatibility table.
    pub const COMPATIBILITY: usize = 64;
    /// Files in one module's archive.
    pub const FILES: usize = 2_000;
    /// Dependencies of one module.
    pub const DEPENDENCIES: usize = 200;
    /// Entries of one module's change log.
    pub const CHANGES: usize = 50;
    /// Advisories in one index.
    pub const ADVISORIES: usize = 10_000;
    /// Bytes of an advisory's reason.
    pub const REASON: usize = 2_048;
    /// Earlier builds listed for one module.
    pub const PREVIOUS: usize = 32;
}

impl ModuleEntry {
    /// Whether every field is within [`limits`]; `Err` names the field,
    /// its size and the limit. Used by `repo build` (which skips such a
    /// module) and by [`Index::parse`] (which refuses the index).
    pub fn check_bounds(&self) -> Result<(), String> {
        let bytes = |what: &str, text: &str, limit: usize| match text.len() > limit {
            true => Err(format!(
                "{what} is {} bytes, more than the {limit} an index may hold",
                text.len()
            )),
            false => Ok(()),
        };
        let count = |what: &str, found: usize, limit: usize| match found > limit {
            true => Err(format!(
                "{found} {what}, more than the {limit} an index may hold"
            )),
            false => Ok(()),
        };
        bytes("the summary", &self.summary, limits::SUMMARY)?;
        bytes("the description", &self.description, limits::DESCRIPTION)?;
        bytes("the version", &self.version, limits::SHORT_TEXT)?;
        for label in self.labels.iter().chain(self.stage.iter()) {
            bytes("a label", label, limits::SHORT_TEXT)?;
        }
        for row in &self.compatibility {
            bytes("a compatibility row", &row.prosody, limits::SHORT_TEXT)?;
            bytes("a compatibility row", &row.status, limits::SHORT_TEXT)?;
        }
        let headers = &self.headers;
        for (what, values) in [
            ("`requires` headers", &headers.requires),
            ("`conflicts` headers", &headers.conflicts),
            ("`lua` headers", &headers.lua),
        ] {
            count(what, values.len(), limits::LABELS)?;
            for value in values {
                bytes("a header", value, limits::SHORT_TEXT)?;
            }
        }
        bytes("the archive path", &self.archive, limits::PATH)?;
        for file in &self.files {
            bytes("a file path", file, limits::PATH)?;
        }
        count("labels", self.labels.len(), limits::LABELS)?;
        count(
            "compatibility rows",
            self.compatibility.len(),
            limits::COMPATIBILITY,
        )?;
        count("files", self.files.len(), limits::FILES)?;
        count("changes", self.changes.len(), limits::CHANGES)?;
        for change in &self.changes {
            bytes("a change's id", &change.id, limits::SHORT_TEXT)?;
            bytes("a change's summary", &change.summary, limits::SHORT_TEXT)?;
        }
        count("earlier versions", self.previous.len(), limits::PREVIOUS)?;
        count("listed versions", self.listed.len(), limits::PREVIOUS)?;
        for version in &self.listed {
            bytes("a listed version", version, limits::SHORT_TEXT)?;
        }
        for earlier in &self.previous {
            bytes("an earlier version", &earlier.version, limits::SHORT_TEXT)?;
            bytes("an earlier archive path", &earlier.archive, limits::PATH)?;
            count("files", earlier.files.len(), limits::FILES)?;
            for file in &earlier.files {
                bytes("a file path", file, limits::PATH)?;
            }
            count(
                "dependencies",
                earlier.dependencies.len(),
                limits::DEPENDENCIES,
            )?;
        }
        count(
            "dependencies",
            self.dependencies.len(),
            limits::DEPENDENCIES,
        )
    }
}

/// A Lua library name that can be a directory of the module directory
/// beside the modules (`ldap`): letters, digits and `_`, not `mod_...`
/// (a module's) and not starting with `.` (modman's own staging).
pub fn is_valid_library_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with("mod_")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Module names as Prosody uses them: letters, digits, `_` and `-`, at
/// most 100 characters, not starting with `-`. Anything else could be a
/// path trick once it becomes `mod_<name>`.
pub fn is_valid_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `a/b.c` yes; empty, absolute, `.`/`..` components, backslashes,
/// control characters or empty components no.
pub fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && crate::clean::is_clean(path)
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// A path that becomes part of a URL under the repository: a plain
/// relative path as written and once percent-decoded (a URL resolver
/// treats `%2e%2e` as `..`), without a query or fragment.
pub fn is_safe_url_path(path: &str) -> bool {
    !path.contains(['?', '#'])
        && is_safe_relative_path(path)
        && percent_decoded(path).is_some_and(|decoded| is_safe_relative_path(&decoded))
}

/// `path` with `%XX` escapes decoded; `None` for a malformed escape or a
/// result that is not UTF-8.
fn percent_decoded(path: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(path.len());
    let mut rest = path.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid entry, for tests here and in the catalog.
    pub(crate) fn entry(name: &str) -> ModuleEntry {
        ModuleEntry {
            name: name.into(),
            version: "20230223.abcdef12".into(),
            summary: String::new(),
            labels: vec![],
            stage: None,
            description: String::new(),
            dependencies: vec![],
            compatibility: vec![],
            headers: Headers::default(),
            archive: format!("archives/mod_{name}.tar.gz"),
            size: 1,
            sha256: "0".repeat(64),
            files: vec![],
            library: None,
            changes: vec![],
            previous: vec![],
            listed: vec![],
        }
    }

    /// An index of `modules`, fresh for 30 days from 2026-11-01.
    pub(crate) fn index_of(modules: Vec<ModuleEntry>) -> Index {
        let generated = OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap();
        Index {
            schema: SCHEMA,
            repository: "r".into(),
            serial: 1,
            generated: Timestamp(generated),
            expires: Timestamp(generated + time::Duration::days(30)),
            modules,
            advisories: vec![],
        }
    }

    #[test]
    fn round_trips_and_finds_by_name() {
        let index = index_of(vec![entry("a"), entry("b")]);
        let parsed = Index::parse(&index.to_json()).unwrap();
        assert_eq!(parsed, index);
        assert_eq!(parsed.get("b").unwrap().name, "b");
        assert!(parsed.get("c").is_none());
    }

    #[test]
    fn refuses_what_could_become_a_path_trick() {
        fn bad_dependency(m: &mut ModuleEntry) {
            m.dependencies = vec![Dependency {
                name: "a/b".into(),
                kind: DependencyKind::Community,
                need: Need::Required,
            }];
        }
        type Mutation = fn(&mut ModuleEntry);
        fn bad_earlier(m: &mut ModuleEntry) {
            let mut earlier = m.as_earlier();
            earlier.version = "0".into();
            earlier.archive = "archives/../../../etc/shadow".into();
            m.previous = vec![earlier];
        }
        fn earlier_twice(m: &mut ModuleEntry) {
            m.previous = vec![m.as_earlier()];
        }
        let cases: [(Mutation, &str); 12] = [
            (bad_earlier, "earlier version 0: archive path"),
            (earlier_twice, "listed twice"),
            (|m| m.name = "../etc".into(), "not a valid module name"),
            (
                |m| m.archive = "/etc/passwd".into(),
                "not a plain relative path",
            ),
            (
                |m| m.archive = "archives/../../x".into(),
                "not a plain relative path",
            ),
            (
                |m| m.archive = "archives/%2e%2e/%2e%2e/x.tar.gz".into(),
                "after percent-decoding",
            ),
            (
                |m| m.archive = "archives/%2E%2E%2f..%2Fx".into(),
                "after percent-decoding",
            ),
            (
                |m| m.archive = "archives/x%2fy%00".into(),
                "after percent-decoding",
            ),
            (
                |m| m.archive = "archives/x.tar.gz?y=1".into(),
                "after percent-decoding",
            ),
            (
                |m| m.archive = "archives/x%zz".into(),
                "after percent-decoding",
            ),
            (|m| m.sha256 = "XYZ".into(), "sha256"),
            (bad_dependency, "dependency `a/b`"),
        ];
        for (mutate, expected) in cases {
            let mut module = entry("a");
            mutate(&mut module);
            let index = index_of(vec![module]);
            let error = Index::parse(&index.to_json()).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
        let unsorted = index_of(vec![entry("b"), entry("a")]);
        assert!(Index::parse(&unsorted.to_json()).is_err());
    }

    #[test]
    fn another_schema_gets_an_upgrade_hint() {
        let error = Index::parse(br#"{"schema": 4, "whatever": true}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("schema 4 is not supported"), "{error}");
        assert!(Index::parse(b"not json").is_err());
        // An index without serial and expiry is not read at all.
        let error = Index::parse(br#"{"schema": 1, "modules": []}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("schema 1 is not supported"), "{error}");
    }

    #[test]
    fn control_characters_are_cleaned_from_text_and_refused_in_paths() {
        let mut module = entry("a");
        module.summary = "\u{1b}[2Jhi\u{7}".into();
        module.description = "NUL\u{0} here".into();
        module.compatibility = vec![Compatibility {
            prosody: "0.12\u{1b}".into(),
            status: "Works".into(),
            works: Some(true),
        }];
        let parsed = Index::parse(&index_of(vec![module.clone()]).to_json()).unwrap();
        let parsed = &parsed.modules[0];
        assert_eq!(parsed.summary, "\u{FFFD}[2Jhi\u{FFFD}");
        assert_eq!(parsed.description, "NUL\u{FFFD} here");
        assert_eq!(parsed.compatibility[0].prosody, "0.12\u{FFFD}");
        module.files = vec!["ok.lua".into(), "bad\u{1b}.lua".into()];
        let error = Index::parse(&index_of(vec![module]).to_json())
            .unwrap_err()
            .to_string();
        assert!(error.contains("file `bad\u{FFFD}.lua`"), "{error}");
    }

    #[test]
    fn dates_are_checked_and_expiry_is_inclusive() {
        let index = index_of(vec![entry("a")]);
        assert!(!index.is_expired(index.generated));
        assert!(index.is_expired(index.expires));
        assert_eq!(
            index.freshness(),
            "repository r, serial 1, generated 2026-11-01T00:00:00Z, expires 2026-12-01T00:00:00Z"
        );
        let backwards = Index {
            expires: index.generated,
            ..index.clone()
        };
        let error = Index::parse(&backwards.to_json()).unwrap_err().to_string();
        assert!(error.contains("no later than it was generated"), "{error}");
        let text = String::from_utf8(index.to_json()).unwrap();
        let bad = text.replace("2026-12-01T00:00:00Z", "next week");
        let error = Index::parse(bad.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("not an RFC 3339 time"), "{error}");
    }

    #[test]
    fn fields_over_their_limits_are_refused_naming_the_limit() {
        type Mutation = fn(&mut ModuleEntry);
        let cases: [(Mutation, String); 7] = [
            (
                |m| m.headers.requires = vec!["f".into(); limits::LABELS + 1],
                format!("65 `requires` headers, more than the {}", limits::LABELS),
            ),
            (
                |m| m.files = vec![format!("{}.lua", "d/".repeat(limits::PATH))],
                format!("a file path is 2052 bytes, more than the {}", limits::PATH),
            ),
            (
                |m| m.summary = "s".repeat(limits::SUMMARY + 1),
                format!(
                    "the summary is 1025 bytes, more than the {}",
                    limits::SUMMARY
                ),
            ),
            (
                |m| m.description = "d".repeat(limits::DESCRIPTION + 1),
                format!("more than the {}", limits::DESCRIPTION),
            ),
            (
                |m| {
                    m.files = (0..=limits::FILES)
                        .map(|i| format!("f{i:05}.lua"))
                        .collect()
                },
                format!("2001 files, more than the {}", limits::FILES),
            ),
            (
                |m| {
                    m.dependencies = (0..=limits::DEPENDENCIES)
                        .map(|i| Dependency {
                            name: format!("d{i}"),
                            kind: DependencyKind::Community,
                            need: Need::Required,
                        })
                        .collect()
                },
                format!("201 dependencies, more than the {}", limits::DEPENDENCIES),
            ),
            (
                |m| m.labels = vec!["l".into(); limits::LABELS + 1],
                format!("65 labels, more than the {}", limits::LABELS),
            ),
        ];
        for (mutate, expected) in cases {
            let mut module = entry("a");
            mutate(&mut module);
            assert!(module.check_bounds().is_err());
            let error = Index::parse(&index_of(vec![module]).to_json())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("module `a`") && error.contains(&expected),
                "{expected:?} not in {error:?}"
            );
        }
        let many = index_of(
            (0..=limits::MODULES)
                .map(|i| entry(&format!("m{i:05}")))
                .collect(),
        );
        let error = Index::parse(&many.to_json()).unwrap_err();
        assert!(
            matches!(error, IndexError::TooMany { found, limit, .. } if found == limits::MODULES + 1 && limit == limits::MODULES),
            "{error}"
        );
        // At the limits, accepted.
        let mut module = entry("a");
        module.summary = "s".repeat(limits::SUMMARY);
        Index::parse(&index_of(vec![module]).to_json()).unwrap();
    }

    #[test]
    fn advisories_are_cleaned_and_checked_when_read() {
        let mut advisory = crate::repo::advisory::tests::advisory("a", "1", AdvisoryKind::Insecure);
        advisory.reason = "leaks\u{1b}[2J".into();
        let mut index = index_of(vec![entry("a")]);
        index.advisories = vec![advisory.clone()];
        let parsed = Index::parse(&index.to_json()).unwrap();
        assert_eq!(parsed.advisories[0].reason, "leaks\u{FFFD}[2J");
        assert_eq!(parsed.advisories_for("a", "1").len(), 1);
        assert!(parsed.advisories_for("a", "2").is_empty());
        advisory.reason = "r".repeat(limits::REASON + 1);
        index.advisories = vec![advisory];
        let error = Index::parse(&index.to_json()).unwrap_err().to_string();
        assert!(error.contains("an advisory"), "{error}");
    }

    #[test]
    fn the_repository_name_is_read_and_checked() {
        let mut index = index_of(vec![]);
        assert_eq!(Index::parse(&index.to_json()).unwrap().repository, "r");
        // Without a name: a schema 2 index, or a schema 3 one that
        // lost it.
        let mut json: serde_json::Value = serde_json::from_slice(&index.to_json()).unwrap();
        json.as_object_mut().unwrap().remove("repository");
        assert!(matches!(
            Index::parse(&serde_json::to_vec(&json).unwrap()),
            Err(IndexError::Unnamed)
        ));
        json["schema"] = 2.into();
        let error = Index::parse(&serde_json::to_vec(&json).unwrap()).unwrap_err();
        assert!(matches!(error, IndexError::Unnamed), "{error}");
        assert!(error.to_string().contains("repo build --name"), "{error}");
        index.repository = "../x".into();
        assert!(matches!(
            Index::parse(&index.to_json()),
            Err(IndexError::RepositoryName(_))
        ));
    }
}
