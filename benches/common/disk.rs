//! The disk made quiet before a timed part that creates files.

use std::process::Command;
use std::time::Duration;

/// Waits until no inode freed before now holds up a new file: ext4
/// without a journal (this project's machines) passes over every inode
/// freed in the last 60 s (360 s while its inode table is not yet
/// written back) when it looks for a free one, so 2,000 new archives
/// right after the deletions of the runs before (a test's temporary
/// directories, the rebuilt repository above) took 370 ms instead of
/// 120, and an install's few files waited there too. `tar czf`, which
/// creates one file, never meets it. Written back first, then a minute.
pub fn settle(bench: &str) {
    sync();
    println!("{bench}: waiting 61 s for inodes freed before to age out (see the README)");
    std::thread::sleep(Duration::from_secs(61));
}

/// Writes back every file system's dirty data (sync(1)).
pub fn sync() {
    let status = Command::new("sync").status().unwrap();
    assert!(status.success());
}
