//! Checks `downstream_triggers` across all pipelines at discovery: every target
//! exists (with the run configuration it names), and no chain leads back to a
//! pipeline it started from. Each problem is an error on the pipeline that
//! declares it, naming the cycle, so nothing loops at run time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::discovery::Pipeline;
use super::fields::FieldIssue;
use super::run_config::known_list;

pub fn check(pipelines: &mut BTreeMap<String, Pipeline>) {
    let mut found: Vec<(String, FieldIssue)> = Vec::new();
    for (name, p) in pipelines.iter() {
        for (i, t) in p.metadata.downstream_triggers.iter().enumerate() {
            let issue = |field: &str, message: String| {
                (
                    name.clone(),
                    FieldIssue {
                        file: None,
                        field: format!("downstream_triggers[{i}].{field}"),
                        message,
                    },
                )
            };
            match pipelines.get(&t.pipeline) {
                None => found.push(issue(
                    "pipeline",
                    format!("pipeline `{}` does not exist in PIPELINES_DIR", t.pipeline),
                )),
                Some(target) => {
                    if let Some(id) = &t.run_config_id
                        && target.run_config(id).is_none()
                    {
                        found.push(issue(
                            "run_config_id",
                            format!(
                                "pipeline `{}` has no run configuration `{id}` (known: {})",
                                t.pipeline,
                                known_list(&target.run_config_ids())
                            ),
                        ));
                    }
                }
            }
        }
    }
    for (name, cycle) in cycles(pipelines) {
        found.push((
            name,
            FieldIssue {
                file: None,
                field: "downstream_triggers".into(),
                message: format!(
                    "forms a cycle: {}; a downstream chain must end, or it would run forever",
                    cycle.join(" → ")
                ),
            },
        ));
    }
    for (name, issue) in found {
        if let Some(p) = pipelines.get_mut(&name) {
            p.errors.push(issue);
        }
    }
}

/// For every pipeline on a cycle: the shortest cycle through it, as names from and back to it.
fn cycles(pipelines: &BTreeMap<String, Pipeline>) -> Vec<(String, Vec<String>)> {
    let next = |name: &str| -> BTreeSet<&str> {
        pipelines.get(name).map_or_else(BTreeSet::new, |p| {
            p.metadata
                .downstream_triggers
                .iter()
                .map(|t| t.pipeline.as_str())
                .filter(|t| pipelines.contains_key(*t))
                .collect()
        })
    };
    let mut out = Vec::new();
    for start in pipelines.keys() {
        // Breadth-first from `start`'s targets until `start` comes back.
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue: VecDeque<&str> = VecDeque::new();
        for t in next(start) {
            if !came_from.contains_key(t) {
                came_from.insert(t, start.as_str());
                queue.push_back(t);
            }
        }
        let mut closed = false;
        while let Some(node) = queue.pop_front() {
            if node == start {
                closed = true;
                break;
            }
            for t in next(node) {
                if !came_from.contains_key(t) {
                    came_from.insert(t, node);
                    queue.push_back(t);
                }
            }
        }
        if closed {
            let mut path = vec![start.clone()];
            let mut at = came_from.get(start.as_str()).copied();
            while let Some(node) = at {
                path.push(node.to_string());
                if node == start {
                    break;
                }
                at = came_from.get(node).copied();
            }
            path.reverse();
            out.push((start.clone(), path));
        }
    }
    out
}
