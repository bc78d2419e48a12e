//! Debian's `prosody-modules` package as a source tree for `repo build`.
//!
//! Debian installs the community modules into Prosody's own module
//! directory, mixed with Prosody's, and their READMEs, gzipped, into
//! `/usr/share/doc/prosody-modules`. The package's file list
//! (`/var/lib/dpkg/info/prosody-modules.list`) tells its modules apart;
//! [`lay_out`] copies them into the upstream layout `repo build` reads
//! (`mod_x/mod_x.lua`, `mod_x/README.markdown`), keeping file times, from
//! which repository versions derive. So an admin whose host cannot reach
//! the community repository builds one from what Debian ships with one
//! command, as the test suite builds its corpus.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The package's file list, relative to the system root.
const FILE_LIST: &str = "var/lib/dpkg/info/prosody-modules.list";
/// dpkg's record of installed packages, for the version.
const STATUS: &str = "var/lib/dpkg/status";
/// Where the package puts the READMEs.
const DOCS: &str = "usr/share/doc/prosody-modules";
/// Where Debian puts Prosody's modules and the community ones.
const MODULES: &str = "/usr/lib/prosody/modules/";
/// Largest file list or status file read: both are a few hundred KiB on a
/// full system.
const MAX_DPKG_FILE: u64 = 64 << 20;

/// The installed `prosody-modules` package: its version and its module
/// directories.
#[derive(Debug)]
pub struct Package {
    /// As dpkg has it, such as `0.0~hg20230223.556bf57d6417+dfsg-1`.
    pub version: String,
    /// Each module the package owns, `mod_x`, sorted.
    pub modules: Vec<String>,
    root: PathBuf,
}

/// Why the package could not be read or laid out.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    #[error("Debian's prosody-modules is not installed under {root} ({file} is missing); install it with `apt-get install prosody-modules`, or build from a prosody-modules tree with --from")]
    NotInstalled { root: String, file: String },
    #[error("cannot read {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("cannot lay out {module} in {out}: {reason}; nothing was built")]
    Copy {
        module: String,
        out: String,
        reason: String,
    },
}

/// Reads the package installed on the system whose root is `root` (`/`,
/// or a chroot).
pub fn read(root: &Path) -> Result<Package, DebianError> {
    let list = String::from_utf8_lossy(&read_bounded(root, FILE_LIST)?).into_owned();
    let version = status_version(root)?.ok_or_else(|| DebianError::NotInstalled {
        root: root.display().to_string(),
        file: format!("prosody-modules in {}", root.join(STATUS).display()),
    })?;
    let mut modules: Vec<String> = list
        .lines()
        .filter_map(|line| line.strip_prefix(MODULES))
        .filter(|name| {
            name.starts_with("mod_") && crate::repo::index::is_valid_module_name(&name[4..])
        })
        .map(str::to_owned)
        .collect();
    modules.sort();
    modules.dedup();
    Ok(Package {
        version,
        modules,
        root: root.to_owned(),
    })
}

/// Debian's prosody-modules as installed on the system whose Prosody
/// module directory is `builtin_dir` (`ROOT/usr/lib/prosody/modules`),
/// or `None` when that is not Debian's layout or the package is not
/// there. Read once per root for the life of the process (the dpkg files
/// run to megabytes, and `list` and `install` ask for every module).
pub fn installed_for(builtin_dir: &Path) -> Option<std::sync::Arc<Package>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static READ: OnceLock<Mutex<HashMap<PathBuf, Option<Arc<Package>>>>> = OnceLock::new();
    let suffix = MODULES.trim_matches('/');
    let root = builtin_dir
        .to_str()?
        .trim_end_matches('/')
        .strip_suffix(suffix)?
        .to_owned();
    let root = PathBuf::from(if root.is_empty() {
        "/".to_owned()
    } else {
        root
    });
    let mut read = READ
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    read.entry(root.clone())
        .or_insert_with(|| self::read(&root).ok().map(Arc::new))
        .clone()
}

impl Package {
    /// Whether the package installed `mod_NAME`.
    pub fn has(&self, name: &str) -> bool {
        let module = format!("mod_{name}");
        self.modules.binary_search(&module).is_ok()
    }
}

/// The version dpkg records for `prosody-modules` in `status`: the
/// `Version:` of the paragraph with the line `Package: prosody-modules`.
/// Searched in the bytes at once (the file runs to a megabyte, and
/// `install` asks whenever a module it installs is one Debian ships), not
/// paragraph by paragraph and line by line.
fn version(status: &[u8]) -> Option<String> {
    use memchr::memmem;
    const PACKAGE: &[u8] = b"Package: prosody-modules\n";
    let at = memmem::find_iter(status, PACKAGE).find(|&at| at == 0 || status[at - 1] == b'\n')?;
    let start = memmem::rfind(&status[..at], b"\n\n").map_or(0, |end| end + 2);
    let end = memmem::find(&status[at..], b"\n\n").map_or(status.len(), |end| at + end);
    status[start..end]
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"Version: "))
        .and_then(|version| std::str::from_utf8(version).ok())
        .map(str::to_owned)
}

/// Opens `root`/`file`; a file that is not there means the package is not
/// installed.
fn open(root: &Path, file: &str) -> Result<(std::fs::File, PathBuf), DebianError> {
    let path = root.join(file);
    match std::fs::File::open(&path) {
        Ok(opened) => Ok((opened, path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DebianError::NotInstalled {
            root: root.display().to_string(),
            file: path.display().to_string(),
        }),
        Err(e) => Err(DebianError::Read {
            file: path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

fn too_large(path: &Path) -> DebianError {
    DebianError::Read {
        file: path.display().to_string(),
        reason: format!("larger than {MAX_DPKG_FILE} bytes"),
    }
}

fn read_bounded(root: &Path, file: &str) -> Result<Vec<u8>, DebianError> {
    let (opened, path) = open(root, file)?;
    let mut text = Vec::new();
    opened
        .take(MAX_DPKG_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| DebianError::Read {
            file: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if text.len() as u64 > MAX_DPKG_FILE {
        return Err(too_large(&path));
    }
    Ok(text)
}

/// The version dpkg's status under `root` records for prosody-modules,
/// read 64 KiB at a time and searched in whole paragraphs as they come:
/// the file runs to a megabyte and the package's paragraph is one among
/// hundreds, so only the paragraph being read is carried over, never the
/// whole file held.
fn status_version(root: &Path) -> Result<Option<String>, DebianError> {
    const PIECE: usize = 64 * 1024;
    let (mut status, path) = open(root, STATUS)?;
    let mut window: Vec<u8> = Vec::with_capacity(2 * PIECE);
    let mut total = 0u64;
    loop {
        let kept = window.len();
        window.resize(kept + PIECE, 0);
        let read = loop {
            match status.read(&mut window[kept..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => break read,
            }
        }
        .map_err(|e| DebianError::Read {
            file: path.display().to_string(),
            reason: e.to_string(),
        })?;
        window.truncate(kept + read);
        total += read as u64;
        if total > MAX_DPKG_FILE {
            return Err(too_large(&path));
        }
        let end = read == 0;
        // Up to the last paragraph read whole (all of it at the end).
        let whole = match end {
            true => window.len(),
            false => memchr::memmem::rfind(&window, b"\n\n").map_or(0, |at| at + 2),
        };
        if let Some(version) = version(&window[..whole]) {
            return Ok(Some(version));
        }
        if end {
            return Ok(None);
        }
        window.drain(..whole);
    }
}

/// What [`lay_out`] did.
#[derive(Debug)]
pub struct LaidOut {
    pub modules: usize,
    /// Modules left out, each with why.
    pub notes: Vec<String>,
}

/// Copies each module of `package` into `out` (an empty directory) in the
/// upstream layout, with its README, keeping file times.
pub fn lay_out(package: &Package, out: &Path) -> Result<LaidOut, DebianError> {
    let mut laid_out = LaidOut {
        modules: 0,
        notes: Vec::new(),
    };
    let modules_dir = package.root.join(MODULES.trim_start_matches('/'));
    for module in &package.modules {
        let from = modules_dir.join(module);
        let copy_error = |e: std::io::Error| DebianError::Copy {
            module: module.clone(),
            out: out.display().to_string(),
            reason: e.to_string(),
        };
        if !holds(&from, &format!("{module}.lua")) {
            // The 2025 package owns an empty mod_http_upload (its README only).
            laid_out.notes.push(format!(
                "{} holds no {module}.lua; left out",
                from.display()
            ));
            continue;
        }
        let to = out.join(module);
        copy_tree(&from, &to).map_err(copy_error)?;
        let docs = package.root.join(DOCS);
        for readme in [
            format!("README_{module}.markdown"),
            format!("README_{module}.md"),
        ] {
            let plain = docs.join(&readme);
            let gzipped = docs.join(format!("{readme}.gz"));
            let target = to.join("README.markdown");
            if plain.is_file() {
                copy_file(&plain, &target).map_err(copy_error)?;
            } else if gzipped.is_file() {
                gunzip(&gzipped, &target).map_err(copy_error)?;
            }
        }
        laid_out.modules += 1;
    }
    Ok(laid_out)
}

/// Whether `file` is somewhere in `dir`: some modules keep theirs a level
/// down (`mod_auth_dovecot/auth_dovecot/mod_auth_dovecot.lua`), and
/// `repo build` finds them there.
fn holds(dir: &Path, file: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| match entry.file_type() {
        Ok(kind) if kind.is_dir() => holds(&entry.path(), file),
        Ok(kind) => kind.is_file() && entry.file_name() == file,
        Err(_) => false,
    })
}

/// Largest README accepted once unpacked.
const MAX_README: u64 = 4 << 20;

fn gunzip(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(from)?)
        .take(MAX_README + 1)
        .read_to_end(&mut text)?;
    if text.len() as u64 > MAX_README {
        return Err(std::io::Error::other(format!(
            "{} unpacks to more than {MAX_README} bytes",
            from.display()
        )));
    }
    std::fs::write(to, text)?;
    keep_time(from, to)
}

/// Copies directories and regular files; a link is not followed (a
/// module's files are its own).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            copy_file(&entry.path(), &target)?;
        }
    }
    keep_time(from, to)
}

fn copy_file(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::copy(from, to)?;
    keep_time(from, to)
}

/// Gives `to` the modification time of `from`: `repo build` derives a
/// module's version from its newest file.
fn keep_time(from: &Path, to: &Path) -> std::io::Result<()> {
    let modified = std::fs::metadata(from)?.modified()?;
    std::fs::File::options()
        .write(!to.is_dir())
        .read(to.is_dir())
        .open(to)?
        .set_modified(modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system root with the package's files as dpkg leaves them.
    fn system(dir: &Path) {
        let write = |file: &str, text: &[u8]| {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            FILE_LIST,
            b"/.\n/usr/lib/prosody/modules\n/usr/lib/prosody/modules/mod_a\n/usr/lib/prosody/modules/mod_a/mod_a.lua\n/usr/lib/prosody/modules/mod_a/lib\n/usr/lib/prosody/modules/mod_a/lib/x.lib.lua\n/usr/lib/prosody/modules/mod_empty\n/usr/lib/prosody/modules/mod_../x\n",
        );
        write(
            STATUS,
            b"Package: prosody\nVersion: 0.12.4-1\n\nPackage: prosody-modules\nStatus: install ok installed\nVersion: 0.0~hg1-1\n",
        );
        write("usr/lib/prosody/modules/mod_a/mod_a.lua", b"-- a");
        write("usr/lib/prosody/modules/mod_a/lib/x.lib.lua", b"-- x");
        write("usr/lib/prosody/modules/mod_empty/README", b"");
        write("usr/lib/prosody/modules/mod_prosodys_own.lua", b"-- own");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"# mod_a\n").unwrap();
        write(
            &format!("{DOCS}/README_mod_a.markdown.gz"),
            &gz.finish().unwrap(),
        );
    }

    #[test]
    fn the_package_s_modules_only_in_the_upstream_layout_with_their_times() {
        let root = tempfile::tempdir().unwrap();
        system(root.path());
        let lua = root.path().join("usr/lib/prosody/modules/mod_a/mod_a.lua");
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options()
            .write(true)
            .open(&lua)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let package = read(root.path()).unwrap();
        assert_eq!(package.version, "0.0~hg1-1");
        assert_eq!(package.modules, ["mod_a", "mod_empty"]);
        let out = tempfile::tempdir().unwrap();
        let laid_out = lay_out(&package, out.path()).unwrap();
        assert_eq!(laid_out.modules, 1);
        assert_eq!(laid_out.notes.len(), 1);
        assert_eq!(
            std::fs::read(out.path().join("mod_a/README.markdown")).unwrap(),
            b"# mod_a\n"
        );
        assert!(out.path().join("mod_a/lib/x.lib.lua").is_file());
        assert!(!out.path().join("mod_empty").exists());
        assert_eq!(
            std::fs::metadata(out.path().join("mod_a/mod_a.lua"))
                .unwrap()
                .modified()
                .unwrap(),
            old
        );
    }

    #[test]
    fn found_from_prosody_s_module_directory() {
        let root = tempfile::tempdir().unwrap();
        system(root.path());
        let dir = root.path().join("usr/lib/prosody/modules");
        let package = installed_for(&dir).unwrap();
        assert!(package.has("a") && !package.has("prosodys_own"));
        assert!(installed_for(root.path()).is_none());
    }

    #[test]
    fn the_version_is_the_package_s_own_paragraph_s() {
        let status = |text: &str| version(text.as_bytes());
        let ours = "Package: prosody-modules\nStatus: install ok installed\nVersion: 2-1\n";
        assert_eq!(status(ours).as_deref(), Some("2-1"));
        // Its name elsewhere, or a longer name, is another package.
        let others = "Package: x\nVersion: 9\nDepends: prosody-modules\n\nPackage: prosody-modules-extra\nVersion: 8\n\n";
        assert_eq!(status(others), None);
        assert_eq!(
            status(&format!("{others}{ours}\nPackage: z\nVersion: 7\n")).as_deref(),
            Some("2-1")
        );
        // A paragraph without a version has none, not the next one's.
        assert_eq!(
            status("Package: prosody-modules\n\nPackage: z\nVersion: 7\n"),
            None
        );
        assert_eq!(
            status("Version: 1\nPackage: prosody-modules\n").as_deref(),
            Some("1")
        );
    }

    /// Read a piece at a time, the package's paragraph is found wherever
    /// it falls, across pieces too, and only its own version is taken.
    #[test]
    fn the_status_is_read_in_pieces_and_each_paragraph_whole() {
        let root = tempfile::tempdir().unwrap();
        let status = root.path().join(STATUS);
        std::fs::create_dir_all(status.parent().unwrap()).unwrap();
        let filler = |n: usize| {
            (0..n)
                .map(|i| {
                    format!(
                        "Package: p{i}\nVersion: 0\nDescription: {}\n\n",
                        "x".repeat(90)
                    )
                })
                .collect::<String>()
        };
        let ours = "Package: prosody-modules\nStatus: install ok installed\nVersion: 3-1\n";
        for before in (480..=530).chain([0, 1, 1500]) {
            let text = format!("{}{ours}\n{}", filler(before), filler(3));
            std::fs::write(&status, &text).unwrap();
            assert_eq!(
                status_version(root.path()).unwrap().as_deref(),
                Some("3-1"),
                "after {before} paragraphs"
            );
        }
        std::fs::write(&status, filler(2000)).unwrap();
        assert_eq!(status_version(root.path()).unwrap(), None);
    }

    #[test]
    fn not_installed_says_so() {
        let root = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(root.path()),
            Err(DebianError::NotInstalled { .. })
        ));
    }
}
