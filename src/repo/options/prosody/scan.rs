//! Reads Prosody's own Lua sources for the option names they read, to
//! write and check the table in `names.rs`. Only read, never run.
//!
//! An install is found by the `prosody` package's file list, so that the
//! community modules another package puts in the same directory are not
//! taken for Prosody's own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::Versions;

/// A Prosody install: its root (`/`, or a chroot's) and which version.
pub(super) struct Install {
    pub root: PathBuf,
    pub version: Versions,
}

impl Install {
    /// The installs on this host: Prosody 0.12 at `/`, Prosody 13 in the
    /// chroot the integration tests use; each only if its package list
    /// and version file are there and say so.
    pub fn on_this_host() -> Vec<Install> {
        let trixie = std::env::var_os("MODMAN_TRIXIE_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/modman-trixie"));
        [
            (PathBuf::from("/"), Versions::Only012, "0.12."),
            (trixie, Versions::Only13, "13."),
        ]
        .into_iter()
        .filter(|(root, _, prefix)| {
            std::fs::read_to_string(root.join("usr/lib/prosody/prosody.version"))
                .is_ok_and(|v| v.starts_with(prefix))
                && root.join(PACKAGE_LIST).is_file()
        })
        .map(|(root, version, _)| Install { root, version })
        .collect()
    }

    /// Prosody's Lua files: (path as the table names it, path on disk).
    fn files(&self) -> Vec<(String, PathBuf)> {
        let list = std::fs::read_to_string(self.root.join(PACKAGE_LIST)).unwrap_or_default();
        list.lines()
            .filter_map(|path| {
                let named = match path.strip_prefix("/usr/lib/prosody/") {
                    Some(rest) if rest.ends_with(".lua") => rest.to_owned(),
                    _ => match path {
                        "/usr/bin/prosody" => "prosody".to_owned(),
                        "/usr/bin/prosodyctl" => "prosodyctl".to_owned(),
                        _ => return None,
                    },
                };
                Some((named, self.root.join(path.trim_start_matches('/'))))
            })
            .collect()
    }

    /// Every option name this install reads, with the files that read it.
    pub fn names(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut reads = Reads::default();
        for (named, path) in self.files() {
            if let Ok(code) = std::fs::read_to_string(&path) {
                reads.scan(&named, &code);
            }
        }
        reads.names()
    }
}

const PACKAGE_LIST: &str = "var/lib/dpkg/info/prosody.list";

/// What the files read so far.
#[derive(Default)]
struct Reads {
    names: BTreeMap<String, BTreeSet<String>>,
    /// `prefix .. "suffix"` reads: the suffix, and the files.
    suffixes: BTreeMap<String, BTreeSet<String>>,
    /// Names of network services (`provides("net", { name = ... })`) and
    /// their `config_prefix`es: the prefixes of the suffix reads.
    services: BTreeSet<String>,
}

impl Reads {
    fn scan(&mut self, file: &str, code: &str) {
        let module = module_of(file);
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        for (call, argument) in [
            ("get_option", 0),
            ("config.get(", 1),
            ("configmanager.get(", 1),
            ("config_get(", 1),
        ] {
            let mut rest = code.as_str();
            while let Some(at) = rest.find(call) {
                rest = &rest[at + call.len()..];
                let args = match call {
                    "get_option" => {
                        let kind_end = rest
                            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                            .unwrap_or(rest.len());
                        match rest[kind_end..].trim_start().strip_prefix('(') {
                            Some(args) => args,
                            None => continue,
                        }
                    }
                    _ => rest,
                };
                let args = match argument {
                    0 => Some(args),
                    _ => args.split_once(',').map(|(_, second)| second),
                };
                match args.and_then(|a| read_name(a, module)) {
                    Some(Name::Whole(name)) => self.add_name(name, file),
                    Some(Name::Suffix(suffix)) => {
                        self.suffixes
                            .entry(suffix)
                            .or_default()
                            .insert(file.to_owned());
                    }
                    None => {}
                }
            }
        }
        let mut rest = code.as_str();
        while let Some(at) = rest.find("provides(\"net\"") {
            rest = &rest[at..];
            let block = &rest[..rest.find('}').unwrap_or(rest.len())];
            if let Some(name) = block.split_once("name = ").and_then(|(_, v)| literal(v)) {
                self.services.insert(name.0);
            }
            rest = &rest[1..];
        }
        for (_, value) in code
            .match_indices("config_prefix = ")
            .map(|(at, _)| ((), at))
        {
            if let Some((prefix, _)) = literal(&code[value + "config_prefix = ".len()..]) {
                self.services.insert(prefix);
            }
        }
    }

    fn add_name(&mut self, name: String, file: &str) {
        if crate::repo::options::is_option_name(&name) {
            self.names.entry(name).or_default().insert(file.to_owned());
        }
    }

    /// The names read whole, and each suffix read after each service's
    /// prefix (`c2s_ports`, and `ports` for the service with no prefix).
    fn names(mut self) -> BTreeMap<String, BTreeSet<String>> {
        for (suffix, files) in std::mem::take(&mut self.suffixes) {
            for service in self.services.clone() {
                let name = match (service.is_empty(), suffix.starts_with('_')) {
                    (true, true) => continue,
                    (true, false) => suffix.clone(),
                    (false, true) => format!("{service}{suffix}"),
                    (false, false) => format!("{service}_{suffix}"),
                };
                for file in &files {
                    self.add_name(name.clone(), file);
                }
            }
        }
        self.names
    }
}

/// The module a file of Prosody belongs to: `modules/mod_x.lua`,
/// `modules/mod_x/...` and `modules/x/...` to `x`.
fn module_of(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("modules/")?;
    let first = rest.split('/').next()?;
    let first = first.strip_suffix(".lua").unwrap_or(first);
    Some(first.strip_prefix("mod_").unwrap_or(first))
}

enum Name {
    Whole(String),
    /// `something .. "suffix"`, where something is not the module's name.
    Suffix(String),
}

/// The option name at the start of `args`: a string literal, `module.name
/// .. "suffix"`, or another `prefix .. "suffix"`.
fn read_name(args: &str, module: Option<&str>) -> Option<Name> {
    let args = args.trim_start();
    if let Some((name, after)) = literal(args) {
        return (!after.trim_start().starts_with("..")).then_some(Name::Whole(name));
    }
    let (prefix, rest) = args.split_once("..")?;
    let prefix = prefix.trim_end();
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return None;
    }
    let (suffix, after) = literal(rest.trim_start())?;
    if after.trim_start().starts_with("..") {
        return None;
    }
    match (prefix, module) {
        ("module.name", Some(module)) => Some(Name::Whole(format!("{module}{suffix}"))),
        ("module.name", None) => None,
        _ => Some(Name::Suffix(suffix)),
    }
}

/// A Lua string literal in double or single quotes at the start of
/// `text`, and what follows it.
fn literal(text: &str) -> Option<(String, &str)> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let end = text[1..].find(quote)?;
    Some((text[1..1 + end].to_owned(), &text[end + 2..]))
}

/// The table's text: the names of every install, each with the first file
/// that reads it (Prosody's server before its modules) and the versions
/// that read it.
pub(super) fn render(installs: &[(Versions, BTreeMap<String, BTreeSet<String>>)]) -> String {
    let mut all: BTreeMap<&str, (Vec<&str>, Vec<Versions>)> = BTreeMap::new();
    for (version, names) in installs {
        for (name, files) in names {
            let entry = all.entry(name).or_default();
            entry.0.extend(files.iter().map(String::as_str));
            entry.1.push(*version);
        }
    }
    let mut out = String::from(
        "//! Generated by `scripts/prosody-options` from Prosody's own sources\n\
         //! (0.12 and 13): do not edit; a test in `repo::options::prosody`\n\
         //! checks it against the Prosody installed.\n\n\
         use super::ProsodyOption;\n\
         use super::Versions::{Both, Only012, Only13};\n\n\
         /// Every option Prosody reads, sorted by name.\n\
         pub(super) const NAMES: &[ProsodyOption] = &[\n",
    );
    for (name, (mut files, versions)) in all {
        files.sort_by_key(|f| (f.starts_with("modules/"), *f));
        let versions = match versions.as_slice() {
            [one] => format!("{one:?}"),
            _ => "Both".to_owned(),
        };
        let modules: BTreeSet<Option<&str>> = files.iter().map(|f| module_of(f)).collect();
        let only_module = match modules.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(module)] => format!("Some(\"{module}\")"),
            _ => "None".to_owned(),
        };
        out += &format!(
            "    ProsodyOption {{\n        name: \"{name}\",\n        read_by: \"{}\",\n        only_module: {only_module},\n        versions: {versions},\n    }},\n",
            files[0]
        );
    }
    out + "];\n"
}

/// Where the table is, in the source tree.
pub(super) fn table_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/repo/options/prosody/names.rs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_literals_prefixes_and_the_module_name() {
        let mut reads = Reads::default();
        reads.scan(
            "core/portmanager.lua",
            "local x = config.get(\"*\", config_prefix..\"ports\")\n\
             -- config.get(host, \"commented_out\")\n\
             local a = config.get(host, \"authentication\") or 'x'",
        );
        reads.scan(
            "modules/mod_c2s.lua",
            "module:provides(\"net\", {\n\tname = \"c2s\";\n})\n\
             local t = module:get_option_number(\"c2s_timeout\", 300);\n\
             local s = module:get_option_string(module.name .. \"_secret\");\n\
             local d = module:get_option_set(\"x_\" .. host);",
        );
        let names = reads.names();
        let read_by = |n: &str| names.get(n).map(|f| f.iter().cloned().collect::<Vec<_>>());
        assert_eq!(read_by("authentication").unwrap(), ["core/portmanager.lua"]);
        assert_eq!(read_by("c2s_ports").unwrap(), ["core/portmanager.lua"]);
        assert_eq!(read_by("c2s_timeout").unwrap(), ["modules/mod_c2s.lua"]);
        assert_eq!(read_by("c2s_secret").unwrap(), ["modules/mod_c2s.lua"]);
        assert_eq!(read_by("commented_out"), None);
        assert_eq!(names.len(), 4, "{names:?}");
    }
}
