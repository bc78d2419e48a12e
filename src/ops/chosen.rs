//! A chosen version that a LuaRocks server only lists: a refresh reads
//! no rock but each module's newest, so the rock of an earlier version is
//! downloaded, pinned and read when an admin names it (`install
//! x@VERSION`, `update x@VERSION`), before the plan is made, and then
//! planned as any earlier build is.

use std::sync::Arc;

use super::context::Context;
use super::error::OpError;
use super::input::Wanted;
use crate::config::{Repository, RepositoryKind};
use crate::engine::state::Installed;
use crate::repo::catalog::{self, Catalog};
use crate::repo::index::ModuleEntry;

/// `catalog`, with the rock of each version in `wanted` that its
/// repository lists but has not read yet read in, as an earlier build of
/// its module; `catalog` itself when there is none. The module is looked
/// for where the plan will look: an installed module's own repository.
pub async fn read_listed(
    ctx: &Context,
    catalog: Arc<Catalog>,
    installed: &Installed,
    wanted: &[(Wanted, String)],
) -> Result<Arc<Catalog>, OpError> {
    let mut read = Vec::new();
    for (Wanted { name, version }, _) in wanted {
        let Some(version) = version else { continue };
        let found = match installed.modules.get(name) {
            Some(record) => catalog.find_in(&record.repository, name),
            None => catalog.find(name),
        };
        // Only a LuaRocks server's versions are listed without a build.
        let listed = |(repository, entry): &(&Repository, &ModuleEntry)| {
            repository.kind == RepositoryKind::LuaRocks && entry.is_only_listed(version)
        };
        let Some((repository, entry)) = found.filter(listed) else {
            continue;
        };
        let Some(source) = (catalog.sources.iter()).find(|s| s.repository.name == repository.name)
        else {
            continue;
        };
        let earlier = catalog::listed_version(
            &ctx.config,
            ctx.engine.store(),
            &ctx.fetcher,
            repository,
            &source.index,
            entry,
            version,
        )
        .await
        .map_err(|e| {
            OpError::unavailable(format!(
                "{} lists {name} {version}, but its rock could not be used: {e}; {name} {} and the other versions it lists can still be chosen",
                repository.name, entry.version
            ))
        })?;
        read.push((repository.name.clone(), name.clone(), earlier));
    }
    if read.is_empty() {
        return Ok(catalog);
    }
    let mut catalog = (*catalog).clone();
    for (repository, name, earlier) in read {
        let source = catalog
            .sources
            .iter_mut()
            .find(|s| s.repository.name == repository);
        let entry = source.and_then(|s| {
            let index = Arc::make_mut(&mut s.index);
            index.modules.iter_mut().find(|m| m.name == name)
        });
        if let Some(entry) = entry {
            entry.previous.push(earlier);
        }
    }
    Ok(Arc::new(catalog))
}
