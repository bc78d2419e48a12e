//! What a module says about itself: the README's YAML front matter
//! (summary, labels), its Compatibility table, and the dependencies its
//! Lua code declares with `module:depends("x")`.

use serde::{Deserialize, Serialize};
use yaml_rust2::{Yaml, YamlLoader};

use super::index::{is_valid_module_name, Compatibility};

/// What the README tells.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Readme {
    pub summary: String,
    pub labels: Vec<String>,
    pub stage: Option<String>,
    /// The README without its front matter.
    pub description: String,
    pub compatibility: Vec<Compatibility>,
}

/// Parses a README. A broken front matter is reported in the second value
/// and otherwise ignored: the module is still usable without a summary.
pub fn parse_readme(text: &str) -> (Readme, Option<String>) {
    let (front, body, mut warning) = split_front_matter(text);
    let mut readme = Readme {
        description: body.trim().to_owned(),
        ..Readme::default()
    };
    if let Some(front) = front {
        match YamlLoader::load_from_str(front) {
            Ok(docs) => {
                let doc = docs.into_iter().next().unwrap_or(Yaml::Null);
                let text_of = |key: &str| doc[key].as_str().map(|s| s.trim().to_owned());
                readme.summary = text_of("summary")
                    .or_else(|| text_of("description"))
                    .unwrap_or_default();
                readme.labels = doc["labels"]
                    .as_vec()
                    .map(|labels| {
                        labels
                            .iter()
                            .filter_map(|l| l.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            Err(e) => {
                warning = Some(format!(
                    "README front matter is not valid YAML ({e}); summary and labels left empty"
                ));
            }
        }
    }
    readme.stage = readme
        .labels
        .iter()
        .find_map(|l| l.strip_prefix("Stage-"))
        .map(str::to_lowercase);
    readme.compatibility = super::compat::from_readme(&readme.description);
    (readme, warning)
}

/// Splits `---\nYAML\n---\nbody`. No front matter: `(None, text, None)`.
fn split_front_matter(text: &str) -> (Option<&str>, &str, Option<String>) {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text, None);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if matches!(line.trim_end(), "---" | "...") {
            return (Some(&rest[..offset]), &rest[offset + line.len()..], None);
        }
        offset += line.len();
    }
    (
        None,
        text,
        Some("README front matter has no closing `---`; summary and labels left empty".into()),
    )
}

/// Whether a module loads only with a dependency, or only in some set-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    /// Declared at the top level: the module fails to load without it.
    #[default]
    Required,
    /// Declared inside an `if` (such as csi_battery_saver's
    /// track_muc_joins, only with `csi_battery_saver_filter_muc`): needed
    /// only when that condition holds.
    Optional,
}

impl Need {
    /// For serde: an index leaves the usual case out.
    pub fn is_required(&self) -> bool {
        *self == Need::Required
    }
}

/// A module another module's code needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Declared {
    pub name: String,
    pub need: Need,
}

/// The modules a module's Lua code needs, sorted, each once (required
/// wins over optional): `module:depends("x")`, and
/// `module:require("mod_x/lib")`, which reads a library from module x's
/// directory (dnsbl reads mod_anti_spam/trie), so x must be installed.
/// Computed names (`module:depends(variable)`) cannot be known statically
/// and are skipped.
pub fn depends(lua: &str) -> Vec<Declared> {
    const CALLS: [&str; 2] = ["module:depends", "module:require"];
    let calls = CALLS.map(|call| {
        lua.match_indices(call)
            .map(|(at, _)| at)
            .collect::<Vec<_>>()
    });
    let Some(last) = calls.iter().flatten().max() else {
        return vec![];
    };
    let code = LuaCode::scan(lua, *last);
    let mut found: Vec<Declared> = Vec::new();
    for (call, positions) in CALLS.iter().zip(calls) {
        for at in positions {
            if !code.is_code(at) {
                continue;
            }
            let Some(argument) = literal_argument(&lua[at + call.len()..]) else {
                continue;
            };
            let name = if *call == "module:depends" {
                argument
            } else {
                // Only a path into another module's directory names a module.
                match argument
                    .strip_prefix("mod_")
                    .and_then(|rest| rest.split_once('/'))
                {
                    Some((module, _)) => module,
                    None => continue,
                }
            };
            if is_valid_module_name(name) {
                found.push(Declared {
                    name: name.to_owned(),
                    need: if code.in_if(at) {
                        Need::Optional
                    } else {
                        Need::Required
                    },
                });
            }
        }
    }
    found.sort();
    found.dedup_by(|later, first| later.name == first.name);
    found
}

/// The string literal a call starts with: `("x")`, `"x"`, `'x'`, `( 'x' )`.
fn literal_argument(rest: &str) -> Option<&str> {
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('(').unwrap_or(rest).trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let end = rest[1..].find(quote)?;
    Some(&rest[1..1 + end])
}

/// Where a Lua source's code is (not comments or strings), and which
/// blocks enclose each position: enough to tell a call inside an `if`.
struct LuaCode {
    /// Byte ranges of comments and string literals.
    skipped: Vec<std::ops::Range<usize>>,
    /// Byte ranges of `if ... end` blocks.
    ifs: Vec<std::ops::Range<usize>>,
}

impl LuaCode {
    /// The code of `lua` as far as `until`: enough to answer for every
    /// position up to it, as a block still open there is one that
    /// encloses it whether it closes later or never, and the rest of a
    /// long file is not read.
    fn scan(lua: &str, until: usize) -> LuaCode {
        #[derive(PartialEq)]
        enum Block {
            If,
            Other,
        }
        let bytes = lua.as_bytes();
        let mut skipped = Vec::new();
        let mut ifs = Vec::new();
        let mut stack: Vec<(Block, usize)> = Vec::new();
        let mut i = 0;
        // `[[`, `[=[`...: the closing `]]`, `]=]`.
        let long_bracket = |at: usize| -> Option<String> {
            let rest = &lua[at..];
            let level = rest
                .strip_prefix('[')?
                .bytes()
                .take_while(|b| *b == b'=')
                .count();
            rest[1 + level..]
                .starts_with('[')
                .then(|| format!("]{}]", "=".repeat(level)))
        };
        while i < bytes.len() && i <= until {
            let c = bytes[i];
            if bytes[i..].starts_with(b"--") {
                let start = i;
                let end = match long_bracket(i + 2) {
                    Some(close) => lua[i..]
                        .find(&close)
                        .map_or(lua.len(), |e| i + e + close.len()),
                    None => lua[i..].find('\n').map_or(lua.len(), |e| i + e),
                };
                skipped.push(start..end);
                i = end;
            } else if c == b'"' || c == b'\'' {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != c && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                skipped.push(start..i);
            } else if let Some(close) = (c == b'[').then(|| long_bracket(i)).flatten() {
                let end = lua[i..]
                    .find(&close)
                    .map_or(lua.len(), |e| i + e + close.len());
                skipped.push(i..end);
                i = end;
            } else if c.is_ascii_alphabetic() || c == b'_' {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                // `module.end` or `x:do` are names, not keywords.
                let after_dot = start > 0 && matches!(bytes[start - 1], b'.' | b':');
                if after_dot {
                    continue;
                }
                match &lua[start..i] {
                    "if" => stack.push((Block::If, start)),
                    "function" | "do" => stack.push((Block::Other, start)),
                    "repeat" => stack.push((Block::Other, start)),
                    "end" | "until" => {
                        if let Some((Block::If, opened)) = stack.pop() {
                            ifs.push(opened..i);
                        }
                    }
                    _ => {}
                }
            } else {
                i += 1;
            }
        }
        // An unclosed `if` (broken code, or closed past `until`) runs to
        // the end.
        ifs.extend(
            stack
                .into_iter()
                .filter(|(block, _)| *block == Block::If)
                .map(|(_, opened)| opened..lua.len()),
        );
        LuaCode { skipped, ifs }
    }

    fn is_code(&self, at: usize) -> bool {
        !self.skipped.iter().any(|r| r.contains(&at))
    }

    fn in_if(&self, at: usize) -> bool {
        self.ifs.iter().any(|r| r.contains(&at))
    }
}

/// The `--% key: value` header lines Prosody reads from a module file
/// before loading it (core/modulemanager.lua): it refuses the module when
/// the running Lua is not one of `lua`, when the server has a feature of
/// `conflicts` (so the 2025 mod_flags, `--% conflicts: mod_flags`, gives way
/// to 13's own), or lacks one of `requires`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Headers {
    /// Features of `core.features` the server must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Features the server must not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// Lua versions (`5.4`) the module runs on; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lua: Vec<String>,
}

impl Headers {
    /// For serde: an index leaves a module without headers as before.
    pub fn is_empty(&self) -> bool {
        self == &Headers::default()
    }
}

/// Reads the headers of a module's main file as Prosody does: every line
/// `--% key: value`, the last of a key winning, values split on commas
/// and spaces.
pub fn headers(lua: &str) -> Headers {
    let mut headers = Headers::default();
    for line in lua.lines() {
        let Some(rest) = line.strip_prefix("--%") else {
            continue;
        };
        let Some((key, value)) = rest.trim_start().split_once(':') else {
            continue;
        };
        let values: Vec<String> = value
            .split([',', ' ', '\t'])
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        match key {
            "requires" => headers.requires = values,
            "conflicts" => headers.conflicts = values,
            "lua" => headers.lua = values,
            _ => {}
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "---\nlabels:\n- 'Stage-Beta'\nsummary: 'Keeps the battery alive'\nrockspec:\n  dependencies:\n  - mod_x\n---\n\nIntro\n=====\n\nText.\n\nCompatibility\n=============\n\n  ----------------- --------------\n  trunk             Works\n  0.10 and later    Works\n  0.9 and earlier   Doesn't work\n  0.8               Untested. Probably doesn't.\n  ----------------- --------------\n\nSee also\n--------\n\n  0.7   Works\n";

    #[test]
    fn reads_front_matter_and_the_compatibility_table() {
        let (readme, warning) = parse_readme(README);
        assert_eq!(warning, None);
        assert_eq!(readme.summary, "Keeps the battery alive");
        assert_eq!(readme.labels, ["Stage-Beta"]);
        assert_eq!(readme.stage.as_deref(), Some("beta"));
        assert!(readme.description.starts_with("Intro\n====="));
        let rows: Vec<_> = readme
            .compatibility
            .iter()
            .map(|c| (c.prosody.as_str(), c.works))
            .collect();
        assert_eq!(
            rows,
            [
                ("trunk", Some(true)),
                ("0.10 and later", Some(true)),
                ("0.9 and earlier", Some(false)),
                ("0.8", None)
            ]
        );
    }

    #[test]
    fn pipe_tables_and_atx_headings_work_too() {
        let text = "# Compatibility\n\n| Prosody | Status |\n|---|---|\n| 0.12 | Works |\n| 0.11 | Does not work |\n\n# Next\n| 0.1 | Works |\n";
        let (readme, _) = parse_readme(text);
        let rows: Vec<_> = readme
            .compatibility
            .iter()
            .map(|c| (c.prosody.as_str(), c.works))
            .collect();
        assert_eq!(rows, [("0.12", Some(true)), ("0.11", Some(false))]);
    }

    #[test]
    fn a_broken_front_matter_is_a_warning_not_a_failure() {
        let (readme, warning) = parse_readme("---\nsummary: [unclosed\n---\nBody");
        assert!(warning.unwrap().contains("not valid YAML"));
        assert_eq!(readme.description, "Body");
        let (readme, warning) = parse_readme("---\nsummary: x\nno end");
        assert!(warning.unwrap().contains("no closing"));
        assert!(readme.summary.is_empty());
        let (readme, warning) = parse_readme("---\ndescription: Just a description\n---\n");
        assert_eq!(
            (readme.summary.as_str(), warning),
            ("Just a description", None)
        );
    }

    #[test]
    fn finds_literal_dependencies_in_every_spelling() {
        let lua = r#"
            module:depends("track_muc_joins")
            module:depends 'adhoc'
            local x = module:depends"http";
            module:depends( "http" )
            local y = module:depends(name_from_config)
            module:depends("../../etc")
        "#;
        let names: Vec<_> = depends(lua).into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["adhoc", "http", "track_muc_joins"]);
    }

    fn declared(name: &str, need: Need) -> Declared {
        Declared {
            name: name.into(),
            need,
        }
    }

    /// The head of mod_dnsbl.lua (2025 corpus): a library read from
    /// mod_anti_spam's directory makes anti_spam a dependency; Prosody's
    /// own libraries (`require`) and a module's own (`module:require("x")`)
    /// do not.
    #[test]
    fn a_library_from_another_modules_directory_is_a_dependency() {
        let dnsbl = r#"local lfs = require "lfs";
local adns = require "net.adns";
local it = require "util.iterators";
local trie = module:require("mod_anti_spam/trie");
local own = module:require "sasl_dovecot".new;
local muc_util = module:require "muc/util";
"#;
        assert_eq!(depends(dnsbl), [declared("anti_spam", Need::Required)]);
    }

    /// mod_csi_battery_saver.lua (both corpora): track_muc_joins only with
    /// the filter_muc option.
    #[test]
    fn a_dependency_inside_an_if_is_optional() {
        let battery = r#"local filter_muc = module:get_option_boolean("csi_battery_saver_filter_muc", false);
module:depends"csi"
if filter_muc then module:depends"track_muc_joins"; end		-- only depend on this module if we actually use it
local function f() module:depends("pep") end
"#;
        assert_eq!(
            depends(battery),
            [
                declared("csi", Need::Required),
                declared("pep", Need::Required),
                declared("track_muc_joins", Need::Optional),
            ]
        );
        // Nested blocks, an `end` in a string or comment, and a name in a
        // comment are no confusion; required wins over optional.
        let nested = r#"
if a then
    for _, x in ipairs(t) do print("end") end -- end
    module:depends("inner")
end
-- module:depends("commented")
module:depends("after")
if b then module:depends("after") end
--[[ if c then ]] module:depends("top")
"#;
        assert_eq!(
            depends(nested),
            [
                declared("after", Need::Required),
                declared("inner", Need::Optional),
                declared("top", Need::Required),
            ]
        );
        // The code after the last call is not read, and changes nothing:
        // an `if` that closes there still encloses the call before it.
        let closed_later = "if c then module:depends('late')\nlocal x = [[\n]] end\n";
        let never_closed = "if c then module:depends('late')\nlocal x = [[\n";
        for lua in [closed_later, never_closed] {
            assert_eq!(depends(lua), [declared("late", Need::Optional)], "{lua}");
        }
        assert_eq!(depends("local x = 1 -- no calls\n"), []);
    }

    /// The head of the 2025 mod_flags.lua, and headers as Prosody 13's
    /// own modules write them.
    #[test]
    fn reads_module_headers_as_prosody_does() {
        let flags = "-- This module is only for 0.12, later versions have mod_flags bundled\n--% conflicts: mod_flags\n\nlocal jid_node = require \"util.jid\".node;\n";
        assert_eq!(
            headers(flags),
            Headers {
                conflicts: vec!["mod_flags".into()],
                ..Headers::default()
            }
        );
        let more = "--% requires: loader, keyval+\n--% lua: 5.4,5.3\n--% requires: split-user-roles\n--%bad line\n";
        assert_eq!(
            headers(more),
            Headers {
                requires: vec!["split-user-roles".into()],
                conflicts: vec![],
                lua: vec!["5.4".into(), "5.3".into()],
            }
        );
        assert!(headers("local x = 1 --% requires: y\n").is_empty());
    }
}
