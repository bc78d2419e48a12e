//! `modman setup --undo`: takes out of prosody.cfg.lua exactly what
//! setup put in, and nothing an admin wrote meanwhile, so a server that
//! tried modman goes back to the config it had, byte for byte.
//!
//! setup marks everything it writes: whole lines come in blocks between
//! [`BEGIN`] and [`END`] (a block at the end of the file has a blank line
//! before it, any other a blank line after it), and an item added to an
//! existing list (`modules_enabled = { "admin_shell"; ...`) is named in a
//! mark at the end of that line ([`mark_added`]), so the line is given
//! back as it was.

use std::path::{Path, PathBuf};

use crate::engine::admin_socket::{AdminSocket, ModuleAction};
use crate::engine::managed_config::ManagedConfig;

/// The first line of a block setup wrote.
pub const BEGIN: &str = "-- modman setup: begin (`modman setup --undo` takes this block out)";
/// The last line of a block setup wrote.
pub const END: &str = "-- modman setup: end";
/// Starts the mark of items setup added to an existing list on that line.
const ADDED: &str = " -- modman setup added:";

/// The text setup inserts after a list's `{` for `item`.
pub fn list_item(item: &str) -> String {
    format!(" \"{item}\";")
}

/// Names `item` in the mark at the end of `line`, starting the mark if
/// the line has none.
pub fn mark_added(line: &mut String, item: &str) {
    if !line.contains(ADDED) {
        line.push_str(ADDED);
    }
    line.push_str(&format!(" \"{item}\""));
}

/// prosody.cfg.lua without what setup wrote, and how many lines were
/// taken out or given back; `Err` if a block has no end (edited by hand:
/// nothing is taken out then, the admin decides).
pub fn strip(text: &str) -> Result<(String, usize), String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut touched = 0;
    while let Some(begin) = lines.iter().position(|l| l == BEGIN) {
        // The block ends at the first END, and before any other BEGIN:
        // one whose END was deleted must not swallow the admin's lines
        // up to the next block's END.
        let end = lines[begin + 1..]
            .iter()
            .position(|l| l == END || l == BEGIN)
            .map(|n| begin + 1 + n)
            .filter(|&end| lines[end] == END)
            .ok_or_else(|| {
                format!(
                    "line {}: a block modman setup wrote has no `{END}` line after it; it was edited by hand: take it out by hand; nothing was changed",
                    begin + 1
                )
            })?;
        let (mut from, mut to) = (begin, end + 1);
        if to == lines.len() {
            if from > 0 && lines[from - 1].is_empty() {
                from -= 1;
            }
        } else if lines[to].is_empty() {
            to += 1;
        }
        touched += to - from;
        lines.drain(from..to);
    }
    for line in &mut lines {
        let Some(at) = line.rfind(ADDED) else {
            continue;
        };
        let items: Vec<String> = line[at + ADDED.len()..]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        line.truncate(at);
        for item in items {
            let added = list_item(&item);
            if let Some(brace) = line.find('{') {
                if let Some(found) = line[brace..].find(&added) {
                    line.replace_range(brace + found..brace + found + added.len(), "");
                }
            }
        }
        touched += 1;
    }
    Ok((lines.join("\n") + "\n", touched))
}

/// Where the undo works: the files setup wrote or edited.
pub struct UndoOptions {
    pub prosody_config: PathBuf,
    pub managed_config: PathBuf,
    pub admin_socket: PathBuf,
    /// What setup created and `--undo` leaves: said, with how to remove it.
    pub left: Vec<PathBuf>,
}

/// What the undo did.
pub struct Undone {
    pub backup: PathBuf,
    /// Lines taken out or given back.
    pub lines: usize,
    /// `(module, host)` unloaded from the running Prosody.
    pub unloaded: Vec<(String, String)>,
    /// Why modules were not unloaded, or which Prosody refused.
    pub notes: Vec<String>,
}

/// Takes setup's lines out of prosody.cfg.lua (backed up first, owner,
/// group and mode kept), then unloads from the running Prosody the
/// modules the managed config enabled, which it no longer Includes.
pub async fn undo(options: &UndoOptions) -> Result<Undone, String> {
    let path = &options.prosody_config;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}; nothing was changed", path.display()))?;
    let (undone, lines) = strip(&text)?;
    if lines == 0 {
        return Err(format!(
            "{} holds no line modman setup wrote; nothing was changed",
            path.display()
        ));
    }
    // Read before the Include goes: what Prosody loaded through it.
    let enabled = ManagedConfig::load(&options.managed_config).unwrap_or_default();
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let backup = PathBuf::from(format!("{}.modman-undo-{stamp}.bak", path.display()));
    crate::fsutil::copy_keeping_owner(path, &backup).map_err(|e| {
        format!(
            "cannot back up {}: {e}; nothing was changed",
            path.display()
        )
    })?;
    crate::fsutil::atomic_write(path, undone.as_bytes()).map_err(|e| {
        format!(
            "cannot write {}: {e}; it is unchanged (backup: {})",
            path.display(),
            backup.display()
        )
    })?;
    let mut done = Undone {
        backup,
        lines,
        unloaded: Vec::new(),
        notes: Vec::new(),
    };
    unload(&options.admin_socket, &enabled, &mut done).await;
    Ok(done)
}

/// Unloads each module the managed config enabled, where Prosody runs it.
async fn unload(socket: &Path, enabled: &ManagedConfig, done: &mut Undone) {
    let wanted: Vec<(&String, &String)> = enabled
        .hosts
        .iter()
        .flat_map(|(host, section)| section.modules.iter().map(move |m| (m, host)))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let mut admin = match AdminSocket::connect(socket).await {
        Ok(admin) => admin,
        Err(e) => {
            done.notes.push(format!(
                "the modules modman enabled were not unloaded ({e}); they go at Prosody's next restart"
            ));
            return;
        }
    };
    for (module, host) in wanted {
        match admin.module(ModuleAction::Unload, module, host).await {
            Ok(Ok(())) => done.unloaded.push((module.clone(), host.clone())),
            Ok(Err(refused)) => done.notes.push(format!(
                "Prosody did not unload {module} on {host}: {refused}"
            )),
            Err(e) => done.notes.push(format!(
                "cannot unload {module} on {host}: {e}; it goes at Prosody's next restart"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_setup_s_marked_lines_go_and_the_rest_is_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let original = super::super::tests::DEBIAN_LIKE;
        let options = super::super::tests::options(dir.path());
        let setup = super::super::plan(&options).unwrap();
        assert_ne!(setup.prosody_cfg, original);
        let (undone, lines) = strip(&setup.prosody_cfg).unwrap();
        assert_eq!(undone, original);
        assert!(lines > 0);
        // What the admin wrote meanwhile stays.
        let edited = setup.prosody_cfg.replace(
            "VirtualHost \"localhost\"",
            "VirtualHost \"localhost\"\n-- mine",
        );
        let (undone, _) = strip(&edited).unwrap();
        assert_eq!(
            undone,
            original.replace(
                "VirtualHost \"localhost\"",
                "VirtualHost \"localhost\"\n-- mine"
            )
        );
        // A block cut short by hand is left to the admin.
        let cut = setup.prosody_cfg.replacen(END, "", 1);
        assert!(strip(&cut).unwrap_err().contains("edited by hand"));
        // Nothing of setup's: nothing to take out.
        assert_eq!(strip(original).unwrap(), (original.to_owned(), 0));
    }
}
