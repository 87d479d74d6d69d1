//! What a sync changed: pipelines added, changed and removed, from the two scans
//! and the folders' git tree ids (a folder whose id differs changed somewhere inside).

use std::collections::BTreeSet;

use super::FolderIds;
use crate::pipelines::Snapshot;

/// Pipelines added, changed (any file of their folder) and removed between two
/// scans; `ids` are the folders' tree ids in the old and the new commit.
pub(super) fn pipeline_changes(
    before: &Snapshot,
    after: &Snapshot,
    ids: &(FolderIds, FolderIds),
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let old: BTreeSet<&String> = before.pipelines.keys().collect();
    let new: BTreeSet<&String> = after.pipelines.keys().collect();
    let added = new.difference(&old).map(|s| s.to_string()).collect();
    let removed = old.difference(&new).map(|s| s.to_string()).collect();
    let changed = new
        .intersection(&old)
        .filter(|name| ids.0.get(**name) != ids.1.get(**name))
        .map(|s| s.to_string())
        .collect();
    (added, changed, removed)
}

/// Pipelines of `after` with a `requirements.txt` that `before` did not have, or
/// had with other content: the ones whose dependencies need warming.
pub(super) fn requirements_changed(
    before: &Snapshot,
    after: &Snapshot,
) -> Vec<std::sync::Arc<crate::pipelines::Pipeline>> {
    after
        .pipelines
        .values()
        .filter(|p| p.has_requirements)
        .filter(|p| {
            before
                .pipelines
                .get(&p.name)
                .is_none_or(|old| old.requirements != p.requirements)
        })
        .cloned()
        .collect()
}
