//! One request for several servers: read which servers from the
//! [`SERVERS_FIELD`], run it here and relay it to the peers named, and
//! answer with the merged table. Only `list` goes across servers so far:
//! it reads and changes nothing anywhere.

use minidom::Element;
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use xmpp_parsers::jid::{BareJid, Jid};

use std::num::NonZeroUsize;

use super::across::{Across, ACROSS, CHANGES};
use super::merge::{self, Row};
use super::relay::{Link, PeerFailure, Relay};
use super::rollout::{self, Intent, BATCH_FIELD};
use super::{server_of, trust, SERVERS_FIELD, WHOLE_FLEET};
use crate::access::Actor;
use crate::ops::{Context, OpError, Table, CONFIRM_FIELD, DRY_RUN_FIELD};
use crate::xmpp::adhoc::{self, AdhocError, Sessions};
use crate::xmpp::clients::rendering::Rendering;
use crate::xmpp::clients::PendingRendering;
use crate::xmpp::command::{CommandReply, CommandRequest, Note, Status, NS, NS_DATA};
use crate::xmpp::forms::{params, results};

/// The servers one request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// This server itself.
    pub here: bool,
    /// Peer modmans, by component JID.
    pub peers: Vec<BareJid>,
}

impl Targets {
    /// The servers of a rollout, by domain.
    pub fn servers(self, ctx: &Context) -> Vec<rollout::Server> {
        let name =
            |jid: &BareJid| server_of(jid).map_or_else(|| jid.to_string(), |s| s.to_string());
        let here = self.here.then(|| rollout::Server {
            name: name(&ctx.config.component.jid),
            peer: None,
        });
        here.into_iter()
            .chain(self.peers.into_iter().map(|peer| rollout::Server {
                name: name(&peer),
                peer: Some(peer),
            }))
            .collect()
    }
}

/// Takes the [`SERVERS_FIELD`] out of `request`'s form: the servers it
/// names, or `None` when it names none (a request for this server only).
pub fn take_servers(request: &mut CommandRequest) -> Option<Vec<String>> {
    let names = take_field(request, SERVERS_FIELD);
    (!names.is_empty()).then_some(names)
}

/// Takes the field `var` out of `request`'s form (the rest goes on to
/// the operation, here and on the peers): its words.
fn take_field(request: &mut CommandRequest, var: &str) -> Vec<String> {
    let Some(form) = request.form.as_ref() else {
        return vec![];
    };
    let is_it = |c: &Element| c.is("field", NS_DATA) && c.attr("var") == Some(var);
    let words: Vec<String> = form
        .children()
        .filter(|c| is_it(c))
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
    for child in form.children().filter(|c| !is_it(c)) {
        rest.append_child(child.clone());
    }
    request.form = Some(rest);
    words
}

/// The batch size `words` give (the [`BATCH_FIELD`] or a chat line's
/// `batch=N`), or `[fleet] batch_size` when they give none.
pub fn batch_size(ctx: &Context, words: &[String]) -> Result<NonZeroUsize, OpError> {
    match words {
        [] => Ok(ctx.config.fleet.batch_size),
        [word] => word
            .parse::<NonZeroUsize>()
            .ok()
            .filter(|n| n.get() <= crate::config::MAX_PEERS)
            .ok_or_else(|| {
                OpError::bad_input(format!(
                    "batch size `{}` is not a number from 1 to {}; nothing was run anywhere",
                    word.chars().take(32).collect::<String>(),
                    crate::config::MAX_PEERS
                ))
            }),
        _ => Err(OpError::bad_input(
            "give one batch size; nothing was run anywhere",
        )),
    }
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
    form: Option<Element>,
    peers: Vec<BareJid>,
    here: impl std::future::Future<Output = Result<Option<Result<Vec<Row>, PeerFailure>>, E>>,
) -> Result<Table, E> {
    let config = &ctx.config;
    let mut relayed = Element::builder("command", NS)
        .attr(crate::xmpp::name("node"), ACROSS)
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
    Ok(merge::fitted(&answers))
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
    rendering: &PendingRendering<'_>,
    request: CommandRequest,
    targets: Targets,
    replies: &mpsc::Sender<Stanza>,
) -> Result<CommandReply, AdhocError> {
    let Some(kind) = Across::of(&request.node) else {
        return Err(OpError::bad_input(format!("only `{ACROSS}` and `{}` run across servers; nothing was run. Leave the `{SERVERS_FIELD}` field empty to run `{}` on this server", CHANGES.join("`, `"), request.node.chars().take(64).collect::<String>()))
        .into());
    };
    let Some(admin) = actor.jid() else {
        return Err(OpError::bad_input("only an admin over XMPP can ask other servers").into());
    };
    let mut request = request;
    let table = match kind {
        Across::List => {
            let here = async {
                if !targets.here {
                    return Ok(None);
                }
                let tables = PendingRendering::known(Rendering::Tables);
                let reply =
                    adhoc::handle(ctx, sessions, actor, from, &tables, request.clone()).await?;
                Ok::<_, AdhocError>(Some(merge::rows_of(&Element::from(reply))))
            };
            let link = Link { relay, replies };
            across(ctx, link, admin, request.form.clone(), targets.peers, here).await?
        }
        Across::Change(_) => {
            let batch = batch_size(ctx, &take_field(&mut request, BATCH_FIELD))?;
            let stages = rollout::stages(targets.servers(ctx), batch);
            let fields = match request.form.as_ref().map(params::submitted_values) {
                Some(Ok(fields)) => fields,
                Some(Err(e)) => return Err(OpError::bad_input(e).into()),
                None => vec![],
            };
            let intent = rollout::intent(kind.node(), &fields)?;
            if intent == Intent::Unconfirmed {
                return Err(OpError::bad_input(format!("a change across servers runs only with `{CONFIRM_FIELD}` = true (or `{DRY_RUN_FIELD}` = true) submitted, since no question can be asked of each server; nothing was run anywhere")).into());
            }
            let runner = rollout::Runner {
                ctx,
                link: Link { relay, replies },
                actor,
                admin,
                node: kind.node(),
                fields,
                intent,
            };
            let count = stages.len();
            let standings = runner.roll_out(stages).await;
            let table = rollout::table(intent, count, batch, &standings, params::CARRY_OUT);
            if intent == Intent::Change {
                rollout::tell_rooms(ctx, replies, rollout::AskedIn::Private, &table).await;
            }
            table
        }
    };
    Ok(CommandReply {
        node: kind.node().to_owned(),
        session_id: format!("{:032x}", rand::random::<u128>()),
        status: Status::Completed,
        actions: vec![],
        notes: vec![Note::info(&table.note)],
        form: Some(results::table_result(&table, rendering.get().await)),
    })
}
