//! One request for several servers: read which servers from the
//! [`SERVERS_FIELD`], run it here and relay it to the peers named, and
//! answer with the merged table. Only `list` goes across servers so far:
//! it reads and changes nothing anywhere.

use minidom::Element;
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use xmpp_parsers::jid::{BareJid, Jid};

use super::merge::{self, Row};
use super::relay::{Link, PeerFailure, Relay};
use super::{server_of, trust, SERVERS_FIELD, WHOLE_FLEET};
use crate::access::Actor;
use crate::ops::{Context, OpError, Table, CONFIRM_FIELD};
use crate::xmpp::adhoc::{self, AdhocError, Sessions};
use crate::xmpp::command::{CommandReply, CommandRequest, Note, Status, NS, NS_DATA};
use crate::xmpp::forms::{self, Rendering};

/// The reading that goes across servers: its answers are merged into
/// one table of module × server.
pub const ACROSS: &str = "list";

/// The changes that go to the servers named, each server making its own
/// change whole or undoing it; only with `confirm` submitted, as no
/// question can be asked of each server.
pub const CHANGES: [&str; 3] = ["install", "update", "enable"];

/// What one request across servers is, deciding how answers merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Across {
    List,
    Change(&'static str),
}

impl Across {
    /// The kind of `node`, if it goes across servers.
    pub fn of(node: &str) -> Option<Across> {
        if node == ACROSS {
            return Some(Across::List);
        }
        CHANGES
            .iter()
            .find(|c| **c == node)
            .map(|c| Across::Change(c))
    }

    fn node(self) -> &'static str {
        match self {
            Across::List => ACROSS,
            Across::Change(node) => node,
        }
    }

    fn merge(self, answers: &[(String, Result<Vec<Row>, PeerFailure>)]) -> Table {
        match self {
            Across::List => merge::fitted(answers),
            Across::Change(_) => merge::merge_changes(answers),
        }
    }
}

/// The servers one request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// This server itself.
    pub here: bool,
    /// Peer modmans, by component JID.
    pub peers: Vec<BareJid>,
}

/// The [`SERVERS_FIELD`] of `node`'s parameters form, when this modman
/// has peers and `node` can go across servers (as ejabberd's node field
/// picks a cluster node): left empty, the request is for this server.
pub fn servers_field(ctx: &Context, node: &str) -> Option<Element> {
    let config = &ctx.config;
    if Across::of(node).is_none() || config.fleet.peers.is_empty() {
        return None;
    }
    let mut field = forms::field_element(
        SERVERS_FIELD,
        "list-multi",
        "Servers (none: this server; fleet: all)",
    );
    field.append_child(forms::option_element(WHOLE_FLEET, "the whole fleet"));
    let servers = server_of(&config.component.jid)
        .into_iter()
        .chain(config.fleet.peers.iter().filter_map(server_of));
    for server in servers {
        field.append_child(forms::option_element(server.as_str(), server.as_str()));
    }
    Some(field)
}

/// Whether a submitted form answers `confirm` with true.
fn confirmed(form: Option<&Element>) -> bool {
    form.and_then(|form| forms::submitted_values(form).ok())
        .is_some_and(|values| {
            values.iter().any(|(var, vals)| {
                var == CONFIRM_FIELD && vals.iter().any(|v| v == "true" || v == "1")
            })
        })
}

/// Takes the [`SERVERS_FIELD`] out of `request`'s form: the servers it
/// names, or `None` when it names none (a request for this server only).
pub fn take_servers(request: &mut CommandRequest) -> Option<Vec<String>> {
    let form = request.form.as_ref()?;
    let is_servers = |c: &Element| c.is("field", NS_DATA) && c.attr("var") == Some(SERVERS_FIELD);
    let names: Vec<String> = form
        .children()
        .filter(|c| is_servers(c))
        .flat_map(|field| field.children().filter(|v| v.is("value", NS_DATA)))
        .flat_map(|value| {
            value
                .text()
                .split([',', ' ', '\n'])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut rest = Element::builder("x", NS_DATA)
        .attr(
            crate::xmpp::name("type"),
            form.attr("type").unwrap_or("submit"),
        )
        .build();
    for child in form.children().filter(|c| !is_servers(c)) {
        rest.append_child(child.clone());
    }
    request.form = Some(rest);
    (!names.is_empty()).then_some(names)
}

/// The servers `names` stand for, with this modman's peers: a server's
/// domain or [`WHOLE_FLEET`].
pub fn targets(ctx: &Context, names: &[String]) -> Result<Targets, OpError> {
    let config = &ctx.config;
    let here = server_of(&config.component.jid);
    if names.iter().any(|n| n == WHOLE_FLEET) {
        return Ok(Targets {
            here: true,
            peers: config.fleet.peers.iter().cloned().collect(),
        });
    }
    let mut targets = Targets {
        here: false,
        peers: vec![],
    };
    for name in names {
        let peer = config
            .fleet
            .peers
            .iter()
            .find(|p| server_of(p).is_some_and(|s| s.as_str() == name));
        match peer {
            Some(peer) if !targets.peers.contains(peer) => targets.peers.push(peer.clone()),
            Some(_) => {}
            None if here.as_ref().is_some_and(|h| h.as_str() == name) => targets.here = true,
            None => {
                let known: Vec<String> = here
                    .iter()
                    .chain(
                        config
                            .fleet
                            .peers
                            .iter()
                            .filter_map(server_of)
                            .collect::<Vec<_>>()
                            .iter(),
                    )
                    .map(ToString::to_string)
                    .collect();
                return Err(OpError::bad_input(format!(
                        "`{}` is not a server of this fleet; name one of {} or `{WHOLE_FLEET}` (the peers are `[fleet] peers` in modman.toml)",
                        name.chars().take(64).collect::<String>(),
                        known.join(", ")
                    )));
            }
        }
    }
    Ok(targets)
}

/// Asks `peers` for `list` with `form` on behalf of `admin` while `here`
/// runs it on this server (`None` when this server is not asked), and
/// merges every answer, sorted by server, into one table.
pub async fn across<E>(
    ctx: &Context,
    link: Link<'_>,
    admin: &BareJid,
    kind: Across,
    form: Option<Element>,
    peers: Vec<BareJid>,
    here: impl std::future::Future<Output = Result<Option<Result<Vec<Row>, PeerFailure>>, E>>,
) -> Result<Table, E> {
    let config = &ctx.config;
    let mut relayed = Element::builder("command", NS)
        .attr(crate::xmpp::name("node"), kind.node())
        .attr(crate::xmpp::name("action"), "execute")
        .build();
    if let Some(form) = form {
        relayed.append_child(form);
    }
    relayed.append_child(trust::relayed_for(admin));
    let peers = link.relay.gather(
        &config.component.jid,
        peers,
        &relayed,
        link.replies,
        config.fleet.answer_within,
    );
    let (peers, here) = futures::join!(peers, here);
    let name = |jid: &BareJid| server_of(jid).map_or_else(|| jid.to_string(), |s| s.to_string());
    let mut answers: Vec<(String, Result<Vec<Row>, PeerFailure>)> = Vec::new();
    if let Some(rows) = here? {
        answers.push((name(&config.component.jid), rows));
    }
    for (peer, answer) in peers {
        answers.push((name(&peer), answer.and_then(|c| merge::rows_of(&c))));
    }
    answers.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(kind.merge(&answers))
}

/// Runs `request` on `targets` for `actor` and answers with the merged
/// table, rendered for the requester's client. Here it goes through the
/// requester's own session, if any (the form shown, then submitted); a
/// peer gets the submitted form in one `execute`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ctx: &Context,
    sessions: &Sessions,
    relay: &Relay,
    actor: &Actor,
    from: &Jid,
    rendering: Rendering,
    request: CommandRequest,
    targets: Targets,
    replies: &mpsc::Sender<Stanza>,
) -> Result<CommandReply, AdhocError> {
    let Some(kind) = Across::of(&request.node) else {
        return Err(OpError::bad_input(format!("only `{ACROSS}` and `{}` run across servers; nothing was run. Leave the `{SERVERS_FIELD}` field empty to run `{}` on this server", CHANGES.join("`, `"), request.node.chars().take(64).collect::<String>()))
        .into());
    };
    if matches!(kind, Across::Change(_)) && !confirmed(request.form.as_ref()) {
        return Err(OpError::bad_input(format!("a change across servers runs only with `{CONFIRM_FIELD}` = true submitted, since no question can be asked of each server; nothing was run anywhere")).into());
    }
    let Some(admin) = actor.jid() else {
        return Err(OpError::bad_input("only an admin over XMPP can ask other servers").into());
    };
    let here = async {
        if !targets.here {
            return Ok(None);
        }
        let reply = adhoc::handle(
            ctx,
            sessions,
            actor,
            from,
            Rendering::Tables,
            request.clone(),
        );
        let reply = match (kind, reply.await) {
            (_, Ok(reply)) => merge::rows_of(&Element::from(reply)),
            (Across::List, Err(error)) => return Err(error),
            // This server's change failed and was undone: its row says
            // so, beside the servers that made theirs.
            (Across::Change(_), Err(error)) => Err(PeerFailure::Failed(crate::clean::one_line(
                &error.to_string(),
            ))),
        };
        Ok::<_, AdhocError>(Some(reply))
    };
    let table = across(
        ctx,
        Link { relay, replies },
        admin,
        kind,
        request.form.clone(),
        targets.peers,
        here,
    )
    .await?;
    Ok(CommandReply {
        node: kind.node().to_owned(),
        session_id: format!("{:032x}", rand::random::<u128>()),
        status: Status::Completed,
        actions: vec![],
        notes: vec![Note::info(&table.note)],
        form: Some(forms::table_result(&table, rendering)),
    })
}
