//! An installed module's files as they are on disk, to compare with the
//! copy an update would bring (its question, `diff`). Read only, and
//! bounded as an archive is: the files are modman's own, but an admin or
//! another program may have grown or replaced one since.

use std::io::Read;
use std::path::Path;

use super::state::InstalledModule;
use crate::repo::archive::MAX_UNPACKED;

/// Most bytes read of one file; a larger one is compared by size alone.
pub const MAX_FILE: u64 = 4 * 1024 * 1024;

/// One file of an installed copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFile {
    /// Relative to the module's directory, as the index lists it.
    pub path: String,
    /// Its bytes, or `None` when it is missing, unreadable, not a regular
    /// file or over [`MAX_FILE`] (or the copy's whole budget).
    pub data: Option<Vec<u8>>,
}

/// The files `record` lists for module `name`, read from `modules_dir`.
pub fn read(modules_dir: &Path, name: &str, record: &InstalledModule) -> Vec<CopyFile> {
    let dir = modules_dir.join(record.directory(name));
    let mut left = MAX_UNPACKED;
    record
        .files
        .iter()
        .map(|path| {
            let data = read_bounded(&dir.join(path), &mut left);
            CopyFile {
                path: path.clone(),
                data,
            }
        })
        .collect()
}

/// A regular file (never followed through a link), if within `left`
/// and [`MAX_FILE`]; `left` goes down by what was read.
fn read_bounded(path: &Path, left: &mut u64) -> Option<Vec<u8>> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    let limit = MAX_FILE.min(*left);
    if !metadata.is_file() || metadata.len() > limit {
        return None;
    }
    let mut data = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(limit + 1)
        .read_to_end(&mut data)
        .ok()?;
    if data.len() as u64 > limit {
        return None;
    }
    *left -= data.len() as u64;
    Some(data)
}
