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

/// Why a plan asks before it is carried out, beside the sentence that
/// says it: for bots (the JSON answer) and tests, which must not read the
/// sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Every plan of this operation is shown first (update, rollback).
    AlwaysAsked,
    /// The plan changed since the question that was answered yes.
    PlanChanged,
    /// Installed modules need one being removed.
    Needed,
    /// Installed modules use one being removed in some set-ups.
    MaybeNeeded,
    /// A dependency comes from another repository than its dependant.
    OtherRepository,
    /// This Prosody objects to the module (its version, a feature).
    Objection,
    /// The copy planned is under an advisory of its repository.
    Advisory,
    /// A dependency that nothing offers.
    MissingDependency,
    /// The module's README marks it as not working with this Prosody.
    NotWorking,
    /// Prosody's own directory has a module of that name too.
    Shadowed,
    /// A secret would be written to a file everyone can read.
    SecretReadable,
    /// An earlier version than the one installed.
    Downgrade,
    /// prosody.cfg.lua's own modules_enabled for the host would be
    /// replaced by modman's.
    OwnModulesList,
}

impl Why {
    /// Its name in the JSON answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::AlwaysAsked => "always_asked",
            Why::PlanChanged => "plan_changed",
            Why::Needed => "needed",
            Why::MaybeNeeded => "maybe_needed",
            Why::OtherRepository => "other_repository",
            Why::Objection => "objection",
            Why::Advisory => "advisory",
            Why::MissingDependency => "missing_dependency",
            Why::NotWorking => "not_working",
            Why::Shadowed => "shadowed",
            Why::SecretReadable => "secret_readable",
            Why::Downgrade => "downgrade",
            Why::OwnModulesList => "own_modules_list",
        }
    }
}

/// One reason to confirm: its kind, and the sentence that says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    pub why: Why,
    pub text: String,
}

/// A question to answer before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The whole question, ending in what to confirm.
    pub text: String,
    /// Why it is asked, each reason once, as said in `text`.
    pub why: Vec<Why>,
    /// What a "yes" to it approves.
    pub approval: Approval,
    /// What each `from -> to` in it changes, also said in `text`: typed,
    /// for JSON.
    pub changes: Vec<Changes>,
}

/// A plan an operation is about to carry out, and why it might ask.
pub struct Proposal {
    action: &'static str,
    shown: Vec<String>,
    exact: Vec<String>,
    concerns: Vec<Concern>,
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

    /// A reason the admin must confirm: `why`, said as `text`.
    pub fn concern(&mut self, why: Why, text: String) {
        let concern = Concern { why, text };
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
        let mut note: Vec<String> = self.concerns.into_iter().map(|c| c.text).collect();
        note.push("Nothing was changed.".to_owned());
        Response::Table(Table {
            title: format!("{}: what would happen", self.action),
            columns: vec![PLANNED],
            rows: self.shown.into_iter().map(|step| vec![step]).collect(),
            note: note.join(" "),
        })
    }

    fn ask(self, changed: Option<String>, approval: Approval) -> Response {
        let mut text = String::new();
        let mut why = Vec::new();
        if changed.is_some() {
            why.push(Why::PlanChanged);
        }
        if self.always_ask {
            why.push(Why::AlwaysAsked);
        }
        for concern in &self.concerns {
            if !why.contains(&concern.why) {
                why.push(concern.why);
            }
        }
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
            text += &format!(
                "What changes in {} ({} -> {}):\n",
                changes.module, changes.from, changes.to
            );
            for line in changes.lines() {
                text += &format!("  {line}\n");
            }
        }
        for concern in &self.concerns {
            text += &format!("{}\n", concern.text);
        }
        text += &match self.concerns.is_empty() {
            true => "Go ahead?".to_owned(),
            false => format!("{} anyway?", self.action),
        };
        Response::Confirm(Question {
            text,
            why,
            approval,
            changes: self.changes,
        })
    }
}

impl Response {
    /// The answer to `consent`, ending with what to do next when it was
    /// a dry run's plan: carry it out, said in the words `how` of the
    /// front end that asked ("send the same line without `plan`", "run the
    /// same command without --dry-run"), since each asks for a dry run
    /// its own way.
    pub fn after_dry_run(self, consent: &Consent, how: &str) -> Response {
        match (consent, self) {
            (Consent::DryRun, Response::Table(mut table)) => {
                table.note = format!("{} To do it, {how}.", table.note);
                Response::Table(table)
            }
            (_, response) => response,
        }
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
        assert_eq!(asked.why, [Why::AlwaysAsked]);
        assert_eq!(again.why, [Why::PlanChanged, Why::AlwaysAsked]);
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
        quiet.concern(Why::Objection, "mod_lastlog needs an option".into());
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
        worried.concern(
            Why::NotWorking,
            "lastlog is marked as not working with Prosody 13".into(),
        );
        let asked = question(worried.decide(&Consent::NotAsked).unwrap_err());
        assert_eq!(asked.why, [Why::NotWorking]);
    }

    #[test]
    fn a_dry_run_ends_with_how_the_front_end_that_asked_carries_it_out() {
        let mut plan = Proposal::new("Install");
        plan.step("lastlog 1".into(), "lastlog 1 sha256:aa".into());
        let shown = plan.decide(&Consent::DryRun).unwrap_err();
        let Response::Table(said) = shown.clone().after_dry_run(&Consent::DryRun, "HOW") else {
            panic!("a dry run answers a table");
        };
        let Response::Table(plain) = shown.clone() else {
            unreachable!()
        };
        assert_eq!(said.note, format!("{} To do it, HOW.", plain.note));
        // Nothing is added to what was not a dry run.
        let Response::Table(kept) = shown.after_dry_run(&Consent::Given, "HOW") else {
            unreachable!()
        };
        assert_eq!(kept.note, plain.note);
    }
}
