//! Checks `downstream_triggers` across all pipelines at discovery: every target
//! exists (with the run configuration it names), and no chain leads back to a
//! pipeline it started from. Each problem is an error on the pipeline that
//! declares it, naming the cycle, so nothing loops at run time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::discovery::Pipeline;
use super::fields::FieldIssue;
use super::run_config::known_list;

/// Adds the problems to the pipelines they concern (copied on write; the others stay shared).
pub fn check(pipelines: &mut BTreeMap<String, Arc<Pipeline>>) {
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
            Arc::make_mut(p).errors.push(issue);
        }
    }
    warn_fan_in(pipelines);
}

/// A pipeline that several pipelines start runs once after each of them; in a
/// diamond (a → b, a → c, b → d, c → d) one run of `a` makes two of `d`. Said on `d`.
fn warn_fan_in(pipelines: &mut BTreeMap<String, Arc<Pipeline>>) {
    let mut upstream: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, p) in pipelines.iter() {
        for t in &p.metadata.downstream_triggers {
            if t.pipeline != *name {
                upstream
                    .entry(t.pipeline.clone())
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    for (target, from) in upstream {
        if from.len() < 2 {
            continue;
        }
        if let Some(p) = pipelines.get_mut(&target) {
            let p = Arc::make_mut(p);
            let names: Vec<&str> = from.iter().map(String::as_str).take(10).collect();
            let more = if from.len() > 10 { ", …" } else { "" };
            p.warnings.push(FieldIssue {
                file: Some(String::new()),
                field: String::new(),
                message: format!(
                    "started downstream by {} pipelines ({}{more}): it runs once after each of them, so a chain that reaches it along several paths starts it several times",
                    from.len(),
                    names.join(", ")
                ),
            });
        }
    }
}

/// For every pipeline on a cycle: the shortest cycle through it, as names from and
/// back to it. Strongly connected components first (linear in pipelines and
/// triggers), so only pipelines that are on a cycle are searched, within their component.
fn cycles(pipelines: &BTreeMap<String, Arc<Pipeline>>) -> Vec<(String, Vec<String>)> {
    let names: Vec<&str> = pipelines.keys().map(String::as_str).collect();
    let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let edges: Vec<Vec<usize>> = pipelines
        .values()
        .map(|p| {
            let targets: BTreeSet<usize> = p
                .metadata
                .downstream_triggers
                .iter()
                .filter_map(|t| index.get(t.pipeline.as_str()).copied())
                .collect();
            targets.into_iter().collect()
        })
        .collect();
    let component = strongly_connected(&edges);
    let mut size = vec![0usize; names.len()];
    for c in &component {
        size[*c] += 1;
    }
    let mut out = Vec::new();
    for start in 0..names.len() {
        let c = component[start];
        if size[c] < 2 && !edges[start].contains(&start) {
            continue;
        }
        // Breadth-first inside the component until `start` comes back.
        let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue: VecDeque<usize> = VecDeque::new();
        for &t in &edges[start] {
            if component[t] == c && !came_from.contains_key(&t) {
                came_from.insert(t, start);
                queue.push_back(t);
            }
        }
        while let Some(node) = queue.pop_front() {
            if node == start {
                break;
            }
            for &t in &edges[node] {
                if component[t] == c && !came_from.contains_key(&t) {
                    came_from.insert(t, node);
                    queue.push_back(t);
                }
            }
        }
        let mut path = vec![names[start].to_string()];
        let mut at = came_from.get(&start).copied();
        while let Some(node) = at {
            path.push(names[node].to_string());
            if node == start {
                break;
            }
            at = came_from.get(&node).copied();
        }
        path.reverse();
        out.push((names[start].to_string(), path));
    }
    out
}

/// Tarjan's algorithm without recursion: the component number of each node.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = edges.len();
    let (mut order, mut low, mut component) = (vec![UNSEEN; n], vec![0; n], vec![UNSEEN; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut next_order, mut next_component) = (Vec::new(), 0, 0);
    for root in 0..n {
        if order[root] != UNSEEN {
            continue;
        }
        // (node, index of the next edge to look at)
        let mut work = vec![(root, 0usize)];
        while let Some((node, edge)) = work.pop() {
            if edge == 0 {
                order[node] = next_order;
                low[node] = next_order;
                next_order += 1;
                stack.push(node);
                on_stack[node] = true;
            }
            if let Some(&t) = edges[node].get(edge) {
                work.push((node, edge + 1));
                if order[t] == UNSEEN {
                    work.push((t, 0));
                } else if on_stack[t] {
                    low[node] = low[node].min(order[t]);
                }
                continue;
            }
            if low[node] == order[node] {
                while let Some(m) = stack.pop() {
                    on_stack[m] = false;
                    component[m] = next_component;
                    if m == node {
                        break;
                    }
                }
                next_component += 1;
            }
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[node]);
            }
        }
    }
    component
}

#[cfg(test)]
mod tests {
    use super::strongly_connected;

    #[test]
    fn components() {
        // 0 → 1 → 2 → 0, 2 → 3, 3 → 3, 4 alone
        let edges = vec![vec![1], vec![2], vec![0, 3], vec![3], vec![]];
        let c = strongly_connected(&edges);
        assert!(c[0] == c[1] && c[1] == c[2]);
        assert!(c[3] != c[0] && c[4] != c[3] && c[4] != c[0]);
        // A long chain is not a cycle and does not overflow the stack.
        let chain: Vec<Vec<usize>> = (0..200_000)
            .map(|i| if i + 1 < 200_000 { vec![i + 1] } else { vec![] })
            .collect();
        let c = strongly_connected(&chain);
        let distinct: std::collections::BTreeSet<usize> = c.into_iter().collect();
        assert_eq!(distinct.len(), 200_000);
    }
}
