//! IQ routing: disco, version, ping and ad-hoc commands, each IQ
//! answered from the address it was sent to, with authorisation decided
//! once from the sender's bare JID; and the immediate errors for IQs that
//! are not accepted or cannot run now.

use minidom::Element;
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_parsers::version::{VersionQuery, VersionResult};

use super::app::App;
use super::errors::{
    adhoc_error, command_error, condition_name, disco_error, forbidden, op_error_condition,
};
use crate::access::Actor;
use crate::config::Config;
use crate::ops;
use crate::xmpp::adhoc::{self, AdhocError};
use crate::xmpp::clients::rendering::Rendering;
use crate::xmpp::clients::PendingRendering;
use crate::xmpp::command::{CommandRequest, RequestError, NS as NS_COMMANDS};
use crate::xmpp::disco;
use crate::xmpp::fleet::request as fleet_request;
use crate::xmpp::fleet::trust;
use crate::xmpp::forms::{plain, results};
use crate::xmpp::shutdown::{self, Refused};
use crate::xmpp::stream::{Head, Problem};

/// The id of our XEP-0092 query to the server, so its answer is known.
const SERVER_VERSION_ID: &str = "modman-server-version";

impl App {
    /// Answers one IQ. Authorisation is decided here, once, from the
    /// sender's bare JID as stamped by Prosody, before anything runs.
    pub(super) async fn handle_iq(&self, iq: Iq, replies: &mpsc::Sender<Stanza>) -> Option<Iq> {
        let (from, to, id, payload, is_set) = match iq {
            Iq::Get {
                from,
                to,
                id,
                payload,
            } => (from, to, id, payload, false),
            Iq::Set {
                from,
                to,
                id,
                payload,
            } => (from, to, id, payload, true),
            // Only the server's own answer counts: any user can send a
            // result with this id.
            Iq::Result {
                from,
                id,
                payload: Some(payload),
                ..
            } if id == SERVER_VERSION_ID && from == self.ctx.config.server_host() => {
                match VersionResult::try_from(payload) {
                    Ok(version) => {
                        tracing::info!("the server runs {} {}", version.name, version.version);
                        self.ctx.engine.server.set_version(Some(version.version));
                    }
                    Err(e) => tracing::warn!("the server's version answer did not parse: {e}"),
                }
                return None;
            }
            Iq::Error {
                from, id, error, ..
            } if id == SERVER_VERSION_ID && from == self.ctx.config.server_host() => {
                tracing::warn!(
                    "the server did not tell its version ({:?}); enable mod_version in Prosody so modman can check module compatibility",
                    error.defined_condition
                );
                return None;
            }
            // Answers to our keepalive pings; nothing to do.
            Iq::Result { .. } | Iq::Error { .. } => return None,
        };
        let Some(from) = from else {
            tracing::debug!("dropped an IQ without a sender");
            return None;
        };
        let is_admin = Actor::admit(&self.ctx.config, &from.to_bare()).is_some();
        let result = match (is_set, payload.name(), payload.ns().as_str()) {
            (false, "query", ns::DISCO_INFO) => {
                disco::info(payload.attr("node"), is_admin).map_err(|e| disco_error(e, payload.attr("node")))
            }
            (false, "query", ns::DISCO_ITEMS) => {
                disco::items(&self.ctx.config.component.jid, payload.attr("node"), is_admin)
                    .map_err(|e| disco_error(e, payload.attr("node")))
            }
            (false, "query", ns::VERSION) => Ok(disco::version()),
            (false, "ping", ns::PING) => return Some(reply_to(Iq::empty_result(from.clone(), id), to)),
            (true, "command", NS_COMMANDS) => {
                match trust::admit(&self.ctx.config, &from.to_bare(), &payload) {
                    Ok(admission) => self.command(&admission, &from, &payload, replies).await,
                    Err(refusal) => {
                        tracing::info!("refused a command from {from}: {refusal}");
                        Err(forbidden(&refusal))
                    }
                }
            }
            _ => Err(StanzaError::new(
                ErrorType::Cancel,
                DefinedCondition::ServiceUnavailable,
                "en",
                "modman does not serve this request; it answers disco, version, ping and ad-hoc commands",
            )),
        };
        let reply = match result {
            Ok(payload) => Iq::Result {
                from: None,
                to: Some(from),
                id,
                payload: Some(payload),
            },
            Err(error) => Iq::from_error(id, error).with_to(from),
        };
        Some(reply_to(reply, to))
    }

    async fn command(
        &self,
        admission: &trust::Admission,
        from: &Jid,
        payload: &Element,
        replies: &mpsc::Sender<Stanza>,
    ) -> Result<Element, StanzaError> {
        let mut request = CommandRequest::try_from(payload).map_err(|e| {
            let app_condition = match e {
                RequestError::MalformedAction(_) => Some("malformed-action"),
                RequestError::MissingNode => None,
            };
            command_error(
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                app_condition,
                e.to_string(),
            )
        })?;
        let node = request.node.clone();
        tracing::debug!("{from} asks for {node}");
        let session_id = request.session_id.clone();
        let later_stage = session_id.is_some();
        let me = Jid::from(self.ctx.config.component.jid.clone());
        // A peer reads the rows of the table it relays.
        let (actor, rendering) = match admission {
            trust::Admission::Direct(actor) => (
                actor,
                PendingRendering::asked(&self.clients, me.clone(), from.clone(), replies),
            ),
            trust::Admission::Relayed(actor) => (actor, PendingRendering::known(Rendering::Tables)),
        };
        let across = match admission {
            trust::Admission::Direct(_) => fleet_request::take_servers(&mut request),
            trust::Admission::Relayed(_) => None,
        };
        let handled = match across {
            None => {
                adhoc::handle(&self.ctx, &self.sessions, actor, from, &rendering, request).await
            }
            Some(names) => match fleet_request::targets(&self.ctx, &names) {
                Ok(targets) => {
                    fleet_request::run(
                        &self.ctx,
                        &self.sessions,
                        &self.relay,
                        actor,
                        from,
                        &rendering,
                        request,
                        targets,
                        replies,
                    )
                    .await
                }
                Err(error) => Err(error.into()),
            },
        };
        let reply = match (handled, admission) {
            (Ok(reply), _) => {
                tracing::info!("{from} ran {node}: {:?}", reply.status);
                reply
            }
            // A person's client shows a completed command where some show
            // nothing of a stanza error (Poezio, Profanity 0.13), whether
            // the change failed or the form was refused; a peer modman
            // reads the error.
            (
                Err(AdhocError::Operation(error) | AdhocError::Form(error)),
                trust::Admission::Direct(_),
            ) => {
                tracing::info!("{from} ran {node}: {error}");
                let (_, condition, _) = op_error_condition(&error);
                let title = ops::find(&node).map_or(node.as_str(), |op| op.spec().name);
                results::failed_reply(
                    &node,
                    session_id.unwrap_or_else(adhoc::new_session_id),
                    title,
                    &condition_name(condition),
                    &error,
                )
            }
            (Err(error), _) => {
                tracing::info!("{from} ran {node}: {error}");
                return Err(adhoc_error(error));
            }
        };
        let rendering = rendering.get().await;
        if rendering.copies_to_chat(later_stage, &reply) {
            if let Some(form) = &reply.form {
                let answerable = rendering != Rendering::FirstReplyOnly;
                let text = plain::plain_text(form, answerable);
                let mut message =
                    Message::chat(Some(from.clone())).with_body(Default::default(), text);
                message.from = Some(me);
                let _ = replies.send(message.into()).await;
            }
        }
        Ok(reply.into())
    }
}

/// The reply comes from the address the request was sent to, which is
/// always inside our domain (Prosody closes the stream on any other).
fn reply_to(mut reply: Iq, request_to: Option<Jid>) -> Iq {
    *reply.from_mut() = request_to;
    reply
}

/// The error owed to an IQ request that was not accepted. Its addresses
/// come raw from the wire: if they do not parse either, there is nobody to
/// answer.
pub(super) fn invalid_iq_reply(config: &Config, head: &Head, problem: &Problem) -> Option<Iq> {
    if !head.is_iq_request() {
        return None;
    }
    let from: Jid = head.from.as_deref()?.parse().ok()?;
    let to: Jid = match head.to.as_deref() {
        Some(to) => to.parse().ok()?,
        None => Jid::from(config.component.jid.clone()),
    };
    let (condition, text) = match problem {
        Problem::Unreadable(reason) => (
            DefinedCondition::BadRequest,
            format!("modman could not read this IQ: {reason}"),
        ),
        Problem::OverLimit(limit) => (
            DefinedCondition::PolicyViolation,
            format!("modman refused this IQ unread: {limit}, past what it accepts; nothing was done, send it within that bound"),
        ),
    };
    let error = StanzaError::new(ErrorType::Modify, condition, "en", text);
    Some(
        Iq::from_error(head.id.clone()?, error)
            .with_to(from)
            .with_from(to),
    )
}

/// The immediate error for an IQ request that cannot run now, saying why;
/// none for a result or an error.
pub(super) fn refusal(iq: Iq, why: Refused) -> Option<Iq> {
    let (from, to, id) = match iq {
        Iq::Get { from, to, id, .. } | Iq::Set { from, to, id, .. } => (from?, to, id),
        Iq::Result { .. } | Iq::Error { .. } => return None,
    };
    let error = match why {
        Refused::Stopping => StanzaError::new(
            ErrorType::Wait,
            DefinedCondition::ServiceUnavailable,
            "en",
            shutdown::REFUSAL,
        ),
        Refused::Reloading => StanzaError::new(
            ErrorType::Wait,
            DefinedCondition::ServiceUnavailable,
            "en",
            shutdown::RELOAD_REFUSAL,
        ),
        Refused::Busy => StanzaError::new(
            ErrorType::Wait,
            DefinedCondition::ResourceConstraint,
            "en",
            "modman is busy with other requests; try again in a moment",
        ),
    };
    Some(reply_to(Iq::from_error(id, error).with_to(from), to))
}

/// An XEP-0092 query to the Prosody host modman's component hangs under
/// (`modman.example.org` -> `example.org`), whose answer feeds the
/// compatibility checks.
pub(super) fn server_version_query(config: &Config) -> Option<Iq> {
    Some(
        Iq::from_get(SERVER_VERSION_ID, VersionQuery)
            .with_from(Jid::from(config.component.jid.clone()))
            .with_to(config.server_host()?),
    )
}
