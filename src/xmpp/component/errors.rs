//! Which stanza error each failure is: a refused command, an unknown
//! disco node, an ad-hoc session problem, an operation's error kind.

use minidom::Element;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::ops::{self, ErrorKind};
use crate::xmpp::adhoc::AdhocError;
use crate::xmpp::command::NS as NS_COMMANDS;
use crate::xmpp::disco::DiscoError;
use crate::xmpp::fleet::trust::Refusal;

pub(super) fn forbidden(refusal: &Refusal) -> StanzaError {
    StanzaError::new(
        ErrorType::Auth,
        DefinedCondition::Forbidden,
        "en",
        refusal.to_string(),
    )
}

pub(super) fn disco_error(error: DiscoError, node: Option<&str>) -> StanzaError {
    let node = node.unwrap_or_default();
    match error {
        DiscoError::UnknownNode => StanzaError::new(
            ErrorType::Cancel,
            DefinedCondition::ItemNotFound,
            "en",
            format!(
                "there is no node `{}`",
                node.chars().take(64).collect::<String>()
            ),
        ),
        DiscoError::Forbidden => StanzaError::new(
            ErrorType::Auth,
            DefinedCondition::Forbidden,
            "en",
            format!("command `{node}` is for modman admins only"),
        ),
    }
}

/// A stanza error with XEP-0050's specific condition element, if any.
pub(super) fn command_error(
    type_: ErrorType,
    condition: DefinedCondition,
    app_condition: Option<&str>,
    text: String,
) -> StanzaError {
    let mut error = StanzaError::new(type_, condition, "en", text);
    error.other = app_condition.map(|name| Element::bare(name, NS_COMMANDS));
    error
}

pub(super) fn adhoc_error(error: AdhocError) -> StanzaError {
    let text = error.to_string();
    let (type_, condition, app_condition) = match &error {
        AdhocError::UnknownNode(_) => (ErrorType::Cancel, DefinedCondition::ItemNotFound, None),
        AdhocError::BadSessionId(_) => (
            ErrorType::Modify,
            DefinedCondition::BadRequest,
            Some("bad-sessionid"),
        ),
        AdhocError::SessionExpired => (
            ErrorType::Cancel,
            DefinedCondition::NotAllowed,
            Some("session-expired"),
        ),
        AdhocError::BadAction(_) => (
            ErrorType::Modify,
            DefinedCondition::BadRequest,
            Some("bad-action"),
        ),
        AdhocError::BadPayload(_) => (
            ErrorType::Modify,
            DefinedCondition::BadRequest,
            Some("bad-payload"),
        ),
        AdhocError::Form(op) | AdhocError::Operation(op) => op_error_condition(op),
    };
    command_error(type_, condition, app_condition, text)
}

/// The stanza error an operation's failure is.
pub(super) fn op_error_condition(
    error: &ops::OpError,
) -> (ErrorType, DefinedCondition, Option<&'static str>) {
    match error.kind {
        ErrorKind::BadInput => (ErrorType::Modify, DefinedCondition::BadRequest, None),
        ErrorKind::NotFound => (ErrorType::Cancel, DefinedCondition::ItemNotFound, None),
        ErrorKind::Conflict => (ErrorType::Cancel, DefinedCondition::Conflict, None),
        ErrorKind::Unavailable => (ErrorType::Wait, DefinedCondition::InternalServerError, None),
    }
}

/// A condition's element name (`bad-request`), as bots know it from
/// stanza errors.
pub(super) fn condition_name(condition: DefinedCondition) -> String {
    Element::from(condition).name().to_owned()
}
