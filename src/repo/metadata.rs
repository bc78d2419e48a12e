//! What a module says about itself: the README's YAML front matter
//! (summary, labels), its Compatibility table, and the dependencies its
//! Lua code declares with `module:depends("x")`.

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

/// Module names passed as a literal to `module:depends`, sorted, unique.
/// Computed names (`module:depends(variable)`) cannot be known statically
/// and are skipped.
pub fn depends(lua: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in lua.match_indices("module:depends") {
        let rest = lua[at + "module:depends".len()..].trim_start();
        let rest = rest.strip_prefix('(').unwrap_or(rest).trim_start();
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let Some(end) = rest[1..].find(quote) else {
            continue;
        };
        let name = &rest[1..1 + end];
        if is_valid_module_name(name) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
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
        assert_eq!(depends(lua), ["adhoc", "http", "track_muc_joins"]);
    }
}
