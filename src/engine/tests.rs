//! The engine's change, with a failure injected at every step: for each,
//! what is on disk, in the managed config and loaded in the server, and
//! whether the error's outcome tells the truth. The running server is an
//! in-memory stand-in here (no Prosody runs inside `cargo test --lib`);
//! the integration tests run the same code against a real Prosody.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::admin_socket::ModuleAction;
use super::change::{ChangeSet, Outcome, Setting};
use super::fake::{Fake, HOST};
use super::faults::Step;
use super::managed_config::{LuaValue, Scope};
use super::manifest::Prepared;
use super::placement::Placement;
use super::state::InstalledModule;
use super::Engine;
use crate::access::Actor;
use crate::config::Config;
use crate::repo::archive::ArchiveFile;

/// An engine in a temp dir, on the stand-in server.
struct Host_ {
    _dir: tempfile::TempDir,
    root: PathBuf,
    engine: Engine,
    server: Fake,
}

fn host() -> Host_ {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    for sub in ["modules", "state", "builtin"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("prosody.cfg.lua"), "").unwrap();
    open_host(dir, root, Fake::default())
}

/// Opens an engine (recovery first) on the host in `root`, inside `dir`.
fn open_host(dir: tempfile::TempDir, root: PathBuf, server: Fake) -> Host_ {
    let text = super::fake::config_text("");
    let config = Arc::new(Config::parse(&text, &root).unwrap());
    let (engine, _) =
        Engine::open_with(config, Box::new(server.clone()), super::Opening::ToChange).unwrap();
    Host_ {
        _dir: dir,
        root,
        engine,
        server,
    }
}

/// Everything a change may touch, to compare before and after.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    files: BTreeMap<String, Vec<u8>>,
    installed: super::state::Installed,
    managed_config: String,
    loaded: BTreeSet<String>,
    pulled_in: super::state::PulledIn,
    backups: usize,
}

impl Host_ {
    fn snapshot(&self) -> Snapshot {
        let mut files = BTreeMap::new();
        let modules = self.root.join("modules");
        for entry in walk(&modules) {
            let relative = entry.strip_prefix(&modules).unwrap().display().to_string();
            files.insert(relative, std::fs::read(&entry).unwrap());
        }
        Snapshot {
            files,
            installed: self.engine.installed().unwrap(),
            managed_config: std::fs::read_to_string(self.root.join("modman.cfg.lua")).unwrap(),
            loaded: self.server.0.lock().unwrap().loaded.clone(),
            pulled_in: super::state::PulledIn::load(&self.root.join("state")).unwrap(),
            backups: self.engine.backups().unwrap().len(),
        }
    }

    fn history_results(&self) -> Vec<String> {
        self.engine
            .history()
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {}", e.operation, e.result))
            .collect()
    }

    async fn commit(
        &self,
        change: ChangeSet,
    ) -> Result<super::change::Applied, super::ChangeError> {
        let mut guard = self.engine.lock().await.unwrap();
        guard.commit(&Actor::local_user(), change).await
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn module(name: &str, version: &str) -> Prepared {
    let code = format!("-- {name} {version}\n");
    let record = InstalledModule {
        version: version.into(),
        sha256: format!("{name}-{version}"),
        repository: "test".into(),
        installed_at: "now".into(),
        installed_by: "test".into(),
        files: vec![format!("mod_{name}.lua")],
        dependencies: vec![],
        library: None,
        held: None,
    };
    let files = vec![ArchiveFile {
        path: format!("mod_{name}.lua"),
        data: code.into_bytes(),
        executable: false,
    }];
    Prepared {
        name: name.into(),
        after: Some((record, files)),
    }
}

fn here(module: &str) -> Vec<Placement> {
    Placement::all(&[module.to_owned()], &[HOST.to_owned()])
}

fn install_and_enable(name: &str) -> ChangeSet {
    ChangeSet {
        operation: "install",
        settings: vec![],
        files: vec![module(name, "1")],
        disable: vec![],
        enable: here(name),
    }
}

/// The ways a failure is injected.
#[derive(Debug, Clone)]
enum Failure {
    At(Step),
    Refuse(ModuleAction, &'static str),
}

impl Host_ {
    fn arm(&self, failure: &Failure) {
        match failure {
            Failure::At(step) => self.engine.faults.fail_once(*step),
            Failure::Refuse(action, module) => {
                self.server.0.lock().unwrap().refuse = Some((*action, (*module).to_owned()))
            }
        }
    }
}

#[tokio::test]
async fn a_whole_change_is_done_and_logged_once() {
    let host = host();
    let applied = host.commit(install_and_enable("alpha")).await.unwrap();
    assert_eq!(applied.loaded, here("alpha"));
    let after = host.snapshot();
    assert!(after.files.contains_key("mod_alpha/mod_alpha.lua"));
    assert!(
        after.managed_config.contains("\"alpha\""),
        "{}",
        after.managed_config
    );
    assert!(after.loaded.contains("alpha"));
    assert_eq!(host.history_results(), ["install ok"]);
}

#[tokio::test]
async fn install_and_enable_fails_at_every_step_and_leaves_nothing() {
    let cases = [
        (Failure::At(Step::Swap), Outcome::NothingChanged),
        (Failure::At(Step::StateSave), Outcome::NothingChanged),
        (Failure::At(Step::ConfigWrite), Outcome::Undone),
        (
            Failure::Refuse(ModuleAction::Load, "alpha"),
            Outcome::Undone,
        ),
        (Failure::At(Step::Audit), Outcome::Undone),
    ];
    for (failure, outcome) in cases {
        let host = host();
        host.server.0.lock().unwrap().pulls_in = Some(("alpha".into(), "builtin_dep".into()));
        let before = host.snapshot();
        host.arm(&failure);
        let error = host.commit(install_and_enable("alpha")).await.unwrap_err();
        assert_eq!(error.outcome, outcome, "{failure:?}: {}", error.error);
        assert_eq!(host.snapshot(), before, "{failure:?}");
        // A change that did something and was undone says so in the
        // history, once; one that did nothing leaves no line.
        let lines = host.history_results();
        match outcome {
            Outcome::NothingChanged => assert!(lines.is_empty(), "{failure:?}: {lines:?}"),
            _ => assert!(
                lines.len() == 1 && lines[0].contains("failed") && lines[0].ends_with("undone"),
                "{failure:?}: {lines:?}"
            ),
        }
    }
}

fn remove(name: &str) -> ChangeSet {
    ChangeSet {
        operation: "remove",
        settings: vec![],
        files: vec![Prepared {
            name: name.into(),
            after: None,
        }],
        disable: vec![],
        enable: vec![],
    }
}

#[tokio::test]
async fn a_module_pulled_in_is_unloaded_with_the_module_that_needed_it() {
    let host = host();
    host.server.0.lock().unwrap().pulls_in = Some(("alpha".into(), "builtin_dep".into()));
    let before = host.snapshot();
    host.commit(install_and_enable("alpha")).await.unwrap();
    assert!(host.snapshot().loaded.contains("builtin_dep"));

    let applied = host.commit(remove("alpha")).await.unwrap();
    assert_eq!(applied.unloaded, here("alpha"));
    assert_eq!(applied.released, here("builtin_dep"));
    let after = host.snapshot();
    assert_eq!(after.loaded, before.loaded);
    assert_eq!(after.pulled_in, before.pulled_in);
}

#[tokio::test]
async fn a_module_loaded_before_stays_loaded_after_the_module_that_needed_it() {
    let host = host();
    host.server.0.lock().unwrap().pulls_in = Some(("alpha".into(), "builtin_dep".into()));
    host.server
        .0
        .lock()
        .unwrap()
        .loaded
        .insert("builtin_dep".into());
    host.commit(install_and_enable("alpha")).await.unwrap();
    let applied = host.commit(remove("alpha")).await.unwrap();
    assert!(applied.released.is_empty(), "{:?}", applied.released);
    assert!(host.snapshot().loaded.contains("builtin_dep"));
}

#[tokio::test]
async fn a_failed_remove_loads_again_what_it_released() {
    let host = host();
    host.server.0.lock().unwrap().pulls_in = Some(("alpha".into(), "builtin_dep".into()));
    host.commit(install_and_enable("alpha")).await.unwrap();
    let before = host.snapshot();
    assert!(!before.pulled_in.0.is_empty(), "{:?}", before.pulled_in);
    host.arm(&Failure::At(Step::Audit));
    let error = host.commit(remove("alpha")).await.unwrap_err();
    assert_eq!(error.outcome, Outcome::Undone, "{}", error.error);
    assert_eq!(host.snapshot(), before);
}

#[tokio::test]
async fn a_failed_update_puts_back_the_old_code_and_reloads_it() {
    let cases = [
        (Failure::At(Step::Swap), Outcome::NothingChanged),
        (Failure::At(Step::StateSave), Outcome::NothingChanged),
        (
            Failure::Refuse(ModuleAction::Reload, "alpha"),
            Outcome::Undone,
        ),
        (Failure::At(Step::Audit), Outcome::Undone),
    ];
    for (failure, outcome) in cases {
        let host = host();
        host.commit(install_and_enable("alpha")).await.unwrap();
        let before = host.snapshot();
        host.arm(&failure);
        let update = ChangeSet {
            operation: "update",
            settings: vec![],
            files: vec![module("alpha", "2")],
            disable: vec![],
            enable: vec![],
        };
        let error = host.commit(update).await.unwrap_err();
        assert_eq!(error.outcome, outcome, "{failure:?}: {}", error.error);
        // The old code is back and loaded.
        assert_eq!(host.snapshot(), before, "{failure:?}");
    }
    // And with nothing failing, the new code is in place and reloaded.
    let host = host();
    host.commit(install_and_enable("alpha")).await.unwrap();
    let update = ChangeSet {
        operation: "update",
        settings: vec![],
        files: vec![module("alpha", "2")],
        disable: vec![],
        enable: vec![],
    };
    let applied = host.commit(update).await.unwrap();
    assert_eq!(applied.reloaded, here("alpha"));
    assert_eq!(
        host.snapshot().files["mod_alpha/mod_alpha.lua"],
        b"-- alpha 2\n"
    );
}

#[tokio::test]
async fn a_failed_removal_enables_and_loads_the_module_again() {
    let cases = [
        (Failure::At(Step::ConfigWrite), Outcome::NothingChanged),
        (
            Failure::Refuse(ModuleAction::Unload, "alpha"),
            Outcome::Undone,
        ),
        (Failure::At(Step::Swap), Outcome::Undone),
        (Failure::At(Step::StateSave), Outcome::Undone),
        (Failure::At(Step::Audit), Outcome::Undone),
    ];
    for (failure, outcome) in cases {
        let host = host();
        host.commit(install_and_enable("alpha")).await.unwrap();
        let before = host.snapshot();
        host.arm(&failure);
        let remove = ChangeSet {
            operation: "remove",
            settings: vec![],
            files: vec![Prepared {
                name: "alpha".into(),
                after: None,
            }],
            disable: vec![],
            enable: vec![],
        };
        let error = host.commit(remove).await.unwrap_err();
        assert_eq!(error.outcome, outcome, "{failure:?}: {}", error.error);
        assert_eq!(host.snapshot(), before, "{failure:?}");
    }
}

#[tokio::test]
async fn an_undo_that_fails_too_is_reported_as_partly_changed() {
    let host = host();
    host.commit(install_and_enable("alpha")).await.unwrap();
    // The unload works, the files go; then the history cannot be written
    // and the load back is refused: alpha stays unloaded, and the error
    // says exactly that.
    host.engine.faults.fail_once(Step::Audit);
    host.server.0.lock().unwrap().refuse = Some((ModuleAction::Load, "alpha".into()));
    let remove = ChangeSet {
        operation: "remove",
        settings: vec![],
        files: vec![Prepared {
            name: "alpha".into(),
            after: None,
        }],
        disable: vec![],
        enable: vec![],
    };
    let error = host.commit(remove).await.unwrap_err();
    match &error.outcome {
        Outcome::PartlyChanged(left) => {
            assert!(left.contains("mod_alpha stays unloaded"), "{left}")
        }
        other => panic!("expected a partial change, got {other:?}"),
    }
    // Files and config are back; only the live state differs.
    let after = host.snapshot();
    assert!(after.files.contains_key("mod_alpha/mod_alpha.lua"));
    assert!(after.managed_config.contains("\"alpha\""));
    assert!(!after.loaded.contains("alpha"));
    // The journal stayed: before the next change the undo is finished.
    assert!(host.root.join("state/change.jsonl").exists());
    host.engine.settle().await.unwrap();
    let settled = host.snapshot();
    assert!(settled.loaded.contains("alpha"));
    assert_eq!(
        (settled.files, settled.managed_config),
        (after.files, after.managed_config)
    );
    assert!(!host.root.join("state/change.jsonl").exists());
    assert_eq!(
        host.engine.history().unwrap().len(),
        3,
        "install, the partial undo, its end"
    );
}

fn configure_alpha(value: &str) -> ChangeSet {
    ChangeSet {
        operation: "configure",
        files: vec![],
        disable: vec![],
        settings: vec![Setting {
            module: "alpha".into(),
            scope: Scope::Host(HOST.into()),
            name: "alpha_url".into(),
            value: Some(LuaValue::Text(value.into())),
            secret: false,
        }],
        enable: vec![],
    }
}

#[tokio::test]
async fn options_are_written_read_by_prosody_and_undone_when_refused() {
    let cases = [
        (Failure::At(Step::ConfigWrite), Outcome::NothingChanged, 0),
        // Read with the new value, then again with the old one.
        (
            Failure::Refuse(ModuleAction::Reload, "alpha"),
            Outcome::Undone,
            2,
        ),
        (Failure::At(Step::Audit), Outcome::Undone, 2),
    ];
    for (failure, outcome, reloads) in cases {
        let host = host();
        host.commit(install_and_enable("alpha")).await.unwrap();
        let before = host.snapshot();
        host.server.0.lock().unwrap().config_reloads = 0;
        host.arm(&failure);
        let error = host.commit(configure_alpha("x")).await.unwrap_err();
        assert_eq!(error.outcome, outcome, "{failure:?}: {}", error.error);
        assert_eq!(host.snapshot(), before, "{failure:?}");
        assert_eq!(
            host.server.0.lock().unwrap().config_reloads,
            reloads,
            "{failure:?}"
        );
    }
    let host = host();
    host.commit(install_and_enable("alpha")).await.unwrap();
    let backups = host.snapshot().backups;
    let applied = host
        .commit(configure_alpha("https://x.example/"))
        .await
        .unwrap();
    assert_eq!(applied.reloaded, here("alpha"));
    let after = host.snapshot();
    assert!(
        after
            .managed_config
            .contains("    alpha_url = \"https://x.example/\"\n"),
        "{}",
        after.managed_config
    );
    // Kept for rollback, and named in the history.
    assert_eq!(after.backups, backups + 1);
    let history = host.engine.history().unwrap();
    assert_eq!(
        history.last().unwrap().settings,
        ["alpha_url on a.example: unset -> \"https://x.example/\""]
    );
}

/// The disk and the server as a kill at some step left them.
struct Crash {
    dir: tempfile::TempDir,
    root: PathBuf,
    loaded: BTreeSet<String>,
}

type Crashed = Arc<Mutex<Option<Crash>>>;

impl Host_ {
    /// At `step`, before it does anything, copies everything a change
    /// touches, as a SIGKILL there would leave it; the change goes on.
    fn crash_at(&self, step: Step) -> Crashed {
        let crashed = Crashed::default();
        let (root, server, into) = (self.root.clone(), self.server.clone(), crashed.clone());
        let hook = move || {
            // The tree itself is what the crash leaves, inodes and all
            // (an undo tells copies apart by them); the change goes on in
            // a copy put in its place.
            let dir = tempfile::tempdir_in(root.parent().unwrap()).unwrap();
            let copy = dir.path().join("host");
            std::fs::rename(&root, &copy).unwrap();
            crate::fsutil::copy_dir(&copy, &root).unwrap();
            let loaded = server.0.lock().unwrap().loaded.clone();
            *into.lock().unwrap() = Some(Crash {
                dir,
                root: copy,
                loaded,
            });
        };
        self.engine.faults.at(step, Box::new(hook));
        crashed
    }
}

/// modman started again on what `crashed` copied: recovery at open, then
/// the undo in the running server.
async fn restart(crashed: &Crashed, what: &str) -> Host_ {
    let crash = (crashed.lock().unwrap().take()).unwrap_or_else(|| panic!("{what}: never reached"));
    let server = Fake::default();
    server.0.lock().unwrap().loaded = crash.loaded;
    let host = open_host(crash.dir, crash.root, server);
    host.engine.settle().await.unwrap();
    host
}

fn update_alpha() -> ChangeSet {
    ChangeSet {
        operation: "update",
        settings: vec![],
        files: vec![module("alpha", "2")],
        disable: vec![],
        enable: vec![],
    }
}

fn disable_alpha() -> ChangeSet {
    ChangeSet {
        operation: "disable",
        settings: vec![],
        files: vec![],
        disable: here("alpha"),
        enable: vec![],
    }
}

#[tokio::test]
async fn a_change_killed_at_any_step_is_undone_whole_at_the_next_start() {
    let installed = || async {
        let host = host();
        host.server.0.lock().unwrap().pulls_in = Some(("alpha".into(), "builtin_dep".into()));
        host.commit(install_and_enable("alpha")).await.unwrap();
        host
    };
    type MakeChange = fn() -> ChangeSet;
    let cases: [(&str, bool, MakeChange, &[Step]); 5] = [
        (
            "install",
            false,
            || install_and_enable("alpha"),
            &[Step::Swap, Step::StateSave, Step::ConfigWrite, Step::Audit],
        ),
        (
            "remove",
            true,
            || remove("alpha"),
            &[Step::ConfigWrite, Step::Swap, Step::StateSave, Step::Audit],
        ),
        (
            "update",
            true,
            update_alpha,
            &[Step::Swap, Step::StateSave, Step::Audit],
        ),
        (
            "disable",
            true,
            disable_alpha,
            &[Step::ConfigWrite, Step::Audit],
        ),
        (
            "configure",
            true,
            || configure_alpha("x"),
            &[Step::ConfigWrite, Step::Audit],
        ),
    ];
    for (operation, after_install, change, steps) in cases {
        for step in steps {
            let case = format!("{operation} killed at {step:?}");
            let host = match after_install {
                true => installed().await,
                false => {
                    let host = host();
                    host.server.0.lock().unwrap().pulls_in =
                        Some(("alpha".into(), "builtin_dep".into()));
                    host
                }
            };
            let before = host.snapshot();
            let lines = host.engine.history().unwrap().len();
            let crashed = host.crash_at(*step);
            host.commit(change()).await.unwrap();
            assert_ne!(host.snapshot(), before, "{case}: the change did nothing");

            let recovered = restart(&crashed, &case).await;
            assert_eq!(recovered.snapshot(), before, "{case}");
            let history = recovered.engine.history().unwrap();
            assert_eq!(history.len(), lines + 1, "{case}: {history:?}");
            let last = history.last().unwrap();
            assert_eq!(last.operation, operation, "{case}");
            assert!(!last.change.is_empty(), "{case}");
            // What was undone, with the versions it went between.
            let versions = |from: Option<&str>, to: Option<&str>| {
                vec![super::audit::ModuleChange {
                    module: "alpha".into(),
                    from: from.map(str::to_owned),
                    to: to.map(str::to_owned),
                }]
            };
            let expected = match operation {
                "install" => versions(None, Some("1")),
                "update" => versions(Some("1"), Some("2")),
                "remove" => versions(Some("1"), None),
                _ => versions(None, None),
            };
            assert_eq!(last.changes, expected, "{case}");
            assert!(
                !recovered.root.join("state/change.jsonl").exists(),
                "{case}: the journal stays"
            );
            // Started once more: nothing left to recover.
            let again = restart_clean(recovered).await;
            assert_eq!(again.snapshot(), before, "{case}: second start");
            assert_eq!(again.engine.history().unwrap().len(), lines + 1, "{case}");
        }
    }
}

/// The same host opened again, as after an ordinary restart.
async fn restart_clean(host: Host_) -> Host_ {
    let Host_ {
        _dir, root, server, ..
    } = host;
    let host = open_host(_dir, root, server);
    host.engine.settle().await.unwrap();
    host
}

#[tokio::test]
async fn a_change_killed_while_prosody_goes_down_too_is_undone_on_disk() {
    let host = host();
    let before = host.snapshot();
    let crashed = host.crash_at(Step::Audit);
    host.commit(install_and_enable("alpha")).await.unwrap();
    let crash = crashed.lock().unwrap().take().unwrap();
    // Prosody stopped with modman; when it starts, it reads the config.
    let server = Fake::default();
    server.0.lock().unwrap().down = true;
    let host = open_host(crash.dir, crash.root, server);
    host.engine.settle().await.unwrap();
    assert_eq!(host.snapshot(), before);
    let history = host.engine.history().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(!host.root.join("state/change.jsonl").exists());
}

#[tokio::test]
async fn a_change_whose_history_line_was_written_is_whole_and_left_alone() {
    use super::journal::{Begun, ChangeJournal};
    use std::os::unix::fs::PermissionsExt;
    let host = host();
    host.commit(install_and_enable("alpha")).await.unwrap();
    let done = host.snapshot();
    let line = host.engine.history().unwrap().pop().unwrap();
    // As a kill between the history line and the journal's removal
    // leaves it.
    let journal = ChangeJournal {
        id: line.change.clone(),
        actor: line.actor.clone(),
        operation: line.operation.clone(),
        modules: line.changes.clone(),
        hosts: vec![HOST.into()],
        config_before: Some(String::new()),
        pulled_in_before: Default::default(),
        loaded_before: Some(Default::default()),
        steps: vec![
            Begun::Files {
                transaction: line.transaction.clone(),
            },
            Begun::Config,
            Begun::Load {
                placement: here("alpha").remove(0),
            },
        ],
        undone_on_disk: false,
        entry_synced: false,
    };
    journal.save(&host.engine.paths).unwrap();
    let journal_file = host.root.join("state/change.jsonl");
    let mode = std::fs::metadata(&journal_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "it may hold secret options");

    let host = restart_clean(host).await;
    assert_eq!(host.snapshot(), done);
    assert_eq!(host.engine.history().unwrap().len(), 1);
    assert!(!journal_file.exists());
}

/// A journal of an install that has begun no step yet, with
/// `config_before` as the managed config it keeps.
fn empty_journal(config_before: &str) -> super::journal::ChangeJournal {
    super::journal::ChangeJournal {
        id: "c".into(),
        actor: "a".into(),
        operation: "install".into(),
        modules: vec![],
        hosts: vec![],
        config_before: Some(config_before.into()),
        pulled_in_before: Default::default(),
        loaded_before: None,
        steps: vec![],
        undone_on_disk: false,
        entry_synced: false,
    }
}

#[test]
fn a_journal_whose_first_line_a_power_loss_cut_short_is_a_change_that_never_began() {
    use super::journal::ChangeJournal;
    use std::os::unix::fs::PermissionsExt;
    let host = host();
    let mut journal = empty_journal("-- secret = 1\n");
    journal.start(&host.engine.paths).unwrap();
    let path = host.root.join("state/change.jsonl");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "it may hold secret options");
    let whole = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        ChangeJournal::load(&host.engine.paths).unwrap().unwrap().id,
        "c"
    );
    for cut in ["", &whole[..whole.len() / 2]] {
        std::fs::write(&path, cut).unwrap();
        assert_eq!(ChangeJournal::load(&host.engine.paths).unwrap(), None);
    }
}

#[test]
fn a_journal_line_cut_short_by_a_crash_is_a_step_that_never_began() {
    use super::journal::{Begun, ChangeJournal};
    let host = host();
    let mut journal = empty_journal("-- two\n-- lines\n");
    journal.save(&host.engine.paths).unwrap();
    journal
        .begin_all(&host.engine.paths, vec![Begun::Config])
        .unwrap();
    let path = host.root.join("state/change.jsonl");
    let whole = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{whole}{{\"step\":\"lo")).unwrap();
    let read = ChangeJournal::load(&host.engine.paths).unwrap().unwrap();
    assert_eq!((&read.id, &read.steps), (&journal.id, &journal.steps));
    // Damage anywhere else is an error, not a guess.
    std::fs::write(&path, format!("{whole}{{\"step\":\"lo\n")).unwrap();
    assert!(ChangeJournal::load(&host.engine.paths).is_err());
}

#[tokio::test]
async fn an_option_prosody_holds_is_some_and_nil_or_nothing_is_none() {
    let host = host();
    {
        let mut server = host.server.0.lock().unwrap();
        server
            .config
            .insert((HOST.into(), "set".into()), " \"x\"\n".into());
        server
            .config
            .insert((HOST.into(), "empty".into()), "".into());
    }
    let mut live = host.engine.live().await.unwrap();
    let scope = Scope::Host(HOST.into());
    assert_eq!(
        live.config_get(&scope, "set").await.unwrap(),
        Some("\"x\"".into())
    );
    for unset in ["empty", "absent"] {
        assert_eq!(
            live.config_get(&scope, unset).await.unwrap(),
            None,
            "{unset}"
        );
    }
}

#[test]
fn what_is_remembered_is_news_once_across_openings() {
    use super::records::Record;
    let host = host();
    let mut announced = host.engine.remembered::<String>(Record::AnnouncedUpdates);
    assert!(announced.insert("lastlog aa".into()));
    assert!(!announced.insert("lastlog aa".into()));
    announced.save("updates");

    let mut again = host.engine.remembered::<String>(Record::AnnouncedUpdates);
    assert!(!again.insert("lastlog aa".into()));
    assert!(again.insert("lastlog bb".into()));
    // Another record is another set.
    let mut advisories = host
        .engine
        .remembered::<String>(Record::AnnouncedAdvisories);
    assert!(advisories.insert("lastlog aa".into()));
}

#[test]
fn a_damaged_record_is_read_as_empty_and_replaced_whole() {
    use super::records::Record;
    let host = host();
    let path = host.root.join("state/announced.json");
    std::fs::write(&path, "{ not json").unwrap();
    let mut announced = host.engine.remembered::<String>(Record::AnnouncedUpdates);
    assert!(announced.insert("lastlog aa".into()));
    announced.save("updates");
    let saved: Vec<String> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved, ["lastlog aa"]);
}

#[test]
fn a_whole_record_is_recalled_as_last_remembered_and_default_before() {
    use super::records::Record;
    let host = host();
    let told: BTreeMap<String, String> = host.engine.recalled(Record::FleetDrift);
    assert!(told.is_empty());
    let drift = BTreeMap::from([("lastlog".to_owned(), "a: 1, b: 2".to_owned())]);
    host.engine.remember(Record::FleetDrift, &drift, "drift");
    let again: BTreeMap<String, String> = host.engine.recalled(Record::FleetDrift);
    assert_eq!(again, drift);
}

#[tokio::test]
async fn one_admin_socket_connection_serves_session_after_session_until_prosody_goes_down() {
    let host = host();
    let connections = || host.server.0.lock().unwrap().connections;
    let builtin = host.root.join("builtin");
    for _ in 0..3 {
        let live = host.engine.live().await.unwrap();
        live.server_facts(&builtin);
    }
    host.commit(install_and_enable("alpha")).await.unwrap();
    assert_eq!(connections(), 1);
    // Prosody goes down: the kept connection answers no more, and no new
    // one can be made.
    host.server.0.lock().unwrap().down = true;
    assert!(host.engine.live().await.is_err());
    // Back up, as after a restart: a new connection.
    host.server.0.lock().unwrap().down = false;
    host.engine.live().await.unwrap();
    host.engine.live().await.unwrap();
    assert_eq!(connections(), 2);
    // A session whose question failed is not kept: its answer could still
    // be on the way.
    let mut live = host.engine.live().await.unwrap();
    host.server.0.lock().unwrap().down = true;
    assert!(live.loaded().await.is_err());
    drop(live);
    host.server.0.lock().unwrap().down = false;
    host.engine.live().await.unwrap();
    assert_eq!(connections(), 3);
}

#[tokio::test]
async fn a_hold_is_written_with_its_history_line_or_not_at_all() {
    use super::hold::Holding;
    use super::state::Reason;
    let host = host();
    host.commit(install_and_enable("alpha")).await.unwrap();
    let mut guard = host.engine.lock().await.unwrap();
    let because = Reason::new("breaks with our LDAP").unwrap();
    let alpha = ["alpha".to_owned()];
    let was = guard
        .set_holds(&Actor::local_user(), &alpha, Holding::Hold(Some(because)))
        .unwrap();
    assert_eq!(was, [None]);
    drop(guard);
    let held = host.engine.installed().unwrap().modules["alpha"]
        .held
        .clone();
    assert_eq!(
        held.and_then(|h| h.reason).map(String::from).as_deref(),
        Some("breaks with our LDAP")
    );
    assert_eq!(host.history_results(), ["install ok", "hold ok"]);
    // The history cannot be written: the release is not made.
    let history = host.root.join("state/history.jsonl");
    let kept = std::fs::read(&history).unwrap();
    std::fs::remove_file(&history).unwrap();
    std::fs::create_dir(&history).unwrap();
    let before = host.snapshot();
    let mut guard = host.engine.lock().await.unwrap();
    assert!(guard
        .set_holds(&Actor::local_user(), &alpha, Holding::Release)
        .is_err());
    assert!(guard.installed.modules["alpha"].held.is_some());
    drop(guard);
    assert_eq!(host.snapshot(), before);
    std::fs::remove_dir(&history).unwrap();
    std::fs::write(&history, kept).unwrap();
}

/// The health watch after a change, on a clock the test sets.
mod health_watch {
    use std::time::Duration;

    use time::macros::datetime;

    use super::super::health::{self, Back, Ending, Problem, Subject, Undo, Verdict};
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const WATCH: Duration = Duration::from_secs(60);

    /// alpha installed and enabled, and the watch of that change.
    async fn enabled() -> (Host_, Subject) {
        let host = host();
        host.commit(install_and_enable("alpha")).await.unwrap();
        let subject = Subject {
            module: "alpha".into(),
            version: Some("1".into()),
            hosts: vec![HOST.into()],
            undo: Undo::Disable(here("alpha")),
            history_len: host.engine.history().unwrap().len(),
        };
        (host, subject)
    }

    /// The verdict of a watch started at 03:00 once the clock is set to
    /// `at`.
    async fn watched_until(host: &Host_, subject: &Subject, at: time::OffsetDateTime) -> Verdict {
        let clock = ManualClock::at(datetime!(2026-12-06 03:00 UTC));
        let since = clock.now();
        let watching = health::watch(
            &host.engine,
            &clock,
            subject,
            (since, WATCH),
            std::future::pending(),
        );
        let (verdict, ()) = tokio::join!(watching, async { clock.set(at) });
        verdict
    }

    #[tokio::test]
    async fn a_module_gone_from_the_server_is_disabled_again_with_the_reason() {
        let (host, subject) = enabled().await;
        host.server.0.lock().unwrap().loaded.remove("alpha");
        let verdict = watched_until(&host, &subject, datetime!(2026-12-06 03:00:05 UTC)).await;
        assert_eq!(
            verdict,
            Verdict::FailedAndUndone {
                problem: Problem::NotLoaded { host: HOST.into() },
                back: Back::Disabled(vec![HOST.into()]),
            }
        );
        assert!(!host.snapshot().managed_config.contains("\"alpha\""));
        let last = host.engine.history().unwrap().pop().unwrap();
        assert_eq!(
            (last.operation.as_str(), last.actor.as_str()),
            ("health-disable", "health-check")
        );
        assert!(last.reason.is_some_and(|r| r.contains(HOST)));
    }

    #[tokio::test]
    async fn a_stop_or_a_newer_change_ends_the_watch_and_the_change_stands() {
        let (host, subject) = enabled().await;
        let clock = ManualClock::at(datetime!(2026-12-06 03:00 UTC));
        let stopped = health::watch(
            &host.engine,
            &clock,
            &subject,
            (clock.now(), WATCH),
            async { Ending::Shutdown },
        )
        .await;
        assert_eq!(stopped, Verdict::Ended(Ending::Shutdown));

        // Disabled by an admin meanwhile: not loaded, but not the watch's
        // to undo.
        let disable = ChangeSet {
            operation: "disable",
            settings: vec![],
            files: vec![],
            disable: here("alpha"),
            enable: vec![],
        };
        host.commit(disable).await.unwrap();
        let before = host.snapshot();
        let verdict = watched_until(&host, &subject, datetime!(2026-12-06 03:00:05 UTC)).await;
        assert_eq!(verdict, Verdict::Ended(Ending::Superseded));
        assert_eq!(host.snapshot(), before);
    }

    #[tokio::test]
    async fn a_server_that_stops_answering_fails_the_check_and_an_undo_that_fails_says_so() {
        let (host, subject) = enabled().await;
        host.server.0.lock().unwrap().down = true;
        let before = host.snapshot();
        let verdict = watched_until(&host, &subject, datetime!(2026-12-06 03:01:01 UTC)).await;
        let Verdict::UndoFailed {
            problem: Problem::NotAnswering(_),
            outcome: Outcome::NothingChanged,
            ..
        } = verdict
        else {
            panic!("{verdict:?}");
        };
        assert_eq!(host.snapshot(), before);
    }
}

/// Modules `m00`.. installed at `version`, as one change.
fn many(count: usize, operation: &'static str, version: &str) -> ChangeSet {
    ChangeSet {
        operation,
        settings: vec![],
        files: (0..count)
            .map(|i| module(&format!("m{i:02}"), version))
            .collect(),
        disable: vec![],
        enable: vec![],
    }
}

/// While the daemon runs, the directories of the next large change are
/// made ahead once it is idle, and again after each change that took
/// them; an update of every module takes them, and is whole.
#[tokio::test]
async fn the_directories_of_the_next_large_change_are_made_while_idle() {
    let host = host();
    let ready = host.root.join("modules/.modman-staging/ready");
    let Host_ {
        _dir, root, engine, ..
    } = host;
    let engine = Arc::new(engine);
    let keeper = tokio::spawn(engine.clone().tidy_while_idle());
    let commit = |change: ChangeSet| {
        let engine = engine.clone();
        async move {
            let mut guard = engine.lock().await.unwrap();
            guard.commit(&Actor::local_user(), change).await.unwrap();
        }
    };
    let made = || async {
        for _ in 0..250 {
            if ready.is_dir() {
                return std::fs::read_dir(ready.join("new")).unwrap().count();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no stage made ahead");
    };
    commit(many(20, "install", "1")).await;
    assert_eq!(made().await, 20);
    commit(many(20, "update", "2")).await;
    for i in 0..20 {
        let code = root.join(format!("modules/mod_m{i:02}/mod_m{i:02}.lua"));
        assert_eq!(
            std::fs::read_to_string(code).unwrap(),
            format!("-- m{i:02} 2\n")
        );
    }
    assert_eq!(made().await, 20, "made again after the update took it");
    keeper.abort();
}

/// An update of many modules in directories made ahead, killed at any
/// step, is undone whole at the next start; a stage made ahead that a
/// start finds is removed without a word, as no change's.
#[tokio::test]
async fn a_large_update_in_directories_made_ahead_killed_at_any_step_is_undone_whole() {
    for step in [Step::Swap, Step::StateSave, Step::Audit] {
        let case = format!("killed at {step:?}");
        let host = host();
        host.commit(many(20, "install", "1")).await.unwrap();
        let staging = host.engine.paths.staging.clone();
        let names = (0..20).map(|i| format!("m{i:02}")).collect();
        super::stage::make_ready(&staging, &names).unwrap();
        let before = host.snapshot();
        let crashed = host.crash_at(step);
        host.commit(many(20, "update", "2")).await.unwrap();
        assert!(!staging.join("ready").exists(), "{case}: taken");
        let recovered = restart(&crashed, &case).await;
        assert_eq!(recovered.snapshot(), before, "{case}");
        let results = recovered.history_results();
        assert_ne!(results.last().unwrap(), "update ok", "{case}");
    }
    let host = host();
    host.commit(many(20, "install", "1")).await.unwrap();
    let staging = host.engine.paths.staging.clone();
    let names = (0..20).map(|i| format!("m{i:02}")).collect();
    super::stage::make_ready(&staging, &names).unwrap();
    let Host_ { _dir, root, .. } = host;
    let text = super::fake::config_text("");
    let config = Arc::new(Config::parse(&text, &root).unwrap());
    let (_, notes) =
        Engine::open_with(config, Box::new(Fake::default()), super::Opening::ToChange).unwrap();
    assert_eq!(notes, Vec::<String>::new());
    assert!(!staging.exists());
}

/// A change waits for the cross-process lock while another process holds
/// it for a moment (the daemon making the next stage ahead), and is
/// refused, saying so, when it is held on; the daemon's own moments under
/// it never wait.
#[test]
fn the_lock_held_for_a_moment_is_waited_for_and_held_on_is_refused() {
    let host = host();
    let paths = host.engine.paths.clone();
    let held = super::lock_file(&paths, std::time::Duration::ZERO).unwrap();
    let refused = super::lock_file(&paths, std::time::Duration::ZERO);
    assert!(matches!(refused, Err(super::EngineError::Busy(_))));
    let refused = super::lock_file(&paths, std::time::Duration::from_millis(50));
    assert!(matches!(refused, Err(super::EngineError::Busy(_))));
    let released = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
    });
    assert!(super::lock_file(&paths, super::LOCK_PATIENCE).is_ok());
    released.join().unwrap();
}

/// The backups beyond the newest 50 are not removed on a change's path:
/// the daemon removes them once idle, the oldest first, and an opening of
/// the state to change it (a command line making its change itself) does
/// too. A backup a change just made is never among those removed.
#[tokio::test]
async fn backups_beyond_the_newest_fifty_go_while_idle_and_at_opening() {
    let host = host();
    let backups = host.root.join("state/backups");
    let plant = |count: usize, year: u32| {
        for i in 0..count {
            let old = backups.join(format!("{year}0101T000000.{i:09}Z-0000000{i}"));
            std::fs::create_dir_all(old.join("mod_x")).unwrap();
            std::fs::write(old.join("mod_x/mod_x.lua"), "-- an old copy\n").unwrap();
        }
    };
    // Every entry: the ones set aside for removal count until removed.
    let kept = || {
        let mut ids: Vec<String> = std::fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids
    };
    plant(55, 2001);
    host.commit(many(1, "install", "1")).await.unwrap();
    let after_change = kept();
    assert_eq!(after_change.len(), 56, "none removed on the change's path");
    let newest = after_change.last().unwrap().clone();
    assert!(!newest.starts_with("2001"), "{newest}");

    let Host_ {
        _dir, root, engine, ..
    } = host;
    let engine = Arc::new(engine);
    let tidy = tokio::spawn(engine.clone().tidy_while_idle());
    for _ in 0..250 {
        if kept().len() == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(kept(), after_change[6..], "the six oldest went, while idle");
    tidy.abort();
    drop(engine);

    plant(3, 2000);
    assert_eq!(kept().len(), 53);
    let reopened = open_host(_dir, root, Fake::default());
    assert_eq!(
        kept(),
        after_change[6..],
        "the three planted older went at opening"
    );
    drop(reopened);
}

/// Placing new modules' files asks the running Prosody nothing: nothing
/// it runs can change. Replacing a copy asks what is loaded (a loaded
/// copy is reloaded), and so does a new module that shadows one of that
/// name in Prosody's own directory, which Prosody may have loaded.
#[tokio::test]
async fn only_a_change_that_may_touch_what_runs_asks_what_is_loaded() {
    let host = host();
    let asked = || {
        let server = host.server.0.lock().unwrap();
        (server.connections, server.listings)
    };
    let files = |modules: Vec<Prepared>| ChangeSet {
        operation: "install",
        settings: vec![],
        files: modules,
        disable: vec![],
        enable: vec![],
    };
    host.commit(files(vec![module("alpha", "1")]))
        .await
        .unwrap();
    assert_eq!(asked(), (0, 0), "a new module's files");

    host.server.0.lock().unwrap().loaded.insert("alpha".into());
    let applied = host
        .commit(files(vec![module("alpha", "2")]))
        .await
        .unwrap();
    assert_eq!(applied.reloaded, here("alpha"), "the loaded copy replaced");
    assert!(asked().1 > 0);

    let before = asked().1;
    std::fs::write(host.root.join("builtin/mod_beta.lua"), "-- Prosody's own\n").unwrap();
    host.server.0.lock().unwrap().loaded.insert("beta".into());
    let applied = host.commit(files(vec![module("beta", "1")])).await.unwrap();
    assert!(asked().1 > before, "a shadowing copy asks");
    assert_eq!(
        applied.reloaded,
        here("beta"),
        "and the copy loaded is reloaded"
    );
}

/// A plan's facts about the running Prosody come from the connection
/// kept since the last session, with no question, while it is open; once
/// Prosody closed it, a new session asks them.
#[tokio::test]
async fn a_plan_learns_the_server_from_the_kept_connection_while_it_is_open() {
    let host = host();
    let builtin = host.root.join("builtin");
    host.commit(install_and_enable("alpha")).await.unwrap();
    let asked = || {
        let server = host.server.0.lock().unwrap();
        (server.connections, server.host_listings)
    };
    let before = asked();
    let mut guard = host.engine.lock().await.unwrap();
    let facts = guard.server_facts(&builtin).await.unwrap();
    assert_eq!(facts.lua, "5.4");
    assert_eq!(asked(), before, "nothing asked");
    drop(guard);

    host.server.0.lock().unwrap().down = true;
    let mut guard = host.engine.lock().await.unwrap();
    assert!(
        guard.server_facts(&builtin).await.is_err(),
        "closed: asked anew"
    );
    drop(guard);
    host.server.0.lock().unwrap().down = false;
    let mut guard = host.engine.lock().await.unwrap();
    guard.server_facts(&builtin).await.unwrap();
    assert_eq!(asked().0, before.0 + 1, "a new connection");
}
