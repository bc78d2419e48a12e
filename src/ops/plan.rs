//! Shared by `install` and `update`: which archives to fetch (the modules
//! asked for plus the community modules they need), what needs the admin's
//! confirmation first, and the verified download.

use std::borrow::Cow;

use super::changes::Changes;
use super::confirm::{Concern, Proposal, Why};
use super::updates;
use super::{Context, OpError, Wanted, VERSION_SEPARATOR};
use crate::access::Actor;
use crate::config::Repository;
use crate::engine::audit;
use crate::engine::manifest::Prepared;
use crate::engine::state::{Installed, InstalledModule};
use crate::engine::ChangeGuard;
use crate::prosody::{Objection, ServerFacts, Shipped};
use crate::repo::archive::ArchiveFile;
use crate::repo::catalog::Catalog;
use crate::repo::compat;
use crate::repo::fetch::FetchError;
use crate::repo::index::{DependencyKind, ModuleEntry};
use crate::repo::metadata::Need;

/// The reason of a module the admin named, rather than one it needs.
pub const REQUESTED: &str = "requested";

/// The archives a plan fetches from one repository: the entries, and the
/// plan's steps they are for.
struct FromOneRepository<'a> {
    repository: &'a Repository,
    steps: Vec<usize>,
    entries: Vec<ModuleEntry>,
}

/// One module to fetch and put in place.
pub struct Step<'a> {
    pub repository: &'a Repository,
    /// The newest in the index, or an earlier build chosen by version.
    pub entry: Cow<'a, ModuleEntry>,
    /// "requested", or "needed by x".
    pub reason: String,
}

/// What a request comes to.
pub struct Plan<'a> {
    pub steps: Vec<Step<'a>>,
    /// Reasons the admin must confirm before anything changes.
    pub concerns: Vec<Concern>,
    /// Things worth saying that need no answer.
    pub notes: Vec<String>,
}

/// Asks the running Prosody what it already has (its version, its own
/// modules, `core.features`, its Lua), for the checks of [`resolve`].
/// Without an answer they are skipped, and the plan says so.
pub async fn learn_server(ctx: &Context, guard: &mut ChangeGuard<'_>) -> Option<ServerFacts> {
    match guard
        .server_facts(&ctx.config.prosody.builtin_modules)
        .await
    {
        Ok(facts) => Some(facts),
        Err(e) => {
            tracing::debug!("{e}");
            None
        }
    }
}

/// Plans `requested` (name, reason) and, transitively, every community
/// dependency that is not installed yet. A dependency comes from the
/// repository of the module that needs it when that repository offers
/// it: the module was built and tested against its own repository's
/// copy, and a repository listed earlier (a third party's) must not slip
/// its copy in. Only when the own repository lacks it is another used,
/// and then the admin is asked, the question naming that repository.
pub fn resolve<'a>(
    ctx: &Context,
    catalog: &'a Catalog,
    installed: &Installed,
    requested: Vec<(Wanted, String)>,
    server: Option<&ServerFacts>,
) -> Result<Plan<'a>, OpError> {
    let mut plan = Plan {
        steps: Vec::new(),
        concerns: Vec::new(),
        notes: Vec::new(),
    };
    let mut shadowed: std::collections::BTreeMap<Shipped, Vec<String>> = Default::default();
    // (module and version, reason, the repository of the module that
    // needs it).
    let mut queue: std::collections::VecDeque<(Wanted, String, Option<&'a Repository>)> = requested
        .into_iter()
        .map(|(wanted, reason)| (wanted, reason, None))
        .collect();
    // The names of `plan.steps`: an update of every module asks this for
    // each, and a scan of the steps made the plan quadratic.
    let mut planned = std::collections::HashSet::new();
    while let Some((Wanted { name, version }, reason, needed_from)) = queue.pop_front() {
        if planned.contains(&name) {
            continue;
        }
        // An installed module stays with the repository it came from; a
        // dependency comes from its dependant's repository if it can.
        let found = match (installed.modules.get(&name), needed_from) {
            (Some(record), _) => catalog.find_in(&record.repository, &name),
            (None, Some(own)) => catalog.find_in(&own.name, &name).or_else(|| {
                let other = catalog.find(&name);
                if let Some((elsewhere, _)) = other {
                    plan.concern(Why::OtherRepository, format!(
                        "mod_{name} ({reason}) comes from the repository {}: {}, where the module that needs it comes from, does not offer it.",
                        elsewhere.name, own.name
                    ));
                }
                other
            }),
            (None, None) => catalog.find(&name),
        };
        let (repository, newest) = found.ok_or_else(|| {
            let why = if reason == REQUESTED { String::new() } else { format!(" ({reason})") };
            OpError::not_found(format!(
                "no configured repository offers `{name}`{why}; check the name with list, or run refresh"
            ))
        })?;
        catalog.check_fresh(repository)?;
        let entry = match version {
            None => Cow::Borrowed(newest),
            Some(version) => Cow::Owned(newest.at_version(&version).ok_or_else(|| {
                OpError::not_found(format!(
                    "{} does not offer {name} at {version}; it offers {}: name one of those, such as {name}{VERSION_SEPARATOR}{}",
                    repository.name,
                    newest.versions().collect::<Vec<_>>().join(", "),
                    newest.version
                ))
            })?),
        };
        for objection in server.map(|s| s.objections(&entry)).unwrap_or_default() {
            if objection.refused() {
                return Err(OpError::conflict(format!(
                    "mod_{name} would not load on this Prosody: {objection}"
                )));
            }
            match objection {
                // Distributions put community modules in Prosody's own
                // directory too (Debian's prosody-modules): worth saying,
                // not asking. What core.features names is Prosody's own.
                Objection::BuiltIn(shipped @ (Shipped::Directory(_) | Shipped::Debian { .. })) => {
                    shadowed.entry(shipped).or_default().push(name.clone())
                }
                _ => plan.concern(Why::Objection, format!("mod_{name}: {objection}.")),
            }
        }
        // The very copy planned is under an advisory of its repository.
        let source = catalog
            .sources
            .iter()
            .find(|s| s.repository.name == repository.name);
        for advisory in source.map_or(vec![], |s| s.index.advisories_for(&name, &entry.version)) {
            plan.concern(
                Why::Advisory,
                format!(
                    "mod_{name} {} is marked {} by {} ({}){}.",
                    entry.version,
                    advisory.kind,
                    repository.name,
                    crate::clean::one_line(&advisory.reason),
                    advisory
                        .fixed
                        .as_ref()
                        .map(|fixed| format!("; the fix is {fixed}"))
                        .unwrap_or_default()
                ),
            );
        }
        for dependency in &entry.dependencies {
            // An optional dependency comes along too (it is small, and the
            // module needs it as soon as the admin sets the option that
            // uses it), but a missing one is no reason to ask.
            let optional = dependency.need == Need::Optional;
            let why = match optional {
                true => format!("needed by {name} in some set-ups"),
                false => format!("needed by {name}"),
            };
            if optional && dependency.kind != DependencyKind::Community {
                continue;
            }
            let part_of_prosody = server.is_some_and(|s| s.has_feature_module(&dependency.name));
            match dependency.kind {
                // Prosody has it as its own now (mod_flags on 13): the
                // module uses that, and a community copy would be refused.
                DependencyKind::Community if part_of_prosody => {
                    plan.notes.push(format!(
                        "{name} needs mod_{}, which this Prosody has built in; it uses that one.",
                        dependency.name
                    ));
                }
                DependencyKind::Community if !installed.modules.contains_key(&dependency.name) => {
                    queue.push_back((newest_of(&dependency.name), why, Some(repository)));
                }
                DependencyKind::Community => {}
                // Installed first: that is a lookup, the other stats (or
                // the listing the server's facts made of Prosody's
                // directory, the same one).
                DependencyKind::Builtin | DependencyKind::Missing
                    if installed.modules.contains_key(&dependency.name)
                        || match server {
                            Some(server) => server.builtin.has_module(&dependency.name),
                            None => crate::prosody::has_module(
                                &ctx.config.prosody.builtin_modules,
                                &dependency.name,
                            ),
                        } => {}
                // Not in the module's own repository, but another offers
                // it: planned from there, which asks first (above).
                DependencyKind::Builtin | DependencyKind::Missing
                    if catalog.find(&dependency.name).is_some() =>
                {
                    queue.push_back((newest_of(&dependency.name), why, Some(repository)));
                }
                DependencyKind::Builtin | DependencyKind::Missing => {
                    plan.concern(Why::MissingDependency, format!(
                        "{name} needs mod_{}, which neither a configured repository nor this Prosody ({}) has; it will not load without it",
                        dependency.name,
                        ctx.config.prosody.builtin_modules.display()
                    ));
                }
            }
        }
        match ctx.engine.server.version() {
            Some(server) => {
                if let Some(row) = compat::row_for(&entry.compatibility, &server) {
                    if row.works == Some(false) {
                        plan.concern(Why::NotWorking, format!(
                            "{name} is marked as not working with Prosody {} (its README says: {} - {})",
                            server, row.prosody, row.status
                        ));
                    }
                }
            }
            None => {
                let note = "Prosody's version is not known yet, so compatibility was not checked."
                    .to_owned();
                if !plan.notes.contains(&note) {
                    plan.notes.push(note);
                }
            }
        }
        planned.insert(name);
        plan.steps.push(Step {
            repository,
            entry,
            reason,
        });
    }
    // Said once for all the modules it concerns, and in the question when
    // there is one, so the admin reads it before anything changes.
    for (shipped, names) in shadowed {
        let said = shadowing(&shipped, &names);
        match plan.concerns.is_empty() {
            true => plan.notes.insert(0, said),
            false => plan.concern(Why::Shadowed, said),
        }
    }
    Ok(plan)
}

/// A dependency: at the newest version its repository offers.
fn newest_of(name: &str) -> Wanted {
    Wanted {
        name: name.to_owned(),
        version: None,
    }
}

/// The one line on copies that replace, unsaid, what the server has:
/// which modules, whose copies they shadow, and what to do instead.
fn shadowing(shipped: &Shipped, names: &[String]) -> String {
    let names = names
        .iter()
        .map(|n| format!("mod_{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let whose = match shipped {
        Shipped::Debian { dir, version } => {
            format!(
                "Debian's prosody-modules ({version}) has them in {}",
                dir.display()
            )
        }
        Shipped::Directory(dir) => {
            format!("Prosody's own module directory {} has them", dir.display())
        }
        Shipped::Feature => "this Prosody has them built in".to_owned(),
    };
    format!(
        "{names}: {whose}; the copies modman installs come first and replace those silently. To use the ones already there, enable them instead of installing."
    )
}

impl Plan<'_> {
    /// What each module of `files` that replaces an installed copy changes,
    /// in the plan's order: its copy on disk against the archive just
    /// downloaded and verified.
    pub fn changes(
        &self,
        ctx: &Context,
        installed: &Installed,
        files: &[Prepared],
    ) -> Vec<Changes> {
        files
            .iter()
            .filter_map(|prepared| {
                let (_, archive) = prepared.after.as_ref()?;
                let record = installed.modules.get(&prepared.name)?;
                let step = self.steps.iter().find(|s| s.entry.name == prepared.name)?;
                let on_disk = ctx.engine.installed_copy(&prepared.name, record);
                let catalog = ctx.catalog();
                let offered = catalog.find_in(&record.repository, &prepared.name);
                let direction = updates::direction(
                    offered.map(|(_, e)| e),
                    &step.entry.version,
                    &record.version,
                );
                Some(Changes::between(
                    &prepared.name,
                    (record, &on_disk),
                    &step.entry,
                    archive,
                    direction,
                ))
            })
            .collect()
    }

    /// A reason to confirm: `why`, said as `text`.
    fn concern(&mut self, why: Why, text: String) {
        self.concerns.push(Concern { why, text });
    }

    /// Adds each step and concern to `proposal`: what the admin is shown,
    /// and exactly what a "yes" approves (version, SHA-256, repository).
    /// A module in `installed` is shown as `from -> to`.
    pub fn propose(&self, proposal: &mut Proposal, installed: &Installed) {
        for step in &self.steps {
            let entry = &step.entry;
            let shown = match installed.modules.get(&entry.name) {
                Some(record) => format!("{}: {} -> {}", entry.name, record.version, entry.version),
                None if step.reason == REQUESTED => format!("{} {}", entry.name, entry.version),
                None => format!("{} {} ({})", entry.name, entry.version, step.reason),
            };
            let exact = format!(
                "{shown} sha256:{} from {}",
                entry.sha256, step.repository.name
            );
            proposal.step(shown, exact);
        }
        for Concern { why, text } in &self.concerns {
            proposal.concern(*why, text.clone());
        }
    }

    /// [`Plan::download`] for a commit that goes ahead on `guard` without
    /// a question (and enables the modules, if `enabling`): what Prosody
    /// has loaded, which the commit needs first if it needs it at all, is
    /// asked meanwhile.
    pub async fn download_for_commit(
        &self,
        ctx: &Context,
        actor: &Actor,
        guard: &mut ChangeGuard<'_>,
        enabling: bool,
    ) -> Result<Vec<Prepared>, OpError> {
        let names = self.steps.iter().map(|step| step.entry.name.as_str());
        let (files, ()) = tokio::join!(
            self.download(ctx, actor),
            guard.read_loaded_ahead(names, enabling)
        );
        files
    }

    /// Fetches and checks every archive ([`Fetcher::archives`], those of
    /// each repository together); nothing is changed yet. The first
    /// refusal ends it, and stops the downloads still in flight. A copy
    /// verified for the question this plan answers is taken as it was
    /// kept ([`super::kept`]), not fetched again.
    ///
    /// [`Fetcher::archives`]: crate::repo::fetch::Fetcher::archives
    pub async fn download(&self, ctx: &Context, actor: &Actor) -> Result<Vec<Prepared>, OpError> {
        let mut fetched: Vec<Option<Vec<ArchiveFile>>> = Vec::new();
        let mut wanted: Vec<FromOneRepository> = Vec::new();
        for (at, step) in self.steps.iter().enumerate() {
            let kept = ctx.kept.take(&step.repository.name, &step.entry);
            if kept.is_none() {
                let name = &step.repository.name;
                let group = match wanted.iter().position(|w| &w.repository.name == name) {
                    Some(group) => group,
                    None => {
                        wanted.push(FromOneRepository {
                            repository: step.repository,
                            steps: vec![],
                            entries: vec![],
                        });
                        wanted.len() - 1
                    }
                };
                wanted[group].steps.push(at);
                wanted[group].entries.push(ModuleEntry::clone(&step.entry));
            }
            fetched.push(kept);
        }
        let reused = self.steps.len() - wanted.iter().map(|w| w.steps.len()).sum::<usize>();
        let downloads = wanted.into_iter().map(|w| async move {
            let files = ctx.fetcher.archives(w.repository, w.entries).await?;
            Ok::<_, FetchError>((w.steps, files))
        });
        for (steps, files) in futures::future::try_join_all(downloads).await? {
            for (at, files) in steps.into_iter().zip(files) {
                fetched[at] = Some(files);
            }
        }
        let fetched: Vec<Vec<ArchiveFile>> = fetched
            .into_iter()
            .map(|files| files.unwrap_or_else(|| unreachable!("every archive was fetched")))
            .collect();
        tracing::debug!(
            "{} archives: {reused} as verified for the question, the others downloaded and verified",
            fetched.len()
        );
        let mut prepared = Vec::new();
        for (step, files) in self.steps.iter().zip(fetched) {
            let record = InstalledModule {
                version: step.entry.version.clone(),
                sha256: step.entry.sha256.clone(),
                repository: step.repository.name.clone(),
                installed_at: audit::now(),
                installed_by: actor.to_string(),
                files: step.entry.files.clone(),
                dependencies: step
                    .entry
                    .dependencies
                    .iter()
                    .map(|d| d.name.clone())
                    .collect(),
                library: step.entry.library.clone(),
                held: None,
            };
            prepared.push(Prepared {
                name: step.entry.name.clone(),
                after: Some((record, files)),
            });
        }
        Ok(prepared)
    }
}
