//! A rockspec, as the community repository generates them:
//!
//! ```lua
//! package = "mod_lib_ldap"
//! version = "35-2"
//! source = { url = ".../66b3085ecc49.tar.gz/mod_lib_ldap",
//!    dir = "Community-Modules-66b3085ecc49/mod_lib_ldap",
//!    file = "prosody-modules-66b3085ecc49.tar.gz" }
//! description = { summary = "Add LDAP plugin suite" }
//! dependencies = { "mod_y", "mod_z >= 12" }
//! build = { type = "builtin", modules = { ldap = "ldap.lib.lua" },
//!    copy_directories = { "res" } }
//! ```
//!
//! Only what modman uses is read; paths are checked here, so nothing
//! later has to trust them.

use super::lua::{self, Table, Value};
use super::{Requirement, RockVersion};
use crate::repo::index::is_safe_relative_path;

/// What one rock declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rockspec {
    /// The rock's name, `mod_x`.
    pub package: String,
    pub version: RockVersion,
    /// The name of the source archive inside the `.src.rock`:
    /// `source.file`, else the last part of `source.url`.
    pub source_file: String,
    /// The module's directory inside the source archive (`source.dir`).
    pub source_dir: String,
    /// `description.summary`, empty when absent.
    pub summary: String,
    /// Rocks needed, without `lua` itself.
    pub dependencies: Vec<Requirement>,
    /// `build.modules`: Lua module name -> file in `source_dir`.
    pub modules: Vec<(String, String)>,
    /// `build.copy_directories`: directories of `source_dir` installed
    /// with the module.
    pub copy_directories: Vec<String>,
}

impl Rockspec {
    /// Reads rockspec text from `file`. Every error starts with the file.
    pub fn parse(file: &str, text: &str) -> Result<Rockspec, String> {
        let globals = lua::parse(file, text).map_err(|e| e.to_string())?;
        let fail = |problem: String| format!("{file}: {problem}");
        let string = |table: &Table, key: &str, path: &str| -> Result<Option<String>, String> {
            match table.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(fail(format!("`{path}` is not a string"))),
            }
        };
        let table = |parent: &Table, key: &str| -> Result<Table, String> {
            match parent.get(key) {
                None => Ok(Table::default()),
                Some(Value::Table(t)) => Ok(t.clone()),
                Some(_) => Err(fail(format!("`{key}` is not a table"))),
            }
        };

        let package =
            string(&globals, "package", "package")?.ok_or_else(|| fail("no `package`".into()))?;
        if !super::is_module_rock(&package) {
            return Err(fail(format!(
                "package `{package}` is not a Prosody module name (mod_ and letters, digits, `_`, `-`)"
            )));
        }
        let version_text =
            string(&globals, "version", "version")?.ok_or_else(|| fail("no `version`".into()))?;
        let version = RockVersion::parse(&version_text)
            .ok_or_else(|| fail(format!("version `{version_text}` is not N-R")))?;

        let source = table(&globals, "source")?;
        let url = string(&source, "url", "source.url")?.unwrap_or_default();
        let source_file = match string(&source, "file", "source.file")? {
            Some(file) => file,
            None => url.rsplit('/').next().unwrap_or_default().to_owned(),
        };
        if source_file.is_empty()
            || source_file.contains('/')
            || !is_safe_relative_path(&source_file)
        {
            return Err(fail(format!(
                "`source.file` `{source_file}` is not a plain file name"
            )));
        }
        let source_dir = string(&source, "dir", "source.dir")?.ok_or_else(|| {
            fail(
                "no `source.dir`; modman needs the module's directory in the source archive".into(),
            )
        })?;
        let source_dir = source_dir.trim_end_matches('/').to_owned();
        if !is_safe_relative_path(&source_dir) || source_dir.rsplit('/').next() != Some(&package) {
            return Err(fail(format!(
                "`source.dir` `{source_dir}` is outside the module: it must be a relative path ending in /{package}"
            )));
        }

        let summary = string(
            &table(&globals, "description")?,
            "summary",
            "description.summary",
        )?
        .unwrap_or_default()
        .trim()
        .to_owned();

        let mut dependencies = Vec::new();
        for item in &table(&globals, "dependencies")?.items {
            let text = item
                .as_str()
                .ok_or_else(|| fail("an item of `dependencies` is not a string".into()))?;
            let requirement = Requirement::parse(text)
                .ok_or_else(|| fail(format!("dependency `{text}` is not `name [op version]`")))?;
            if requirement.rock != "lua" {
                dependencies.push(requirement);
            }
        }

        let build = table(&globals, "build")?;
        match string(&build, "type", "build.type")?.as_deref() {
            None | Some("builtin") | Some("none") => {}
            Some(other) => {
                return Err(fail(format!(
                    "build.type `{other}` runs a build; modman installs only `builtin` rocks of Lua files"
                )))
            }
        }
        let mut modules = Vec::new();
        for (name, path) in &table(&build, "modules")?.fields {
            let valid_name = !name.is_empty()
                && name
                    .split('.')
                    .all(crate::repo::index::is_valid_module_name);
            let path = path.as_str().ok_or_else(|| {
                fail(format!(
                    "build.modules[\"{name}\"] is not a file name (C modules are not supported)"
                ))
            })?;
            if !valid_name || !is_safe_relative_path(path) || !path.ends_with(".lua") {
                return Err(fail(format!(
                    "build.modules[\"{name}\"] = \"{path}\" points outside the module or is not a Lua file"
                )));
            }
            modules.push((name.clone(), path.to_owned()));
        }
        let mut copy_directories = Vec::new();
        for item in &table(&build, "copy_directories")?.items {
            let dir = item.as_str().ok_or_else(|| {
                fail("an item of `build.copy_directories` is not a string".into())
            })?;
            let dir = dir.trim_end_matches('/');
            if !is_safe_relative_path(dir) {
                return Err(fail(format!(
                    "build.copy_directories item `{dir}` points outside the module"
                )));
            }
            copy_directories.push(dir.to_owned());
        }
        Ok(Rockspec {
            package,
            version,
            source_file,
            source_dir,
            summary,
            dependencies,
            modules,
            copy_directories,
        })
    }

    /// The module's name as in `modules_enabled`: the package without `mod_`.
    pub fn module_name(&self) -> &str {
        self.package.strip_prefix("mod_").unwrap_or(&self.package)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LDAP: &str = r#"
package = "mod_lib_ldap"
version = "35-2"
source = {
   url = "https://hg.example/archive/66b3085ecc49.tar.gz/mod_lib_ldap",
   dir = "Community-Modules-66b3085ecc49/mod_lib_ldap",
   file = "prosody-modules-66b3085ecc49.tar.gz"
}
description = { summary = "Add LDAP plugin suite",
   homepage = "https://modules.example/mod_lib_ldap.html", license = "MIT" }
dependencies = { "lua >= 5.1", "mod_y", "mod_z >= 12" }
build = { type = "builtin", modules = { ldap = "ldap.lib.lua" }, copy_directories = { "res/" } }
"#;

    #[test]
    fn reads_the_fields_modman_uses() {
        let spec = Rockspec::parse("mod_lib_ldap-35-2.rockspec", LDAP).unwrap();
        assert_eq!(spec.module_name(), "lib_ldap");
        assert_eq!(spec.version.to_string(), "35-2");
        assert_eq!(spec.source_file, "prosody-modules-66b3085ecc49.tar.gz");
        assert_eq!(
            spec.source_dir,
            "Community-Modules-66b3085ecc49/mod_lib_ldap"
        );
        assert_eq!(spec.summary, "Add LDAP plugin suite");
        let rocks: Vec<&str> = spec.dependencies.iter().map(|d| d.rock.as_str()).collect();
        assert_eq!(rocks, ["mod_y", "mod_z"]);
        assert_eq!(spec.modules, [("ldap".into(), "ldap.lib.lua".into())]);
        assert_eq!(spec.copy_directories, ["res"]);
        let no_file = LDAP.replace("file = \"prosody-modules-66b3085ecc49.tar.gz\"", "");
        let spec = Rockspec::parse("x", &no_file).unwrap();
        assert_eq!(spec.source_file, "mod_lib_ldap");
    }

    #[test]
    fn paths_outside_the_module_are_refused() {
        let cases = [
            (
                "Community-Modules-66b3085ecc49/mod_lib_ldap\"",
                "Community-Modules-66b3085ecc49\"",
                "source.dir",
            ),
            (
                "Community-Modules-66b3085ecc49/mod_lib_ldap\"",
                "../../etc/mod_lib_ldap\"",
                "source.dir",
            ),
            (
                "Community-Modules-66b3085ecc49/mod_lib_ldap\"",
                "/etc/mod_lib_ldap\"",
                "source.dir",
            ),
            (
                "Community-Modules-66b3085ecc49/mod_lib_ldap\"",
                "C/mod_other\"",
                "source.dir",
            ),
            (
                "\"ldap.lib.lua\"",
                "\"../mod_other/x.lua\"",
                "build.modules[\"ldap\"]",
            ),
            (
                "\"ldap.lib.lua\"",
                "\"/etc/passwd.lua\"",
                "build.modules[\"ldap\"]",
            ),
            ("\"ldap.lib.lua\"", "\"ldap.so\"", "not a Lua file"),
            ("ldap = ", "[\"../x\"] = ", "build.modules[\"../x\"]"),
            ("\"res/\"", "\"../res\"", "copy_directories"),
            (
                "\"prosody-modules-66b3085ecc49.tar.gz\"",
                "\"../x.tar.gz\"",
                "source.file",
            ),
            ("\"builtin\"", "\"make\"", "runs a build"),
            (
                "\"mod_lib_ldap\"\nversion",
                "\"lib_ldap\"\nversion",
                "not a Prosody module name",
            ),
            ("\"35-2\"", "\"scm\"", "not N-R"),
            ("\"mod_y\"", "{}", "not a string"),
        ];
        for (from, to, expected) in cases {
            let text = LDAP.replacen(from, to, 1);
            assert_ne!(text, LDAP, "{expected}");
            let error = Rockspec::parse("mod_lib_ldap-35-2.rockspec", &text).unwrap_err();
            assert!(
                error.starts_with("mod_lib_ldap-35-2.rockspec") && error.contains(expected),
                "{expected:?} not in {error:?}"
            );
        }
    }

    /// 100,000 nested tables are refused at the nesting limit, with the
    /// position, without recursing into them.
    #[test]
    fn deep_nesting_is_refused_without_recursing() {
        let depth = 100_000;
        let text = format!(
            "package = \"mod_x\"\nbuild = {}{}\n",
            "{".repeat(depth),
            "}".repeat(depth)
        );
        let error = Rockspec::parse("mod_x-1-1.rockspec", &text).unwrap_err();
        assert!(
            error.contains(&format!(
                "mod_x-1-1.rockspec, line 2, column {}: tables nested deeper than {}",
                9 + super::lua::MAX_DEPTH,
                super::lua::MAX_DEPTH
            )),
            "{error}"
        );
    }
}
