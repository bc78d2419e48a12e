//! Module archives: deterministic tar.gz of a whole module directory, and
//! the checked reading of one.
//!
//! Packing fixes everything but names and contents (sorted entries, mtime
//! 0, owner 0, modes 0644/0755), so two builds of one tree are
//! byte-identical. Reading refuses anything that could write outside the
//! module's directory or surprise the installer: absolute paths, `..`,
//! links, devices, entries outside `mod_<name>/`, and archives that unpack
//! to more than [`MAX_UNPACKED`] bytes or [`MAX_ENTRIES`] entries.
//!
//! Every byte decompressed counts against those limits, whether it is kept
//! or skipped (an entry outside the root, contents nobody asked for, tar
//! headers and long names): skipping still costs the decompression, so an
//! archive cannot make modman inflate gigabytes just to throw them away.

use std::cell::RefCell;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use tar::{EntryType, Header};

use super::index::is_safe_relative_path;

/// Largest archive accepted, packed, whatever an index says.
pub const MAX_ARCHIVE: u64 = 64 * 1024 * 1024;
/// Most bytes one module may unpack to.
pub const MAX_UNPACKED: u64 = 64 * 1024 * 1024;
/// Most entries one module archive may hold.
pub const MAX_ENTRIES: usize = 10_000;
/// Most bytes decompressed from one archive: the contents limit plus room
/// for every entry's header, padding and long name.
const MAX_DECOMPRESSED: u64 = MAX_UNPACKED + MAX_ENTRIES as u64 * 2048;

/// Why a module directory could not be packed, or an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: a symbolic link that points outside the tree or to a directory; replace it with the file")]
    LinkOutside(PathBuf),
    #[error("{0}: not a regular file or directory")]
    SpecialFile(PathBuf),
    #[error("entry `{0}` is not a plain relative path inside the module directory")]
    UnsafePath(String),
    #[error(
        "entry `{0}` is a link or special file; module archives hold only files and directories"
    )]
    UnsafeType(String),
    #[error("the archive unpacks to more than {} MiB, counting every entry kept or skipped; modman reads no more of it", MAX_UNPACKED / 1024 / 1024)]
    TooLarge,
    #[error("{}: its files come to more than the {} MiB a module archive may unpack to; nothing of it was packed", .0.display(), MAX_UNPACKED / 1024 / 1024)]
    ModuleTooLarge(PathBuf),
    #[error("{}: more than the {MAX_ENTRIES} files and directories a module archive may hold; nothing of it was packed", .0.display())]
    ModuleTooManyEntries(PathBuf),
    #[error("the archive holds more than {MAX_ENTRIES} entries; modman reads no more of it")]
    TooManyEntries,
    #[error(
        "entry `{path}` unpacks to {size} bytes, more than the {limit} modman reads of such a file"
    )]
    FileTooLarge { path: String, size: u64, limit: u64 },
    #[error("the archive is not a readable tar.gz: {0}")]
    Corrupt(io::Error),
}

/// One file read from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    /// Relative to the module directory (`mod_x/` stripped).
    pub path: String,
    pub data: Vec<u8>,
    pub executable: bool,
}

/// A module directory read from disk, laid out as the tar stream its
/// archive holds: what a build digests (two trees that give the same
/// stream give the same archive) and then compresses, or not, when the
/// repository already serves that stream compressed.
#[derive(Debug)]
pub struct Tarball {
    /// The uncompressed tar stream, as [`compress`] takes it.
    pub tar: Vec<u8>,
    /// The regular files packed, relative to the module directory, sorted.
    pub files: Vec<String>,
    /// The newest modification time of those files, in seconds since 1970,
    /// taken from the very look-up that read each one.
    pub newest: i64,
}

/// Lays out `module_dir` as `mod_<name>/...`. Symbolic links to regular
/// files inside `tree_root` are stored as the file they point to; any
/// other link is refused, as are special files and a module over
/// [`MAX_ENTRIES`] entries or [`MAX_UNPACKED`] bytes (counted while
/// reading, so a huge file is never read whole). Each file is looked up
/// once: opened without following links or blocking, its type, mode, size
/// and time taken from that open file.
pub fn lay_out(module_dir: &Path, tree_root: &Path, name: &str) -> Result<Tarball, ArchiveError> {
    let mut walk = Walk {
        dir: module_dir,
        tree_root,
        canonical_root: None,
        members: Vec::new(),
        bytes: 0,
        newest: 0,
    };
    walk.collect(Path::new(""))?;
    let Walk {
        mut members,
        newest,
        ..
    } = walk;
    // Component by component, so a directory comes before its files.
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let files = members
        .iter()
        .filter(|(_, member)| matches!(member, Member::File { .. }))
        .map(|(path, _)| path.display().to_string())
        .collect();
    let tar = write_tar(name, members).map_err(|source| ArchiveError::Io {
        path: module_dir.to_owned(),
        source,
    })?;
    Ok(Tarball { tar, files, newest })
}

/// Packs files held in memory (paths relative to the module directory)
/// exactly as [`lay_out`] and [`compress`] pack the same tree from disk.
pub fn pack_files(name: &str, files: &[ArchiveFile]) -> Result<Vec<u8>, ArchiveError> {
    let mut dirs = std::collections::BTreeSet::new();
    for file in files {
        dirs.extend(
            Path::new(&file.path)
                .ancestors()
                .skip(1)
                .map(Path::to_owned),
        );
    }
    dirs.remove(Path::new(""));
    let mut members: Vec<_> = dirs
        .into_iter()
        .map(|dir| (dir, Member::Dir))
        .chain(files.iter().map(|file| {
            let member = Member::File {
                data: file.data.clone(),
                executable: file.executable,
            };
            (PathBuf::from(&file.path), member)
        }))
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    write_tar(name, members)
        .and_then(|tar| compress(&tar))
        .map_err(|source| ArchiveError::Io {
            path: PathBuf::from(format!("mod_{name}")),
            source,
        })
}

/// One entry of an archive being written.
enum Member {
    Dir,
    File { data: Vec<u8>, executable: bool },
}

/// The tar stream of a module: its directory, then `members`, which the
/// caller has sorted by path.
fn write_tar(name: &str, members: Vec<(PathBuf, Member)>) -> io::Result<Vec<u8>> {
    let root_name = format!("mod_{name}");
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, &root_name, None, false)?;
    for (relative, member) in members {
        let archived = format!("{root_name}/{}", relative.display());
        match member {
            Member::Dir => append(&mut builder, &archived, None, false)?,
            Member::File { data, executable } => {
                append(&mut builder, &archived, Some(&data), executable)?
            }
        }
    }
    builder.into_inner()
}

/// How archives are compressed: [`LEVEL`] with flate2's default
/// (miniz_oxide) deflate, a gzip header as `GzBuilder` writes it. A
/// build that finds an archive packed from the same tar stream reuses it
/// only if it was compressed this same way (see `repo::sources`), so
/// this names every choice that changes the bytes: change it with any of
/// them.
pub const PACKING: &str = "tar, gzip level 6 (miniz_oxide), header without name or time";

/// The deflate level: gzip's default, as every build before. Level 1
/// took a first build of the 2,000-module benchmark tree from 0.14-0.16 s
/// of CPU to 0.09-0.11 s (archives 7.3% larger), but it changes every
/// archive's bytes: each module of a repository built again would get a
/// new SHA-256, and every client would be offered every module as an
/// update of the same files. Archives stay byte for byte what earlier
/// builds made.
const LEVEL: u32 = 6;

/// Compresses a tar stream from [`lay_out`] into the archive a repository
/// serves: a gzip stream as `GzEncoder` at [`LEVEL`] writes it (the same
/// header, the same deflate calls, so the same bytes, which reproducible
/// builds and unchanged versions need), on this thread's reused deflate
/// state.
pub fn compress(tar: &[u8]) -> io::Result<Vec<u8>> {
    use io::Write;
    let mut deflate = DEFLATE
        .with(|cell| cell.borrow_mut().take())
        .unwrap_or_else(|| DeflateEncoder::new(Vec::new(), Compression::new(LEVEL)));
    let mut crc = flate2::Crc::new();
    crc.update(tar);
    deflate.write_all(tar)?;
    let body = deflate.reset(Vec::new())?;
    DEFLATE.with(|cell| *cell.borrow_mut() = Some(deflate));
    let trailer = [crc.sum().to_le_bytes(), crc.amount().to_le_bytes()];
    let mut out = Vec::with_capacity(HEADER.len() + body.len() + 8);
    out.extend_from_slice(&HEADER);
    out.extend_from_slice(&body);
    out.extend_from_slice(&trailer.concat());
    Ok(out)
}

thread_local! {
    /// One deflate state per thread, reset between archives: a new one
    /// is hundreds of KiB allocated and zeroed, which for 2,000 small
    /// modules cost `repo build` more than compressing them did.
    static DEFLATE: RefCell<Option<DeflateEncoder<Vec<u8>>>> = const { RefCell::new(None) };
}

/// `GzBuilder`'s header at [`LEVEL`]: no name, mtime 0, extra flags 0
/// (what flate2 writes for the default level), operating system 255
/// (unknown).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// The walk of one module directory for [`lay_out`]: what it found so
/// far and what that weighs.
struct Walk<'a> {
    dir: &'a Path,
    tree_root: &'a Path,
    /// `tree_root` resolved, once a link needs it.
    canonical_root: Option<PathBuf>,
    members: Vec<(PathBuf, Member)>,
    /// Bytes read so far, against [`MAX_UNPACKED`].
    bytes: u64,
    newest: i64,
}

impl Walk<'_> {
    fn collect(&mut self, relative: &Path) -> Result<(), ArchiveError> {
        let here = self.dir.join(relative);
        let io_error = |source| ArchiveError::Io {
            path: here.clone(),
            source,
        };
        for entry in std::fs::read_dir(&here).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            // With the module directory's own entry, at most MAX_ENTRIES.
            if self.members.len() + 1 >= MAX_ENTRIES {
                return Err(ArchiveError::ModuleTooManyEntries(self.dir.to_owned()));
            }
            let path = relative.join(entry.file_name());
            let full = self.dir.join(&path);
            // From the directory itself: no look-up.
            let file_type = entry.file_type().map_err(io_error)?;
            if file_type.is_dir() {
                self.members.push((path.clone(), Member::Dir));
                self.collect(&path)?;
            } else if file_type.is_file() {
                let member = self.read(&full, ArchiveError::SpecialFile(full.clone()))?;
                self.members.push((path, member));
            } else if file_type.is_symlink() {
                let target = std::fs::canonicalize(&full)
                    .map_err(|_| ArchiveError::LinkOutside(full.clone()))?;
                let root = match &self.canonical_root {
                    Some(root) => root,
                    None => {
                        self.canonical_root
                            .insert(std::fs::canonicalize(self.tree_root).map_err(|source| {
                                ArchiveError::Io {
                                    path: self.tree_root.to_owned(),
                                    source,
                                }
                            })?)
                    }
                };
                if !target.starts_with(root) {
                    return Err(ArchiveError::LinkOutside(full));
                }
                let member = self.read(&target, ArchiveError::LinkOutside(full))?;
                self.members.push((path, member));
            } else {
                return Err(ArchiveError::SpecialFile(full));
            }
        }
        Ok(())
    }

    /// The regular file at `path` (not a link, which [`Self::collect`]
    /// resolved already) as a member, with its mode and time, if its size
    /// fits in what is left of [`MAX_UNPACKED`]; `not_a_file` if it is anything
    /// else by the time it is opened (without blocking, should it be a
    /// FIFO now).
    fn read(&mut self, path: &Path, not_a_file: ArchiveError) -> Result<Member, ArchiveError> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let io_error = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(io_error)?;
        let metadata = file.metadata().map_err(io_error)?;
        if !metadata.is_file() {
            return Err(not_a_file);
        }
        let size = metadata.len();
        if size > MAX_UNPACKED - self.bytes {
            return Err(ArchiveError::ModuleTooLarge(self.dir.to_owned()));
        }
        // The size the look-up gave, as `tar` reads it: a file that grows
        // meanwhile is read to that size, without a read to find its end.
        let mut data = Vec::with_capacity(size as usize);
        file.take(size).read_to_end(&mut data).map_err(io_error)?;
        if data.len() as u64 != size {
            let shrank = io::Error::new(io::ErrorKind::UnexpectedEof, "shrank while read");
            return Err(io_error(shrank));
        }
        self.bytes += size;
        self.newest = self.newest.max(metadata.mtime());
        Ok(Member::File {
            data,
            executable: metadata.mode() & 0o111 != 0,
        })
    }
}

fn append<W: io::Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    data: Option<&[u8]>,
    executable: bool,
) -> io::Result<()> {
    let mut header = Header::new_gnu();
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    match data {
        Some(data) => {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, path, data)
        }
        None => {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, format!("{path}/"), io::empty())
        }
    }
}

/// Reads and checks every entry of a module archive for `mod_<name>`.
/// Returns its regular files; directories are implied by their paths.
/// An archive that says it inflates to at most [`INFLATED_WHOLE_UP_TO`]
/// (a module's usually does, by far) is inflated whole first
/// ([`inflate_whole`]); a larger one through a streaming decoder, so that
/// its tar stream is never held beside the files read from it.
pub fn read(bytes: &[u8], name: &str) -> Result<Vec<ArchiveFile>, ArchiveError> {
    match gzip_size(bytes) {
        Some(size) if size <= INFLATED_WHOLE_UP_TO => {
            read_module(&inflate_whole(bytes, size)?[..], name)
        }
        _ => read_module(flate2::bufread::GzDecoder::new(bytes), name),
    }
}

/// The largest tar stream [`read`] inflates whole.
const INFLATED_WHOLE_UP_TO: u32 = 1024 * 1024;

/// The size a gzip stream's trailer says it inflates to, modulo 2^32
/// (RFC 1952), if `gz` begins with gzip's magic and holds at least its
/// 10-byte header and 8-byte trailer.
fn gzip_size(gz: &[u8]) -> Option<u32> {
    if gz.len() < 18 || !gz.starts_with(&HEADER[..2]) {
        return None;
    }
    let trailer: [u8; 4] = gz[gz.len() - 4..].try_into().ok()?;
    Some(u32::from_le_bytes(trailer))
}

/// The tar stream of the gzip archive `gz`, inflated in one call into
/// one buffer of `size`, what its trailer says: one gzip member, its
/// CRC-32 and size checked, nothing after it. A trailer that says less
/// than the stream holds (or wrapped around 4 GiB) leaves the stream
/// overflowing the buffer: refused.
///
/// Why not through `tar`'s reads of a streaming decoder: each archive
/// then cost a decoder state allocated and zeroed, its 32 KiB window
/// copied through, and a call per 512-byte block. An update of 250
/// modules inflates 250 archives before it changes anything: 3.0 ms of
/// CPU for them instead of 4.1 (best of 30 rounds, release build).
fn inflate_whole(gz: &[u8], size: u32) -> Result<Vec<u8>, ArchiveError> {
    let corrupt_because = |why: &str| ArchiveError::Corrupt(io::Error::other(why.to_owned()));
    let mut tar = vec![0; size as usize];
    // Gzip (window bits 16 + 15): zlib checks the header, the CRC-32 and
    // the size in the trailer.
    let mut inflate = zlib_rs::Inflate::new(true, 16 + 15);
    match inflate.decompress(gz, &mut tar, zlib_rs::InflateFlush::Finish) {
        Ok(zlib_rs::Status::StreamEnd) if inflate.total_in() == gz.len() as u64 => Ok(tar),
        Ok(zlib_rs::Status::StreamEnd) => Err(corrupt_because("bytes after the gzip stream")),
        Ok(_) => Err(corrupt_because(
            "the gzip stream is cut short, or inflates past the size its trailer says",
        )),
        Err(e) => Err(corrupt_because(e.as_str())),
    }
}

/// Reads a tar stream from [`lay_out`] with every check of [`read`]:
/// what a build packs passes the installer's checks before it is offered,
/// without compressing it only to inflate it again.
pub fn read_tar(tar: &[u8], name: &str) -> Result<Vec<ArchiveFile>, ArchiveError> {
    read_module(tar, name)
}

fn read_module(decoded: impl Read, name: &str) -> Result<Vec<ArchiveFile>, ArchiveError> {
    let wanted = |_: &str| Some(MAX_UNPACKED);
    let found = read_entries(
        decoded,
        &format!("mod_{name}"),
        Outside::Refuse,
        &wanted,
        &mut 0,
    )?;
    Ok(found
        .into_iter()
        .map(|file| ArchiveFile {
            path: file.path,
            data: file.data.unwrap_or_default(),
            executable: file.executable,
        })
        .collect())
}

/// What [`read_under`] does with an entry outside its root directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// A module archive holds nothing else: refuse it.
    Refuse,
    /// A source archive of a whole tree (a LuaRocks `.src.rock`'s): skip it,
    /// after checking its path like any other.
    Skip,
}

/// A regular file [`read_under`] found under its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Relative to the root.
    pub path: String,
    pub executable: bool,
    /// Its contents, when the caller asked for them; otherwise they were
    /// decompressed, counted against the limits and dropped, so that a
    /// caller that needs only the names holds none of the bytes.
    pub data: Option<Vec<u8>>,
}

/// Reads the regular files under `root` (a relative directory path) of the
/// tar.gz `source` with every check of [`read`], keeping the contents of
/// those `wanted` gives a size limit for (a larger one is refused before
/// it is read); returns them relative to `root`, sorted. The limits count
/// every entry and every byte decompressed. Every entry's size is added to
/// `unpacked` as it is met, refused or not, so that a caller reading many
/// archives can bound what they cost together.
pub fn read_under(
    source: impl Read,
    root: &str,
    outside: Outside,
    wanted: &dyn Fn(&str) -> Option<u64>,
    unpacked: &mut u64,
) -> Result<Vec<Found>, ArchiveError> {
    read_entries(GzDecoder::new(source), root, outside, wanted, unpacked)
}

/// [`read_under`] of a tar stream already decompressed (or never
/// compressed), with every limit.
fn read_entries(
    decoded: impl Read,
    root: &str,
    outside: Outside,
    wanted: &dyn Fn(&str) -> Option<u64>,
    unpacked: &mut u64,
) -> Result<Vec<Found>, ArchiveError> {
    let limited = Limited {
        inner: decoded,
        left: MAX_DECOMPRESSED,
    };
    let mut archive = tar::Archive::new(limited);
    let mut files = Vec::new();
    let mut total: u64 = 0;
    let entries = archive.entries().map_err(corrupt)?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries);
        }
        let mut entry = entry.map_err(corrupt)?;
        // Counted before the entry is looked at: skipping it costs as much.
        let size = entry.header().size().map_err(corrupt)?;
        total = total.saturating_add(size);
        *unpacked = unpacked.saturating_add(size);
        if total > MAX_UNPACKED {
            return Err(ArchiveError::TooLarge);
        }
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        // Checked on the raw string: `Path::components` would quietly drop `.`.
        let trimmed = raw_path.strip_suffix('/').unwrap_or(&raw_path);
        if !is_safe_relative_path(trimmed) {
            return Err(ArchiveError::UnsafePath(raw_path));
        }
        let relative = match under(trimmed, root) {
            Some(relative) => relative,
            None if outside == Outside::Skip => continue,
            None => return Err(ArchiveError::UnsafePath(raw_path)),
        };
        match entry.header().entry_type() {
            EntryType::Directory => continue,
            EntryType::Regular => {}
            _ => return Err(ArchiveError::UnsafeType(raw_path)),
        }
        let Some(relative) = relative else {
            // The module directory itself as a file.
            return Err(ArchiveError::UnsafePath(raw_path));
        };
        let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
        let data = if let Some(limit) = wanted(&relative) {
            if size > limit {
                return Err(ArchiveError::FileTooLarge {
                    path: raw_path,
                    size,
                    limit,
                });
            }
            let mut data = Vec::with_capacity(size.min(MAX_UNPACKED) as usize);
            // `take` guards against a header that lies about its size.
            (&mut entry)
                .take(MAX_UNPACKED + 1)
                .read_to_end(&mut data)
                .map_err(corrupt)?;
            Some(data)
        } else {
            None
        };
        files.push(Found {
            path: relative,
            executable,
            data,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if files.windows(2).any(|w| w[0].path == w[1].path) {
        return Err(ArchiveError::UnsafePath("a path listed twice".into()));
    }
    Ok(files)
}

/// A decompressing reader that stops with [`OverLimit`] after `left` bytes:
/// what bounds the work spent on entries skipped, headers and long names,
/// which the tar reader inflates without handing them to [`read_under`].
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other(OverLimit));
        }
        let most = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..most])?;
        self.left -= read as u64;
        Ok(read)
    }
}

/// The error [`Limited`] stops with.
#[derive(Debug)]
struct OverLimit;

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompression limit reached")
    }
}

impl std::error::Error for OverLimit {}

/// An error of the tar reader: [`ArchiveError::TooLarge`] when it is
/// [`Limited`] stopping (the tar reader may wrap it), else corruption.
fn corrupt(error: io::Error) -> ArchiveError {
    match error.get_ref() {
        Some(inner) if is_over_limit(inner) => ArchiveError::TooLarge,
        _ => ArchiveError::Corrupt(error),
    }
}

/// Whether `error` is [`OverLimit`] or wraps it. An `io::Error` hides the
/// error it wraps from `source()`, so it is looked into with `get_ref`.
fn is_over_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<OverLimit>() {
        return true;
    }
    let inner = match error.downcast_ref::<io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|e| e as &(dyn std::error::Error + 'static)),
        None => error.source(),
    };
    inner.is_some_and(is_over_limit)
}

/// `root/a/b` -> `Some(Some("a/b"))`, `root` -> `Some(None)`, anything
/// outside `root` -> `None`. Both are safe relative paths already.
fn under(path: &str, root: &str) -> Option<Option<String>> {
    let rest = path.strip_prefix(root)?;
    if rest.is_empty() {
        return Some(None);
    }
    Some(Some(rest.strip_prefix('/')?.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::fs;
    use std::io::Write;

    #[test]
    fn archives_in_a_row_on_one_thread_are_the_gzip_of_a_fresh_encoder() {
        for size in [0, 10, 70_000, 3_000] {
            let file = ArchiveFile {
                path: "mod_demo.lua".into(),
                data: (0..size).map(|i| (i * 7 % 251) as u8).collect(),
                executable: false,
            };
            let packed = pack_files("demo", &[file]).unwrap();
            let mut tar = Vec::new();
            GzDecoder::new(&packed[..]).read_to_end(&mut tar).unwrap();
            let mut fresh = GzEncoder::new(Vec::new(), Compression::new(LEVEL));
            fresh.write_all(&tar).unwrap();
            assert_eq!(packed, fresh.finish().unwrap(), "{size} bytes");
        }
    }

    /// A module directory packed as a build packs it.
    fn pack(
        module: &Path,
        tree: &Path,
        name: &str,
    ) -> Result<(Vec<u8>, Vec<String>), ArchiveError> {
        let laid_out = lay_out(module, tree, name)?;
        Ok((compress(&laid_out.tar).unwrap(), laid_out.files))
    }

    fn module_tree() -> tempfile::TempDir {
        let tree = tempfile::tempdir().unwrap();
        let module = tree.path().join("mod_demo");
        fs::create_dir_all(module.join("lib")).unwrap();
        fs::write(module.join("mod_demo.lua"), "module:depends('x')").unwrap();
        fs::write(module.join("lib/helper.lua"), "return {}").unwrap();
        fs::write(tree.path().join("shared.lua"), "shared").unwrap();
        std::os::unix::fs::symlink("../shared.lua", module.join("shared.lua")).unwrap();
        tree
    }

    #[test]
    fn packing_is_deterministic_and_reads_back() {
        let tree = module_tree();
        let module = tree.path().join("mod_demo");
        let (first, files) = pack(&module, tree.path(), "demo").unwrap();
        // Different mtimes, same content: same bytes.
        fs::write(module.join("lib/helper.lua"), "return {}").unwrap();
        let (second, _) = pack(&module, tree.path(), "demo").unwrap();
        assert_eq!(first, second);
        assert_eq!(files, ["lib/helper.lua", "mod_demo.lua", "shared.lua"]);
        let read_back = read(&first, "demo").unwrap();
        let paths: Vec<_> = read_back.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, files);
        assert_eq!(read_back[2].data, b"shared");
    }

    #[test]
    fn files_in_memory_pack_as_the_same_tree_on_disk() {
        let tree = module_tree();
        let module = tree.path().join("mod_demo");
        let (from_disk, _) = pack(&module, tree.path(), "demo").unwrap();
        let files = read(&from_disk, "demo").unwrap();
        assert_eq!(pack_files("demo", &files).unwrap(), from_disk);
    }

    #[test]
    fn a_link_out_of_the_tree_is_refused() {
        let tree = module_tree();
        let module = tree.path().join("mod_demo");
        std::os::unix::fs::symlink("/etc/passwd", module.join("passwd")).unwrap();
        let error = pack(&module, tree.path(), "demo").unwrap_err();
        assert!(matches!(error, ArchiveError::LinkOutside(_)), "{error}");
    }

    /// The tar stream reads back as its archive does, and carries the
    /// newest time of the files it read, links followed.
    #[test]
    fn a_laid_out_module_reads_back_as_its_archive_with_its_newest_time() {
        let tree = module_tree();
        let module = tree.path().join("mod_demo");
        let at = |seconds| std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        for (file, seconds) in [
            ("mod_demo/mod_demo.lua", 1_000),
            ("mod_demo/lib/helper.lua", 3_000),
            ("shared.lua", 2_000),
        ] {
            let file = fs::File::options().write(true).open(tree.path().join(file));
            file.unwrap().set_modified(at(seconds)).unwrap();
        }
        let laid_out = lay_out(&module, tree.path(), "demo").unwrap();
        assert_eq!(laid_out.newest, 3_000);
        let archive = compress(&laid_out.tar).unwrap();
        assert_eq!(
            read_tar(&laid_out.tar, "demo").unwrap(),
            read(&archive, "demo").unwrap()
        );
    }

    /// A module over the bound is refused from its files' sizes, before
    /// they are read: this one is a sparse file of one byte too many.
    #[test]
    fn a_module_over_the_unpacked_bound_is_refused_unread() {
        let tree = module_tree();
        let module = tree.path().join("mod_demo");
        let huge = fs::File::create(module.join("huge.bin")).unwrap();
        huge.set_len(MAX_UNPACKED + 1).unwrap();
        let error = lay_out(&module, tree.path(), "demo").unwrap_err();
        assert!(matches!(error, ArchiveError::ModuleTooLarge(_)), "{error}");
    }

    /// Builds a tar.gz by hand, with entries a packer would never write.
    fn hostile(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, kind, data) in entries {
            let mut header = Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // Write the name bytes raw: `append_data` itself refuses `..`.
            let name = &mut header.as_gnu_mut().unwrap().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            if *kind == EntryType::Symlink {
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn hostile_entries_are_refused() {
        // (entry path, entry type, refused for its path rather than its type)
        let cases = [
            ("mod_demo/../../etc/cron.d/x", EntryType::Regular, true),
            ("/etc/cron.d/x", EntryType::Regular, true),
            ("mod_other/mod_other.lua", EntryType::Regular, true),
            ("mod_demo/./x", EntryType::Regular, true),
            ("mod_demo/link", EntryType::Symlink, false),
            ("mod_demo/hard", EntryType::Link, false),
            ("mod_demo/fifo", EntryType::Fifo, false),
        ];
        for (path, kind, for_its_path) in cases {
            let error = read(&hostile(&[(path, kind, b"x")]), "demo").unwrap_err();
            let as_expected = match error {
                ArchiveError::UnsafePath(_) => for_its_path,
                ArchiveError::UnsafeType(_) => !for_its_path,
                _ => false,
            };
            assert!(as_expected, "{path}: {error}");
        }
    }

    #[test]
    fn garbage_and_truncation_are_corrupt() {
        assert!(matches!(
            read(b"not a gzip", "demo"),
            Err(ArchiveError::Corrupt(_))
        ));
        let tree = module_tree();
        let (bytes, _) = pack(&tree.path().join("mod_demo"), tree.path(), "demo").unwrap();
        assert!(read(&bytes[..bytes.len() / 2], "demo").is_err());
    }

    /// A module archive is one gzip stream, inflated whole to the size its
    /// trailer gives: a stream followed by anything (another member), a
    /// trailer that says another size, a changed byte (the CRC-32) are
    /// each refused, and the archive as packed reads.
    #[test]
    fn a_module_archive_is_one_whole_gzip_stream_of_the_size_its_trailer_gives() {
        let tree = module_tree();
        let (bytes, _) = pack(&tree.path().join("mod_demo"), tree.path(), "demo").unwrap();
        assert!(read(&bytes, "demo").is_ok());
        let corrupt = |bytes: &[u8]| matches!(read(bytes, "demo"), Err(ArchiveError::Corrupt(_)));
        let mut two_members = bytes.clone();
        two_members.extend_from_slice(&bytes);
        assert!(corrupt(&two_members), "a second member");
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(corrupt(&trailing), "a byte after the stream");
        let size_at = bytes.len() - 4;
        let size = u32::from_le_bytes(bytes[size_at..].try_into().unwrap());
        for other in [size - 1, size + 1, 0] {
            let mut said = bytes.clone();
            said[size_at..].copy_from_slice(&other.to_le_bytes());
            assert!(corrupt(&said), "a trailer saying {other} of {size} bytes");
        }
        // Saying more than is inflated whole, it is streamed, as before:
        // `tar` stops at its end marker, short of the trailer (the
        // archive's SHA-256 against the signed index is the check of its
        // bytes), and nothing is held for the size it says.
        let mut huge = bytes.clone();
        huge[size_at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read(&huge, "demo").unwrap(), read(&bytes, "demo").unwrap());
        let mut changed = bytes.clone();
        changed[size_at - 1] ^= 1;
        assert!(corrupt(&changed), "a CRC-32 that does not match");
        assert!(corrupt(&bytes[..3]), "shorter than a trailer");
    }

    /// An entry outside the root counts as much as one inside: its header
    /// says it unpacks to 60 GiB, so the archive is refused before any of
    /// it is inflated.
    #[test]
    fn bytes_skipped_count_against_the_limit() {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_size(60 << 30);
        header.set_mode(0o644);
        header.set_path("tree/elsewhere/zeros").unwrap();
        header.set_cksum();
        builder.append(&header, &[0u8; 4096][..]).unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        let mut unpacked = 0;
        let error = read_under(
            &bytes[..],
            "tree/mod_demo",
            Outside::Skip,
            &|_| Some(1),
            &mut unpacked,
        )
        .unwrap_err();
        assert!(matches!(error, ArchiveError::TooLarge), "{error}");
        assert_eq!(unpacked, 60 << 30, "counted though refused");
    }

    /// The decompressor stops at its limit, and that reads as too large,
    /// not as corruption, even through the tar reader's wrapping.
    #[test]
    fn decompression_stops_at_the_limit() {
        let mut limited = Limited {
            inner: io::repeat(0),
            left: 1000,
        };
        let mut sink = Vec::new();
        let error = limited.read_to_end(&mut sink).unwrap_err();
        assert_eq!(sink.len(), 1000);
        assert!(matches!(corrupt(error), ArchiveError::TooLarge));
        let wrapped = io::Error::other(std::io::Error::other(OverLimit));
        assert!(matches!(corrupt(wrapped), ArchiveError::TooLarge));
        let other = io::Error::new(io::ErrorKind::InvalidData, "bad header");
        assert!(matches!(corrupt(other), ArchiveError::Corrupt(_)));
    }
}
