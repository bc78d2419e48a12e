//! The READMEs of an index in use, kept on disk rather than in memory.
//!
//! A module's description (its README) is most of what an index weighs,
//! and only `info`, `configure` and an install's option check read it,
//! one module at a time. Held in memory, a 20,000-module index kept
//! modman well above Prosody's own footprint while it idled. Once an
//! index is verified and parsed, its descriptions are written to an
//! anonymous file in the state directory (unlinked from the start, so it
//! never outlives the process or the index that owns it, and a refresh
//! that replaces the index drops it with the last reader) and read back,
//! bounded, when asked for.
//!
//! Where it can, the index is parsed with its descriptions going straight
//! to that file ([`Descriptions::parse`]): each is allocated, written and
//! freed at once. Taken out after the parse instead, every description
//! left a hole between the entries kept that the allocator could not give
//! back (a 700-byte hole in each page), so a 20,000-module index held
//! its READMEs' worth of memory after they were gone.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;

use serde::Deserialize;

use super::index::{limits, Index};
use crate::store::Store;

thread_local! {
    /// Where the index being parsed on this thread by
    /// [`Descriptions::parse`] puts its descriptions; `None` otherwise.
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// The descriptions of the index being parsed, as they are read.
struct Sink {
    out: BufWriter<File>,
    spans: Vec<(u64, u32)>,
    offset: u64,
    failed: Option<std::io::Error>,
}

impl Sink {
    fn push(&mut self, text: &str) {
        if self.failed.is_some() {
            return;
        }
        // Bounded far below u32::MAX by the caller.
        let len = text.len() as u32;
        match self.out.write_all(text.as_bytes()) {
            Ok(()) => {
                self.spans.push((self.offset, len));
                self.offset += u64::from(len);
            }
            Err(e) => self.failed = Some(e),
        }
    }
}

/// Deserialises a module's description: into the file of the index that
/// [`Descriptions::parse`] is parsing on this thread, leaving the entry's
/// empty, or else as it is. Cleaned as [`super::index::ModuleEntry::clean_text`]
/// cleans it; one over [`limits::DESCRIPTION`] stays in the entry, for
/// the bounds check to refuse the index with its usual reason.
pub(super) fn read<'de, D: serde::Deserializer<'de>>(from: D) -> Result<String, D::Error> {
    let mut text = String::deserialize(from)?;
    SINK.with(|sink| match sink.borrow_mut().as_mut() {
        Some(sink) if text.len() <= limits::DESCRIPTION => {
            crate::clean::clean_in_place(&mut text);
            sink.push(&text);
            Ok(String::new())
        }
        _ => Ok(text),
    })
}

/// Where each module's description is in the file: its offset and
/// length, in the order of the index's modules.
#[derive(Debug)]
struct Spans {
    file: File,
    spans: Vec<(u64, u32)>,
}

/// The descriptions of one index: on disk, or (when they could not be
/// written there) still in the index's entries.
#[derive(Debug, Default)]
pub struct Descriptions(Option<Spans>);

impl Descriptions {
    /// The index `parse` returns (it parses one index, on this thread),
    /// its descriptions written to an anonymous file in `store` as they are
    /// read (see the module documentation). If the file cannot be made
    /// or written, `parse` runs again as it would alone and
    /// [`Descriptions::take`] has its go.
    pub fn parse<E>(
        store: &Store,
        parse: impl Fn() -> Result<Index, E>,
    ) -> Result<(Index, Descriptions), E> {
        if let Ok(file) = store.scratch() {
            let sink = Sink {
                out: BufWriter::new(file),
                spans: Vec::new(),
                offset: 0,
                failed: None,
            };
            /// Clears this thread's sink however the parse ends.
            struct Clear;
            impl Drop for Clear {
                fn drop(&mut self) {
                    SINK.with(|cell| cell.borrow_mut().take());
                }
            }
            SINK.with(|cell| *cell.borrow_mut() = Some(sink));
            let clear = Clear;
            let parsed = parse();
            let sink = SINK.with(|cell| cell.borrow_mut().take());
            drop(clear);
            let index = parsed?;
            if let Some(Sink {
                out,
                spans,
                failed: None,
                ..
            }) = sink
            {
                if let Ok(file) = out.into_inner() {
                    if spans.len() == index.modules.len() {
                        return Ok((index, Descriptions(Some(Spans { file, spans }))));
                    }
                }
            }
        }
        let mut index = parse()?;
        let descriptions = Descriptions::take(&mut index, store);
        Ok((index, descriptions))
    }

    /// Moves `index`'s descriptions into an anonymous file in `store`,
    /// leaving each entry's empty. If the file cannot be written, they
    /// stay where they are (logged): memory, not correctness, is at stake.
    pub fn take(index: &mut Index, store: &Store) -> Descriptions {
        match write(index, store) {
            Ok(spans) => {
                for module in &mut index.modules {
                    module.description = String::new();
                }
                Descriptions(Some(spans))
            }
            Err(e) => {
                tracing::warn!(
                    "cannot keep the READMEs of repository {} in {}: {e}; they stay in memory",
                    index.repository,
                    store.dir().display()
                );
                Descriptions(None)
            }
        }
    }

    /// The description of the module at `position` in `index` (the index
    /// these were taken from). An unreadable one is empty, logged: it
    /// only words `info`.
    pub fn get(&self, index: &Index, position: usize) -> String {
        let Some(Spans { file, spans }) = &self.0 else {
            return (index.modules.get(position))
                .map(|m| m.description.clone())
                .unwrap_or_default();
        };
        let Some(&(offset, len)) = spans.get(position) else {
            return String::new();
        };
        // Bounded as the index was when parsed.
        let mut bytes = vec![0; (len as usize).min(limits::DESCRIPTION)];
        match file.read_exact_at(&mut bytes, offset) {
            Ok(()) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                tracing::warn!(
                    "cannot read the README of a module of repository {} back: {e}",
                    index.repository
                );
                String::new()
            }
        }
    }
}

fn write(index: &Index, store: &Store) -> std::io::Result<Spans> {
    let file = store.scratch()?;
    let mut out = std::io::BufWriter::new(&file);
    let mut spans = Vec::with_capacity(index.modules.len());
    let mut offset = 0u64;
    for module in &index.modules {
        let text = module.description.as_bytes();
        // Index::parse bounds each description far below u32::MAX.
        let len = u32::try_from(text.len()).map_err(std::io::Error::other)?;
        out.write_all(text)?;
        spans.push((offset, len));
        offset += u64::from(len);
    }
    out.flush()?;
    drop(out);
    Ok(Spans { file, spans })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::index::tests::{entry, index_of};
    use crate::repo::index::Index;

    #[test]
    fn descriptions_leave_memory_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let described = |name: &str, text: &str| {
            let mut module = entry(name);
            module.description = text.into();
            module
        };
        let mut index = index_of(vec![
            described("a", "first README"),
            described("b", ""),
            described("c", "é and more"),
        ]);
        let descriptions = Descriptions::take(&mut index, &Store::at(dir.path()));
        assert!(index.modules.iter().all(|m| m.description.is_empty()));
        assert_eq!(descriptions.get(&index, 0), "first README");
        assert_eq!(descriptions.get(&index, 1), "");
        assert_eq!(descriptions.get(&index, 2), "é and more");
        assert_eq!(descriptions.get(&index, 3), "");
        // The file is anonymous: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_index_parsed_for_the_catalog_sends_its_descriptions_to_disk_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let described = |name: &str, text: &str| {
            let mut module = entry(name);
            module.description = text.into();
            module
        };
        let bytes = index_of(vec![
            described("a", "first README"),
            described("b", "with \u{1b}[31m an escape"),
        ])
        .to_json();
        let (index, descriptions) =
            Descriptions::parse(&Store::at(dir.path()), || Index::parse(&bytes)).unwrap();
        assert!(index.modules.iter().all(|m| m.description.is_empty()));
        assert_eq!(descriptions.get(&index, 0), "first README");
        assert_eq!(descriptions.get(&index, 1), "with \u{fffd}[31m an escape");
        // Parsed alone afterwards, on the same thread, an index keeps them.
        let alone = Index::parse(&bytes).unwrap();
        assert_eq!(alone.modules[0].description, "first README");
        // A refused index is refused as it would be alone.
        let broken = b"{";
        assert!(Descriptions::parse(&Store::at(dir.path()), || Index::parse(broken)).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn where_they_cannot_be_written_they_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        let mut module = entry("a");
        module.description = "kept".into();
        let mut index = index_of(vec![module]);
        let descriptions = Descriptions::take(&mut index, &Store::at(&blocked.join("under")));
        assert_eq!(index.modules[0].description, "kept");
        assert_eq!(descriptions.get(&index, 0), "kept");
    }
}
