//! A LuaRocks server's `manifest`: `repository[rock][version]` lists the
//! files published for that version, as `{ arch = "src" }` (the
//! `.src.rock`) and `{ arch = "rockspec" }`. modman installs from the
//! `.src.rock` only; `modules` and `commands` are not needed.

use std::collections::BTreeMap;

use super::lua;
use super::RockVersion;

/// Which versions of which rocks the server publishes as `.src.rock`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Rock name (such as `mod_bob`) -> its versions, oldest first.
    pub rocks: BTreeMap<String, Vec<RockVersion>>,
}

/// Why a manifest was refused, naming the file and the place.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Syntax(#[from] lua::SyntaxError),
    #[error("{file}: {problem}")]
    Shape { file: String, problem: String },
}

impl Manifest {
    /// Reads the manifest text fetched as `file`. Versions that are not
    /// `N-R` and rocks without a `.src.rock` are left out; a manifest of
    /// another shape is refused.
    pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestError> {
        let shape = |problem: String| ManifestError::Shape {
            file: file.to_owned(),
            problem,
        };
        let globals = lua::parse(file, text)?;
        let repository = globals
            .get("repository")
            .and_then(lua::Value::as_table)
            .ok_or_else(|| shape("no `repository` table; is this a LuaRocks manifest?".into()))?;
        let mut rocks = BTreeMap::new();
        for (rock, versions) in &repository.fields {
            let versions = versions
                .as_table()
                .ok_or_else(|| shape(format!("repository[\"{rock}\"] is not a table")))?;
            let mut published = Vec::new();
            for (version, files) in &versions.fields {
                let has_source_rock = files.as_table().is_some_and(|files| {
                    files.items.iter().any(|file| {
                        file.as_table()
                            .and_then(|f| f.get("arch"))
                            .and_then(lua::Value::as_str)
                            == Some("src")
                    })
                });
                if let (true, Some(version)) = (has_source_rock, RockVersion::parse(version)) {
                    published.push(version);
                }
            }
            if !published.is_empty() {
                published.sort();
                rocks.insert(rock.clone(), published);
            }
        }
        Ok(Manifest { rocks })
    }

    /// The newest version of `rock`.
    pub fn newest(&self, rock: &str) -> Option<&RockVersion> {
        self.rocks.get(rock).and_then(|versions| versions.last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_source_rock_per_module() {
        let text = r#"
commands = {}
modules = {}
repository = {
   mod_bob = {
      ["3-1"] = { { arch = "rockspec" }, { arch = "src" } },
      ["10-1"] = { { arch = "src" } },
      ["9-2"] = { { arch = "src" } },
      ["11-1"] = { { arch = "rockspec" } },
   },
   mod_only_rockspec = { ["1-1"] = { { arch = "rockspec" } } },
   ["mod_weird"] = { ["latest"] = { { arch = "src" } } },
}
"#;
        let manifest = Manifest::parse("manifest", text).unwrap();
        assert_eq!(manifest.rocks.keys().collect::<Vec<_>>(), ["mod_bob"]);
        assert_eq!(manifest.newest("mod_bob").unwrap().to_string(), "10-1");
        assert_eq!(manifest.rocks["mod_bob"].len(), 3);
    }

    #[test]
    fn another_shape_is_refused_by_name() {
        let error = Manifest::parse("manifest", "x = 1")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("manifest: no `repository`"), "{error}");
        let error = Manifest::parse("manifest", "repository = { mod_a = 1 }")
            .unwrap_err()
            .to_string();
        assert!(error.contains("repository[\"mod_a\"]"), "{error}");
        let error = Manifest::parse("manifest-5.4", "repository = loadstring('x')")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("manifest-5.4, line 1"), "{error}");
    }
}
