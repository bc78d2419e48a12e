//! `modman reload`: finds the `modman run` serving a modman.toml among
//! this machine's processes and sends it SIGHUP, as `systemctl reload
//! modman` does through the unit's ExecReload.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Sends SIGHUP to every `modman run --config CONFIG` running, saying
/// which PID; an error if none runs or one cannot be signalled.
pub fn reload(config: &Path) -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find modman's own executable to look for it among the processes: {e}; nothing was signalled"))?;
    let name = exe.file_name().unwrap_or(OsStr::new("modman"));
    let wanted = resolved(config, None);
    let pids = serving(name, &wanted)?;
    if pids.is_empty() {
        return Err(format!(
            "no `modman run --config {}` is running (none among this machine's processes), so nothing was reloaded; start it with `systemctl start modman` or `modman run --config {}`",
            config.display(),
            config.display()
        ));
    }
    for pid in pids {
        hang_up(pid).map_err(|e| {
            format!(
                "cannot send SIGHUP to modman (PID {pid}) running with {}: {e}; nothing was reloaded{}",
                config.display(),
                if e.raw_os_error() == Some(libc::EPERM) {
                    ": it runs as another user, so run this as root or as that user"
                } else {
                    ""
                }
            )
        })?;
        out!(
            "Sent SIGHUP to modman (PID {pid}) running with {}: it reads the file again and, if it changed, finishes the changes in flight and restarts in place (same PID) to apply it. Its log says what it applied (journalctl -u modman).",
            config.display()
        );
    }
    Ok(())
}

/// The PIDs of the `modman run` processes (executable named `name`)
/// whose `--config` is `config`.
fn serving(name: &OsStr, config: &Path) -> Result<Vec<u32>, String> {
    let own = std::process::id();
    let entries = std::fs::read_dir("/proc").map_err(|e| {
        format!("cannot read /proc to find the running modman: {e}; nothing was signalled")
    })?;
    let mut pids: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            // A process that ended meanwhile, or one we may not read, is
            // not ours to signal.
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
            run_config(&cmdline, name)
                .is_some_and(|theirs| resolved(&theirs, cwd.as_deref()) == config)
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The `--config` of a command line (NUL-separated, as in
/// /proc/PID/cmdline) that runs the executable named `name` as
/// `run`; none for any other command line.
fn run_config(cmdline: &[u8], name: &OsStr) -> Option<PathBuf> {
    let mut args = cmdline
        .split(|&b| b == 0)
        .map(OsStr::from_bytes)
        .filter(|a| !a.is_empty());
    if Path::new(args.next()?).file_name()? != name || args.next()? != "run" {
        return None;
    }
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if arg == "--config" || arg == "-c" {
            return args.next().map(PathBuf::from);
        }
        for prefix in [&b"--config="[..], b"-c"] {
            if let Some(value) = bytes.strip_prefix(prefix) {
                return Some(PathBuf::from(OsString::from(OsStr::from_bytes(value))));
            }
        }
    }
    None
}

/// `path` as the file it names: relative to `cwd` (the process's, or
/// ours), with symlinks resolved where it exists.
fn resolved(path: &Path, cwd: Option<&Path>) -> PathBuf {
    match cwd {
        Some(cwd) => modman::fsutil::resolved(&cwd.join(path)),
        None => modman::fsutil::resolved(path),
    }
}

fn hang_up(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, libc::SIGHUP) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(cmdline: &str) -> Option<PathBuf> {
        run_config(cmdline.replace(' ', "\0").as_bytes(), OsStr::new("modman"))
    }

    #[test]
    fn a_run_s_config_is_read_in_each_spelling() {
        for cmdline in [
            "/usr/bin/modman run --config /etc/modman/modman.toml ",
            "modman run -c /etc/modman/modman.toml",
            "/opt/modman run --config=/etc/modman/modman.toml",
            "./modman run -c/etc/modman/modman.toml",
        ] {
            assert_eq!(
                config_of(cmdline),
                Some(PathBuf::from("/etc/modman/modman.toml")),
                "{cmdline}"
            );
        }
    }

    #[test]
    fn other_commands_and_programs_are_not_a_run() {
        for cmdline in [
            "/usr/bin/modman reload --config /etc/modman/modman.toml",
            "/usr/bin/modman check --config /etc/modman/modman.toml",
            "/usr/bin/vim run --config /etc/modman/modman.toml",
            "/usr/bin/modman-old run --config /etc/modman/modman.toml",
            "/usr/bin/modman run",
            "/usr/bin/modman run --config",
            "/usr/bin/modman",
            "",
        ] {
            assert_eq!(config_of(cmdline), None, "{cmdline}");
        }
    }

    #[test]
    fn a_relative_config_is_read_from_the_process_s_directory() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("modman.toml");
        std::fs::write(&toml, "").unwrap();
        let theirs = config_of("modman run -c ./modman.toml").unwrap();
        assert_eq!(resolved(&theirs, Some(dir.path())), resolved(&toml, None));
        assert_ne!(
            resolved(&theirs, Some(Path::new("/"))),
            resolved(&toml, None)
        );
    }
}
