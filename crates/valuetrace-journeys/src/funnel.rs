//! Funnels: 2–10 steps, a conversion window, counted per user, session or account.
//!
//! An actor *enters* at its first event of step 1 inside the question's window; it reaches step
//! i + 1 at its earliest step-(i + 1) event after its step-i event (in event order, see
//! [`crate::pass`]) and before entry + window. Steps may happen after the question's window as
//! long as they are within the conversion window. In `strict` order step i + 1 must be the very
//! next distinct event (noise routes skipped, consecutive repeats collapsed), the same walk the
//! path tree takes, so strict drop-offs equal path drop-offs.
//!
//! "Where did they go instead": for actors that reached step i but not step i + 1, their next
//! distinct event after step i within the window (`(left)` when there was none).

use crate::pass::{Bounds, Cx, Firsts, Key, NEVER, deadlines, first_match, next_event};
use crate::step::{Step, StepText, code_label};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use valuetrace_facts::stats::{quantile_ms, ratio};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Steps in order; other events may happen between them.
    #[default]
    Sequential,
    /// Each step is the next distinct event after the previous one.
    Strict,
}

impl Order {
    pub fn parse(text: &str) -> Result<Order> {
        match text {
            "sequential" => Ok(Order::Sequential),
            "strict" => Ok(Order::Strict),
            _ => Err(Error::InvalidQuery(format!(
                "`order={text}` must be sequential or strict"
            ))),
        }
    }
}

/// What the funnel follows.
#[derive(Debug, Clone)]
pub struct FunnelSpec {
    pub steps: Vec<StepText>,
    pub window_ms: i64,
    pub order: Order,
    /// How many "went instead" events to list per step.
    pub top_next: usize,
}

impl FunnelSpec {
    pub fn parse(steps: &[String], window_ms: i64, order: Order) -> Result<FunnelSpec> {
        if !(2..=10).contains(&steps.len()) {
            return Err(Error::InvalidQuery(format!(
                "a funnel has 2 to 10 steps, not {}",
                steps.len()
            )));
        }
        if window_ms <= 0 {
            return Err(Error::InvalidQuery("`window` must be positive".into()));
        }
        let steps = steps
            .iter()
            .enumerate()
            .map(|(i, text)| StepText::parse(text, &format!("steps[{i}]")))
            .collect::<Result<_>>()?;
        Ok(FunnelSpec {
            steps,
            window_ms,
            order,
            top_next: 5,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextEvent {
    pub event: String,
    pub actors: u64,
    /// Share of the actors that dropped after this step.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    pub step: String,
    /// Actors that reached this step.
    pub entered: u64,
    /// Reached ÷ reached the previous step (1 for the first step).
    pub conversion_rate: Option<f64>,
    /// Reached ÷ entered the funnel.
    pub conversion_from_start: Option<f64>,
    /// Actors that reached the previous step but not this one.
    pub dropped: u64,
    pub median_ms_from_previous: Option<i64>,
    pub p90_ms_from_previous: Option<i64>,
    /// Where the actors that stopped after this step went instead (empty on the last step).
    pub went_instead: Vec<NextEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelGroup {
    pub group: String,
    pub steps: Vec<FunnelStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub per: crate::step::Actor,
    pub window_ms: i64,
    pub order: Order,
    pub steps: Vec<FunnelStep>,
    /// Per breakdown group (the dimension's value on the actor's entry call), when asked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<FunnelGroup>,
}

/// Per step, each actor's position at that step (`NEVER` when not reached), and the entry
/// group of each actor.
pub struct Reached {
    pub steps: Vec<Vec<Key>>,
    pub group: Vec<u32>,
}

/// The funnel walk: one pass per step (sequential) or one next-event pass per step (strict).
pub fn reach(
    cx: &Cx,
    spec: &FunnelSpec,
    steps: &[Step],
    noise: &[bool],
    (from, to): (i64, i64),
) -> Reached {
    let entry = first_match(cx, &steps[0], (from, to), None, cx.scope.by().is_some());
    let deadline = deadlines(&entry.at, spec.window_ms);
    let until = to.saturating_add(spec.window_ms);
    let mut reached = vec![entry.at];
    for step in &steps[1..] {
        let bounds = Bounds {
            after: reached.last().expect("the entry step is always there"),
            deadline: &deadline,
            backward: false,
        };
        let at = match spec.order {
            Order::Sequential => first_match(cx, step, (from, until), Some(&bounds), false).at,
            Order::Strict => {
                let next = next_event(cx, (from, until), &bounds, noise, Some(step));
                next.at
                    .iter()
                    .zip(&next.matched)
                    .map(|(key, matched)| if *matched { *key } else { NEVER })
                    .collect()
            }
        };
        reached.push(at);
    }
    Reached {
        steps: reached,
        group: entry.group,
    }
}

/// Actors that stopped after step i: their position at step i (else `NEVER`), and i.
fn stopped(reached: &Reached) -> (Vec<Key>, Vec<u8>) {
    let n = reached.steps[0].len();
    let last = reached.steps.len() - 1;
    let (mut after, mut at_step) = (vec![NEVER; n], vec![u8::MAX; n]);
    for actor in 1..n {
        let Some(i) = (0..last)
            .take_while(|i| reached.steps[*i][actor] != NEVER)
            .last()
        else {
            continue;
        };
        if reached.steps[i + 1][actor] == NEVER {
            after[actor] = reached.steps[i][actor];
            at_step[actor] = i as u8;
        }
    }
    (after, at_step)
}

pub fn answer(
    cx: &Cx,
    question: &valuetrace_facts::Question,
    spec: &FunnelSpec,
    noise: &[bool],
) -> FunnelAnswer {
    let names = cx.names();
    let steps: Vec<Step> = spec.steps.iter().map(|s| s.resolve(names)).collect();
    let (from, to) = (question.from, question.to);
    let reached = reach(cx, spec, &steps, noise, (from, to));
    let entry_deadline = deadlines(&reached.steps[0], spec.window_ms);
    let (after, at_step) = stopped(&reached);
    let next = next_event(
        cx,
        (from, to.saturating_add(spec.window_ms)),
        &Bounds {
            after: &after,
            deadline: &entry_deadline,
            backward: false,
        },
        noise,
        None,
    );
    let tables = tally(&reached, &at_step, &next, spec.steps.len());
    let label = |group: u32| cx.scope.group_label(group).unwrap_or_default();
    let mut groups: Vec<FunnelGroup> = Vec::new();
    let mut total = Table::new(spec.steps.len());
    for (group, table) in tables {
        total.add(&table);
        if cx.scope.by().is_some() {
            groups.push(FunnelGroup {
                group: label(group),
                steps: table.steps(spec, names),
            });
        }
    }
    groups.sort_by(|a, b| {
        b.steps[0]
            .entered
            .cmp(&a.steps[0].entered)
            .then_with(|| a.group.cmp(&b.group))
    });
    FunnelAnswer {
        project: question.project.clone(),
        from,
        to,
        per: cx.actor,
        window_ms: spec.window_ms,
        order: spec.order,
        steps: total.steps(spec, names),
        groups,
    }
}

/// Counts of one group.
struct Table {
    entered: Vec<u64>,
    delays: Vec<Vec<i64>>,
    /// Per step: next event code (0: none) → actors.
    next: Vec<HashMap<u32, u64>>,
}

impl Table {
    fn new(k: usize) -> Table {
        Table {
            entered: vec![0; k],
            delays: vec![Vec::new(); k],
            next: vec![HashMap::new(); k],
        }
    }

    fn add(&mut self, other: &Table) {
        for i in 0..self.entered.len() {
            self.entered[i] += other.entered[i];
            self.delays[i].extend_from_slice(&other.delays[i]);
            for (code, n) in &other.next[i] {
                *self.next[i].entry(*code).or_default() += n;
            }
        }
    }

    fn steps(&self, spec: &FunnelSpec, names: &valuetrace_facts::facts::Names) -> Vec<FunnelStep> {
        let mut out = Vec::new();
        for (i, text) in spec.steps.iter().enumerate() {
            let previous = if i == 0 {
                self.entered[0]
            } else {
                self.entered[i - 1]
            };
            let dropped_after = if i + 1 < self.entered.len() {
                self.entered[i] - self.entered[i + 1]
            } else {
                0
            };
            let mut delays = self.delays[i].clone();
            let mut went: Vec<NextEvent> = self.next[i]
                .iter()
                .map(|(code, n)| NextEvent {
                    event: if *code == 0 {
                        "(left)".into()
                    } else {
                        code_label(names, *code)
                    },
                    actors: *n,
                    share: ratio(*n as f64, dropped_after as f64).unwrap_or(0.0),
                })
                .collect();
            went.sort_by(|a, b| b.actors.cmp(&a.actors).then_with(|| a.event.cmp(&b.event)));
            went.truncate(spec.top_next);
            out.push(FunnelStep {
                step: text.text.clone(),
                entered: self.entered[i],
                conversion_rate: ratio(self.entered[i] as f64, previous as f64),
                conversion_from_start: ratio(self.entered[i] as f64, self.entered[0] as f64),
                dropped: previous - self.entered[i],
                median_ms_from_previous: quantile_ms(&mut delays, 0.5),
                p90_ms_from_previous: quantile_ms(&mut delays, 0.9),
                went_instead: went,
            });
        }
        out
    }
}

fn tally(reached: &Reached, at_step: &[u8], next: &Firsts, k: usize) -> BTreeMap<u32, Table> {
    let mut tables: BTreeMap<u32, Table> = BTreeMap::new();
    for (actor, &step) in at_step.iter().enumerate().skip(1) {
        if reached.steps[0][actor] == NEVER {
            continue;
        }
        let group = reached.group.get(actor).copied().unwrap_or(0);
        let table = tables.entry(group).or_insert_with(|| Table::new(k));
        for i in 0..k {
            let at = reached.steps[i][actor];
            if at == NEVER {
                break;
            }
            table.entered[i] += 1;
            if i > 0 {
                table.delays[i].push(at.0 - reached.steps[i - 1][actor].0);
            }
        }
        if step != u8::MAX {
            let key = next.at[actor];
            let code = if key == NEVER { 0 } else { key.1 };
            *table.next[step as usize].entry(code).or_default() += 1;
        }
    }
    tables
}
