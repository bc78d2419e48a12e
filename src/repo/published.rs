//! Reading the files of a published repository, which whoever serves it
//! may have changed since modman wrote them: `repo build` reads its last
//! output back to reuse what did not change.

use std::path::Path;

/// The regular file at `path` in a published repository (which whoever
/// serves it may have changed), if it is at most `limit` bytes: opened
/// without following a link (as `hard_link` links a symbolic link
/// itself) or blocking (should it be a FIFO), its length taken from
/// that open file, one look-up in all.
pub(crate) fn read_published(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() || metadata.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a regular file of at most {limit} bytes"),
        ));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("grew past {limit} bytes while read"),
        ));
    }
    Ok(bytes)
}

/// A file name without directories, escapes or anything a URL or a
/// path would read differently.
pub(crate) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}
