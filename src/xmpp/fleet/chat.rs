//! Fleet lines in a direct chat: `fleet: list updates`,
//! `b.example.org c.example.org: list`, or a change rolled out in stages,
//! `fleet: update all batch=2 confirm`. The servers named before the colon
//! are this modman's own and its peers' (or `fleet` for all); the rest is
//! an ordinary chat line, read the same way, and the answer is the merged
//! table as text.

use super::across::{Across, ACROSS, CHANGES};
use super::merge;
use super::request::{across, batch_size, targets};
use super::rollout::{self, AskedIn, Fields, Intent, BATCH_FIELD};
use super::{server_of, WHOLE_FLEET};
use crate::access::Actor;
use crate::config::Config;
use crate::ops::{Input, Response, CONFIRM_FIELD};
use crate::xmpp::chat::line::{self, parse_line, Line};
use crate::xmpp::chat::said::Said;

pub use super::relay::Link;

/// The servers `text` names before its first colon, and the line after
/// it; `None` when it names none (a line for this server). Only names of
/// this fleet count, so a line such as `list: x` is never taken for one.
pub fn addressed<'a>(config: &Config, text: &'a str) -> Option<(Vec<String>, &'a str)> {
    if config.fleet.peers.is_empty() {
        return None;
    }
    let (head, rest) = text.split_once(':')?;
    let known = |word: &str| {
        word.eq_ignore_ascii_case(WHOLE_FLEET)
            || server_of(&config.component.jid)
                .into_iter()
                .chain(config.fleet.peers.iter().filter_map(server_of))
                .any(|server| server.as_str().eq_ignore_ascii_case(word))
    };
    let names: Vec<String> = head.split_whitespace().map(str::to_lowercase).collect();
    (!names.is_empty() && names.iter().all(|n| known(n))).then(|| (names, rest.trim()))
}

/// Whether a room line is for the fleet rather than for one modman: it
/// names `fleet` or several servers. A line naming one server is for
/// that server's modman alone, addressed by its nick (the server's
/// domain by default).
pub fn for_the_room(config: &Config, text: &str) -> bool {
    addressed(config, text)
        .is_some_and(|(names, _)| names.len() > 1 || names.iter().any(|n| n == WHOLE_FLEET))
}

/// The answer to `line` for the servers `names`, asked by `actor`:
/// `list` merged across them, or a change rolled out over them in stages
/// ([`rollout`]), which runs only when the line says `confirm` (or is a
/// `plan`); `batch=N` sets its batch size. A change made is also told to
/// the rooms of `[chat] rooms` but the one it was asked in.
pub async fn reply(
    ctx: &crate::ops::Context,
    link: Link<'_>,
    asked_in: AskedIn<'_>,
    actor: &Actor,
    names: &[String],
    line: &str,
) -> Said {
    let (line, batch, confirm) = rollout_words(line);
    let (op, raw) = match parse_line(&line) {
        Ok(Line::Command { op, raw }) => (op, raw),
        Ok(_) => return only_across().into(),
        Err(explanation) => return explanation.into(),
    };
    let Some(kind) = Across::of(op.spec().node) else {
        return only_across().into();
    };
    let input = match Input::check(op.spec().params, raw.iter().map(|(v, vs)| (*v, vs.clone()))) {
        Ok(input) => input,
        Err(e) => return format!("{e}; nothing was run.").into(),
    };
    let targets = match targets(ctx, names) {
        Ok(targets) => targets,
        Err(e) => return e.to_string().into(),
    };
    let Some(admin) = actor.jid() else {
        return "Only an admin over XMPP can ask other servers."
            .to_owned()
            .into();
    };
    let mut fields: Fields = raw
        .iter()
        .map(|(var, values)| ((*var).to_owned(), values.clone()))
        .collect();
    let table = match kind {
        Across::List => {
            let here = async {
                if !targets.here {
                    return Ok(None);
                }
                match op.run(ctx, actor, &input).await? {
                    Response::Table(table) => Ok(Some(Ok(merge::rows_of_table(&table)))),
                    _ => Err(crate::ops::OpError::unavailable(format!(
                        "`{ACROSS}` did not answer a table"
                    ))),
                }
            };
            let form = rollout::form(&fields);
            across(ctx, link, admin, Some(form), targets.peers.clone(), here).await
        }
        Across::Change(node) => {
            let batch = match batch_size(ctx, &batch) {
                Ok(batch) => batch,
                Err(e) => return e.to_string().into(),
            };
            let stages = rollout::stages(targets.servers(ctx), batch);
            if confirm {
                fields.push((CONFIRM_FIELD.to_owned(), vec!["true".to_owned()]));
            }
            let intent = match rollout::intent(node, &fields) {
                Ok(intent) => intent,
                Err(e) => return format!("{e}; nothing was run.").into(),
            };
            if intent == Intent::Unconfirmed {
                let canary = stages
                    .first()
                    .and_then(|stage| stage.first())
                    .map_or(String::new(), |s| s.name.clone());
                return format!(
                    "A change across servers runs only when the line says `confirm`: say it again with `confirm` at the end (or start it with `plan` to see each server's plan). It goes to {canary} first, then to the others in batches of {batch}, each checked before the next. Nothing was run anywhere."
                ).into();
            }
            let runner = rollout::Runner {
                ctx,
                link,
                actor,
                admin,
                node,
                fields,
                intent,
            };
            let count = stages.len();
            let standings = runner.roll_out(stages).await;
            let table = rollout::table(intent, count, batch, &standings, &line::carry_out());
            if intent == Intent::Change {
                rollout::tell_rooms(ctx, link.replies, asked_in, &table).await;
            }
            Ok(table)
        }
    };
    // The table's facts go beside its text, as for any command in chat,
    // so a bot in the room reads each server's row without parsing it.
    match table {
        Ok(table) => {
            let response = Response::Table(table);
            Said {
                text: crate::text::render(&response),
                facts: Some(response.to_json()),
            }
        }
        Err(e) => Said::failed(
            format!("Failed: {}", crate::clean::one_line(&e.to_string())),
            &e,
        ),
    }
}

/// The answer to a fleet line with a command that does not go across
/// servers.
fn only_across() -> String {
    format!("Only `{ACROSS}`, `{}` run across servers; nothing was run. Say one of them after the servers, or leave the servers out to talk to this server.", CHANGES.join("`, `"))
}

/// `line` without the words of a rollout, which are not the command's:
/// the values of `batch=N`, and whether it says `confirm`.
fn rollout_words(line: &str) -> (String, Vec<String>, bool) {
    let mut batch = Vec::new();
    let mut confirm = false;
    let mut rest = Vec::new();
    for word in line.split_whitespace() {
        let lower = word.to_lowercase();
        if let Some(value) = lower.strip_prefix(&format!("{BATCH_FIELD}=")) {
            batch.push(value.to_owned());
        } else if lower == CONFIRM_FIELD {
            confirm = true;
        } else {
            rest.push(word);
        }
    }
    (rest.join(" "), batch, confirm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_this_fleet_address_servers() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("modman.example.toml"),
        )
        .unwrap();
        let alone = Config::parse(&text, std::path::Path::new("/")).unwrap();
        assert_eq!(addressed(&alone, "fleet: list"), None);
        let peers = format!("{text}\n[fleet]\npeers = [\"modman.b.example.org\"]\n");
        let config = Config::parse(&peers, std::path::Path::new("/")).unwrap();
        assert_eq!(
            addressed(&config, "Fleet: list updates"),
            Some((vec!["fleet".to_owned()], "list updates"))
        );
        assert_eq!(
            addressed(&config, "b.example.org: list"),
            Some((vec!["b.example.org".to_owned()], "list"))
        );
        assert_eq!(addressed(&config, "z.example.org: list"), None);
        assert_eq!(addressed(&config, "list installed"), None);
        assert_eq!(addressed(&config, ": list"), None);
    }

    #[test]
    fn a_rollouts_own_words_are_taken_out_of_the_line() {
        assert_eq!(
            rollout_words("update all batch=2 Confirm"),
            ("update all".to_owned(), vec!["2".to_owned()], true)
        );
        assert_eq!(
            rollout_words("install lastlog"),
            ("install lastlog".to_owned(), vec![], false)
        );
    }
}
