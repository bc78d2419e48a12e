//! A transaction's stage: the new copies of its modules, written under
//! `modules_dir/.modman-staging/<id>/new` before anything moves (see
//! [`super::transaction`]).
//!
//! The stage is written after the last archive is verified, by several
//! threads for a large change. Writing each module as its archive
//! arrived, while the others downloaded, was tried and taken out: on two
//! cores the writes and the downloads took the CPU from each other, so an
//! update of 250 modules used 65 ms of CPU instead of 35, for a stage
//! and downloads that together ended 3 to 6 ms later, not sooner (probes
//! of 2026-12-07, two pairs of ten rounds; see the README's benchmarks).
//! Making only the directories ahead, on one thread, fared the same: the
//! stage was 3 ms shorter and the downloads 2 ms longer, and the commit
//! waited for the directories. Over a slow link the stage is a few
//! milliseconds after seconds of downloads.
//!
//! A stage that never becomes a transaction (a module found in the way
//! first) is removed when it is dropped. One that a crash leaves behind
//! has no journal, and recovery removes it at the next start.
//!
//! A large stage's directories are made ahead ([`make_ready`]): while
//! modman is idle, the daemon keeps `staging/ready/new/mod_x`, empty and
//! synced, for every installed module, and the next change of many of
//! them takes it whole by one rename ([`Stage::open`]). Making 250
//! directories was most of the stage of an update of 250 modules, and
//! their new inodes and blocks much of its barrier: 23.8 to 26.7 ms for
//! stage, barrier, swap and the sync after it made anew, 15.8 to 17.5
//! with the directories made ahead (three interleaved runs of 15 rounds,
//! 2026-12-07). Nothing else changes: the change still swaps whole
//! directories, and its backup is still whole copies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::manifest::Prepared;
use crate::fsutil;
use crate::repo::archive::ArchiveFile;

/// From this many modules on, the stage is written by [`STAGE_THREADS`]
/// threads at once rather than by the transaction's own, and placed in a
/// block group of its own.
const STAGE_IN_PARALLEL_FROM: usize = 16;

/// Threads writing one stage. Creating a file waits on the disk more than
/// on the CPU (ext4 reads inode tables to pick a free inode), so several
/// threads overlap those waits even on two cores: 250 two-file modules
/// took 168 ms from one thread and 26 to 46 ms from eight here, with the
/// disk at its slowest (right after many deletions).
const STAGE_THREADS: usize = 8;

/// The stage made ahead, in the staging directory: `ready/new/mod_x`,
/// empty, for each installed module, in a directory modman's alone
/// (mode 0700), so nothing can have been put in them since.
const READY: &str = "ready";

/// Where [`make_ready`] makes the stage ahead, renamed to [`READY`] once
/// whole and synced.
const READY_BUILDING: &str = "ready.building";

/// Whether `name`, found in the staging directory, is the stage made
/// ahead (or one being made), rather than a change's: recovery removes
/// it without a word.
pub(super) fn is_made_ahead(name: &std::ffi::OsStr) -> bool {
    name == READY || name == READY_BUILDING
}

/// One transaction's stage.
pub struct Stage {
    id: String,
    /// `staging/<id>`.
    dir: PathBuf,
    /// Set once a transaction took the stage: from then on the
    /// transaction removes it, or its journal needs it.
    taken: bool,
    /// The modules whose `new/mod_x` is there already, empty: made
    /// ahead ([`make_ready`]).
    made_ahead: BTreeSet<String>,
}

impl Stage {
    /// Creates the empty stage of transaction `id` in `staging` (blocking),
    /// for `changes`: from [`STAGE_IN_PARALLEL_FROM`] modules on, in a
    /// block group of its own (see [`fsutil::spread_subdirectories`]),
    /// or as the stage made ahead, if there is one that suits it (see
    /// [`take_ready`]).
    pub(super) fn open(staging: &Path, id: String, changes: &[Prepared]) -> std::io::Result<Stage> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = staging.join(&id);
        let placed: BTreeSet<&str> = (changes.iter())
            .filter(|change| change.after.is_some())
            .map(|change| change.name.as_str())
            .collect();
        let mut made_ahead = None;
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
            let spread = changes.len() >= STAGE_IN_PARALLEL_FROM;
            if spread || !made {
                if let Err(e) = fsutil::spread_subdirectories(staging, spread) {
                    tracing::debug!("the stage is placed as the file system likes: {e}");
                }
            }
            if !made {
                made_ahead = take_ready(staging, &dir, &placed)?;
                if let Some(made_ahead) = &made_ahead {
                    tracing::debug!(
                        "stage {id}: {} of {} directories made ahead",
                        made_ahead.len(),
                        placed.len()
                    );
                    break;
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
        let stage = Stage {
            id,
            dir,
            taken: false,
            made_ahead: made_ahead.clone().unwrap_or_default(),
        };
        if made_ahead.is_none() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(stage.dir.join("new"))?;
        }
        Ok(stage)
    }

    /// The id of the transaction this stage is for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `staging/<id>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the stage for its transaction (blocking): writes the new copy
    /// of each module in `changes`, and returns what it wrote, and what
    /// `beside` returns. A large stage is written by several threads, and
    /// `beside` (what the transaction prepares that does not need the
    /// stage: its state and its backup's manifest, serialized) runs on
    /// one more meanwhile, while the writers wait on the file system; a
    /// small one, on this thread. From here on, the transaction removes
    /// the stage or its journal needs it.
    ///
    /// `live` holds, by module name, the directory of each module's copy
    /// in place now: a file of it that is exactly what would be written
    /// is linked into the stage instead (see [`link_unchanged`]).
    pub(super) fn complete<R: Send>(
        &mut self,
        changes: Vec<Prepared>,
        live: &BTreeMap<String, PathBuf>,
        beside: impl FnOnce() -> R + Send,
    ) -> std::io::Result<(Written, R)> {
        self.taken = true;
        let new = self.dir.join("new");
        let mut written = Written {
            paths: vec![self.dir.clone(), new.clone()],
            copies: BTreeMap::new(),
        };
        let beside = write_stage(&new, changes, live, &self.made_ahead, &mut written, beside)?;
        Ok((written, beside))
    }
}

/// What a stage holds once written.
pub(super) struct Written {
    /// Every directory and file, for the barrier.
    pub paths: Vec<PathBuf>,
    /// The inode of each module's new copy, by module name, for the
    /// journal: by it an undo tells a module swapped from one the swap
    /// did not reach.
    pub copies: BTreeMap<String, u64>,
}

impl Drop for Stage {
    /// A stage no transaction took goes, and the staging directory with
    /// it if it is empty now, as Prosody's admin would expect to find the
    /// module directory.
    fn drop(&mut self) {
        if !self.taken {
            let _ = fsutil::remove_dir_if_present(&self.dir);
            if let Some(staging) = self.dir.parent() {
                let _ = std::fs::remove_dir(staging);
            }
        }
    }
}

/// Writes the new copy of every module `changes` installs or replaces
/// under `new`, adding what it wrote to `written` (see [`write_tree`]),
/// and runs `beside` (see [`Stage::complete`]). The root of each module
/// in `made_ahead` is there already, empty.
fn write_stage<R: Send>(
    new: &Path,
    changes: Vec<Prepared>,
    live: &BTreeMap<String, PathBuf>,
    made_ahead: &BTreeSet<String>,
    written: &mut Written,
    beside: impl FnOnce() -> R + Send,
) -> std::io::Result<R> {
    let trees: Vec<Tree<'_>> = changes
        .into_iter()
        .filter_map(|prepared| {
            let (_, files) = prepared.after?;
            Some(Tree {
                root: new.join(format!("mod_{}", prepared.name)),
                root_made: made_ahead.contains(&prepared.name),
                live: live.get(&prepared.name).map(PathBuf::as_path),
                name: prepared.name,
                files,
            })
        })
        .collect();
    let write = |tree: Tree<'_>| {
        let mut mine = Vec::new();
        let inode = write_tree(
            &tree.root,
            tree.root_made,
            &tree.files,
            tree.live,
            &mut mine,
        );
        inode.map(|inode| (tree.name, inode, mine))
    };
    let (staged, beside) = match trees.len() < STAGE_IN_PARALLEL_FROM {
        true => (crate::parallel::each_owned(trees, 1, write), beside()),
        false => std::thread::scope(|scope| {
            let beside = scope.spawn(beside);
            let staged = crate::parallel::each_owned(trees, STAGE_THREADS, write);
            let beside = beside
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (staged, beside)
        }),
    };
    for mine in staged {
        let (name, inode, paths) = mine?;
        written.copies.insert(name, inode);
        written.paths.extend(paths);
    }
    Ok(beside)
}

/// One module's new copy, as [`write_stage`] hands it to a writer, which
/// frees its files once written, while the other writers go on.
struct Tree<'a> {
    name: String,
    /// `new/mod_x`.
    root: PathBuf,
    /// Whether `root` is there already, empty (made ahead).
    root_made: bool,
    files: Vec<ArchiveFile>,
    /// The directory of the copy in place now, if there is one.
    live: Option<&'a Path>,
}

/// Writes files (already checked: relative, no `..`) under `root`, not
/// synced: the transaction makes the whole stage durable with one
/// barrier, over the directories and files this adds to `written`. Each
/// directory is made once, not once per file in it; `root` not at all if
/// `root_made` (made ahead, empty). A file that `live`
/// (the module's copy in place now) holds already, byte for byte, is
/// linked from it instead of written (see [`link_unchanged`]). Returns
/// the inode of `root`.
fn write_tree(
    root: &Path,
    root_made: bool,
    files: &[ArchiveFile],
    live: Option<&Path>,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<u64> {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    if !root_made {
        std::fs::create_dir(root)?;
    }
    let made_as = std::fs::symlink_metadata(root)?;
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
        let linked =
            live.is_some_and(|live| link_unchanged(&live.join(&file.path), file, &path, &made_as));
        if !linked {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(file_mode(file))
                .open(&path)?;
            out.write_all(&file.data)?;
        }
        written.push(path);
    }
    Ok(made_as.ino())
}

/// Takes the stage made ahead in `staging` as the stage at `dir` (by one
/// rename) for a change that places the modules `placed`, if it suits
/// it: a large change, most of whose modules have their directory made
/// ahead, and few directories made for modules it leaves alone, which
/// are removed now. Returns the modules whose directory is there, or
/// `None` (nothing moved) when it does not suit, or there is none that
/// is modman's alone.
fn take_ready(
    staging: &Path,
    dir: &Path,
    placed: &BTreeSet<&str>,
) -> std::io::Result<Option<BTreeSet<String>>> {
    if placed.len() < STAGE_IN_PARALLEL_FROM {
        return Ok(None);
    }
    let ready = staging.join(READY);
    let Some(checked) = private_dir(&ready) else {
        return Ok(None);
    };
    let Ok(entries) = std::fs::read_dir(ready.join("new")) else {
        return Ok(None);
    };
    let made: Vec<std::ffi::OsString> = entries
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<std::io::Result<_>>()?;
    let module = |name: &std::ffi::OsStr| -> Option<String> {
        let module = name.to_str()?.strip_prefix("mod_")?;
        placed.contains(module).then(|| module.to_owned())
    };
    let used = made.iter().filter(|name| module(name).is_some()).count();
    let unused = made.len() - used;
    // Most of the change's directories, and at most one to remove for
    // every four used: otherwise the removals cost what was saved.
    if used * 2 < placed.len() || unused * 4 > used {
        return Ok(None);
    }
    std::fs::rename(&ready, dir)?;
    // Renamed by name: it must be the directory that was checked.
    if fsutil::inode(dir) != Some(checked) {
        return Err(std::io::Error::other(format!(
            "{} was replaced while modman took it",
            ready.display()
        )));
    }
    let new = dir.join("new");
    let mut mine = BTreeSet::new();
    for name in made {
        match module(&name) {
            Some(module) => {
                mine.insert(module);
            }
            None => std::fs::remove_dir(new.join(&name))?,
        }
    }
    Ok(Some(mine))
}

/// The inode of `path` if it is a directory (not a link to one) of
/// modman's own user that no one else may enter or write in.
fn private_dir(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let found = std::fs::symlink_metadata(path).ok()?;
    // SAFETY: geteuid cannot fail and touches no memory.
    let own = found.uid() == unsafe { libc::geteuid() };
    (found.is_dir() && own && found.mode() & 0o077 == 0).then(|| found.ino())
}

/// Makes the stage ahead in `staging` for the installed modules `names`
/// (blocking): `ready/new/mod_x`, empty and synced, for each, in a
/// directory modman's alone. A stage made ahead before is mended (the
/// directories of modules installed since made, of those removed since
/// removed); any other is made whole under another name and renamed in,
/// so a stop in the middle leaves nothing a change would take. Fewer
/// modules than a large stage has keep none.
pub(super) fn make_ready(staging: &Path, names: &BTreeSet<String>) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let ready = staging.join(READY);
    if names.len() < STAGE_IN_PARALLEL_FROM {
        if ready.exists() {
            fsutil::remove_dir_if_present(&ready)?;
            let _ = std::fs::remove_dir(staging);
        }
        return Ok(());
    }
    let wanted: BTreeSet<std::ffi::OsString> = names
        .iter()
        .map(|name| format!("mod_{name}").into())
        .collect();
    if private_dir(&ready).is_some() && mend_ready(&ready.join("new"), &wanted).is_ok() {
        return Ok(());
    }
    fsutil::remove_dir_if_present(&ready)?;
    let building = staging.join(READY_BUILDING);
    fsutil::remove_dir_if_present(&building)?;
    match std::fs::create_dir(staging) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    if let Err(e) = fsutil::spread_subdirectories(staging, true) {
        tracing::debug!("the stage made ahead is placed as the file system likes: {e}");
    }
    let private = || {
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(0o700);
        builder
    };
    private().create(&building)?;
    let new = building.join("new");
    private().create(&new)?;
    let dirs: Vec<PathBuf> = wanted.iter().map(|name| new.join(name)).collect();
    crate::parallel::each(&dirs, STAGE_THREADS, |dir| std::fs::create_dir(dir))
        .into_iter()
        .collect::<std::io::Result<()>>()?;
    let mut durable = dirs;
    durable.extend([building.clone(), new]);
    fsutil::sync_together(&durable)?;
    std::fs::rename(&building, &ready)?;
    fsutil::sync_dir(staging)
}

/// Makes `new` (of the stage made ahead) hold exactly the directories
/// `wanted`, empty, synced: fails, leaving it to be made anew, if
/// anything in it is not an empty directory.
fn mend_ready(new: &Path, wanted: &BTreeSet<std::ffi::OsString>) -> std::io::Result<()> {
    let found: BTreeSet<std::ffi::OsString> = std::fs::read_dir(new)?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<std::io::Result<_>>()?;
    for kept in found.intersection(wanted) {
        // A directory (not a link to one) with nothing in it.
        let path = new.join(kept);
        if !std::fs::symlink_metadata(&path)?.is_dir() || std::fs::read_dir(&path)?.next().is_some()
        {
            return Err(std::io::Error::other("not an empty directory"));
        }
    }
    for gone in found.difference(wanted) {
        std::fs::remove_dir(new.join(gone))?;
    }
    if found == *wanted {
        return Ok(());
    }
    let mut durable = vec![new.to_owned()];
    for missing in wanted.difference(&found) {
        std::fs::create_dir(new.join(missing))?;
        durable.push(new.join(missing));
    }
    fsutil::sync_together(&durable)
}

/// The mode a staged file is created with, before the umask.
fn file_mode(file: &ArchiveFile) -> u32 {
    match file.executable {
        true => 0o755,
        false => 0o644,
    }
}

/// Links the live file `from` into the stage at `to` if it is exactly the
/// file writing `file` there would make: a regular file of the same
/// bytes, mode, owner and group (those the stage's directory `made_as`
/// was made with, under the same umask). Returns whether it did. Nothing
/// else makes it link: a link, a file edited in place or chmod'ed, one of
/// another owner, a file system that refuses, each leaves the file to be
/// written as before.
///
/// An update rewrites every file of a module, though most of them (its
/// README, its other files) are often the same in the new version; a
/// link costs no new inode, no data and no writeback for the barrier.
/// Safe to share with the old copy, which becomes the backup: modman
/// never writes into a file once it is staged, and replaces a module by
/// renaming whole directories. The file linked is the one whose bytes
/// were compared: its inode is checked once linked.
fn link_unchanged(from: &Path, file: &ArchiveFile, to: &Path, made_as: &std::fs::Metadata) -> bool {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let Ok(live) = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO planted there must not hold the stage.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(from)
    else {
        return false;
    };
    let Ok(found) = live.metadata() else {
        return false;
    };
    let mode = file_mode(file) & made_as.mode() & 0o777;
    let alike = found.is_file()
        && found.len() == file.data.len() as u64
        && found.mode() & 0o7777 == mode
        && (found.uid(), found.gid()) == (made_as.uid(), made_as.gid());
    if !alike {
        return false;
    }
    let mut bytes = Vec::with_capacity(file.data.len() + 1);
    let read = (&live)
        .take(file.data.len() as u64 + 1)
        .read_to_end(&mut bytes);
    if read.is_err() || bytes != file.data {
        return false;
    }
    if std::fs::hard_link(from, to).is_err() {
        return false;
    }
    // Linked by name: the name may have been given another file since.
    match std::fs::symlink_metadata(to) {
        Ok(linked) if (linked.dev(), linked.ino()) == (found.dev(), found.ino()) => true,
        _ => {
            // Gone, or else writing it finds it there and fails the stage.
            let _ = std::fs::remove_file(to);
            false
        }
    }
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
            let changes: Vec<Prepared> = (0..modules).map(module).collect();
            let stage = Stage::open(&staging, id.into(), &changes).unwrap();
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
        write_tree(&root, false, &files, None, &mut written).unwrap();
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

    /// A stage with nothing written yet, for [`write_stage`].
    fn nothing_written() -> Written {
        Written {
            paths: vec![],
            copies: BTreeMap::new(),
        }
    }

    /// Written by several threads, a large stage is the same stage: every
    /// module, file and directory once in what the barrier syncs, each
    /// new copy's inode as it is on disk, every byte in place; removals
    /// write nothing; and what runs beside the writers runs once.
    #[test]
    fn a_stage_of_many_modules_written_by_several_threads_is_whole_and_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        std::fs::create_dir(&new).unwrap();
        let count = 3 * STAGE_IN_PARALLEL_FROM;
        let changes = || -> Vec<Prepared> {
            (0..count)
                .map(|i| match i % 7 {
                    3 => Prepared {
                        name: format!("m{i}"),
                        after: None,
                    },
                    _ => module(i),
                })
                .collect()
        };
        let mut written = nothing_written();
        let beside = std::sync::atomic::AtomicUsize::new(0);
        let ran = || beside.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        assert_eq!(
            write_stage(
                &new,
                changes(),
                &BTreeMap::new(),
                &BTreeSet::new(),
                &mut written,
                ran
            )
            .unwrap(),
            1
        );
        assert_eq!(beside.into_inner(), 1, "beside ran once");
        let mut paths = written.paths;
        paths.sort();
        let mut walked = fsutil::tree_paths(&new).unwrap();
        walked.retain(|p| *p != new);
        walked.sort();
        assert_eq!(paths, walked, "every path once, none missed");
        let staged = changes().iter().filter(|c| c.after.is_some()).count();
        assert_eq!(paths.len(), staged * 4, "a root, lib/ and two files each");
        assert_eq!(written.copies.len(), staged);
        for (i, change) in changes().iter().enumerate() {
            let root = new.join(format!("mod_m{i}"));
            assert_eq!(root.exists(), change.after.is_some(), "{i}");
            if change.after.is_some() {
                let helper = std::fs::read(root.join("lib/helper.lua")).unwrap();
                assert_eq!(helper, format!("{i} lib/helper.lua").into_bytes());
                assert_eq!(
                    written.copies.get(&change.name).copied(),
                    fsutil::inode(&root),
                    "{i}"
                );
            }
        }
        // A module staged twice fails the stage rather than mixing copies.
        let again = write_stage(
            &new,
            changes(),
            &BTreeMap::new(),
            &BTreeSet::new(),
            &mut nothing_written(),
            || (),
        );
        assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    }

    /// A stage taken by its transaction lists each path it wrote once
    /// and stays for the transaction to remove; one no transaction took
    /// goes when it is dropped, and the empty staging directory with it.
    #[test]
    fn a_taken_stage_stays_for_its_transaction_and_an_untaken_one_goes() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(".modman-staging");
        let changes: Vec<Prepared> = (0..40).map(module).collect();
        let mut stage = Stage::open(&staging, "t1".into(), &changes).unwrap();
        let (written, beside) = stage
            .complete(changes, &BTreeMap::new(), || "beside")
            .unwrap();
        assert_eq!(beside, "beside");
        let mut durable = written.paths;
        durable.sort();
        let mut walked = fsutil::tree_paths(stage.dir()).unwrap();
        walked.sort();
        assert_eq!(durable, walked, "every path once, none missed");
        assert_eq!(durable.len(), 2 + 40 * 4);
        drop(stage);
        assert!(staging.join("t1/new/mod_m39/lib/helper.lua").is_file());
        std::fs::remove_dir_all(staging.join("t1")).unwrap();

        let stage = Stage::open(&staging, "t2".into(), &[module(0)]).unwrap();
        assert!(staging.join("t2/new").is_dir());
        drop(stage);
        assert!(!staging.exists());
    }

    /// The names of modules `range`, as installed.
    fn installed(range: std::ops::Range<usize>) -> BTreeSet<String> {
        range.map(|i| format!("m{i}")).collect()
    }

    /// What the stage made ahead holds: its directories' names and
    /// inodes, each checked empty.
    fn made_ahead(staging: &Path) -> BTreeMap<String, u64> {
        let new = staging.join(READY).join("new");
        std::fs::read_dir(&new)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                assert_eq!(std::fs::read_dir(entry.path()).unwrap().count(), 0);
                let name = entry.file_name().into_string().unwrap();
                (name, fsutil::inode(&entry.path()).unwrap())
            })
            .collect()
    }

    /// A large change takes the stage made ahead whole and writes its
    /// modules into the directories made for them (the journal's inodes
    /// are theirs); a small one, or one that would leave most of them
    /// unused, makes its own and leaves it.
    #[test]
    fn a_large_change_writes_into_the_directories_made_ahead() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(".modman-staging");
        make_ready(&staging, &installed(0..40)).unwrap();
        let ready = staging.join(READY);
        let mode = std::fs::metadata(&ready).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "modman's alone");
        let made = made_ahead(&staging);
        assert_eq!(made.len(), 40);

        let small = Stage::open(&staging, "small".into(), &[module(0)]).unwrap();
        drop(small);
        let few: Vec<Prepared> = (0..STAGE_IN_PARALLEL_FROM).map(module).collect();
        // 16 used, 24 left over: more to remove than a quarter of those
        // used.
        let stage = Stage::open(&staging, "few".into(), &few).unwrap();
        assert!(stage.made_ahead.is_empty());
        drop(stage);
        assert_eq!(made_ahead(&staging), made, "left as it was");

        // 36 of the 40, and 4 modules with none made (installed since).
        let changes: Vec<Prepared> = (4..44).map(module).collect();
        let mut stage = Stage::open(&staging, "large".into(), &changes).unwrap();
        assert!(!ready.exists(), "taken whole");
        assert_eq!(stage.made_ahead, installed(4..40));
        let new = stage.dir().join("new");
        let unused: Vec<String> = (0..4).map(|i| format!("mod_m{i}")).collect();
        for name in &unused {
            assert!(!new.join(name).exists(), "{name}: removed");
        }
        let (written, ()) = stage.complete(changes, &BTreeMap::new(), || ()).unwrap();
        for i in 4..44 {
            let root = new.join(format!("mod_m{i}"));
            let helper = std::fs::read(root.join("lib/helper.lua")).unwrap();
            assert_eq!(helper, format!("{i} lib/helper.lua").into_bytes());
            let inode = written.copies.get(&format!("m{i}")).copied();
            assert_eq!(inode, fsutil::inode(&root), "{i}");
            if i < 40 {
                assert_eq!(inode, made.get(&format!("mod_m{i}")).copied(), "{i}");
            }
        }
        // Every directory the stage uses is in what the barrier syncs.
        let mut durable = written.paths;
        durable.sort();
        let mut walked = fsutil::tree_paths(stage.dir()).unwrap();
        walked.sort();
        assert_eq!(durable, walked);
    }

    /// The stage made ahead follows the installed modules: mended where
    /// it is modman's alone and holds only empty directories, made anew
    /// where anything was put in it or its mode opened, gone below a
    /// large stage's size. A link to a directory is never taken for it.
    #[test]
    fn the_stage_made_ahead_is_mended_remade_or_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(".modman-staging");
        make_ready(&staging, &installed(0..40)).unwrap();
        let made = made_ahead(&staging);
        make_ready(&staging, &installed(5..45)).unwrap();
        let mended = made_ahead(&staging);
        let expected: BTreeSet<String> = (5..45).map(|i| format!("mod_m{i}")).collect();
        assert_eq!(mended.keys().cloned().collect::<BTreeSet<_>>(), expected);
        assert_eq!(mended["mod_m10"], made["mod_m10"], "mended, not made anew");

        // Something put in one of its directories: made anew, empty.
        let planted = staging.join(READY).join("new/mod_m5/mod_m5.lua");
        std::fs::write(&planted, "planted").unwrap();
        make_ready(&staging, &installed(5..45)).unwrap();
        assert!(!planted.exists());
        assert_eq!(made_ahead(&staging).len(), 40);
        assert!(!staging.join(READY_BUILDING).exists());

        // Its mode opened: not taken, and made anew.
        let ready = staging.join(READY);
        std::fs::set_permissions(&ready, std::fs::Permissions::from_mode(0o755)).unwrap();
        let changes: Vec<Prepared> = (5..45).map(module).collect();
        let stage = Stage::open(&staging, "opened".into(), &changes).unwrap();
        assert!(stage.made_ahead.is_empty());
        drop(stage);
        assert!(ready.exists());
        make_ready(&staging, &installed(5..45)).unwrap();
        let mode = std::fs::metadata(&ready).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);

        // A link in its place, to a directory just like it: not taken.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::rename(&ready, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &ready).unwrap();
        let stage = Stage::open(&staging, "linked".into(), &changes).unwrap();
        assert!(stage.made_ahead.is_empty());
        drop(stage);
        assert_eq!(
            std::fs::read_dir(elsewhere.join("new")).unwrap().count(),
            40
        );
        std::fs::remove_file(&ready).unwrap();

        // Too few modules for a large stage: none kept.
        make_ready(&staging, &installed(0..40)).unwrap();
        make_ready(&staging, &installed(0..STAGE_IN_PARALLEL_FROM - 1)).unwrap();
        assert!(!staging.exists());
    }

    /// What a stage links from the copy in place: exactly the files that
    /// writing would make the same, byte for byte, mode and owner. Any
    /// other (edited, chmod'ed, a link, a FIFO, missing) is written anew,
    /// and the copy in place is left as it was.
    #[test]
    fn only_a_file_the_same_in_every_respect_is_linked_from_the_copy_in_place() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("mod_x");
        std::fs::create_dir_all(live.join("lib")).unwrap();
        let same = |path: &str| file(path, format!("same {path}\n"), false);
        let files = [
            same("mod_x.lua"),
            same("lib/deep.lua"),
            file("edited.lua", "new text\n".into(), false),
            file("longer.lua", "new\n".into(), false),
            same("chmod.lua"),
            file("tool", "#!/bin/sh\n".into(), true),
            same("link.lua"),
            same("fifo.lua"),
            same("missing.lua"),
            same("owner.lua"),
        ];
        for f in &files {
            std::fs::write(live.join(&f.path), &f.data).unwrap();
        }
        std::fs::write(live.join("edited.lua"), "old text\n").unwrap();
        std::fs::write(live.join("longer.lua"), "old, longer\n").unwrap();
        let chmod = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(live.join("chmod.lua"), chmod).unwrap();
        // `tool` is there with the same bytes, but not executable.
        // `link.lua` names a file of the same bytes.
        std::fs::rename(live.join("link.lua"), live.join("target.lua")).unwrap();
        std::os::unix::fs::symlink("target.lua", live.join("link.lua")).unwrap();
        std::fs::remove_file(live.join("fifo.lua")).unwrap();
        let fifo =
            std::ffi::CString::new(live.join("fifo.lua").into_os_string().into_encoded_bytes())
                .unwrap();
        // SAFETY: a NUL-terminated path that lives for the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::fs::remove_file(live.join("missing.lua")).unwrap();
        // Another owner's, where the tests may give it one.
        let owner = std::fs::File::open(live.join("owner.lua")).unwrap();
        // SAFETY: an open descriptor; fails harmlessly unless root.
        let foreign =
            unsafe { libc::fchown(std::os::fd::AsRawFd::as_raw_fd(&owner), 65534, 65534) } == 0;
        let mut expected = vec!["mod_x.lua", "lib/deep.lua"];
        if !foreign {
            expected.push("owner.lua");
        }
        let before: Vec<(PathBuf, u64, Vec<u8>)> = fsutil::tree_paths(&live)
            .unwrap()
            .into_iter()
            .filter(|p| p.symlink_metadata().unwrap().is_file())
            .map(|p| {
                (
                    p.clone(),
                    fsutil::inode(&p).unwrap(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();

        let root = dir.path().join("new");
        let mut written = vec![];
        write_tree(&root, false, &files, Some(&live), &mut written).unwrap();
        let inode = |p: &Path| std::fs::symlink_metadata(p).unwrap().ino();
        let mut linked = vec![];
        for f in &files {
            let staged = root.join(&f.path);
            assert!(staged.symlink_metadata().unwrap().is_file(), "{}", f.path);
            assert_eq!(std::fs::read(&staged).unwrap(), f.data, "{}", f.path);
            let mode = staged.metadata().unwrap().permissions().mode() & 0o111;
            assert_eq!(mode != 0, f.executable, "{}", f.path);
            let from = live.join(&f.path);
            if from.symlink_metadata().is_ok_and(|m| m.is_file()) && inode(&from) == inode(&staged)
            {
                linked.push(f.path.as_str());
            }
        }
        assert_eq!(linked, expected);
        assert_eq!(
            written.len(),
            1 + 1 + files.len(),
            "the root, lib/ and each file"
        );
        for (path, inode, bytes) in before {
            assert_eq!(fsutil::inode(&path), Some(inode), "{path:?}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{path:?}");
        }
    }
}
