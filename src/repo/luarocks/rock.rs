//! A `.src.rock`: a zip holding the rockspec and the source archive (a
//! tar.gz of the prosody-modules tree, or of the module's part of it).
//! Reading one yields the module's files laid out under `mod_x/` as
//! Prosody loads them after `prosodyctl install`:
//!
//! - `build.modules` maps Lua module names to files. LuaRocks installs
//!   `mod_x = "mod_x.lua"` as `share/lua/5.4/mod_x.lua` and `["mod_x.lib"]`
//!   as `share/lua/5.4/mod_x/lib.lua`. Prosody looks for a module's
//!   resources in `mod_x/` either way, so the files go to `mod_x.lua` and
//!   `lib.lua` in the module's directory.
//! - A library rock (mod_lib_ldap: `modules = { ldap = "ldap.lib.lua" }`,
//!   no module of its own) is for other modules' `module:require "ldap"`.
//!   LuaRocks installs it as `share/lua/5.4/ldap.lua`; of the places
//!   Prosody then looks, the one that is a directory of its own is
//!   `ldap/ldap.lib.lua` (and `ldap/vcard.lib.lua` for `"ldap/vcard"`), so
//!   the rock is laid out as `ldap.lib.lua`, `vcard.lib.lua` in the
//!   directory `ldap/` ([`Rock::library`]).
//! - `build.copy_directories` are copied whole (templates, assets).
//! - The README is kept too: it is where summary, stage and
//!   compatibility come from, and `info` shows it after install.
//!
//! The rockspec's `source.url` is never fetched: the source is inside the
//!
//! Every file a rock installs must be one Prosody's loader finds for that
//! module or library only ([`placement::check`]): a library named `share`
//! would otherwise put files where Prosody looks for its own modules.
//!
//! Reading streams: the zip is never unpacked as a whole, the source tar.gz
//! is decompressed once with every byte counted, and only the contents the
//! caller needs ([`Reading`]) are kept.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use super::rockspec::Rockspec;
use crate::repo::archive::{self, ArchiveFile, Found, Outside, MAX_ARCHIVE};
use crate::repo::index::is_safe_relative_path;
use crate::repo::placement::{self, Owner};

/// Most entries a `.src.rock` may hold (a rockspec and a source archive,
/// sometimes a few more files).
pub const MAX_ROCK_ENTRIES: usize = 64;
/// Largest rockspec read.
pub const MAX_ROCKSPEC: u64 = 256 * 1024;

/// Largest Lua module source or README a rock may hold (Prosody's largest
/// module is under 100 KiB): these are what a catalog entry is made of,
/// so their size is what describing a rock holds.
pub const MAX_TEXT: u64 = 1024 * 1024;

/// The README file names a rock's module directory may have, in the order
/// they are looked for.
const READMES: [&str; 2] = ["README.markdown", "README.md"];

/// How much of a rock [`read`] keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The contents of every file it installs: to install or mirror it.
    Whole,
    /// The contents of its Lua modules and README only, its other files by
    /// name: all a catalog entry needs, without holding a rock's assets
    /// (which an attacker can make as large as the limits allow).
    Describe,
}

/// A rock read and checked.
#[derive(Debug, Clone)]
pub struct Rock {
    pub rockspec: Rockspec,
    /// Every file it installs, relative to its directory, sorted.
    pub paths: Vec<String>,
    /// The contents read, sorted by path: of every file in `paths` for
    /// [`Reading::Whole`], of the Lua modules and README for
    /// [`Reading::Describe`].
    pub files: Vec<ArchiveFile>,
    /// The Lua library it is, for a library rock (its directory's name).
    pub library: Option<String>,
}

/// Why a rock was refused: the rock's file name, then what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rock}: {problem}")]
pub struct RockError {
    /// The `.src.rock` file name, such as `mod_x-3-1.src.rock`.
    pub rock: String,
    pub problem: String,
}

/// `mod_x-3-1.src.rock` -> (`mod_x`, `3-1`): the rock a file name says it
/// is, checked before anything is fetched or written under that name.
pub fn split_file_name(file_name: &str) -> Option<(&str, &str)> {
    let stem = file_name.strip_suffix(".src.rock")?;
    let (package, revision) = stem.rsplit_once('-')?;
    let (package, _) = package.rsplit_once('-')?;
    let version = &stem[package.len() + 1..];
    let valid = super::is_module_rock(package)
        && super::RockVersion::parse(version).is_some()
        && !revision.is_empty();
    valid.then_some((package, version))
}

/// Reads the `.src.rock` `file_name` (as published, `mod_x-N-R.src.rock`),
/// keeping what `reading` asks for. `has_module` says whether Prosody
/// already has a module of a name: a library may not take it. What its
/// source unpacks to is added to `unpacked`, even when it is refused.
pub fn read(
    file_name: &str,
    bytes: &[u8],
    reading: Reading,
    has_module: &dyn Fn(&str) -> bool,
    unpacked: &mut u64,
) -> Result<Rock, RockError> {
    let fail = |problem: String| RockError {
        rock: file_name.to_owned(),
        problem,
    };
    let (package, version) = split_file_name(file_name)
        .ok_or_else(|| fail("not a rock file name (mod_x-N-R.src.rock)".into()))?;
    let mut zip = open_zip(bytes).map_err(fail)?;
    let rockspec_name = format!("{package}-{version}.rockspec");
    let rockspec_bytes = zip_entry(&mut zip, &rockspec_name)
        .map_err(fail)?
        .ok_or_else(|| fail(format!("no {rockspec_name} in it")))?;
    let text = std::str::from_utf8(&rockspec_bytes)
        .map_err(|_| fail(format!("{rockspec_name} is not UTF-8 text")))?;
    let rockspec = Rockspec::parse(&rockspec_name, text).map_err(fail)?;
    if rockspec.package != package || rockspec.version.to_string() != version {
        return Err(fail(format!(
            "{rockspec_name} says it is {} {}",
            rockspec.package, rockspec.version
        )));
    }
    let library =
        library_of(&rockspec).map_err(|problem| fail(format!("{rockspec_name}: {problem}")))?;
    let sources = sources_of(&rockspec);
    let wanted = |path: &str| {
        if sources.contains(path) || READMES.contains(&path) {
            Some(MAX_TEXT)
        } else if reading == Reading::Whole && copied(&rockspec, path) {
            Some(archive::MAX_UNPACKED)
        } else {
            None
        }
    };
    let source_file = &rockspec.source_file;
    let found = match zip.by_name(source_file) {
        Ok(source) => archive::read_under(
            source.take(MAX_ARCHIVE),
            &rockspec.source_dir,
            Outside::Skip,
            &wanted,
            unpacked,
        )
        .map_err(|e| fail(format!("{source_file}: {e}")))?,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(fail(format!(
                "no {source_file} (the rockspec's source) in it"
            )))
        }
        Err(e) => return Err(fail(format!("{source_file} is unreadable: {e}"))),
    };
    if found.is_empty() {
        return Err(fail(format!(
            "{source_file}: nothing under source.dir `{}`",
            rockspec.source_dir
        )));
    }
    let (paths, files) = module_files(&rockspec, library.as_deref(), found)
        .map_err(|problem| fail(format!("{rockspec_name}: {problem}")))?;
    let owner = match &library {
        Some(library) => Owner::Library(library),
        None => Owner::Module(rockspec.module_name()),
    };
    placement::check(owner, &paths, has_module).map_err(|e| {
        fail(format!(
            "{rockspec_name}: {e}; the rock is refused and nothing of it is installed"
        ))
    })?;
    Ok(Rock {
        rockspec,
        paths,
        files,
        library,
    })
}

type Zip<'a> = zip::ZipArchive<std::io::Cursor<&'a [u8]>>;

/// Opens the zip and checks every entry's name and type, without
/// decompressing any. Refuses what is not a zip, names that are not plain
/// relative paths, links, names given twice, and too many entries.
fn open_zip(bytes: &[u8]) -> Result<Zip<'_>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable zip ({e}); a .src.rock is a zip archive"))?;
    if zip.len() > MAX_ROCK_ENTRIES {
        return Err(format!(
            "{} entries, more than the {MAX_ROCK_ENTRIES} modman reads",
            zip.len()
        ));
    }
    let mut names = BTreeSet::new();
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| format!("entry {i} is unreadable: {e}"))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let trimmed = name.strip_suffix('/').unwrap_or(&name);
        if !is_safe_relative_path(trimmed) {
            return Err(format!(
                "entry `{name}` is not a plain relative path; the rock was not unpacked"
            ));
        }
        if entry.is_symlink() {
            return Err(format!("entry `{name}` is a link; rocks hold only files"));
        }
        if !names.insert(name.clone()) {
            return Err(format!("entry `{name}` is in it twice"));
        }
    }
    Ok(zip)
}

/// The rockspec entry `name`'s bytes, at most [`MAX_ROCKSPEC`] of them.
fn zip_entry(zip: &mut Zip<'_>, name: &str) -> Result<Option<Vec<u8>>, String> {
    let entry = match zip.by_name(name) {
        Ok(entry) if entry.is_file() => entry,
        Ok(_) | Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("entry `{name}` is unreadable: {e}")),
    };
    let mut data = Vec::new();
    // `take` guards against a header that lies about its size.
    entry
        .take(MAX_ROCKSPEC + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("entry `{name}` is unreadable: {e}"))?;
    if data.len() as u64 > MAX_ROCKSPEC {
        return Err(format!("entry `{name}` is larger than modman accepts"));
    }
    Ok(Some(data))
}

/// The Lua library `spec` builds, if it is a library rock: every
/// `build.modules` name is a library (no `mod_...`, not the package), all
/// under one first name, which becomes its directory. A module rock may
/// build no other Prosody module (`mod_y`, `mod_y.z`): LuaRocks would put
/// it where Prosody looks for `mod_y`.
fn library_of(spec: &Rockspec) -> Result<Option<String>, String> {
    let own = |name: &str| name == spec.package || name.starts_with(&format!("{}.", spec.package));
    if let Some((name, _)) = spec
        .modules
        .iter()
        .find(|(name, _)| name.starts_with("mod_") && !own(name))
    {
        return Err(format!(
            "build.modules names `{name}`, a Lua module of another Prosody module than {}",
            spec.package
        ));
    }
    if spec.modules.is_empty() || spec.modules.iter().any(|(name, _)| own(name)) {
        return Ok(None);
    }
    let roots: BTreeSet<&str> = spec
        .modules
        .iter()
        .map(|(name, _)| name.split('.').next().unwrap_or(name))
        .collect();
    match roots.into_iter().collect::<Vec<_>>()[..] {
        [root] if crate::repo::index::is_valid_library_name(root) => Ok(Some(root.to_owned())),
        [root] => Err(format!(
            "build.modules names the library `{root}`, which cannot be a directory name"
        )),
        ref roots => Err(format!(
            "build.modules names the libraries {}: modman installs a library rock as one directory, named after its one library",
            roots.join(", ")
        )),
    }
}

/// What `build.modules` builds from, as `(Lua module name, file in the
/// source directory)`: LuaRocks would guess when there is none; the one
/// safe guess is the module itself.
fn modules_of(spec: &Rockspec) -> Vec<(String, String)> {
    if spec.modules.is_empty() {
        vec![(spec.package.clone(), format!("{}.lua", spec.package))]
    } else {
        spec.modules.clone()
    }
}

/// The source files `build.modules` builds from.
fn sources_of(spec: &Rockspec) -> BTreeSet<String> {
    modules_of(spec).into_iter().map(|(_, path)| path).collect()
}

/// Whether `path` is in one of `build.copy_directories`.
fn copied(spec: &Rockspec, path: &str) -> bool {
    spec.copy_directories
        .iter()
        .any(|dir| copied_into(dir, path))
}

/// The module's files from its source directory, per the rockspec: every
/// path it installs, and the contents of those `found` holds.
fn module_files(
    spec: &Rockspec,
    library: Option<&str>,
    found: Vec<Found>,
) -> Result<(Vec<String>, Vec<ArchiveFile>), String> {
    let mut by_path: BTreeMap<String, Found> =
        found.into_iter().map(|f| (f.path.clone(), f)).collect();
    let mut paths = BTreeSet::new();
    let mut files = Vec::new();
    let mut add = |path: String, from: &Found, data: Option<Vec<u8>>, why: &str| {
        if !paths.insert(path.clone()) {
            return Err(format!(
                "{why} installs `{path}`, which something else installs too"
            ));
        }
        if let Some(data) = data {
            files.push(ArchiveFile {
                path,
                data,
                executable: from.executable,
            });
        }
        Ok(())
    };
    for (name, path) in &modules_of(spec) {
        let why = format!("build.modules[\"{name}\"]");
        let from = by_path.get(path.as_str()).ok_or_else(|| {
            format!(
                "{why} names `{path}`, which is not in source.dir `{}`",
                spec.source_dir
            )
        })?;
        let installed = match library {
            Some(library) => library_path(library, name),
            None => installed_path(&spec.package, name, path),
        };
        // Cloned: one source may be built as two Lua modules.
        add(installed, from, from.data.clone(), &why)?;
    }
    for dir in &spec.copy_directories {
        let inside: Vec<String> = by_path
            .keys()
            .filter(|path| copied_into(dir, path))
            .cloned()
            .collect();
        if inside.is_empty() {
            return Err(format!(
                "copy_directories names `{dir}`, which is not a directory of source.dir"
            ));
        }
        for path in inside {
            let Some(mut from) = by_path.remove(&path) else {
                continue;
            };
            let data = from.data.take();
            add(path, &from, data, &format!("copy_directories `{dir}`"))?;
        }
    }
    if let Some(mut from) = READMES.iter().find_map(|readme| by_path.remove(*readme)) {
        let data = from.data.take();
        add(from.path.clone(), &from, data, "the README")?;
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((paths.into_iter().collect(), files))
}

/// Whether `path` is inside the copied directory `dir`.
fn copied_into(dir: &str, path: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Where Prosody's `module:require` finds library module `name` inside
/// the directory `library/`: `ldap` as `ldap.lib.lua`, `ldap.vcard` as
/// `vcard.lib.lua`, `ldap.a.b` as `a/b.lib.lua`.
fn library_path(library: &str, name: &str) -> String {
    match name
        .strip_prefix(library)
        .and_then(|rest| rest.strip_prefix('.'))
    {
        Some(rest) => format!("{}.lib.lua", rest.replace('.', "/")),
        None => format!("{library}.lib.lua"),
    }
}

/// Where LuaRocks puts Lua module `name` (built from `source`) under
/// `share/lua/5.4/`, made relative to the module's own directory.
fn installed_path(package: &str, name: &str, source: &str) -> String {
    let base = name.replace('.', "/");
    let is_init = source.rsplit('/').next() == Some("init.lua") && !name.ends_with(".init");
    let path = if is_init {
        format!("{base}/init.lua")
    } else {
        format!("{base}.lua")
    };
    match path.strip_prefix(&format!("{package}/")) {
        Some(inside) => inside.to_owned(),
        None => path,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// A tar.gz of `entries` (path, content), as `tar czf` makes them.
    pub(crate) fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Default::default()));
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // Raw name bytes: `append_data` itself refuses `..`.
            let name = &mut header.as_gnu_mut().unwrap().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    /// A zip of `entries`, as `luarocks pack` makes a `.src.rock`.
    pub(crate) fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(data).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    pub(crate) fn rockspec(package: &str, version: &str, build: &str) -> String {
        format!(
            r#"package = "{package}"
version = "{version}"
source = {{ url = "http://127.0.0.1/archive/abc.tar.gz/{package}", dir = "Community-Modules-abc/{package}", file = "prosody-modules-abc.tar.gz" }}
description = {{ summary = "The {package} module" }}
dependencies = {{ "lua >= 5.1" }}
build = {{ type = "builtin", {build} }}
"#
        )
    }

    /// Reads a rock of `mod_demo` whole, Prosody having no modules.
    fn whole(bytes: &[u8]) -> Result<Rock, RockError> {
        read(
            "mod_demo-3-1.src.rock",
            bytes,
            Reading::Whole,
            &|_| false,
            &mut 0,
        )
    }

    fn rock_of(spec: &str, source: &[(&str, &[u8])]) -> Vec<u8> {
        zip_of(&[
            ("mod_demo-3-1.rockspec", spec.as_bytes()),
            ("prosody-modules-abc.tar.gz", &tar_gz(source)),
        ])
    }

    const TREE: [(&str, &[u8]); 6] = [
        (
            "Community-Modules-abc/mod_demo/mod_demo.lua",
            b"module:depends('x')",
        ),
        ("Community-Modules-abc/mod_demo/ldap.lib.lua", b"return {}"),
        ("Community-Modules-abc/mod_demo/res/page.html", b"<p>"),
        (
            "Community-Modules-abc/mod_demo/README.markdown",
            b"---\nsummary: Demo\n---\nDoc",
        ),
        (
            "Community-Modules-abc/mod_demo/dev/notes.txt",
            b"not installed",
        ),
        ("Community-Modules-abc/mod_other/mod_other.lua", b"other"),
    ];

    #[test]
    fn a_library_rock_is_laid_out_where_module_require_finds_it() {
        let spec = rockspec(
            "mod_demo",
            "3-1",
            r#"modules = { ldap = "ldap.lib.lua", ["ldap.vcard"] = "vcard.lib.lua", ["ldap.a.b"] = "b.lua" }"#,
        );
        let rock = whole(&rock_of(
            &spec,
            &[
                ("Community-Modules-abc/mod_demo/ldap.lib.lua", b"return {}"),
                ("Community-Modules-abc/mod_demo/vcard.lib.lua", b"return {}"),
                ("Community-Modules-abc/mod_demo/b.lua", b"return {}"),
                ("Community-Modules-abc/mod_demo/README.markdown", b"# Demo"),
            ],
        ))
        .unwrap();
        assert_eq!(rock.library.as_deref(), Some("ldap"));
        let paths: Vec<&str> = rock.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "README.markdown",
                "a/b.lib.lua",
                "ldap.lib.lua",
                "vcard.lib.lua"
            ]
        );

        // Two libraries would need two directories: refused, saying so.
        let spec = rockspec(
            "mod_demo",
            "3-1",
            r#"modules = { ldap = "ldap.lib.lua", other = "vcard.lib.lua" }"#,
        );
        let error = whole(&rock_of(
            &spec,
            &[
                ("Community-Modules-abc/mod_demo/ldap.lib.lua", b"return {}"),
                ("Community-Modules-abc/mod_demo/vcard.lib.lua", b"return {}"),
            ],
        ))
        .unwrap_err();
        assert!(
            error.problem.contains("the libraries ldap, other"),
            "{error}"
        );
    }

    #[test]
    fn files_are_laid_out_as_prosody_loads_them() {
        let spec = rockspec(
            "mod_demo",
            "3-1",
            r#"modules = { mod_demo = "mod_demo.lua", ldap = "ldap.lib.lua", ["mod_demo.util"] = "ldap.lib.lua" }, copy_directories = { "res" }"#,
        );
        let rock = whole(&rock_of(&spec, &TREE)).unwrap();
        let paths: Vec<&str> = rock.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "README.markdown",
                "ldap.lua",
                "mod_demo.lua",
                "res/page.html",
                "util.lua"
            ]
        );
        assert_eq!(rock.files[2].data, b"module:depends('x')");
        assert_eq!(rock.rockspec.summary, "The mod_demo module");

        // No build.modules: the module's own file.
        let spec = rockspec("mod_demo", "3-1", "");
        let rock = whole(&rock_of(&spec, &TREE)).unwrap();
        let paths: Vec<&str> = rock.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["README.markdown", "mod_demo.lua"]);
    }

    #[test]
    fn hostile_rocks_are_refused_naming_the_rock_and_file() {
        let good = rockspec(
            "mod_demo",
            "3-1",
            r#"modules = { mod_demo = "mod_demo.lua" }"#,
        );
        let dotdot: Vec<(&str, &[u8])> =
            vec![("Community-Modules-abc/mod_demo/../../../etc/cron.d/x", b"x")];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04 but not really".to_vec(), "not a readable zip"),
            (tar_gz(&TREE), "not a readable zip"),
            (
                zip_of(&[("../mod_demo-3-1.rockspec", good.as_bytes())]),
                "entry `../mod_demo-3-1.rockspec` is not a plain relative path",
            ),
            (
                zip_of(&[("/etc/passwd", b"x")]),
                "not a plain relative path",
            ),
            (
                zip_of(&[("other.txt", b"x")]),
                "no mod_demo-3-1.rockspec in it",
            ),
            (
                zip_of(&[("mod_demo-3-1.rockspec", good.as_bytes())]),
                "no prosody-modules-abc.tar.gz",
            ),
            (rock_of(&good, &dotdot), "prosody-modules-abc.tar.gz: entry"),
            (
                rock_of(
                    &rockspec(
                        "mod_demo",
                        "3-1",
                        r#"modules = { mod_demo = "../mod_other/mod_other.lua" }"#,
                    ),
                    &TREE,
                ),
                "mod_demo-3-1.rockspec: build.modules[\"mod_demo\"]",
            ),
            (
                rock_of(
                    &rockspec(
                        "mod_demo",
                        "3-1",
                        r#"modules = { mod_demo = "missing.lua" }"#,
                    ),
                    &TREE,
                ),
                "names `missing.lua`, which is not in source.dir",
            ),
            (
                rock_of(
                    &good.replace(
                        "Community-Modules-abc/mod_demo\"",
                        "Community-Modules-abc\"",
                    ),
                    &TREE,
                ),
                "`source.dir` `Community-Modules-abc` is outside the module",
            ),
            (
                rock_of(
                    &good.replace("version = \"3-1\"", "version = \"4-1\""),
                    &TREE,
                ),
                "says it is mod_demo 4-1",
            ),
            (
                rock_of(&format!("{good}\nos.execute('id')"), &TREE),
                "mod_demo-3-1.rockspec, line 8, column 3: an assignment into a field of `os`",
            ),
            (
                rock_of(
                    &rockspec(
                        "mod_demo",
                        "3-1",
                        r#"modules = { mod_demo = "mod_demo.lua" }, copy_directories = { "nowhere" }"#,
                    ),
                    &TREE,
                ),
                "copy_directories names `nowhere`",
            ),
        ];
        let oversized = vec![b' '; MAX_ROCKSPEC as usize + 1];
        let long_readme = vec![b'a'; MAX_TEXT as usize + 1];
        let cases = cases.into_iter().chain([(
            rock_of(
                &good,
                &[
                    ("Community-Modules-abc/mod_demo/mod_demo.lua", b"-- demo"),
                    ("Community-Modules-abc/mod_demo/README.md", &long_readme),
                ],
            ),
            "entry `Community-Modules-abc/mod_demo/README.md` unpacks to 1048577 bytes, more than the 1048576",
        )]);
        let names: Vec<String> = (0..=MAX_ROCK_ENTRIES).map(|i| format!("f{i}")).collect();
        let crowded: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let cases = cases.into_iter().chain([
            (
                zip_of(&[("mod_demo-3-1.rockspec", &oversized)]),
                "entry `mod_demo-3-1.rockspec` is larger than modman accepts",
            ),
            (zip_of(&crowded), "more than the 64 modman reads"),
        ]);
        for (bytes, expected) in cases {
            let error = whole(&bytes).unwrap_err().to_string();
            assert!(
                error.starts_with("mod_demo-3-1.src.rock: ") && error.contains(expected),
                "{expected:?} not in {error:?}"
            );
        }
    }

    #[test]
    fn file_names_say_which_rock() {
        assert_eq!(
            split_file_name("mod_lib_ldap-35-2.src.rock"),
            Some(("mod_lib_ldap", "35-2"))
        );
        for bad in [
            "mod_x.src.rock",
            "x-1-1.src.rock",
            "mod_../x-1-1.src.rock",
            "mod_x-1-1.rock",
        ] {
            assert_eq!(split_file_name(bad), None, "{bad}");
        }
    }

    /// Describing a rock keeps the contents of its Lua modules and README
    /// only: its copied directories are listed, not held.
    #[test]
    fn describing_holds_only_the_modules_and_readme() {
        let spec = rockspec(
            "mod_demo",
            "3-1",
            r#"modules = { mod_demo = "mod_demo.lua" }, copy_directories = { "res" }"#,
        );
        let bytes = rock_of(&spec, &TREE);
        let rock = read(
            "mod_demo-3-1.src.rock",
            &bytes,
            Reading::Describe,
            &|_| false,
            &mut 0,
        )
        .unwrap();
        assert_eq!(
            rock.paths,
            ["README.markdown", "mod_demo.lua", "res/page.html"]
        );
        let held: Vec<&str> = rock.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(held, ["README.markdown", "mod_demo.lua"]);
        let whole = whole(&bytes).unwrap();
        assert_eq!(whole.paths, rock.paths);
        assert_eq!(whole.files.len(), 3);
    }

    /// Rocks placing files where Prosody's loader looks for other modules
    /// are refused, naming the rock, the rockspec and the file.
    #[test]
    fn rocks_reaching_other_modules_are_refused() {
        let source: [(&str, &[u8]); 3] = [
            ("Community-Modules-abc/mod_demo/x.lib.lua", b"return {}"),
            (
                "Community-Modules-abc/mod_demo/lua/5.4/mod_version.lua",
                b"module:log('error', 'not Prosody')",
            ),
            ("Community-Modules-abc/mod_demo/mod_demo.lua", b"-- demo"),
        ];
        let shipped = |name: &str| name == "version";
        let cases = [
            (
                r#"modules = { share = "x.lib.lua" }, copy_directories = { "lua" }"#,
                "`share/lua/5.4/mod_version.lua` is where Prosody's loader looks for every module's files",
            ),
            (
                r#"modules = { lib = "x.lib.lua" }, copy_directories = { "lua" }"#,
                "`lib/lib.lib.lua` is where Prosody's loader looks for every module's files",
            ),
            (
                r#"modules = { version = "x.lib.lua" }"#,
                "the library is named `version`, like a module Prosody already has",
            ),
            (
                r#"modules = { mod_demo = "mod_demo.lua", ["mod_version.x"] = "x.lib.lua" }"#,
                "build.modules names `mod_version.x`, a Lua module of another Prosody module",
            ),
        ];
        for (build, expected) in cases {
            let bytes = rock_of(&rockspec("mod_demo", "3-1", build), &source);
            let error = read(
                "mod_demo-3-1.src.rock",
                &bytes,
                Reading::Describe,
                &shipped,
                &mut 0,
            )
            .unwrap_err()
            .to_string();
            assert!(
                error.starts_with("mod_demo-3-1.src.rock: mod_demo-3-1.rockspec: ")
                    && error.contains(expected),
                "{expected:?} not in {error:?}"
            );
        }
    }
}
