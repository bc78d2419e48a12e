//! The grammar of a chat line: a line is read against the operation's
//! declared parameters, so there is no per-command chat code. Module
//! names are the words, `on HOST...` names hosts, a choice is its word
//! (`list installed`), a flag is its name (`install x enable`), the rest
//! is text.

use std::collections::VecDeque;

use crate::ops::{self, Access, Consent, Input, Operation, ParamKind, Value, DRY_RUN_FIELD};

/// The word before a changing command that shows its plan and changes
/// nothing (`plan update all`).
const PLAN: &str = "plan";

/// What a dry run asked in chat says to do next.
pub fn carry_out() -> String {
    format!("send the same line without `{PLAN}`")
}

/// A chat line, read.
pub enum Line {
    Help,
    Answer(bool),
    Command {
        op: &'static dyn Operation,
        raw: Vec<(&'static str, Vec<String>)>,
    },
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Line::Help => f.write_str("Help"),
            Line::Answer(yes) => write!(f, "Answer({yes})"),
            Line::Command { op, raw } => f
                .debug_struct("Command")
                .field("node", &op.spec().node)
                .field("raw", raw)
                .finish(),
        }
    }
}

/// Reads a line. `Err` is the reply explaining what was not understood.
pub fn parse_line(text: &str) -> Result<Line, String> {
    let mut words: VecDeque<&str> = text.split_whitespace().collect();
    let Some(first) = words.pop_front() else {
        return Ok(Line::Help);
    };
    match first.to_lowercase().as_str() {
        "help" | "?" => return Ok(Line::Help),
        "yes" | "y" => return Ok(Line::Answer(true)),
        "no" | "n" => return Ok(Line::Answer(false)),
        _ => {}
    }
    // `plan update all`: the command's plan, with nothing changed.
    let dry_run = first.eq_ignore_ascii_case(PLAN);
    let first = match dry_run {
        true => words
            .pop_front()
            .ok_or_else(|| "Say which command to plan, such as: plan update all".to_owned())?,
        false => first,
    };
    let op = ops::find(&first.to_lowercase()).ok_or_else(|| {
        format!(
            "I do not know `{}`; say help for the commands.",
            first.chars().take(32).collect::<String>()
        )
    })?;
    let params = op.spec().params;
    let mut raw = Vec::new();
    if dry_run {
        if op.spec().access != Access::Change {
            return Err(format!(
                "`{}` changes nothing, so there is nothing to plan; send it without `{PLAN}`.",
                op.spec().node
            ));
        }
        raw.push((DRY_RUN_FIELD, vec!["true".to_owned()]));
    }
    if let Some(param) = params.iter().find(|p| p.kind == ParamKind::Options) {
        let assignments = assignments(&mut words);
        if !assignments.is_empty() {
            raw.push((param.var, assignments));
        }
    }
    // `because ...`: the rest of the line is the reason, whatever words
    // it holds (`on`, a flag's name).
    for param in params.iter().filter(|p| p.kind == ParamKind::Reason) {
        if let Some(at) = words.iter().position(|w| w.eq_ignore_ascii_case(param.var)) {
            let reason: Vec<&str> = words.drain(at..).skip(1).collect();
            raw.push((param.var, vec![reason.join(" ")]));
        }
    }
    let on = words.iter().position(|w| w.eq_ignore_ascii_case("on"));
    let hosts: Option<Vec<String>> =
        on.map(|at| words.drain(at..).skip(1).map(str::to_owned).collect());
    // Flags first, by name, wherever they stand; naming hosts also means
    // "and enable it there" for a command that has a flag.
    for param in params.iter().filter(|p| p.kind == ParamKind::Boolean) {
        let named = words.iter().any(|w| w.eq_ignore_ascii_case(param.var));
        words.retain(|w| !w.eq_ignore_ascii_case(param.var));
        if named || hosts.is_some() {
            raw.push((param.var, vec!["true".to_owned()]));
        }
    }
    for param in params {
        match param.kind {
            // The choice first or last: `policy auto lastlog` and
            // `policy lastlog auto` alike.
            ParamKind::Choice(options) => {
                let chosen = |w: &&&str| options.iter().any(|(o, _)| o.eq_ignore_ascii_case(w));
                if let Some(word) = words.front().filter(chosen) {
                    raw.push((param.var, vec![word.to_lowercase()]));
                    words.pop_front();
                } else if let Some(word) = words.back().filter(chosen) {
                    raw.push((param.var, vec![word.to_lowercase()]));
                    words.pop_back();
                }
            }
            ParamKind::Modules(_) | ParamKind::Versioned(_) => {
                let names: Vec<String> = words
                    .drain(..)
                    .filter(|w| !w.eq_ignore_ascii_case("all"))
                    .map(str::to_owned)
                    .collect();
                if !names.is_empty() {
                    raw.push((param.var, names));
                }
            }
            ParamKind::Text if !words.is_empty() => {
                raw.push((
                    param.var,
                    vec![words.drain(..).collect::<Vec<_>>().join(" ")],
                ));
            }
            ParamKind::Hosts => raw.extend(hosts.clone().map(|h| (param.var, h))),
            ParamKind::Text | ParamKind::Boolean | ParamKind::Options | ParamKind::Reason => {}
        }
    }
    let node = op.spec().node;
    if !words.is_empty() {
        return Err(format!(
            "I did not understand `{}`. Usage: {}",
            words.iter().copied().collect::<Vec<_>>().join(" "),
            usage(op)
        ));
    }
    if hosts.is_some() && !params.iter().any(|p| p.kind == ParamKind::Hosts) {
        return Err(format!("`{node}` takes no hosts. Usage: {}", usage(op)));
    }
    Ok(Line::Command { op, raw })
}

/// The chat line that asks what `input` asks of `op`, written by this
/// grammar: its words in the order [`parse_line`] takes them out
/// (options, flags, the choice, names or text, then `on HOST...`, then
/// `because ...`). `None` when no line says exactly that (a flag left off
/// beside hosts, a text holding a word the grammar reads itself): the
/// line is read back and kept only if it gives the same input, so what
/// it says to send never asks something else.
pub fn line_of(op: &'static dyn Operation, input: &Input) -> Option<String> {
    let params = op.spec().params;
    let mut words = Vec::new();
    if input.consent == Consent::DryRun {
        words.push(PLAN.to_owned());
    }
    words.push(op.spec().node.to_owned());
    let (mut hosts, mut reason) = (Vec::new(), Vec::new());
    for param in params {
        let Some(value) = input.value(param.var) else {
            continue;
        };
        match value {
            Value::Boolean(true) => words.push(param.var.to_owned()),
            Value::Boolean(false) => {}
            Value::Options(settings) => {
                for setting in settings {
                    let value = setting.value.as_deref().unwrap_or_default().join(" ");
                    words.push(match value.contains(char::is_whitespace) {
                        true => format!("{}=\"{value}\"", setting.name),
                        false => format!("{}={value}", setting.name),
                    });
                }
            }
            Value::Hosts(names) => hosts.extend(names.iter().cloned()),
            Value::Reason(text) => reason = vec![param.var.to_owned(), text.to_string()],
            other => words.extend(other.shown()),
        }
    }
    if !hosts.is_empty() {
        words.push("on".to_owned());
        words.extend(hosts);
    }
    words.extend(reason);
    let line = words.join(" ");
    let Ok(Line::Command { op: read, raw }) = parse_line(&line) else {
        return None;
    };
    let back = Input::check(params, raw).ok()?;
    let same = |var: &str| {
        let given = |i: &Input| {
            i.value(var)
                .filter(|v| **v != Value::Boolean(false))
                .cloned()
        };
        given(input) == given(&back)
    };
    let dry_run = |i: &Input| i.consent == Consent::DryRun;
    (read.spec().node == op.spec().node
        && dry_run(input) == dry_run(&back)
        && params.iter().all(|p| same(p.var)))
    .then_some(line)
}

/// Takes the `name=value` words out of `words` (a value in double quotes
/// may hold blanks), each as one assignment for the options parameter.
fn assignments(words: &mut VecDeque<&str>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = VecDeque::new();
    while let Some(word) = words.pop_front() {
        let Some((name, value)) = word.split_once('=') else {
            rest.push_back(word);
            continue;
        };
        let mut value = value.to_owned();
        if value.starts_with('"') && (value.len() == 1 || !value.ends_with('"')) {
            while let Some(next) = words.pop_front() {
                value = format!("{value} {next}");
                if next.ends_with('"') {
                    break;
                }
            }
        }
        lines.push(format!("{name}={value}"));
    }
    *words = rest;
    lines
}

/// `install MODULE... [enable] [on HOST...]`, from the declared parameters.
pub fn usage(op: &dyn Operation) -> String {
    let mut parts = vec![op.spec().node.to_owned()];
    for param in op.spec().params {
        let part = match param.kind {
            ParamKind::Choice(options) => options
                .iter()
                .map(|(o, _)| *o)
                .collect::<Vec<_>>()
                .join("|"),
            ParamKind::Modules(_) => "MODULE...".to_owned(),
            ParamKind::Versioned(_) => "MODULE[@VERSION]...".to_owned(),
            ParamKind::Text => param.var.to_uppercase(),
            ParamKind::Boolean => param.var.to_owned(),
            ParamKind::Hosts => "on HOST...".to_owned(),
            ParamKind::Options => "name=value...".to_owned(),
            ParamKind::Reason => format!("{} \"...\"", param.var),
        };
        parts.push(if param.required {
            part
        } else {
            format!("[{part}]")
        });
    }
    parts.join(" ")
}

/// The commands, each with its usage and name.
pub(super) fn help() -> String {
    let lines: Vec<String> = ops::all()
        .iter()
        .map(|op| format!("{} - {}", usage(*op), op.spec().name))
        .collect();
    format!(
        "Commands:\n{}\nModule names may be written with or without mod_. Put {PLAN} before a command that changes things to see what it would do, with nothing changed (plan update all). When I ask a question, answer yes or no.",
        lines.join("\n")
    )
}

/// The commands as facts beside [`help`]'s text: each one's node, name
/// and usage, so a bot learns the commands without reading the text.
pub(super) fn help_facts() -> serde_json::Value {
    let commands: Vec<serde_json::Value> = ops::all()
        .iter()
        .map(|op| {
            serde_json::json!({
                "node": op.spec().node,
                "name": op.spec().name,
                "usage": usage(*op),
            })
        })
        .collect();
    serde_json::json!({"kind": "help", "commands": commands})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str) -> (&'static str, Vec<(&'static str, Vec<String>)>) {
        match parse_line(text).unwrap() {
            Line::Command { op, raw } => (op.spec().node, raw),
            _ => panic!("{text}: not a command"),
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_the_lines_admins_type() {
        assert_eq!(command("list"), ("list", vec![]));
        assert_eq!(
            command("list updates"),
            ("list", vec![("show", v(&["updates"]))])
        );
        assert_eq!(
            command("list installed smacks"),
            (
                "list",
                vec![("show", v(&["installed"])), ("query", v(&["smacks"]))]
            )
        );
        assert_eq!(
            command("list push notifications"),
            ("list", vec![("query", v(&["push notifications"]))])
        );
        assert_eq!(
            command("info mod_cloud_notify"),
            ("info", vec![("module", v(&["mod_cloud_notify"]))])
        );
        assert_eq!(
            command("install cloud_notify smacks on example.org"),
            (
                "install",
                vec![
                    ("enable", v(&["true"])),
                    ("modules", v(&["cloud_notify", "smacks"])),
                    ("hosts", v(&["example.org"]))
                ]
            )
        );
        assert_eq!(
            command("Install x enable"),
            (
                "install",
                vec![("enable", v(&["true"])), ("modules", v(&["x"]))]
            )
        );
        assert_eq!(command("update all"), ("update", vec![]));
        assert_eq!(
            command("plan update all"),
            ("update", vec![(DRY_RUN_FIELD, v(&["true"]))])
        );
        assert!(parse_line("plan list").is_err());
        // The reason is the rest of the line, `on` and flag names too.
        assert_eq!(
            command("hold mod_lastlog because \"breaks on our LDAP\""),
            (
                "hold",
                vec![
                    ("because", v(&["\"breaks on our LDAP\""])),
                    ("modules", v(&["mod_lastlog"]))
                ]
            )
        );
        assert!(parse_line("plan").is_err());
        assert_eq!(
            command("enable x on a.org b.org"),
            (
                "enable",
                vec![("modules", v(&["x"])), ("hosts", v(&["a.org", "b.org"]))]
            )
        );
        assert!(matches!(parse_line("YES"), Ok(Line::Answer(true))));
        assert!(matches!(parse_line("n"), Ok(Line::Answer(false))));
        assert!(matches!(parse_line("  "), Ok(Line::Help)));
    }

    /// A form's submitted fields, each with its values.
    type Submitted<'a> = &'a [(&'static str, &'a [&'a str])];

    /// What a form submitted to `node` gives, as adhoc reads it.
    fn submitted(node: &str, fields: Submitted) -> (&'static dyn Operation, Input) {
        let op = ops::find(node).unwrap();
        let raw = fields.iter().map(|(var, values)| (*var, v(values)));
        (op, Input::check(op.spec().params, raw).unwrap())
    }

    #[test]
    fn the_line_of_an_input_reads_back_as_that_input() {
        let cases: [(&str, Submitted, Option<&str>); 6] = [
            (
                "install",
                &[
                    ("modules", &["shaky"]),
                    ("enable", &["true"]),
                    ("hosts", &["localhost"]),
                ],
                Some("install shaky enable on localhost"),
            ),
            (
                "install",
                &[("modules", &["a", "b@1.0"]), ("enable", &["false"])],
                Some("install a b@1.0"),
            ),
            (
                "configure",
                &[
                    ("module", &["x"]),
                    (
                        "options",
                        &["x_url=https://x.example/", "x_name=\"a b\"", "x_gone="],
                    ),
                ],
                Some("configure x x_url=https://x.example/ x_name=\"a b\" x_gone="),
            ),
            (
                "hold",
                &[
                    ("modules", &["lastlog"]),
                    ("because", &["breaks on our LDAP"]),
                ],
                Some("hold lastlog because breaks on our LDAP"),
            ),
            (
                "remove",
                &[("modules", &["track_muc_joins"])],
                Some("remove track_muc_joins"),
            ),
            // Naming hosts turns the flag on in chat: no line leaves it off.
            (
                "install",
                &[
                    ("modules", &["x"]),
                    ("enable", &["false"]),
                    ("hosts", &["a.org"]),
                ],
                None,
            ),
        ];
        for (node, fields, expected) in cases {
            let (op, input) = submitted(node, fields);
            let line = line_of(op, &input);
            assert_eq!(line.as_deref(), expected, "{node} {fields:?}");
            let Some(line) = line else { continue };
            let Ok(Line::Command { op: read, raw }) = parse_line(&line) else {
                panic!("{line}: not a command");
            };
            assert_eq!(read.spec().node, node);
            let back = Input::check(read.spec().params, raw).unwrap();
            for param in op
                .spec()
                .params
                .iter()
                .filter(|p| p.kind != ParamKind::Boolean)
            {
                assert_eq!(back.value(param.var), input.value(param.var), "{line}");
            }
        }
    }

    #[test]
    fn says_what_it_did_not_understand() {
        let unknown = parse_line("frobnicate x").unwrap_err();
        assert!(
            unknown.starts_with("I do not know `frobnicate`"),
            "{unknown}"
        );
        let hosts = parse_line("remove x on example.org").unwrap_err();
        assert!(
            hosts.starts_with("`remove` takes no hosts. Usage: remove MODULE..."),
            "{hosts}"
        );
        let extra = parse_line("refresh now please").unwrap_err();
        assert!(
            extra.contains("I did not understand `now please`"),
            "{extra}"
        );
    }

    #[test]
    fn help_says_each_command_as_facts_too() {
        let facts = help_facts();
        assert_eq!(facts["kind"], "help");
        let commands = facts["commands"].as_array().unwrap();
        assert_eq!(commands.len(), ops::all().len());
        let install = commands.iter().find(|c| c["node"] == "install").unwrap();
        assert_eq!(install["usage"], usage(ops::find("install").unwrap()));
    }

    #[test]
    fn usage_comes_from_the_declared_parameters() {
        assert_eq!(
            usage(ops::find("install").unwrap()),
            "install MODULE[@VERSION]... [enable] [on HOST...]"
        );
        assert_eq!(
            usage(ops::find("list").unwrap()),
            "list [all|installed|available|updates] [QUERY]"
        );
        assert_eq!(
            usage(ops::find("hold").unwrap()),
            "hold MODULE... [because \"...\"]"
        );
    }
}
