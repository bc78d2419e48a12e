//! The operations as subcommands, generated from each operation's
//! [`Spec`], as the chat grammar and the ad-hoc forms are: one declaration
//! of an operation's parameters serves all three front ends.
//!
//! The first module-list or text parameter is positional (`modman install
//! lastlog smacks`, `modman info lastlog`, `modman list smacks`); the rest
//! are flags named after their field (`--enable`, `--hosts a,b`,
//! `--show installed`). Changing operations take `--yes` and `--dry-run`.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches};
use modman::ops::{Access, Param, ParamKind, Spec, CONFIRM_FIELD, DRY_RUN_FIELD};

/// The subcommand for `spec`.
pub fn command(spec: &'static Spec) -> clap::Command {
    let mut command = clap::Command::new(spec.node)
        .about(spec.name)
        .long_about(spec.instructions)
        .arg(
            Arg::new("config")
                .long("config")
                .short('c')
                .required(true)
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Path to modman.toml."),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print the result as JSON: rows keyed by column, fields by name."),
        );
    if spec.access == Access::Change {
        command = command
            .arg(
                Arg::new("yes")
                    .long("yes")
                    .short('y')
                    .action(ArgAction::SetTrue)
                    .help("Answer yes to the question the command would ask."),
            )
            .arg(
                Arg::new("dry-run")
                    .long("dry-run")
                    .action(ArgAction::SetTrue)
                    .conflicts_with("yes")
                    .help("Show what the command would do, and change nothing."),
            );
    }
    let positional = positional(spec);
    for param in spec.params {
        command = command.arg(argument(param, positional == Some(param.var)));
    }
    command
}

/// What clap read for `spec` as the fields a form would carry, `--yes`
/// and `--dry-run` as its `confirm` and `dry_run`: what the command line
/// checks with [`modman::ops::Input::check`],
/// and what a command handed to the daemon carries there, to be checked
/// again by the same [`Input::check`].
pub fn fields(spec: &'static Spec, args: &ArgMatches) -> Vec<(&'static str, Vec<String>)> {
    let given = spec.params.iter().filter_map(|param| {
        let values: Vec<String> = match param.kind {
            ParamKind::Boolean => vec![args.get_flag(param.var).to_string()],
            _ => args.get_many::<String>(param.var)?.cloned().collect(),
        };
        Some((param.var, values))
    });
    let consent = [("yes", CONFIRM_FIELD), ("dry-run", DRY_RUN_FIELD)]
        .into_iter()
        .filter(|(flag, _)| spec.access == Access::Change && args.get_flag(flag))
        .map(|(_, field)| (field, vec!["true".to_owned()]));
    given.chain(consent).collect()
}

/// The parameter given without a flag: the first list of modules or
/// text, what the command is about.
fn positional(spec: &Spec) -> Option<&'static str> {
    spec.params
        .iter()
        .find(|p| {
            matches!(
                p.kind,
                ParamKind::Modules(_) | ParamKind::Versioned(_) | ParamKind::Text
            )
        })
        .map(|p| p.var)
}

fn argument(param: &'static Param, positional: bool) -> Arg {
    let arg = Arg::new(param.var).help(param.help);
    if param.kind == ParamKind::Options {
        // `--set name=value`, as often as needed.
        return arg
            .long("set")
            .value_name("NAME=VALUE")
            .action(ArgAction::Append);
    }
    let arg = match positional {
        true => arg.value_name(match param.kind {
            ParamKind::Modules(_) => "MODULE",
            ParamKind::Versioned(_) => "MODULE[@VERSION]",
            _ => "TEXT",
        }),
        false => arg.long(param.var),
    };
    match param.kind {
        ParamKind::Boolean => arg.action(ArgAction::SetTrue),
        ParamKind::Modules(_) | ParamKind::Versioned(_) if positional => {
            arg.num_args(1..).required(param.required)
        }
        ParamKind::Modules(_) | ParamKind::Versioned(_) | ParamKind::Hosts => arg
            .value_delimiter(',')
            .action(ArgAction::Append)
            .required(param.required),
        ParamKind::Choice(options) => arg
            .value_parser(options.iter().map(|(value, _)| *value).collect::<Vec<_>>())
            .default_value(options.first().map(|(value, _)| *value).unwrap_or_default()),
        ParamKind::Text | ParamKind::Reason => arg.required(param.required),
        ParamKind::Options => arg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modman::ops::{Consent, Input, OptionSetting, Value, Wanted};

    fn parse(node: &str, words: &[&str]) -> Result<Input, String> {
        let op = modman::ops::find(node).unwrap();
        let args = command(op.spec())
            .try_get_matches_from(std::iter::once(node).chain(words.iter().copied()))
            .map_err(|e| e.to_string())?;
        Input::check(op.spec().params, fields(op.spec(), &args)).map_err(|e| e.to_string())
    }

    #[test]
    fn every_operation_becomes_a_valid_subcommand() {
        for op in modman::ops::all() {
            command(op.spec()).debug_assert();
        }
    }

    #[test]
    fn flags_and_positionals_follow_the_spec() {
        let install = parse(
            "install",
            &[
                "-c",
                "m.toml",
                "--enable",
                "--hosts",
                "a.example,b.example",
                "mod_lastlog",
                "smacks",
                "-y",
            ],
        )
        .unwrap();
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        let wanted = ["lastlog", "smacks"].map(|name| Wanted {
            name: name.to_owned(),
            version: None,
        });
        assert_eq!(
            install.value("modules"),
            Some(&Value::Versioned(wanted.to_vec()))
        );
        assert_eq!(
            install.value("hosts"),
            Some(&Value::Hosts(names(&["a.example", "b.example"])))
        );
        assert_eq!(install.value("enable"), Some(&Value::Boolean(true)));
        assert_eq!(install.consent, Consent::Given);
        let list = parse("list", &["-c", "m.toml", "--show", "updates", "smack"]).unwrap();
        assert_eq!(list.value("show"), Some(&Value::Choice("updates")));
        assert_eq!(list.value("query"), Some(&Value::Text("smack".into())));
        assert_eq!(
            parse("info", &["-c", "m.toml", "lastlog"])
                .unwrap()
                .value("module"),
            Some(&Value::Text("lastlog".into()))
        );
        // Options: `--set name=value` as chat's `name=value`, `name=`
        // unsets.
        let configure = parse(
            "configure",
            &[
                "-c",
                "m.toml",
                "lastlog",
                "--set",
                "lastlog_url=\"https://x.example/a b\"",
                "--set",
                "lastlog_stamp=",
            ],
        )
        .unwrap();
        let settings = vec![
            OptionSetting {
                name: "lastlog_url".into(),
                value: Some(vec!["https://x.example/a b".into()]),
            },
            OptionSetting {
                name: "lastlog_stamp".into(),
                value: None,
            },
        ];
        assert_eq!(configure.value("options"), Some(&Value::Options(settings)));
        // Reading commands ask nothing, so they take no --yes.
        assert!(parse("list", &["-c", "m.toml", "--yes"]).is_err());
        let dry = parse("update", &["-c", "m.toml", "--dry-run"]).unwrap();
        assert_eq!(dry.consent, Consent::DryRun);
        assert!(parse("list", &["-c", "m.toml", "--dry-run"]).is_err());
        // The same checks as every front end.
        let bad = parse("install", &["-c", "m.toml", "../etc"]).unwrap_err();
        assert!(bad.contains("is not a module name"), "{bad}");
    }
}
