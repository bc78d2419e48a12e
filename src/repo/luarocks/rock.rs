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
//! rock, and modman talks to the configured server only.

use std::collections::BTreeMap;
use std::io::Read;

use super::rockspec::Rockspec;
use crate::repo::archive::{self, ArchiveFile, Outside};
use crate::repo::fetch::MAX_ARCHIVE;
use crate::repo::index::is_safe_relative_path;

/// Most entries a `.src.rock` may hold (a rockspec and a source archive,
/// sometimes a few more files).
pub const MAX_ROCK_ENTRIES: usize = 64;
/// Largest rockspec read.
pub const MAX_ROCKSPEC: u64 = 256 * 1024;

/// A rock read and checked.
#[derive(Debug, Clone)]
pub struct Rock {
    pub rockspec: Rockspec,
    /// The module's files, relative to its directory, sorted by path.
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

/// Reads the `.src.rock` `file_name` (as published, `mod_x-N-R.src.rock`).
pub fn read(file_name: &str, bytes: &[u8]) -> Result<Rock, RockError> {
    let fail = |problem: String| RockError {
        rock: file_name.to_owned(),
        problem,
    };
    let (package, version) = split_file_name(file_name)
        .ok_or_else(|| fail("not a rock file name (mod_x-N-R.src.rock)".into()))?;
    let entries = unzip(bytes).map_err(fail)?;
    let rockspec_name = format!("{package}-{version}.rockspec");
    let rockspec_bytes = entries
        .get(&rockspec_name)
        .ok_or_else(|| fail(format!("no {rockspec_name} in it")))?;
    let text = std::str::from_utf8(rockspec_bytes)
        .map_err(|_| fail(format!("{rockspec_name} is not UTF-8 text")))?;
    let rockspec = Rockspec::parse(&rockspec_name, text).map_err(fail)?;
    if rockspec.package != package || rockspec.version.to_string() != version {
        return Err(fail(format!(
            "{rockspec_name} says it is {} {}",
            rockspec.package, rockspec.version
        )));
    }
    let source = entries.get(&rockspec.source_file).ok_or_else(|| {
        fail(format!(
            "no {} (the rockspec's source) in it",
            rockspec.source_file
        ))
    })?;
    let source_files = archive::read_under(source, &rockspec.source_dir, Outside::Skip)
        .map_err(|e| fail(format!("{}: {e}", rockspec.source_file)))?;
    if source_files.is_empty() {
        return Err(fail(format!(
            "{}: nothing under source.dir `{}`",
            rockspec.source_file, rockspec.source_dir
        )));
    }
    let library =
        library_of(&rockspec).map_err(|problem| fail(format!("{rockspec_name}: {problem}")))?;
    let files = module_files(&rockspec, library.as_deref(), source_files)
        .map_err(|problem| fail(format!("{rockspec_name}: {problem}")))?;
    Ok(Rock {
        rockspec,
        files,
        library,
    })
}

/// The zip's entries by name. Refuses what is not a zip, names that are not
/// plain relative paths, links, and more than the limits.
fn unzip(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable zip ({e}); a .src.rock is a zip archive"))?;
    if zip.len() > MAX_ROCK_ENTRIES {
        return Err(format!(
            "{} entries, more than the {MAX_ROCK_ENTRIES} modman reads",
            zip.len()
        ));
    }
    let mut entries = BTreeMap::new();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
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
        if entry.is_dir() {
            continue;
        }
        let limit = if name.ends_with(".rockspec") {
            MAX_ROCKSPEC
        } else {
            MAX_ARCHIVE
        };
        let mut data = Vec::new();
        // `take` guards against a header that lies about its size.
        (&mut entry)
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("entry `{name}` is unreadable: {e}"))?;
        total += data.len() as u64;
        if data.len() as u64 > limit || total > archive::MAX_UNPACKED {
            return Err(format!("entry `{name}` is larger than modman accepts"));
        }
        if entries.insert(name.clone(), data).is_some() {
            return Err(format!("entry `{name}` is in it twice"));
        }
    }
    Ok(entries)
}

/// The Lua library `spec` builds, if it is a library rock: every
/// `build.modules` name is a library (no `mod_...`, not the package), all
/// under one first name, which becomes its directory.
fn library_of(spec: &Rockspec) -> Result<Option<String>, String> {
    let own = |name: &str| {
        name.starts_with("mod_")
            || name == spec.package
            || name.starts_with(&format!("{}.", spec.package))
    };
    if spec.modules.is_empty() || spec.modules.iter().any(|(name, _)| own(name)) {
        return Ok(None);
    }
    let roots: std::collections::BTreeSet<&str> = spec
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

/// The module's files from its source directory, per the rockspec.
fn module_files(
    spec: &Rockspec,
    library: Option<&str>,
    source: Vec<ArchiveFile>,
) -> Result<Vec<ArchiveFile>, String> {
    let by_path: BTreeMap<&str, &ArchiveFile> =
        source.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut out: BTreeMap<String, ArchiveFile> = BTreeMap::new();
    let add =
        |out: &mut BTreeMap<String, ArchiveFile>, path: String, from: &ArchiveFile, why: &str| {
            let file = ArchiveFile {
                path: path.clone(),
                data: from.data.clone(),
                executable: from.executable,
            };
            match out.insert(path.clone(), file) {
                Some(_) => Err(format!(
                    "{why} installs `{path}`, which something else installs too"
                )),
                None => Ok(()),
            }
        };
    let main = format!("{}.lua", spec.package);
    let modules = if spec.modules.is_empty() {
        // LuaRocks would guess; the one safe guess is the module itself.
        vec![(spec.package.clone(), main.clone())]
    } else {
        spec.modules.clone()
    };
    for (name, path) in &modules {
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
        add(&mut out, installed, from, &why)?;
    }
    for dir in &spec.copy_directories {
        let prefix = format!("{dir}/");
        let mut copied = 0;
        for file in source.iter().filter(|f| f.path.starts_with(&prefix)) {
            add(
                &mut out,
                file.path.clone(),
                file,
                &format!("copy_directories `{dir}`"),
            )?;
            copied += 1;
        }
        if copied == 0 {
            return Err(format!(
                "copy_directories names `{dir}`, which is not a directory of source.dir"
            ));
        }
    }
    for readme in ["README.markdown", "README.md"] {
        if let Some(from) = by_path.get(readme) {
            if !out.contains_key(readme) {
                add(&mut out, readme.to_owned(), from, "the README")?;
            }
            break;
        }
    }
    Ok(out.into_values().collect())
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
        let rock = read(
            "mod_demo-3-1.src.rock",
            &rock_of(
                &spec,
                &[
                    ("Community-Modules-abc/mod_demo/ldap.lib.lua", b"return {}"),
                    ("Community-Modules-abc/mod_demo/vcard.lib.lua", b"return {}"),
                    ("Community-Modules-abc/mod_demo/b.lua", b"return {}"),
                    ("Community-Modules-abc/mod_demo/README.markdown", b"# Demo"),
                ],
            ),
        )
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
        let error = read(
            "mod_demo-3-1.src.rock",
            &rock_of(
                &spec,
                &[
                    ("Community-Modules-abc/mod_demo/ldap.lib.lua", b"return {}"),
                    ("Community-Modules-abc/mod_demo/vcard.lib.lua", b"return {}"),
                ],
            ),
        )
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
        let rock = read("mod_demo-3-1.src.rock", &rock_of(&spec, &TREE)).unwrap();
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
        let rock = read("mod_demo-3-1.src.rock", &rock_of(&spec, &TREE)).unwrap();
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
                        r#"modules = { mod_demo = "mod_demo.lua", mod_demo2 = "mod_demo.lua" }, copy_directories = { "nowhere" }"#,
                    ),
                    &TREE,
                ),
                "copy_directories names `nowhere`",
            ),
        ];
        let oversized = vec![b' '; MAX_ROCKSPEC as usize + 1];
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
            let error = read("mod_demo-3-1.src.rock", &bytes)
                .unwrap_err()
                .to_string();
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
}
