//! What a user can do, written once and rendered by every front end.
//!
//! Each operation lives in its own file as a type implementing [`Command`]:
//! `parse` turns the neutral [`Input`] (from a data form, a chat line or the
//! CLI) into the typed request, `apply` does the work and returns a neutral
//! [`Response`]. No operation knows which front end called it; the ad-hoc,
//! chat and CLI front ends only render.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::config::Config;

mod list;

pub use list::List;

/// Everything an operation may use. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
}

/// How a parameter is asked for and what values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// One line of free text.
    Text,
}

/// One input of an operation: a data-form field, a chat word, a CLI flag.
#[derive(Debug)]
pub struct Param {
    /// The form field `var`; stable, bots rely on it.
    pub var: &'static str,
    pub label: &'static str,
    /// A sentence shown as the field's description.
    pub help: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

/// The static description of an operation.
#[derive(Debug)]
pub struct Spec {
    /// The ad-hoc node and the chat word.
    pub node: &'static str,
    /// The human name clients show in their command list.
    pub name: &'static str,
    /// The instructions shown above the form.
    pub instructions: &'static str,
    pub params: &'static [Param],
}

/// Longest value accepted for any field, in bytes.
const MAX_VALUE_LEN: usize = 1024;
/// Most values accepted for one field.
const MAX_VALUES: usize = 256;

/// Submitted values, checked against an operation's [`Param`]s: every
/// name is known, every value fits its kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Input {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Input {
    /// Checks raw `(var, values)` pairs against `params`. Fields not in
    /// `params` are refused (a typo in a bot's field name must not be
    /// silently ignored), except the data-forms bookkeeping `FORM_TYPE`.
    pub fn check<'a>(
        params: &'static [Param],
        raw: impl IntoIterator<Item = (&'a str, Vec<String>)>,
    ) -> Result<Input, OpError> {
        let mut values = BTreeMap::new();
        for (var, vals) in raw {
            if var == "FORM_TYPE" {
                continue;
            }
            let param = params.iter().find(|p| p.var == var).ok_or_else(|| {
                let known: Vec<_> = params.iter().map(|p| p.var).collect();
                OpError::bad_input(format!(
                    "unknown field `{}`; this command takes: {}",
                    truncate(var),
                    if known.is_empty() {
                        "no fields".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
            if vals.len() > MAX_VALUES {
                return Err(OpError::bad_input(format!(
                    "field `{var}` has {} values; at most {MAX_VALUES} are accepted",
                    vals.len()
                )));
            }
            if let Some(long) = vals.iter().find(|v| v.len() > MAX_VALUE_LEN) {
                return Err(OpError::bad_input(format!(
                    "field `{var}`: a value of {} bytes is too long (at most {MAX_VALUE_LEN})",
                    long.len()
                )));
            }
            match param.kind {
                ParamKind::Text if vals.len() > 1 => {
                    return Err(OpError::bad_input(format!(
                        "field `{var}` takes one value, got {}",
                        vals.len()
                    )))
                }
                ParamKind::Text => {}
            }
            values.insert(param.var, vals);
        }
        if let Some(missing) = params.iter().find(|p| {
            p.required
                && values
                    .get(p.var)
                    .is_none_or(|v| v.iter().all(|s| s.trim().is_empty()))
        }) {
            return Err(OpError::bad_input(format!(
                "field `{}` ({}) is required",
                missing.var, missing.label
            )));
        }
        Ok(Input { values })
    }

    /// The value of a single-valued field, trimmed; `None` when empty.
    pub fn text(&self, var: &str) -> Option<&str> {
        self.values
            .get(var)
            .and_then(|v| v.first())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }
}

/// Quotes at most a short prefix of untrusted text in an error message.
fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// A neutral result, rendered by each front end in its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Rows under named columns: a data-form `result` with `<reported/>`
    /// in ad-hoc, aligned text in chat and on the command line.
    Table(Table),
}

/// A titled table. `columns` are (var, label) pairs; each row has one cell
/// per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<(&'static str, &'static str)>,
    pub rows: Vec<Vec<String>>,
    /// One line summarising the table, such as a count or a hint.
    pub note: String,
}

/// What kind of failure, so each front end can pick its own wording
/// (an XMPP error condition, an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong: fix it and try again.
    BadInput,
    /// What the request names does not exist.
    NotFound,
    /// The host is not in a state to do it (missing directory, permissions).
    Unavailable,
}

/// A failure that reaches a user: says what failed, on what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct OpError {
    pub kind: ErrorKind,
    pub text: String,
}

impl OpError {
    pub fn bad_input(text: impl Into<String>) -> Self {
        OpError {
            kind: ErrorKind::BadInput,
            text: text.into(),
        }
    }
    pub fn not_found(text: impl Into<String>) -> Self {
        OpError {
            kind: ErrorKind::NotFound,
            text: text.into(),
        }
    }
    pub fn unavailable(text: impl Into<String>) -> Self {
        OpError {
            kind: ErrorKind::Unavailable,
            text: text.into(),
        }
    }
}

/// One operation: its description, how to read its input, how to run it.
pub trait Command: Sized + Send + 'static {
    const SPEC: Spec;

    /// Reads the typed request from checked input.
    fn parse(input: &Input) -> Result<Self, OpError>;

    /// Does the work.
    fn apply(self, ctx: &Context) -> impl Future<Output = Result<Response, OpError>> + Send;
}

/// The object-safe face of a [`Command`], so front ends can hold a list.
pub trait Operation: Send + Sync {
    fn spec(&self) -> &'static Spec;
    fn run<'a>(
        &'a self,
        ctx: &'a Context,
        input: &'a Input,
    ) -> BoxFuture<'a, Result<Response, OpError>>;
}

struct Registered<C>(PhantomData<fn() -> C>);

impl<C: Command> Operation for Registered<C> {
    fn spec(&self) -> &'static Spec {
        // A `const` item promoted to 'static: `SPEC` holds only literals.
        const { &C::SPEC }
    }

    fn run<'a>(
        &'a self,
        ctx: &'a Context,
        input: &'a Input,
    ) -> BoxFuture<'a, Result<Response, OpError>> {
        Box::pin(async move { C::parse(input)?.apply(ctx).await })
    }
}

/// Every operation, in the order front ends list them.
pub fn all() -> &'static [&'static dyn Operation] {
    &[&Registered::<List>(PhantomData)]
}

/// Finds an operation by its node / chat word.
pub fn find(node: &str) -> Option<&'static dyn Operation> {
    all().iter().copied().find(|op| op.spec().node == node)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &[Param] = &[Param {
        var: "query",
        label: "Search",
        help: "",
        kind: ParamKind::Text,
        required: false,
    }];

    fn raw(pairs: &[(&'static str, &[&str])]) -> Vec<(&'static str, Vec<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (*k, v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn known_fields_pass_and_form_type_is_ignored() {
        let input = Input::check(
            PARAMS,
            raw(&[("FORM_TYPE", &["x"]), ("query", &[" smacks "])]),
        )
        .unwrap();
        assert_eq!(input.text("query"), Some("smacks"));
    }

    #[test]
    fn garbage_is_refused_with_the_field_named() {
        for (pairs, expected) in [
            (
                raw(&[("colour", &["red"])]),
                "unknown field `colour`; this command takes: query",
            ),
            (
                raw(&[("query", &["a", "b"])]),
                "field `query` takes one value, got 2",
            ),
        ] {
            let error = Input::check(PARAMS, pairs).unwrap_err();
            assert_eq!(error.kind, ErrorKind::BadInput);
            assert_eq!(error.text, expected);
        }
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let error = Input::check(PARAMS, vec![("query", vec![long])]).unwrap_err();
        assert!(error.text.contains("too long"), "{}", error.text);
        let many = vec!["x".to_owned(); MAX_VALUES + 1];
        let error = Input::check(PARAMS, vec![("query", many)]).unwrap_err();
        assert!(error.text.contains("at most 256"), "{}", error.text);
    }

    #[test]
    fn every_node_is_unique_and_findable() {
        for op in all() {
            let node = op.spec().node;
            assert!(std::ptr::eq(find(node).unwrap().spec(), op.spec()));
        }
        assert!(find("no-such-node").is_none());
    }
}
