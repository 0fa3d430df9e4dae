//! Paths: from a start step (what actors did next) or towards an end step (what led there), up
//! to depth k, as the top N complete paths and a next-step tree with counts.
//!
//! Each actor contributes one path: from its first start event in the window, the next distinct
//! event, then the next after that, up to `depth` events in all and within the window after the
//! start (towards an end step: from its first end event, walking back). Consecutive repeats are
//! collapsed and noise routes skipped ([`crate::pass::next_event`]), so a node's count equals the
//! strict funnel's count on the same steps, and a node's drop-off (actors whose path ends there)
//! equals that funnel's drop-off.

use crate::pass::{Bounds, Cx, Key, NEVER, backward_start, deadlines, first_match, next_event};
use crate::step::{StepText, code_label};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct PathSpec {
    /// The start step, or with `towards` the end step.
    pub anchor: StepText,
    /// Walk back from the anchor (paths that lead to it).
    pub towards: bool,
    pub depth: usize,
    pub top: usize,
    pub window_ms: i64,
}

impl PathSpec {
    pub fn new(
        anchor: &str,
        towards: bool,
        depth: usize,
        top: usize,
        window_ms: i64,
    ) -> Result<PathSpec> {
        if !(2..=10).contains(&depth) {
            return Err(Error::InvalidQuery(format!(
                "`depth={depth}` must be between 2 and 10"
            )));
        }
        if !(1..=100).contains(&top) {
            return Err(Error::InvalidQuery(format!(
                "`top={top}` must be between 1 and 100"
            )));
        }
        if window_ms <= 0 {
            return Err(Error::InvalidQuery("`window` must be positive".into()));
        }
        let at = if towards { "end" } else { "start" };
        Ok(PathSpec {
            anchor: StepText::parse(anchor, at)?,
            towards,
            depth,
            top,
            window_ms,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathNode {
    pub event: String,
    /// Actors whose path passes through this node.
    pub actors: u64,
    /// Actors whose path ends here (no further distinct event within the window).
    pub dropped: u64,
    /// Actors of this node ÷ actors of its parent.
    pub share_of_parent: f64,
    pub children: Vec<PathNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopPath {
    /// In time order (towards an end step: ending at it).
    pub events: Vec<String>,
    pub actors: u64,
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathsAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub per: crate::step::Actor,
    pub anchor: String,
    pub direction: String,
    pub depth: usize,
    pub window_ms: i64,
    pub actors: u64,
    pub top_paths: Vec<TopPath>,
    /// Rooted at the anchor; children are the events after it (towards: before it), at most
    /// `top` per node, largest first.
    pub tree: PathNode,
}

/// A prefix tree of event codes with counts.
struct Trie {
    codes: Vec<u32>,
    counts: Vec<u64>,
    ends: Vec<u64>,
    children: Vec<Vec<(u32, usize)>>,
}

impl Trie {
    fn new(root: u32) -> Trie {
        Trie {
            codes: vec![root],
            counts: vec![0],
            ends: vec![0],
            children: vec![Vec::new()],
        }
    }

    fn child(&mut self, node: usize, code: u32) -> usize {
        if let Some((_, at)) = self.children[node].iter().find(|(c, _)| *c == code) {
            return *at;
        }
        let at = self.codes.len();
        self.codes.push(code);
        self.counts.push(0);
        self.ends.push(0);
        self.children.push(Vec::new());
        self.children[node].push((code, at));
        at
    }

    fn render(
        &self,
        node: usize,
        parent: u64,
        top: usize,
        label: &dyn Fn(u32) -> String,
    ) -> PathNode {
        let mut kids = self.children[node].clone();
        kids.sort_by(|a, b| self.counts[b.1].cmp(&self.counts[a.1]).then(a.0.cmp(&b.0)));
        kids.truncate(top);
        PathNode {
            event: label(self.codes[node]),
            actors: self.counts[node],
            dropped: self.ends[node],
            share_of_parent: valuetrace_facts::stats::ratio(
                self.counts[node] as f64,
                parent as f64,
            )
            .unwrap_or(1.0),
            children: kids
                .iter()
                .map(|(_, at)| self.render(*at, self.counts[node], top, label))
                .collect(),
        }
    }
}

/// Per depth, each actor's event key (`NEVER` once its path has ended).
pub fn walk(cx: &Cx, spec: &PathSpec, noise: &[bool], (from, to): (i64, i64)) -> Vec<Vec<Key>> {
    let anchor = spec.anchor.resolve(cx.names());
    let entry = first_match(cx, &anchor, (from, to), None, false).at;
    let (start, deadline) = if spec.towards {
        backward_start(&entry, spec.window_ms)
    } else {
        let deadline = deadlines(&entry, spec.window_ms);
        (entry, deadline)
    };
    let range = if spec.towards {
        (from.saturating_sub(spec.window_ms), to)
    } else {
        (from, to.saturating_add(spec.window_ms))
    };
    let mut levels = vec![start];
    while levels.len() < spec.depth {
        let bounds = Bounds {
            after: levels.last().expect("the anchor level is always there"),
            deadline: &deadline,
            backward: spec.towards,
        };
        let next = next_event(cx, range, &bounds, noise, None);
        if next.at.iter().all(|k| *k == NEVER) {
            break;
        }
        levels.push(next.at);
    }
    levels
}

pub fn answer(
    cx: &Cx,
    question: &valuetrace_facts::Question,
    spec: &PathSpec,
    noise: &[bool],
) -> PathsAnswer {
    let names = cx.names();
    let levels = walk(cx, spec, noise, (question.from, question.to));
    let decode = |key: Key| {
        if spec.towards {
            u32::MAX - key.1
        } else {
            key.1
        }
    };
    let anchor_code = levels[0]
        .iter()
        .find(|k| **k != NEVER)
        .map_or(0, |k| decode(*k));
    let mut trie = Trie::new(anchor_code);
    let mut paths: HashMap<Vec<u32>, u64> = HashMap::new();
    let mut actors = 0u64;
    let mut path = Vec::with_capacity(spec.depth);
    for actor in 1..levels[0].len() {
        if levels[0][actor] == NEVER {
            continue;
        }
        actors += 1;
        path.clear();
        let mut node = 0;
        trie.counts[0] += 1;
        path.push(decode(levels[0][actor]));
        for level in &levels[1..] {
            let key = level[actor];
            if key == NEVER {
                break;
            }
            let code = decode(key);
            path.push(code);
            node = trie.child(node, code);
            trie.counts[node] += 1;
        }
        trie.ends[node] += 1;
        *paths.entry(path.clone()).or_default() += 1;
    }
    let label = |code: u32| code_label(names, code);
    let mut top: Vec<TopPath> = paths
        .into_iter()
        .map(|(codes, n)| {
            let mut events: Vec<String> = codes.iter().map(|c| label(*c)).collect();
            if spec.towards {
                events.reverse();
            }
            TopPath {
                events,
                actors: n,
                share: valuetrace_facts::stats::ratio(n as f64, actors as f64).unwrap_or(0.0),
            }
        })
        .collect();
    top.sort_by(|a, b| {
        b.actors
            .cmp(&a.actors)
            .then_with(|| a.events.cmp(&b.events))
    });
    top.truncate(spec.top);
    let mut tree = trie.render(0, actors, spec.top, &label);
    tree.event = spec.anchor.text.clone();
    PathsAnswer {
        project: question.project.clone(),
        from: question.from,
        to: question.to,
        per: cx.actor,
        anchor: spec.anchor.text.clone(),
        direction: if spec.towards { "towards" } else { "from" }.into(),
        depth: spec.depth,
        window_ms: spec.window_ms,
        actors,
        top_paths: top,
        tree,
    }
}
