//! A transaction's stage: the new copies of its modules, written under
//! `modules_dir/.modman-staging/<id>/new` before anything moves (see
//! [`super::transaction`]).
//!
//! An operation that downloads many archives opens the stage first and
//! hands it each module as its archive is verified ([`Stage::put`]), so
//! the files are written while the rest still download: an update of 250
//! modules spent 15 ms downloading, then 10 ms staging. The transaction
//! writes whatever was not put ahead, then makes the whole stage durable
//! with its one barrier, as before: writing ahead changes when the files
//! are written, never what is durable when they move. (Starting each
//! file's writeback as it was written, `sync_file_range`, cut that
//! barrier from 10 ms to 4 but slowed the writing by more, on two cores.)
//!
//! A stage that never becomes a transaction (a download refused, an
//! option missing) is removed when its last handle goes. One that a crash
//! leaves behind has no journal, and recovery removes it at the next
//! start.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::manifest::Prepared;
use crate::fsutil;
use crate::repo::archive::ArchiveFile;

/// From this many modules on, what the transaction itself stages is
/// written by [`STAGE_THREADS`] threads at once rather than by its own.
const STAGE_IN_PARALLEL_FROM: usize = 16;

/// From this many modules on, the stage is opened ahead of the downloads
/// and each module written in it as its archive arrives, by threads of
/// their own as above (see [`crate::engine::ChangeGuard::stage_ahead`]).
pub const AHEAD_FROM: usize = STAGE_IN_PARALLEL_FROM;

/// Threads writing one stage. Creating a file waits on the disk more than
/// on the CPU (ext4 reads inode tables to pick a free inode), so several
/// threads overlap those waits even on two cores: 250 two-file modules
/// took 168 ms from one thread and 26 to 46 ms from eight here, with the
/// disk at its slowest (right after many deletions). Also the bound on
/// modules written ahead at once.
const STAGE_THREADS: usize = 8;

/// A handle on one transaction's stage; clones share it.
#[derive(Clone)]
pub struct Stage(Arc<Inner>);

struct Inner {
    id: String,
    /// `staging/<id>`.
    dir: PathBuf,
    /// Writes of [`Stage::put`] under way, at most [`STAGE_THREADS`].
    writers: tokio::sync::Semaphore,
    puts: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The first write ahead that failed, for the transaction to report.
    failed: Mutex<Option<std::io::Error>>,
    /// What the writes ahead have written so far.
    written: Mutex<Written>,
    /// Set once a transaction took the stage: from then on the
    /// transaction removes it, or its journal needs it.
    taken: AtomicBool,
}

#[derive(Default)]
struct Written {
    modules: BTreeSet<String>,
    /// Every directory and file, for the barrier.
    paths: Vec<PathBuf>,
}

impl Stage {
    /// Creates the empty stage of transaction `id` in `staging` (blocking),
    /// for a change of `modules` modules: from [`STAGE_IN_PARALLEL_FROM`]
    /// on, in a block group of its own (see
    /// [`fsutil::spread_subdirectories`]).
    pub(super) fn open(staging: &Path, id: String, modules: usize) -> std::io::Result<Stage> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = staging.join(&id);
        // A stage given up just now may remove the empty staging
        // directory between these steps: then once more.
        for again in [true, false] {
            let made = match std::fs::create_dir(staging) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(e),
            };
            // A staging directory made just now has no `T` (ext4 does not
            // pass it on), which is what a small stage wants: no call then,
            // as for the install of one module.
            let spread = modules >= STAGE_IN_PARALLEL_FROM;
            if spread || !made {
                if let Err(e) = fsutil::spread_subdirectories(staging, spread) {
                    tracing::debug!("the stage is placed as the file system likes: {e}");
                }
            }
            match std::fs::create_dir(&dir) {
                Err(e) if again && e.kind() == std::io::ErrorKind::NotFound => continue,
                done => {
                    done?;
                    break;
                }
            }
        }
        // Once swapped, `new/` holds the copies the change replaced and
        // becomes their backup, modman's alone as its manifest names who
        // changed what.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.join("new"))?;
        Ok(Stage(Arc::new(Inner {
            id,
            dir,
            writers: tokio::sync::Semaphore::new(STAGE_THREADS),
            puts: Mutex::default(),
            failed: Mutex::default(),
            written: Mutex::default(),
            taken: AtomicBool::new(false),
        })))
    }

    /// The id of the transaction this stage is for.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// `staging/<id>`.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// Starts writing the new copy of module `name`, as the transaction
    /// will install it, on a blocking thread, and returns at once. The
    /// files must be those the change then carries for `name` (already
    /// checked: relative paths, no `..`). Needs a Tokio runtime. Whoever
    /// puts waits for the writes with [`Stage::settled`] before it lets
    /// go of the stage; a write that failed is the transaction's error
    /// ([`Stage::complete`]).
    pub fn put(&self, name: &str, files: Vec<ArchiveFile>) {
        let inner = self.0.clone();
        let name = name.to_owned();
        let put = tokio::spawn(async move {
            let _writer = inner.writers.acquire().await;
            let writing = inner.clone();
            let written = tokio::task::spawn_blocking(move || writing.write_ahead(name, &files))
                .await
                .map_err(std::io::Error::other)
                .and_then(|written| written);
            if let Err(e) = written {
                lock(&inner.failed).get_or_insert(e);
            }
        });
        lock(&self.0.puts).push(put);
    }

    /// Waits for every write [`Stage::put`] started: afterwards nothing
    /// writes in the stage but its transaction, and a stage given up is
    /// removed whole with its last handle, even by a process about to
    /// exit.
    pub async fn settled(&self) {
        let puts = std::mem::take(&mut *lock(&self.0.puts));
        for put in puts {
            if let Err(e) = put.await {
                lock(&self.0.failed).get_or_insert(std::io::Error::other(e));
            }
        }
    }

    /// Takes the stage for its transaction (blocking): writes the new copy
    /// of each module in `changes` not written ahead, and returns every
    /// directory and file the stage holds, for the barrier. From here on,
    /// the transaction removes the stage or its journal needs it. A module
    /// written ahead that the change does not install is an error: after
    /// the swap `new/` is the backup of what the change replaced, and it
    /// would hold that copy too.
    pub(super) fn complete(&self, changes: &[Prepared]) -> std::io::Result<Vec<PathBuf>> {
        self.0.taken.store(true, Ordering::SeqCst);
        if let Some(failed) = lock(&self.0.failed).take() {
            return Err(failed);
        }
        let new = self.0.dir.join("new");
        let Written { modules, paths } = std::mem::take(&mut *lock(&self.0.written));
        let placed: BTreeSet<&str> = changes
            .iter()
            .filter(|c| c.after.is_some())
            .map(|c| c.name.as_str())
            .collect();
        if let Some(stray) = modules.iter().find(|m| !placed.contains(m.as_str())) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("mod_{stray} was written ahead, but the change does not install it"),
            ));
        }
        let mut durable = vec![self.0.dir.clone(), new.clone()];
        durable.extend(paths);
        let rest: Vec<&Prepared> = changes
            .iter()
            .filter(|c| !modules.contains(&c.name))
            .collect();
        write_stage(&new, &rest, &mut durable)?;
        Ok(durable)
    }
}

impl Inner {
    fn write_ahead(&self, name: String, files: &[ArchiveFile]) -> std::io::Result<()> {
        let mut paths = Vec::new();
        let root = self.dir.join("new").join(format!("mod_{name}"));
        write_tree(&root, files, &mut paths)?;
        let mut written = lock(&self.written);
        written.modules.insert(name);
        written.paths.extend(paths);
        Ok(())
    }
}

impl Drop for Inner {
    /// A stage no transaction took goes, and the staging directory with
    /// it if it is empty now, as Prosody's admin would expect to find the
    /// module directory.
    fn drop(&mut self) {
        if !self.taken.load(Ordering::SeqCst) {
            let _ = fsutil::remove_dir_if_present(&self.dir);
            if let Some(staging) = self.dir.parent() {
                let _ = std::fs::remove_dir(staging);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes the new copy of every module `changes` installs or replaces
/// under `new`, adding what it wrote to `written` (see [`write_tree`]).
fn write_stage(
    new: &Path,
    changes: &[&Prepared],
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let trees: Vec<(PathBuf, &[ArchiveFile])> = changes
        .iter()
        .filter_map(|prepared| {
            let (_, files) = prepared.after.as_ref()?;
            Some((new.join(format!("mod_{}", prepared.name)), files.as_slice()))
        })
        .collect();
    let workers = match trees.len() < STAGE_IN_PARALLEL_FROM {
        true => 1,
        false => STAGE_THREADS,
    };
    let staged = crate::parallel::each(&trees, workers, |(root, files)| {
        let mut mine = Vec::new();
        write_tree(root, files, &mut mine).map(|()| mine)
    });
    staged
        .into_iter()
        .try_for_each(|mine| mine.map(|mine| written.extend(mine)))
}

/// Writes files (already checked: relative, no `..`) under `root`, not
/// synced: the transaction makes the whole stage durable with one
/// barrier, over the directories and files this adds to `written`. Each
/// directory is made once, not once per file in it.
fn write_tree(
    root: &Path,
    files: &[ArchiveFile],
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir(root)?;
    written.push(root.to_owned());
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    for file in files {
        let path = root.join(&file.path);
        // Every directory between the root and the file, outermost first.
        let parents: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .take_while(|dir| *dir != root)
            .collect();
        for dir in parents.into_iter().rev() {
            if made.insert(dir.to_owned()) {
                match std::fs::create_dir(dir) {
                    Ok(()) => written.push(dir.to_owned()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if file.executable { 0o755 } else { 0o644 })
            .open(&path)?;
        out.write_all(&file.data)?;
        written.push(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: String, executable: bool) -> ArchiveFile {
        ArchiveFile {
            path: path.into(),
            data: data.into_bytes(),
            executable,
        }
    }

    fn module(i: usize) -> Prepared {
        let record = super::super::state::InstalledModule::for_test("r", "1", 'a');
        let files = ["mod_m.lua", "lib/helper.lua"]
            .map(|path| file(path, format!("{i} {path}"), false))
            .to_vec();
        Prepared {
            name: format!("m{i}"),
            after: Some((record, files)),
        }
    }

    /// Whether directories made in `dir` are spread (ext4's `T`), or
    /// `None` where the file system keeps no such attribute.
    fn spreads(dir: &Path) -> Option<bool> {
        use std::os::fd::AsRawFd;
        let dir = std::fs::File::open(dir).unwrap();
        let mut flags: libc::c_int = 0;
        // SAFETY: an open descriptor and one int, as the kernel reads it.
        let read = unsafe { libc::ioctl(dir.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        (read == 0).then_some(flags & 0x0002_0000 != 0)
    }

    /// A large stage is placed apart from the module directory's recent
    /// deletions, a small one beside it, whatever the last stage asked.
    #[test]
    fn only_a_large_stage_is_placed_in_a_block_group_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(".modman-staging");
        let supported = spreads(dir.path()).is_some();
        // Held, so that each finds the staging directory the last left.
        let mut open = vec![];
        for (id, modules, spread) in [("a", 250, true), ("b", 1, false), ("c", 16, true)] {
            let stage = Stage::open(&staging, id.into(), modules).unwrap();
            assert!(stage.dir().join("new").is_dir());
            if supported {
                assert_eq!(spreads(&staging), Some(spread), "{modules} modules");
            }
            open.push(stage);
        }
        drop(open);
        assert!(!staging.exists(), "given up, the stages went with it");
        // What a link planted there names is left as it was.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &staging).unwrap();
        let linked = fsutil::spread_subdirectories(&staging, true).unwrap_err();
        // ENOTDIR: a link is not a directory when it is not followed.
        assert_eq!(linked.raw_os_error(), Some(libc::ENOTDIR));
        if supported {
            assert_eq!(spreads(&elsewhere), Some(false));
        }
    }

    #[test]
    fn a_staged_tree_lists_every_directory_and_file_it_wrote_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mod_x");
        let files = [
            file("mod_x.lua", "x".into(), false),
            file("lib/a.lua", "a".into(), false),
            file("lib/deep/b.lua", "b".into(), false),
            file("lib/c.lua", "c".into(), false),
            file("tool", "t".into(), true),
        ];
        let mut written = vec![];
        write_tree(&root, &files, &mut written).unwrap();
        let mut expected: Vec<PathBuf> = ["", "lib", "lib/deep"]
            .iter()
            .map(|d| root.join(d))
            .chain(files.iter().map(|f| root.join(&f.path)))
            .collect();
        expected.sort();
        written.sort();
        assert_eq!(written, expected);
        for f in &files {
            assert_eq!(std::fs::read(root.join(&f.path)).unwrap(), f.data);
        }
        let mode = |p: &str| {
            std::fs::metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("tool"), mode("mod_x.lua")), (0o755, 0o644));
        // What the barrier syncs is what a walk of the tree finds.
        let mut walked = fsutil::tree_paths(&root).unwrap();
        walked.sort();
        assert_eq!(walked, expected);
    }

    /// Written by several threads, a large stage is the same stage: every
    /// module, file and directory once in what the barrier syncs, every
    /// byte in place; and removals write nothing.
    #[test]
    fn a_stage_of_many_modules_written_by_several_threads_is_whole_and_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        std::fs::create_dir(&new).unwrap();
        let count = 3 * STAGE_IN_PARALLEL_FROM;
        let changes: Vec<Prepared> = (0..count)
            .map(|i| match i % 7 {
                3 => Prepared {
                    name: format!("m{i}"),
                    after: None,
                },
                _ => module(i),
            })
            .collect();
        let all: Vec<&Prepared> = changes.iter().collect();
        let mut written = vec![];
        write_stage(&new, &all, &mut written).unwrap();
        written.sort();
        let mut walked = fsutil::tree_paths(&new).unwrap();
        walked.retain(|p| *p != new);
        walked.sort();
        assert_eq!(written, walked, "every path once, none missed");
        let staged = changes.iter().filter(|c| c.after.is_some()).count();
        assert_eq!(written.len(), staged * 4, "a root, lib/ and two files each");
        for (i, change) in changes.iter().enumerate() {
            let root = new.join(format!("mod_m{i}"));
            assert_eq!(root.exists(), change.after.is_some(), "{i}");
            if change.after.is_some() {
                let helper = std::fs::read(root.join("lib/helper.lua")).unwrap();
                assert_eq!(helper, format!("{i} lib/helper.lua").into_bytes());
            }
        }
        // A module staged twice fails the stage rather than mixing copies.
        let again = write_stage(&new, &all, &mut vec![]);
        assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    }

    /// Modules put ahead and those the transaction writes itself make one
    /// stage: each written once, and listed once for the barrier.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn modules_put_ahead_and_the_rest_make_one_stage_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(".modman-staging");
        let changes: Vec<Prepared> = (0..40).map(module).collect();
        let stage = Stage::open(&staging, "t1".into(), 40).unwrap();
        for change in changes.iter().filter(|c| c.name.len() % 2 == 0) {
            stage.put(&change.name, change.after.as_ref().unwrap().1.clone());
        }
        stage.settled().await;
        let mut durable = {
            let stage = stage.clone();
            tokio::task::spawn_blocking(move || stage.complete(&changes))
                .await
                .unwrap()
                .unwrap()
        };
        durable.sort();
        let mut walked = fsutil::tree_paths(stage.dir()).unwrap();
        walked.sort();
        assert_eq!(durable, walked, "every path once, none missed");
        assert_eq!(durable.len(), 2 + 40 * 4);
        for i in 0..40 {
            let helper = stage.dir().join(format!("new/mod_m{i}/lib/helper.lua"));
            assert_eq!(
                std::fs::read(helper).unwrap(),
                format!("{i} lib/helper.lua").into_bytes()
            );
        }
        // Taken by its transaction, the stage stays for it to remove.
        drop(stage);
        assert!(staging.join("t1/new").is_dir());

        // A module written ahead that the change does not install would
        // end in the backup of what it replaced: refused.
        let stage = Stage::open(&staging, "t4".into(), 2).unwrap();
        stage.put("m1", module(1).after.unwrap().1);
        stage.put("m2", module(2).after.unwrap().1);
        stage.settled().await;
        let removal = Prepared {
            name: "m2".into(),
            after: None,
        };
        let taken = stage.clone();
        let refused = tokio::task::spawn_blocking(move || taken.complete(&[module(1), removal]))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    }

    /// A write ahead that fails is the error of the transaction that
    /// takes the stage, and a stage no transaction took is removed with
    /// its last handle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_ahead_is_the_transactions_error_and_an_untaken_stage_goes() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(".modman-staging");
        let files = module(1).after.unwrap().1;
        for (id, puts) in [("t2", 2), ("t3", 1)] {
            let stage = Stage::open(&staging, id.into(), 1).unwrap();
            for _ in 0..puts {
                stage.put("m1", files.clone());
            }
            stage.settled().await;
            assert!(staging.join(id).join("new/mod_m1/mod_m.lua").is_file());
            if puts == 2 {
                // The second put of one module finds the first's copy.
                let taken = stage.clone();
                let error = tokio::task::spawn_blocking(move || taken.complete(&[module(1)]))
                    .await
                    .unwrap()
                    .unwrap_err();
                assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
                drop(stage);
                assert!(
                    staging.join(id).is_dir(),
                    "taken: its transaction removes it"
                );
                std::fs::remove_dir_all(staging.join(id)).unwrap();
            } else {
                drop(stage);
                assert!(!staging.exists());
            }
        }
    }
}
