//! Advisories: a signed repository's word that some versions of a module
//! must not stay in use, because they are insecure or were withdrawn (a
//! bad release), with why and the version that fixes it. They travel in
//! the index (see [`super::index::Index::advisories`]), so they are as
//! trustworthy as the index's signature, and `repo build` carries them
//! from one build to the next. A LuaRocks server has none.

use serde::{Deserialize, Serialize};

use super::index::{is_valid_module_name, limits, Timestamp};

/// What an advisory says of the versions it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvisoryKind {
    /// Pulled back by the repository (it breaks things, or was published
    /// by mistake): it should not stay installed.
    Withdrawn,
    /// It has a security problem: update as soon as a fix is out.
    Insecure,
}

impl AdvisoryKind {
    /// Every kind, for `repo advise --kind` and forms.
    pub const EVERY: [AdvisoryKind; 2] = [AdvisoryKind::Insecure, AdvisoryKind::Withdrawn];

    /// The word the index, `--json` and the CLI use.
    pub const fn as_str(self) -> &'static str {
        match self {
            AdvisoryKind::Withdrawn => "withdrawn",
            AdvisoryKind::Insecure => "insecure",
        }
    }

    /// The kind `word` names.
    pub fn parse(word: &str) -> Option<AdvisoryKind> {
        AdvisoryKind::EVERY.into_iter().find(|k| k.as_str() == word)
    }
}

impl std::fmt::Display for AdvisoryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One advisory, as `repo advise` writes it into the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advisory {
    /// The module, without `mod_`.
    pub module: String,
    /// The versions it concerns, exactly as the index named them
    /// (`20240601.ab12cd34`): an installed copy is concerned when its
    /// version is one of them.
    pub versions: Vec<String>,
    pub kind: AdvisoryKind,
    /// Why, in the repository's words; shown to admins as it is (cleaned
    /// of control characters, at most [`limits::REASON`] bytes).
    pub reason: String,
    /// The version that fixes it, when there is one: updating to it (or
    /// to any later copy the advisory does not name) ends the concern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// When `repo advise` issued it.
    pub issued: Timestamp,
}

impl Advisory {
    /// Whether it concerns version `version` of module `module`.
    pub fn concerns(&self, module: &str, version: &str) -> bool {
        self.module == module && self.versions.iter().any(|v| v == version)
    }

    /// Whether a fixed version is named.
    pub fn has_fix(&self) -> bool {
        self.fixed.is_some()
    }

    /// Replaces control characters in its texts; returns whether there
    /// were any (see [`crate::clean::clean`]).
    pub fn clean_text(&mut self) -> bool {
        use crate::clean::clean_in_place;
        let mut changed = false;
        for text in std::iter::once(&mut self.reason)
            .chain(self.versions.iter_mut())
            .chain(self.fixed.iter_mut())
        {
            changed |= clean_in_place(text);
        }
        changed
    }

    /// Whether it is well formed and within [`limits`]; `Err` says what
    /// is wrong, for `repo advise` (which refuses it) and for the index
    /// reader (which refuses the index).
    pub fn check(&self) -> Result<(), String> {
        if !is_valid_module_name(&self.module) {
            return Err("its module is not a valid module name".into());
        }
        if self.versions.is_empty() {
            return Err("it names no version".into());
        }
        if self.versions.len() > limits::LABELS {
            return Err(format!(
                "it names {} versions, more than the {} an index may hold",
                self.versions.len(),
                limits::LABELS
            ));
        }
        for version in self.versions.iter().chain(self.fixed.iter()) {
            if version.trim().is_empty() || version.len() > limits::SHORT_TEXT {
                return Err(format!(
                    "a version is empty or longer than {} bytes",
                    limits::SHORT_TEXT
                ));
            }
        }
        if let Some(fixed) = &self.fixed {
            if self.versions.contains(fixed) {
                return Err(format!(
                    "its fixed version {fixed} is one of the versions it concerns"
                ));
            }
        }
        if self.reason.trim().is_empty() {
            return Err("it gives no reason".into());
        }
        if self.reason.len() > limits::REASON {
            return Err(format!(
                "its reason is {} bytes, more than the {} an index may hold",
                self.reason.len(),
                limits::REASON
            ));
        }
        Ok(())
    }

    /// Whether `other` is the same advisory given again (same module,
    /// same versions): `repo advise` replaces it, so a correction of the
    /// reason, the kind or the fix does not pile up.
    pub fn same_subject(&self, other: &Advisory) -> bool {
        let sorted = |a: &Advisory| {
            let mut v = a.versions.clone();
            v.sort();
            v
        };
        self.module == other.module && sorted(self) == sorted(other)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn advisory(module: &str, version: &str, kind: AdvisoryKind) -> Advisory {
        Advisory {
            module: module.into(),
            versions: vec![version.into()],
            kind,
            reason: "leaks the roster".into(),
            fixed: Some("20240701.bb".into()),
            issued: Timestamp::now(),
        }
    }

    #[test]
    fn concerns_exactly_the_versions_named() {
        let a = advisory("lastlog", "20240601.aa", AdvisoryKind::Insecure);
        assert!(a.concerns("lastlog", "20240601.aa"));
        assert!(!a.concerns("lastlog", "20240701.bb"));
        assert!(!a.concerns("other", "20240601.aa"));
        assert_eq!(
            AdvisoryKind::parse("withdrawn"),
            Some(AdvisoryKind::Withdrawn)
        );
        assert_eq!(AdvisoryKind::parse("bad"), None);
    }

    #[test]
    fn malformed_or_oversized_advisories_are_refused() {
        type Mutation = fn(&mut Advisory);
        let cases: [Mutation; 6] = [
            |a| a.module = "../x".into(),
            |a| a.versions.clear(),
            |a| a.reason = " ".into(),
            |a| a.reason = "r".repeat(limits::REASON + 1),
            |a| a.fixed = Some("20240601.aa".into()),
            |a| a.versions = vec!["v".into(); limits::LABELS + 1],
        ];
        for mutate in cases {
            let mut a = advisory("lastlog", "20240601.aa", AdvisoryKind::Withdrawn);
            a.check().unwrap();
            mutate(&mut a);
            assert!(a.check().is_err(), "{a:?}");
        }
        let mut a = advisory("lastlog", "20240601.aa", AdvisoryKind::Withdrawn);
        a.reason = "bad\u{1b}[2J".into();
        assert!(a.clean_text());
        assert_eq!(a.reason, "bad\u{FFFD}[2J");
    }
}
