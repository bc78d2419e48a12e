//! Questions before a change, bound to the plan they show.
//!
//! An operation that may ask describes its plan as a [`Proposal`]: each
//! step as shown to the admin and as an exact line (names, versions,
//! SHA-256s, hosts). The question carries the exact lines as an
//! [`Approval`]; a "yes" comes back as [`Consent::Approved`] with it, and
//! the operation goes ahead only if its plan, computed again, is the same.
//! If a refresh or another admin changed the plan meanwhile, the admin is
//! asked again and told what changed. All question texts are built here.
//!
//! A dry run ([`Consent::DryRun`]) is decided here too, for every
//! operation alike: the plan the question would show is answered as a
//! [`PLANNED`] table instead, before anything changes, so no operation
//! needs code of its own for it.

use super::changes::Changes;
use super::{Response, Table};

/// The column of a dry run's table: one step of the plan per row, as the
/// question before it would show it.
pub const PLANNED: (&str, &str) = ("planned", "Would do");

/// The exact plan a question showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval(Vec<String>);

/// What the requester said about going ahead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Consent {
    /// Nothing yet: ask if there is anything to ask.
    #[default]
    NotAsked,
    /// Yes in advance (`confirm=true`, `--yes`), for bots and scripts:
    /// whatever the plan is when it runs.
    Given,
    /// Yes to the question that showed this plan.
    Approved(Approval),
    /// Show what would happen and change nothing (`--dry-run`, `plan
    /// ...` in chat, the form's "Show what would happen"): the plan is
    /// answered instead of carried out. Outranks a yes given with it.
    DryRun,
}

/// A question to answer before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The whole question, ending in what to confirm.
    pub text: String,
    /// What a "yes" to it approves.
    pub approval: Approval,
    /// What each `from -> to` in it changes, also said in `text`: for
    /// forms (a field each, since some clients never show a form's
    /// instructions) and JSON.
    pub changes: Vec<Changes>,
}

impl Question {
    /// The form field that carries `changes`.
    pub fn field_of(changes: &Changes) -> (String, String) {
        (
            format!("changes:{}", changes.module),
            format!(
                "What changes in {} ({} -> {})",
                changes.module, changes.from, changes.to
            ),
        )
    }
}

/// A plan an operation is about to carry out, and why it might ask.
pub struct Proposal {
    action: &'static str,
    shown: Vec<String>,
    exact: Vec<String>,
    concerns: Vec<String>,
    changes: Vec<Changes>,
    always_ask: bool,
}

impl Proposal {
    /// A plan for `action` ("Install", "Update"...) that asks only when
    /// there is a concern.
    pub fn new(action: &'static str) -> Proposal {
        Proposal {
            action,
            shown: Vec::new(),
            exact: Vec::new(),
            concerns: Vec::new(),
            changes: Vec::new(),
            always_ask: false,
        }
    }

    /// A plan that is always shown before it is carried out.
    pub fn always_asked(action: &'static str) -> Proposal {
        Proposal {
            always_ask: true,
            ..Proposal::new(action)
        }
    }

    /// One step: as the admin reads it, and exactly (what must not change
    /// between the question and the answer).
    pub fn step(&mut self, shown: String, exact: String) {
        self.shown.push(shown);
        self.exact.push(exact);
    }

    /// A reason the admin must confirm.
    pub fn concern(&mut self, concern: String) {
        if !self.concerns.contains(&concern) {
            self.concerns.push(concern);
        }
    }

    /// What one `from -> to` step changes, shown with the question.
    pub fn changes(&mut self, changes: Changes) {
        self.changes.push(changes);
    }

    /// Whether [`Proposal::decide`] goes ahead on `consent` as the plan
    /// stands: then what each step changes is not shown, and need not be
    /// worked out.
    pub fn goes_ahead(&self, consent: &Consent) -> bool {
        match consent {
            Consent::DryRun => false,
            Consent::Given => true,
            Consent::Approved(approved) => approved.0 == self.exact,
            Consent::NotAsked => !self.asks(),
        }
    }

    fn asks(&self) -> bool {
        self.always_ask || !self.concerns.is_empty()
    }

    /// `Ok` to go ahead, or the question to ask first.
    pub fn decide(self, consent: &Consent) -> Result<(), Response> {
        let approval = Approval(self.exact.clone());
        let asks = self.asks();
        match consent {
            Consent::DryRun => Err(self.shown_only()),
            Consent::Given => Ok(()),
            Consent::Approved(approved) if *approved == approval => Ok(()),
            Consent::Approved(approved) => {
                let changed = differences(&approved.0, &approval.0);
                Err(self.ask(Some(changed), approval))
            }
            Consent::NotAsked if asks => Err(self.ask(None, approval)),
            Consent::NotAsked => Ok(()),
        }
    }

    /// The plan as a dry run answers it: each step, and what the
    /// question would have asked about.
    fn shown_only(self) -> Response {
        let mut note = self.concerns;
        note.push(format!(
            "Nothing was changed. To do it, run the same {} without the dry run.",
            self.action.to_lowercase()
        ));
        Response::Table(Table {
            title: format!("{}: what would happen", self.action),
            columns: vec![PLANNED],
            rows: self.shown.into_iter().map(|step| vec![step]).collect(),
            note: note.join(" "),
        })
    }

    fn ask(self, changed: Option<String>, approval: Approval) -> Response {
        let mut text = String::new();
        if let Some(changed) = changed {
            text += &format!(
                "The plan changed since you were asked ({changed}); nothing was changed. The new plan:\n"
            );
        }
        text += &format!("{}:\n", self.action);
        for line in &self.shown {
            text += &format!("  {line}\n");
        }
        for changes in &self.changes {
            text += &format!("{}:\n", Question::field_of(changes).1);
            for line in changes.lines() {
                text += &format!("  {line}\n");
            }
        }
        for concern in &self.concerns {
            text += &format!("{concern}\n");
        }
        text += &match self.concerns.is_empty() {
            true => "Go ahead?".to_owned(),
            false => format!("{} anyway?", self.action),
        };
        Response::Confirm(Question {
            text,
            approval,
            changes: self.changes,
        })
    }
}

/// What was approved and is no longer planned, and what is planned anew.
fn differences(approved: &[String], now: &[String]) -> String {
    let gone: Vec<&str> = approved
        .iter()
        .filter(|a| !now.contains(a))
        .map(String::as_str)
        .collect();
    let new: Vec<&str> = now
        .iter()
        .filter(|n| !approved.contains(n))
        .map(String::as_str)
        .collect();
    let mut parts = Vec::new();
    if !gone.is_empty() {
        parts.push(format!("no longer: {}", gone.join(", ")));
    }
    if !new.is_empty() {
        parts.push(format!("now: {}", new.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(to: &str, sha: &str) -> Proposal {
        let mut proposal = Proposal::always_asked("Update");
        proposal.step(
            format!("lastlog 20240601 -> {to}"),
            format!("lastlog 20240601 -> {to} sha256:{sha}"),
        );
        proposal
    }

    fn question(response: Response) -> Question {
        match response {
            Response::Confirm(question) => question,
            other => panic!("expected a question, got {other:?}"),
        }
    }

    #[test]
    fn yes_applies_the_plan_shown_and_only_that() {
        let asked = question(
            update("20240701", "aa")
                .decide(&Consent::NotAsked)
                .unwrap_err(),
        );
        assert!(
            asked.text.contains("lastlog 20240601 -> 20240701"),
            "{}",
            asked.text
        );
        let yes = Consent::Approved(asked.approval.clone());
        assert!(update("20240701", "aa").decide(&yes).is_ok());
        // A newer copy was published meanwhile: asked again, told why.
        let again = question(update("20240801", "bb").decide(&yes).unwrap_err());
        assert!(again.text.starts_with("The plan changed"), "{}", again.text);
        assert!(
            again.text.contains("now: lastlog 20240601 -> 20240801"),
            "{}",
            again.text
        );
        // The same version with other bytes is a different plan too.
        assert!(update("20240701", "cc").decide(&yes).is_err());
        // Bots that said yes in advance are not asked.
        assert!(update("20240801", "bb").decide(&Consent::Given).is_ok());
    }

    #[test]
    fn a_dry_run_answers_the_plan_whether_or_not_it_would_ask() {
        let mut quiet = Proposal::new("Install");
        quiet.step("lastlog 1".into(), "lastlog 1 sha256:aa".into());
        quiet.concern("mod_lastlog needs an option".into());
        let Err(Response::Table(table)) = quiet.decide(&Consent::DryRun) else {
            panic!("a dry run must answer the plan");
        };
        assert_eq!(table.columns, [PLANNED]);
        assert_eq!(table.rows, [["lastlog 1"]]);
        let Err(Response::Table(_)) = update("20240701", "aa").decide(&Consent::DryRun) else {
            panic!("a plan that always asks is shown as well");
        };
    }

    #[test]
    fn a_plan_without_concerns_goes_ahead_unasked() {
        let mut quiet = Proposal::new("Install");
        quiet.step("lastlog 1".into(), "lastlog 1 sha256:aa".into());
        assert!(quiet.decide(&Consent::NotAsked).is_ok());
        let mut worried = Proposal::new("Install");
        worried.step("lastlog 1".into(), "lastlog 1 sha256:aa".into());
        worried.concern("lastlog is marked as not working with Prosody 13".into());
        let asked = question(worried.decide(&Consent::NotAsked).unwrap_err());
        assert!(asked.text.ends_with("Install anyway?"), "{}", asked.text);
    }
}
