//! `refresh`: fetch each repository's index, check its signature, and use
//! it. A repository that is down, or serves a bad signature, keeps its
//! last good index; the table and its summary say so, and the command
//! line exits non-zero.

use super::confirm::{Consent, Proposal};
use super::response::OUTCOME;
use super::updates;
use super::{Access, Command, Context, OpError, Outcome, Response, Spec, Table};
use super::{NoParams, Params};
use crate::access::Actor;

/// Fetches every configured repository's index.
#[derive(Debug)]
pub struct Refresh {
    consent: Consent,
}

impl Command for Refresh {
    type Params = NoParams;

    const SPEC: Spec = Spec {
        // It changes modman's own state (the cached indexes).
        access: Access::Change,
        node: "refresh",
        name: "Refresh repositories",
        instructions:
            "Fetch the module index of every configured repository and check its signature.",
        params: NoParams::FIELDS,
    };

    fn new(_: NoParams, consent: Consent) -> Result<Self, OpError> {
        Ok(Refresh { consent })
    }

    async fn apply(self, ctx: &Context, _actor: &Actor) -> Result<Response, OpError> {
        if ctx.config.repositories.is_empty() {
            return Err(OpError::bad_input(
                "no repositories are configured; add a [[repositories]] section to modman.toml and restart modman",
            ));
        }
        // Asks nothing, but a dry run shows it.
        let mut proposal = Proposal::new("Refresh");
        for repository in &ctx.config.repositories {
            let text = format!(
                "fetch the index of {} from {}",
                repository.name, repository.url
            );
            proposal.step(text.clone(), text);
        }
        if let Err(plan) = proposal.decide(&self.consent) {
            return Ok(plan);
        }
        let (catalog, report) = ctx
            .catalog()
            .refresh(&ctx.config, ctx.engine.store(), &ctx.fetcher)
            .await;
        let installed = ctx.engine.installed()?;
        let updates = installed
            .modules
            .iter()
            .filter(|(name, record)| {
                updates::status(&catalog, &ctx.config.repositories, name, record).is_available()
            })
            .count();
        let offered = catalog.modules().len();
        ctx.set_catalog(catalog);
        // Each failure, named with its reason, in the summary line too:
        // a client that folds the table away (or reads only the note)
        // must not see "everything fine" while a repository failed.
        let mut failures = Vec::new();
        let rows = report
            .into_iter()
            .map(|r| {
                let (outcome, cause) = match &r.result {
                    Ok(()) => (Outcome::Ok, ""),
                    Err(refusal) => (Outcome::Failed, refusal.cause.as_str()),
                };
                // A refresh that went well has nothing to add to its
                // outcome: an `ok` here too read "result: ok, ... outcome:
                // ok" in chat.
                let mut result = match (r.result, r.fetched) {
                    (Ok(()), _) => String::new(),
                    (Err(e), Some(fetched)) => {
                        let result =
                            format!("failed, still using the index fetched {fetched}: {e}");
                        failures.push(format!("{}: {result}", r.repository));
                        result
                    }
                    (Err(e), None) => {
                        let result = format!("failed, no index yet: {e}");
                        failures.push(format!("{}: {result}", r.repository));
                        result
                    }
                };
                // What a LuaRocks server offers that modman refused.
                if !r.warnings.is_empty() {
                    let left_out = format!("left out: {}", r.warnings.join("; "));
                    result = match result.is_empty() {
                        true => left_out,
                        false => format!("{result}; {left_out}"),
                    };
                }
                vec![
                    r.repository,
                    result,
                    r.modules.map(|n| n.to_string()).unwrap_or_default(),
                    outcome.as_str().to_owned(),
                    cause.to_owned(),
                ]
            })
            .collect();
        let mut note = format!(
            "{offered} modules on offer; {updates} installed module{} with an update.",
            if updates == 1 { "" } else { "s" }
        );
        if !failures.is_empty() {
            note = format!(
                "{} of {} repositories failed to refresh, so what is on offer from {} is not current. {note} {}",
                failures.len(),
                ctx.config.repositories.len(),
                if failures.len() == 1 { "it" } else { "them" },
                sentences(&failures)
            );
        }
        Ok(Response::Table(Table {
            title: "Repositories".into(),
            columns: vec![
                ("repository", "Repository"),
                ("result", "Result"),
                ("modules", "Modules"),
                OUTCOME,
                // Why a refresh failed, as a fact (`replay`, `expired`...);
                // empty when it did not.
                ("cause", "Cause"),
            ],
            rows,
            note,
        }))
    }
}

/// `parts` as sentences: each ends with a full stop unless it already ends
/// with one or a question mark (a fetch error ends "is the repository up
/// and the url in modman.toml right?"), never "right?.".
fn sentences(parts: &[String]) -> String {
    parts
        .iter()
        .map(|part| {
            if part.ends_with(['.', '?', '!']) {
                part.clone()
            } else {
                format!("{part}.")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod sentence_tests {
    use super::sentences;

    #[test]
    fn failures_end_with_one_mark() {
        let parts = vec![
            "extra: failed: connection refused; is the url in modman.toml right?".to_owned(),
            "slow: failed, no index yet: timed out".to_owned(),
        ];
        assert_eq!(
            sentences(&parts),
            "extra: failed: connection refused; is the url in modman.toml right? slow: failed, no index yet: timed out."
        );
    }
}
