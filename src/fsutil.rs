//! File operations that survive a crash at any instant: a file is either
//! the old or the new version, never half of one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`: written to a temp file beside it, synced,
/// renamed over it, and the directory synced so the rename itself lasts.
/// The file keeps its mode (a new one gets 0644), and its owner and group:
/// Prosody, running as another user, must still be able to read what
/// modman writes, and a root-run setup must not leave Prosody's
/// `root:prosody 0640` config as `root:root`.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let existing = std::fs::metadata(path).ok();
    let mode = existing
        .as_ref()
        .map_or(0o644, |m| m.permissions().mode() & 0o7777);
    replace(path, bytes, mode, existing.as_ref())
}

/// [`atomic_write`] with the file's mode given, set before any byte is
/// written, and modman as its owner: for a file only modman may read.
pub fn atomic_write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(path, bytes, mode, None)
}

/// The write of [`atomic_write`], with `mode`, and the owner and group of
/// `owner_like` when given.
fn replace(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner_like: Option<&std::fs::Metadata>,
) -> io::Result<()> {
    let pending = pending(path, bytes, mode, owner_like)?;
    pending.temp.as_file().sync_all()?;
    pending.commit()
}

/// A replacement of a file, written beside it but not yet synced nor
/// renamed over it: for a commit that makes many writes durable with one
/// [`sync_together`], then renames this one into place with
/// [`Pending::commit`]. Dropped uncommitted, the temp file goes.
pub struct Pending {
    temp: tempfile::NamedTempFile,
    path: std::path::PathBuf,
}

impl Pending {
    /// The temp file, to make its bytes durable with others
    /// ([`sync_together`]) before [`Pending::commit`].
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Renames the file into place and syncs its directory, so the rename
    /// lasts. Its bytes must have been made durable before (by
    /// [`sync_together`]): otherwise a power loss could leave the new
    /// name with no data.
    pub fn commit(self) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_owned();
        self.temp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(&dir)
    }
}

/// Writes the replacement of `path` as [`atomic_write`] would (mode and
/// owner kept), leaving the sync and the rename to the caller.
pub fn write_pending(path: &Path, bytes: &[u8]) -> io::Result<Pending> {
    use std::os::unix::fs::PermissionsExt;
    let existing = std::fs::metadata(path).ok();
    let mode = existing
        .as_ref()
        .map_or(0o644, |m| m.permissions().mode() & 0o7777);
    pending(path, bytes, mode, existing.as_ref())
}

fn pending(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner_like: Option<&std::fs::Metadata>,
) -> io::Result<Pending> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".modman-tmp-")
        .tempfile_in(dir)?;
    if let Some(existing) = owner_like {
        keep_owner(temp.as_file(), existing)?;
    }
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.write_all(bytes)?;
    Ok(Pending {
        temp,
        path: path.to_owned(),
    })
}

/// Makes the bytes and the entries of `paths` (files and directories)
/// durable, all at once: an fsync each, issued together from several
/// threads, so the file system writes them in one journal commit. One
/// barrier for a whole staged tree: measured here with six small files
/// and their directory, 2.3 ms (8.1 at worst), against 17.7 ms for the
/// same fsyncs one after another (each its own journal commit, even
/// with their writeback started first), and a `syncfs`, whose cost is
/// every other writer's dirty data too: 2.7 ms median, 394 ms at worst.
///
/// A file system that holds [`SYNCFS_FROM`] of the paths or more gets
/// one `syncfs` instead: an fsync each is a cache flush each where the
/// file system has no journal to share (ext4 without one, as on this
/// project's machines), and an update of 250 modules stages about 780
/// paths: 24 ms of fsyncs against 6 ms for one `syncfs` here. Its price,
/// other writers' dirty data on that file system, is paid only by a
/// change that large, whose own writes dominate it anyway.
///
/// Inside a runtime (the daemon, the CLI) the fsyncs run on its blocking
/// threads, which stay alive between changes: starting and joining a
/// thread per path cost more than the fsyncs themselves on a quiet disk
/// (eleven threads for a one-module install). Elsewhere (tests, tools),
/// on threads of their own.
pub fn sync_together(paths: &[PathBuf]) -> io::Result<()> {
    let few: Vec<PathBuf>;
    let paths = match paths.len() < SYNCFS_FROM {
        true => paths,
        false => {
            few = sync_busy_file_systems(paths)?;
            &few
        }
    };
    if paths.is_empty() {
        return Ok(());
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => sync_on_runtime(&runtime, paths),
        Err(_) => sync_on_own_threads(paths),
    }
}

/// From this many paths on one file system, a barrier syncs that file
/// system whole (see [`sync_together`]).
pub const SYNCFS_FROM: usize = 64;

/// Syncs, with one `syncfs` each, the file systems that hold at least
/// [`SYNCFS_FROM`] of `paths`, and returns the paths on the others, still
/// to be synced one by one.
fn sync_busy_file_systems(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    use std::collections::{HashMap, HashSet};
    let listed: HashSet<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let mut devices = HashMap::new();
    let mut by_device: HashMap<u64, Vec<&PathBuf>> = HashMap::new();
    for path in paths {
        let device = device_of(path, &listed, &mut devices)?;
        by_device.entry(device).or_default().push(path);
    }
    let mut rest = Vec::new();
    for on_device in by_device.into_values() {
        match on_device.len() < SYNCFS_FROM {
            true => rest.extend(on_device.into_iter().cloned()),
            false => syncfs(on_device[0])?,
        }
    }
    Ok(rest)
}

/// The device holding `path`: that of its directory, since nothing
/// written anew for a barrier is a mount point. A directory itself in
/// `listed` was written anew too and is asked the same way, so a staged
/// tree of hundreds of paths costs one stat, of the directory it was
/// written in (through symlinks, as the paths under it are reached),
/// and not one per path. `devices` remembers each directory's answer.
fn device_of<'a>(
    path: &'a Path,
    listed: &std::collections::HashSet<&Path>,
    devices: &mut std::collections::HashMap<&'a Path, u64>,
) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) else {
        return Ok(std::fs::metadata(path)?.dev());
    };
    if let Some(device) = devices.get(dir) {
        return Ok(*device);
    }
    let device = match listed.contains(dir) {
        true => device_of(dir, listed, devices)?,
        false => std::fs::metadata(dir)?.dev(),
    };
    devices.insert(dir, device);
    Ok(device)
}

/// `syncfs(2)` of the file system holding `path`: every dirty inode and
/// page on it written, and the device's cache flushed. Since Linux 5.8 it
/// reports a writeback error that any file on it met since the last call.
fn syncfs(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    // SAFETY: the descriptor is open for the whole call.
    match unsafe { libc::syncfs(file.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// At most this many fsyncs at once: enough for one journal commit to
/// take them all, few enough that a change of hundreds of modules does
/// not start a thread per path.
const SYNC_THREADS: usize = 16;

/// One worker of a barrier: fsyncs the paths not taken yet, one at a time.
fn sync_next(paths: &[PathBuf], next: &std::sync::atomic::AtomicUsize) -> io::Result<()> {
    loop {
        let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(path) = paths.get(at) else {
            return Ok(());
        };
        fsync(path)?;
    }
}

/// The bytes and the entry of one file or directory made durable.
fn fsync(path: &Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

fn sync_on_runtime(runtime: &tokio::runtime::Handle, paths: &[PathBuf]) -> io::Result<()> {
    use std::sync::atomic::AtomicUsize;
    let shared: std::sync::Arc<(Vec<PathBuf>, AtomicUsize)> =
        std::sync::Arc::new((paths.to_vec(), AtomicUsize::new(0)));
    let (done, results) = std::sync::mpsc::channel();
    let workers = SYNC_THREADS.min(paths.len());
    for _ in 0..workers {
        let (shared, done) = (shared.clone(), done.clone());
        runtime.spawn_blocking(move || {
            let (paths, next) = &*shared;
            let _ = done.send(sync_next(paths, next));
        });
    }
    drop(done);
    // Every worker has ended before this returns, failed or not: one that
    // could not run (the runtime shutting down) drops its sender unsent,
    // which counts as a failure.
    let results: Vec<io::Result<()>> = results.iter().collect();
    if results.len() < workers {
        return Err(io::Error::other(
            "an fsync could not be run (modman is stopping)",
        ));
    }
    results.into_iter().collect()
}

fn sync_on_own_threads(paths: &[PathBuf]) -> io::Result<()> {
    crate::parallel::each(paths, SYNC_THREADS, |path| fsync(path))
        .into_iter()
        .collect()
}

/// `root` and every directory and regular file under it: what
/// [`sync_together`] makes durable of a tree written anew.
pub fn tree_paths(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = vec![root.to_owned()];
    let mut at = 0;
    while at < found.len() {
        if std::fs::symlink_metadata(&found[at])?.is_dir() {
            for entry in std::fs::read_dir(&found[at])? {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() || kind.is_file() {
                    found.push(entry.path());
                }
            }
        }
        at += 1;
    }
    Ok(found)
}

/// Gives `file` the owner and group of `like`. Root always can. Another
/// user can only give a file to itself and its own groups, and what it
/// writes is then its own, which it can read again: so a refusal (EPERM)
/// leaves the file to the writer, and only for a user that is not root.
fn keep_owner(file: &std::fs::File, like: &std::fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let now = file.metadata()?;
    if (now.uid(), now.gid()) == (like.uid(), like.gid()) {
        return Ok(());
    }
    match std::os::unix::fs::fchown(file, Some(like.uid()), Some(like.gid())) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && now.uid() != 0 => Ok(()),
        other => other,
    }
}

/// Copies the file `from` to `to`, which must not exist (a link there is
/// not followed), with `from`'s mode, owner and group: a backup of
/// prosody.cfg.lua that Prosody can read like the original.
pub fn copy_keeping_owner(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let metadata = std::fs::metadata(from)?;
    let mut source = std::fs::File::open(from)?;
    let mut copy = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    keep_owner(&copy, &metadata)?;
    io::copy(&mut source, &mut copy)?;
    copy.set_permissions(std::fs::Permissions::from_mode(
        metadata.permissions().mode() & 0o7777,
    ))?;
    copy.sync_all()
}

/// `path` as the file it names: absolute (against this process's working
/// directory), with symlinks resolved where it exists, so that two
/// spellings of one file compare equal.
pub fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    std::fs::canonicalize(&absolute).unwrap_or(absolute)
}

/// Swaps what the names `a` and `b` point to, in one step
/// (`renameat2(RENAME_EXCHANGE)`): at no instant is either missing. Fails
/// with `Unsupported` on a file system that cannot (NFS, some FUSE), and
/// changes nothing then.
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: two NUL-terminated paths that live for the whole call.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    match done {
        0 => Ok(()),
        _ => {
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
                    Err(io::Error::new(io::ErrorKind::Unsupported, error))
                }
                _ => Err(error),
            }
        }
    }
}

/// Asks the file system to place each directory made in `dir` from now
/// on away from the others and from `dir`'s neighbours, in a block group
/// with room to spare (`spread`), or beside `dir` as usual: ext4's `T`
/// attribute (`chattr +T`), which its Orlov allocator reads. A hint, which
/// a file system without it refuses; the caller then goes on without.
///
/// Why modman wants it for a large stage: ext4 without a journal (as on
/// this project's machines) does not reuse an inode freed in the last
/// minutes, and to find a free one it steps over each such inode of the
/// block group, looked up one by one. The 750 files of an update of 250
/// modules went into the group of the module directory, next to whatever
/// was deleted there lately: 20 ms to make after a quiet minute, 400 to
/// 600 ms after a few thousand deletions nearby. In a group of their own
/// they take the 20 ms either way. A stage of a few files gains nothing
/// from it and would read a group's tables that no one else touched.
///
/// The directory itself only: a symlink found at `dir` is refused.
pub fn spread_subdirectories(dir: &Path, spread: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: the descriptor is open for both calls, and both read or
    // write one int (the kernel's size for these, whatever their name).
    unsafe {
        if libc::ioctl(dir.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) != 0 {
            return Err(io::Error::last_os_error());
        }
        let wanted = match spread {
            true => flags | TOPDIR,
            false => flags & !TOPDIR,
        };
        if wanted != flags && libc::ioctl(dir.as_raw_fd(), libc::FS_IOC_SETFLAGS, &wanted) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `FS_TOPDIR_FL` of linux/fs.h: see [`spread_subdirectories`].
const TOPDIR: libc::c_int = 0x0002_0000;

/// The inode number of `path` itself (a symlink is not followed), or
/// `None` if nothing is there.
pub fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

/// Makes renames and creations inside `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fsync(dir)
}

/// Copies a directory tree of regular files and directories (links and
/// special files are not expected in modman's own trees and are skipped).
pub fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Whether this process can create files in `dir`, found out the only
/// reliable way: by creating one (it is gone again at once).
pub fn can_write_in(dir: &Path) -> io::Result<()> {
    tempfile::tempfile_in(dir).map(drop)
}

/// Removes `path` if it exists.
pub fn remove_dir_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A local user account, as /etc/passwd and /etc/group name it: whom a
/// file must be readable by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    /// Every group it is in, the primary one included.
    pub groups: Vec<u32>,
}

/// Why an account cannot read a path: the first step of the path it may
/// not take, with what it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The path itself, or a directory on the way that it cannot enter.
    pub at: std::path::PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Account {
    /// The account `name`, if the host has one.
    pub fn named(name: &str) -> Option<Account> {
        Account::find(|account, _| account == name)
    }

    /// The account with user id `uid`, if the host has one.
    pub fn with_uid(uid: u32) -> Option<Account> {
        Account::find(|_, id| id == uid)
    }

    /// The first account of /etc/passwd that `wanted` (name, uid) picks.
    fn find(wanted: impl Fn(&str, u32) -> bool) -> Option<Account> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        let (name, uid, gid) = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, uid, gid, ..] = fields.as_slice() else {
                return None;
            };
            let (uid, gid) = (uid.parse().ok()?, gid.parse().ok()?);
            wanted(name, uid).then(|| (name.to_string(), uid, gid))
        })?;
        let mut groups = vec![gid];
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        for line in group.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if let [_, _, id, members] = fields.as_slice() {
                if members.split(',').any(|m| m == name.as_str()) {
                    groups.extend(id.parse::<u32>().ok());
                }
            }
        }
        Some(Account {
            name,
            uid,
            gid,
            groups,
        })
    }

    /// Whether this account can read `path` (a directory: list and enter
    /// it), entering every directory on the way, by the owner, group and
    /// mode bits as the kernel applies them (ACLs aside). For root, who
    /// reads everything, this says what Prosody would meet.
    pub fn can_read(&self, path: &Path) -> Result<(), Unreadable> {
        use std::os::unix::fs::MetadataExt;
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let steps: Vec<&Path> = path.ancestors().collect();
        for (at, step) in steps.iter().rev().enumerate() {
            let Ok(metadata) = std::fs::metadata(step) else {
                continue;
            };
            let last = at + 1 == steps.len();
            let needed = match (last, metadata.is_dir()) {
                (false, _) => 0o1,
                (true, true) => 0o5,
                (true, false) => 0o4,
            };
            let mode = metadata.mode() & 0o7777;
            let shift = if self.uid == 0 {
                continue;
            } else if metadata.uid() == self.uid {
                6
            } else if self.groups.contains(&metadata.gid()) {
                3
            } else {
                0
            };
            if (mode >> shift) & needed != needed {
                return Err(Unreadable {
                    at: step.to_path_buf(),
                    uid: metadata.uid(),
                    gid: metadata.gid(),
                    mode,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_keeps_the_mode_and_makes_new_files_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modman.cfg.lua");
        atomic_write(&path, b"new").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        atomic_write(&path, b"again").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn atomic_write_and_the_backup_keep_owner_group_and_mode() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // Giving a file to another user takes root.
        if our_uid() != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prosody.cfg.lua");
        std::fs::write(&path, "old").unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let backup = dir.path().join("prosody.cfg.lua.bak");
        copy_keeping_owner(&path, &backup).unwrap();
        atomic_write(&path, b"new").unwrap();
        for file in [&path, &backup] {
            let m = std::fs::metadata(file).unwrap();
            assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (65534, 65534, 0o640));
        }
        assert_eq!(std::fs::read(&backup).unwrap(), b"old");
        assert!(copy_keeping_owner(&path, &backup).is_err());
    }

    /// The uid this process creates files as.
    fn our_uid() -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(tempfile::tempdir().unwrap().path())
            .unwrap()
            .uid()
    }

    #[test]
    fn readable_by_owner_group_or_everyone_and_every_directory_on_the_way() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("etc");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("prosody.cfg.lua");
        std::fs::write(&file, "").unwrap();
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        let me = std::fs::metadata(&file).unwrap();
        use std::os::unix::fs::MetadataExt;
        let account = |uid, groups: &[u32]| Account {
            name: "x".into(),
            uid,
            gid: groups[0],
            groups: groups.to_vec(),
        };
        let (owner, in_group, other) = (
            account(me.uid().max(1), &[4242]),
            account(4243, &[me.gid()]),
            account(4244, &[4244]),
        );
        // The test may run as root: make the owner a plain account.
        std::os::unix::fs::chown(&file, Some(owner.uid), None).ok();
        std::os::unix::fs::chown(&sub, Some(owner.uid), None).ok();
        if std::fs::metadata(&file).unwrap().uid() != owner.uid {
            return;
        }
        mode(dir.path(), 0o755).unwrap();
        mode(&file, 0o640).unwrap();
        assert!(owner.can_read(&file).is_ok() && in_group.can_read(&file).is_ok());
        let refused = other.can_read(&file).unwrap_err();
        assert_eq!((refused.at, refused.mode), (file.clone(), 0o640));
        mode(&sub, 0o750).unwrap();
        assert_eq!(other.can_read(&file).unwrap_err().at, sub);
        mode(&file, 0o600).unwrap();
        assert!(in_group.can_read(&file).is_err());
        assert!(account(0, &[0]).can_read(&file).is_ok());
    }

    #[test]
    fn a_tree_is_synced_whole_and_a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mod_x");
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(root.join("mod_x.lua"), "").unwrap();
        std::fs::write(root.join("lib/a.lua"), "").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let mut paths = tree_paths(&root).unwrap();
        paths.sort();
        let expected: Vec<PathBuf> = ["", "lib", "lib/a.lua", "mod_x.lua"]
            .iter()
            .map(|p| {
                if p.is_empty() {
                    root.clone()
                } else {
                    root.join(p)
                }
            })
            .collect();
        assert_eq!(paths, expected);
        sync_together(&paths).unwrap();
        // On a runtime's blocking threads, as the engine calls it.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let on_runtime = |paths: Vec<PathBuf>| {
            runtime
                .block_on(runtime.spawn_blocking(move || sync_together(&paths)))
                .unwrap()
        };
        on_runtime(paths.clone()).unwrap();
        paths.push(root.join("gone"));
        assert!(sync_together(&paths).is_err());
        assert!(on_runtime(paths).is_err());
    }

    /// A barrier of many paths syncs their file system whole and leaves
    /// to fsyncs only the few paths on another one; a path that is gone
    /// is still an error.
    #[test]
    fn a_file_system_with_many_paths_is_synced_whole_and_the_others_path_by_path() {
        use std::os::unix::fs::MetadataExt;
        let many = tempfile::tempdir().unwrap();
        // A staged tree: directories and files, each written anew.
        let stage = many.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        let mut paths = vec![stage.clone()];
        for i in 0..SYNCFS_FROM / 2 {
            let module = stage.join(format!("mod_{i}"));
            std::fs::create_dir(&module).unwrap();
            std::fs::write(module.join("mod.lua"), "x").unwrap();
            paths.extend([module.clone(), module.join("mod.lua")]);
        }
        // Another file system, when this machine has one (/dev/shm),
        // reached through a link that lives on the first, as a state
        // directory moved elsewhere is: its paths are that one's.
        let elsewhere = tempfile::tempdir_in("/dev/shm").ok().filter(|other| {
            let device = |p: &Path| std::fs::metadata(p).unwrap().dev();
            device(other.path()) != device(many.path())
        });
        let link = many.path().join("state");
        let few: Vec<PathBuf> = match &elsewhere {
            Some(other) => {
                std::os::unix::fs::symlink(other.path(), &link).unwrap();
                vec![link.join("a"), link.join("b")]
            }
            None => vec![],
        };
        few.iter().for_each(|p| std::fs::write(p, "y").unwrap());
        paths.extend(few.iter().cloned());
        let mut rest = sync_busy_file_systems(&paths).unwrap();
        rest.sort();
        assert_eq!(rest, few);
        sync_together(&paths).unwrap();
        // A path synced on its own must be there; on a file system synced
        // whole none is looked at (see device_of).
        let missing = [paths.clone(), vec![many.path().join("gone")]].concat();
        assert!(sync_together(&missing).is_ok());
        assert!(sync_together(&[stage.join("mod_0/mod.lua"), many.path().join("gone")]).is_err());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
