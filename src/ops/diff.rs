//! `diff`: the code change an update would bring to one module, as a
//! unified diff of the installed copy on disk against the copy its
//! repository offers now (downloaded and verified against the signed
//! index, as `update` would). Changes nothing. Bounded: past
//! [`MAX_LINES`] lines or [`MAX_BYTES`] bytes the diff is cut, saying how
//! much was left out and where the whole new copy is.

use super::changes::{self, Changes};
use super::info::update_text;
use super::updates::{self, UpdateStatus};
use super::Consent;
use super::{params, Field, Module, ParamKind, Params};
use super::{Access, Command, Context, Details, OpError, Response, Spec};
use crate::access::Actor;
use crate::linediff;

/// Lines of diff in one answer at most: a screen or two of a chat.
pub const MAX_LINES: usize = 400;
/// Bytes of diff in one answer at most.
pub const MAX_BYTES: usize = 48 * 1024;
/// Unchanged lines shown around each change, as `diff -u` does.
const CONTEXT: usize = 3;

/// Shows what updating module `name` would change in its code.
#[derive(Debug)]
pub struct Diff {
    name: String,
}

params! {
    /// What `Diff` takes.
    pub struct DiffParams {
        module: Module = Field {
            label: "Module",
            help: "An installed module with an update, such as lastlog.",
            kind: ParamKind::Text,
            required: true,
        },
    }
}

impl Command for Diff {
    type Params = DiffParams;

    const SPEC: Spec = Spec {
        access: Access::Read,
        node: "diff",
        name: "Show an update's code change",
        instructions: "Show, as a unified diff, what updating a module would change in its code: the installed copy against the one its repository offers now. Nothing is changed.",
        params: DiffParams::FIELDS,
    };

    fn new(DiffParams { module }: DiffParams, _consent: Consent) -> Result<Self, OpError> {
        Ok(Diff { name: module.0 })
    }

    async fn apply(self, ctx: &Context, _actor: &Actor) -> Result<Response, OpError> {
        let name = self.name;
        let installed = ctx.engine.installed()?;
        let record = installed.modules.get(&name).ok_or_else(|| {
            OpError::not_found(format!(
                "{name} is not installed by modman, so there is no installed copy to compare; info {name} shows what is on offer"
            ))
        })?;
        let catalog = ctx.catalog();
        let (to, repository) =
            match updates::status(&catalog, &ctx.config.repositories, &name, record) {
                UpdateStatus::Available { to, repository, .. } => (to, repository),
                status => {
                    return Err(OpError::conflict(format!(
                        "{name} has no update to compare with ({}); nothing was fetched",
                        update_text(status)
                    )))
                }
            };
        catalog.check_fresh(repository)?;
        let archive = ctx.fetcher.archive(repository, to).await?;
        let on_disk = ctx.engine.installed_copy(&name, record);
        // An available update is never an earlier version (see updates).
        let forward = updates::Direction::Forward;
        let summary = Changes::between(&name, (record, &on_disk), to, &archive, forward).lines();
        let mut diff = Bounded::default();
        for (path, (before, after)) in changes::sides(&on_disk, &archive) {
            if before.is_some() && before == after {
                continue;
            }
            let (old, new) = (
                before.map_or("/dev/null".to_owned(), |_| format!("a/{path}")),
                after.map_or("/dev/null".to_owned(), |_| format!("b/{path}")),
            );
            match changes::texts(before, after) {
                Some((old_text, new_text)) => {
                    let script = linediff::diff(old_text, new_text);
                    diff.push(path, [format!("--- {old}"), format!("+++ {new}")]);
                    diff.push(path, linediff::unified(&script, CONTEXT));
                }
                None => diff.push(path, [format!("Binary files {old} and {new} differ")]),
            }
        }
        let whole = crate::repo::fetch::url_of(repository, &to.archive)
            .map(|url| format!("the whole new copy is {url}"))
            .unwrap_or_default();
        Ok(Response::Details(Details {
            title: format!("mod_{name}: {} -> {}", record.version, to.version),
            fields: vec![
                ("module", "Module", name.clone()),
                ("from", "Installed", record.version.clone()),
                ("to", "Update", to.version.clone()),
                ("changes", "What changes", summary.join("\n")),
                ("diff", "Diff", diff.finish(&whole)),
            ],
            whole_at: vec![("diff", whole)],
        }))
    }
}

/// Diff lines kept within [`MAX_LINES`] and [`MAX_BYTES`], counting what
/// is left out.
#[derive(Default)]
struct Bounded {
    lines: Vec<String>,
    bytes: usize,
    left_out: usize,
    files_cut: std::collections::BTreeSet<String>,
}

impl Bounded {
    fn push(&mut self, path: &str, lines: impl IntoIterator<Item = String>) {
        for line in lines {
            let line = crate::clean::clean(&line).into_owned();
            if self.left_out > 0
                || self.lines.len() >= MAX_LINES
                || self.bytes + line.len() + 1 > MAX_BYTES
            {
                self.left_out += 1;
                self.files_cut.insert(path.to_owned());
                continue;
            }
            self.bytes += line.len() + 1;
            self.lines.push(line);
        }
    }

    /// The text, with what was cut said at its end.
    fn finish(mut self, whole: &str) -> String {
        if self.left_out > 0 {
            self.lines.push(format!(
                "... cut here: {} more lines of the diff, in {} file{}, were left out to keep this answer short; {whole}",
                self.left_out,
                self.files_cut.len(),
                if self.files_cut.len() == 1 { "" } else { "s" }
            ));
        }
        self.lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_diff_is_cut_saying_how_much_and_where_the_whole_is() {
        let mut diff = Bounded::default();
        diff.push("a.lua", (0..MAX_LINES).map(|i| format!("+{i}")));
        diff.push("b.lua", ["+more".to_owned(), "-less".to_owned()]);
        let text = diff.finish("the whole new copy is http://127.0.0.1/x.tar.gz");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert!(lines[MAX_LINES].starts_with("... cut here: 2 more lines of the diff, in 1 file,"));
        assert!(lines[MAX_LINES].ends_with("http://127.0.0.1/x.tar.gz"));
        let mut short = Bounded::default();
        short.push("a.lua", ["+\u{1b}x".to_owned()]);
        assert_eq!(short.finish(""), "+\u{FFFD}x");
    }
}
