//! What a user can do, written once and rendered by every front end.
//!
//! Each operation lives in its own file as a type implementing [`Command`]:
//! its parameters are a struct declared with [`params!`], which the
//! neutral [`Input`] (from a data form, a chat line or the command line)
//! is parsed into; `new` makes the request of them, `apply` plans, asks when it must
//! ([`confirm`]), hands the whole change to the engine and words the
//! result as a neutral [`Response`]. No operation knows which front end
//! called it, opens a socket, writes a file or undoes anything itself;
//! every one runs for an [`Actor`] that only the gate in
//! [`crate::access`] makes.
//!
//! Where things are: parameters and input checks in [`input`], questions
//! in [`confirm`], results in [`response`], errors and their outcomes in
//! [`error`], what an operation may use in [`context`], dependency
//! resolution and downloads in `plan`, this file the registry.

use std::future::Future;
use std::marker::PhantomData;

use futures::future::BoxFuture;

use crate::access::Actor;

pub mod advisories;
mod changes;
pub mod check;
mod chosen;
mod configure;
pub mod confirm;
pub mod context;
mod diff;
mod disable;
mod enable;
pub mod error;
mod fit;
pub mod health;
mod history;
mod hold;
mod info;
pub mod input;
mod install;
mod json;
mod kept;
mod list;
mod plan;
pub mod policy;
mod refresh;
mod released;
mod remove;
mod required;
pub mod response;
mod rollback;
pub mod routes;
mod standing;
mod times;
mod update;
pub mod updates;

pub use confirm::{Consent, Question};
pub use context::Context;
pub use error::{ErrorKind, OpError};
pub use fit::REPLY_BYTES;
pub use input::{
    params, Access, Field, Hosts, Input, Module, ModuleChoice, NoParams, OptionSetting, Param,
    ParamKind, Params, Spec, Value, Wanted, CONFIRM_FIELD, DRY_RUN_FIELD, VERSION_SEPARATOR,
};
pub use response::{Details, FieldKind, Form, FormField, Outcome, Response, Table};

/// One operation: its description, how to read its input, how to run it.
pub trait Command: Sized + Send + 'static {
    /// Its parameters, declared with [`params!`]; `SPEC.params` is their
    /// [`Params::FIELDS`].
    type Params: Params;

    const SPEC: Spec;

    /// The request of the typed parameters and the requester's consent.
    fn new(params: Self::Params, consent: Consent) -> Result<Self, OpError>;

    /// Does the work on behalf of `actor`.
    fn apply(
        self,
        ctx: &Context,
        actor: &Actor,
    ) -> impl Future<Output = Result<Response, OpError>> + Send;
}

/// The object-safe face of a [`Command`], so front ends can hold a list.
pub trait Operation: Send + Sync {
    fn spec(&self) -> &'static Spec;
    fn run<'a>(
        &'a self,
        ctx: &'a Context,
        actor: &'a Actor,
        input: &'a Input,
    ) -> BoxFuture<'a, Result<Response, OpError>>;

    /// [`Operation::run`], its response fitted to one reply stanza
    /// ([`REPLY_BYTES`]): what every XMPP front end sends, cut once here
    /// rather than by each of them.
    fn run_for_reply<'a>(
        &'a self,
        ctx: &'a Context,
        actor: &'a Actor,
        input: &'a Input,
    ) -> BoxFuture<'a, Result<Response, OpError>> {
        Box::pin(async move { Ok(self.run(ctx, actor, input).await?.fit(REPLY_BYTES)) })
    }
}

struct Registered<C>(PhantomData<fn() -> C>);

impl<C: Command> Operation for Registered<C> {
    fn spec(&self) -> &'static Spec {
        // A `const` item promoted to 'static: `SPEC` holds only literals.
        // The fields front ends offer are the ones `parse` takes, or this
        // does not compile.
        const {
            assert!(
                same_vars(C::SPEC.params, C::Params::FIELDS),
                "an operation's SPEC.params must be its Params::FIELDS"
            );
            &C::SPEC
        }
    }

    fn run<'a>(
        &'a self,
        ctx: &'a Context,
        actor: &'a Actor,
        input: &'a Input,
    ) -> BoxFuture<'a, Result<Response, OpError>> {
        Box::pin(async move {
            let params = C::Params::parse(input)?;
            C::new(params, input.consent.clone())?
                .apply(ctx, actor)
                .await
        })
    }
}

/// Whether `a` and `b` name the same fields in the same order.
const fn same_vars(a: &[Param], b: &[Param]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        let (x, y) = (a[i].var.as_bytes(), b[i].var.as_bytes());
        if x.len() != y.len() {
            return false;
        }
        let mut j = 0;
        while j < x.len() {
            if x[j] != y[j] {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// Every operation, in the order front ends list them.
pub fn all() -> &'static [&'static dyn Operation] {
    &[
        &Registered::<list::List>(PhantomData),
        &Registered::<info::Info>(PhantomData),
        &Registered::<install::Install>(PhantomData),
        &Registered::<update::Update>(PhantomData),
        &Registered::<diff::Diff>(PhantomData),
        &Registered::<hold::Hold>(PhantomData),
        &Registered::<hold::Unhold>(PhantomData),
        &Registered::<remove::Remove>(PhantomData),
        &Registered::<enable::Enable>(PhantomData),
        &Registered::<disable::Disable>(PhantomData),
        &Registered::<configure::Configure>(PhantomData),
        &Registered::<rollback::Rollback>(PhantomData),
        &Registered::<refresh::Refresh>(PhantomData),
        &Registered::<history::History>(PhantomData),
        &Registered::<check::Check>(PhantomData),
        &Registered::<policy::PolicyCommand>(PhantomData),
    ]
}

/// Finds an operation by its node / chat word.
pub fn find(node: &str) -> Option<&'static dyn Operation> {
    all().iter().copied().find(|op| op.spec().node == node)
}

#[cfg(test)]
mod tests;
