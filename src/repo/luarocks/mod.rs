//! Prosody's community repository is a LuaRocks server: a `manifest`
//! listing every rock, and per module and version a `mod_x-N-R.src.rock`
//! (a zip of the rockspec and the source tar.gz). Nothing there is signed,
//! so modman reads all of it itself, with limits, and never runs any of it:
//! no Lua interpreter, no luarocks binary.
//!
//! - [`lua`]: the data subset of Lua those files are written in;
//! - [`manifest`]: which rocks and versions the server has;
//! - [`rockspec`]: what one rock declares (source, dependencies, build);
//! - [`rock`]: a `.src.rock` turned into the module's files, laid out as
//!   `prosodyctl install` would make Prosody load them;
//! - [`pins`]: trust on first use, the only integrity check this source
//!   has besides TLS;
//! - [`server`]: fetching from exactly the configured server, and the
//!   catalog entries and files the rest of modman uses;
//! - [`installed`]: what `prosodyctl install` put in Prosody's installer
//!   tree, so modman can show it and leave it alone.

pub mod installed;
pub mod lua;
pub mod manifest;
pub mod pins;
pub mod rock;
pub mod rockspec;
pub mod server;

use std::cmp::Ordering;
use std::fmt;

/// Whether `rock` names a Prosody module: `mod_` and a module name.
pub fn is_module_rock(rock: &str) -> bool {
    rock.strip_prefix("mod_")
        .is_some_and(crate::repo::index::is_valid_module_name)
}

/// A rock version, `N-R` on the community server (`35-2`: the module's
/// 35th revision, rockspec revision 2), compared as integers, so `10-1`
/// is newer than `9-3`. Dotted versions (`1.2.3-1`) compare part by part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RockVersion {
    parts: Vec<u64>,
    revision: u64,
}

impl RockVersion {
    /// Parses `N-R` or `N.M...-R`; anything else is `None`.
    pub fn parse(text: &str) -> Option<RockVersion> {
        let (version, revision) = text.rsplit_once('-')?;
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let parts = version
            .split('.')
            .map(number)
            .collect::<Option<Vec<u64>>>()?;
        Some(RockVersion {
            parts,
            revision: number(revision)?,
        })
    }

    /// The version without its revision, for `>= 12` style constraints.
    fn compare_upstream(&self, parts: &[u64]) -> Ordering {
        let length = self.parts.len().max(parts.len());
        let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
        (0..length)
            .map(|i| at(&self.parts, i).cmp(&at(parts, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl Ord for RockVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare_upstream(&other.parts)
            .then(self.revision.cmp(&other.revision))
    }
}

impl PartialOrd for RockVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for RockVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        write!(f, "-{}", self.revision)
    }
}

/// One entry of a rockspec's `dependencies`: `"mod_y"`, `"mod_z >= 12"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The rock's name, such as `mod_z`.
    pub rock: String,
    /// Each `operator version` pair, all of which must hold.
    pub constraints: Vec<(Operator, Vec<u64>)>,
}

/// A version constraint's operator, as LuaRocks writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    /// `~> 1.2`: at least 1.2, below 1.3.
    Pessimistic,
}

impl Requirement {
    /// Parses `name [op version {, op version}]`.
    pub fn parse(text: &str) -> Option<Requirement> {
        let text = text.trim();
        let split = text.find([' ', '<', '>', '=', '~']).unwrap_or(text.len());
        let (rock, mut rest) = text.split_at(split);
        if rock.is_empty() {
            return None;
        }
        let mut constraints = Vec::new();
        loop {
            rest = rest.trim_start().trim_start_matches(',').trim_start();
            if rest.is_empty() {
                break;
            }
            let operators = [
                ("==", Operator::Equal),
                ("~=", Operator::NotEqual),
                ("<=", Operator::LessOrEqual),
                (">=", Operator::GreaterOrEqual),
                ("~>", Operator::Pessimistic),
                ("<", Operator::Less),
                (">", Operator::Greater),
                ("=", Operator::Equal),
            ];
            let (operator, after) = operators
                .iter()
                .find_map(|(text, op)| rest.strip_prefix(text).map(|after| (*op, after)))
                .unwrap_or((Operator::Equal, rest));
            let after = after.trim_start();
            let end = after.find([',', ' ']).unwrap_or(after.len());
            // A revision (`12-1`) in a constraint is ignored, as LuaRocks
            // compares it only when both sides have one.
            let version = after[..end].split('-').next().unwrap_or_default();
            let parts = version
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            constraints.push((operator, parts));
            rest = &after[end..];
        }
        Some(Requirement {
            rock: rock.to_owned(),
            constraints,
        })
    }

    /// Whether `version` satisfies every constraint.
    pub fn allows(&self, version: &RockVersion) -> bool {
        self.constraints.iter().all(|(operator, parts)| {
            let order = version.compare_upstream(parts);
            match operator {
                Operator::Equal => order.is_eq(),
                Operator::NotEqual => order.is_ne(),
                Operator::Less => order.is_lt(),
                Operator::LessOrEqual => order.is_le(),
                Operator::Greater => order.is_gt(),
                Operator::GreaterOrEqual => order.is_ge(),
                Operator::Pessimistic => {
                    let mut upper = parts.clone();
                    if let Some(last) = upper.last_mut() {
                        *last += 1;
                    }
                    order.is_ge() && version.compare_upstream(&upper).is_lt()
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> RockVersion {
        RockVersion::parse(text).unwrap()
    }

    #[test]
    fn versions_compare_as_integers() {
        assert!(v("10-1") > v("9-3"));
        assert!(v("35-2") > v("35-1"));
        assert!(v("1.10-1") > v("1.9-1"));
        assert_eq!(v("35-2").to_string(), "35-2");
        for bad in [
            "35",
            "a-1",
            "1-",
            "-1",
            "1..2-1",
            "1-1-x",
            "99999999999999999999-1",
        ] {
            assert_eq!(RockVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn requirements_read_luarocks_constraints() {
        let plain = Requirement::parse("mod_y").unwrap();
        assert_eq!((plain.rock.as_str(), plain.constraints.len()), ("mod_y", 0));
        let at_least = Requirement::parse("mod_z >= 12").unwrap();
        assert_eq!(at_least.rock, "mod_z");
        assert!(at_least.allows(&v("12-1")) && at_least.allows(&v("13-1")));
        assert!(!at_least.allows(&v("11-9")));
        let range = Requirement::parse("lua >= 5.1, < 5.5").unwrap();
        assert!(range.allows(&v("5.4-1")) && !range.allows(&v("5.5-1")));
        let pessimistic = Requirement::parse("x ~> 1.2").unwrap();
        assert!(pessimistic.allows(&v("1.2.5-1")) && !pessimistic.allows(&v("1.3-1")));
        assert!(Requirement::parse("mod_z >= twelve").is_none());
        assert!(Requirement::parse(" ").is_none());
    }
}
