//! Fleet lines in a direct chat: `fleet: list updates` or
//! `b.example.org c.example.org: list`. The servers named before the colon
//! are this modman's own and its peers' (or `fleet` for all); the rest is
//! an ordinary chat line, read the same way, and the answer is the merged
//! table as text.

use minidom::Element;

use super::merge;
use super::request::{across, targets, Across, ACROSS};
use super::{server_of, WHOLE_FLEET};
use crate::access::Actor;
use crate::config::Config;
use crate::ops::{Input, Response};
use crate::xmpp::chat::{parse_line, Line};
use crate::xmpp::command::NS_DATA;

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

/// The answer to `line` for the servers `names`, asked by `actor`.
pub async fn reply(
    ctx: &crate::ops::Context,
    link: Link<'_>,
    actor: &Actor,
    names: &[String],
    line: &str,
) -> String {
    let (op, raw) = match parse_line(line) {
        Ok(Line::Command { op, raw }) if op.spec().node == ACROSS => (op, raw),
        Ok(_) => {
            return format!("Only `{ACROSS}` runs across servers; nothing was run. Say `{ACROSS}` after the servers, or leave them out to talk to this server.")
        }
        Err(explanation) => return explanation,
    };
    let input = match Input::check(op.spec().params, raw.iter().map(|(v, vs)| (*v, vs.clone()))) {
        Ok(input) => input,
        Err(e) => return format!("{e}; nothing was run."),
    };
    let targets = match targets(ctx, names) {
        Ok(targets) => targets,
        Err(e) => return e.to_string(),
    };
    let Some(admin) = actor.jid() else {
        return "Only an admin over XMPP can ask other servers.".to_owned();
    };
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
    let form = submit_form(&raw);
    match across(
        ctx,
        link,
        admin,
        Across::List,
        Some(form),
        targets.peers.clone(),
        here,
    )
    .await
    {
        Ok(table) => crate::text::render(&Response::Table(table)),
        Err(e) => format!("Failed: {}", crate::clean::one_line(&e.to_string())),
    }
}

/// The fields of a chat line as a submitted data form, as a peer reads it.
fn submit_form(raw: &[(&str, Vec<String>)]) -> Element {
    let mut form = Element::builder("x", NS_DATA)
        .attr(crate::xmpp::name("type"), "submit")
        .build();
    for (var, values) in raw {
        let mut field = Element::builder("field", NS_DATA)
            .attr(crate::xmpp::name("var"), *var)
            .build();
        for value in values {
            field.append_child(
                Element::builder("value", NS_DATA)
                    .append(value.as_str())
                    .build(),
            );
        }
        form.append_child(field);
    }
    form
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
}
