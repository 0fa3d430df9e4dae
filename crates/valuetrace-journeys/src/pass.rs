//! The two passes journeys are made of, each one parallel scan of the fact columns into dense
//! per-actor arrays (actor ids are dense per project, so no hash map and no sort of raw events):
//!
//! - [`first_match`]: per actor, the earliest event matching a step, optionally strictly after a
//!   per-actor position and before a per-actor deadline. A sequential funnel is one such pass per
//!   step; retention cohorts and time to first value are one or two.
//! - [`next_event`]: per actor, the next *distinct* event after a position: the earliest event
//!   that is later in the event order, of another kind than the one at the position, and not
//!   noise. Walking it k times gives an actor's path of depth k with consecutive repeats collapsed;
//!   a strict funnel is the same walk with a step test at each depth, which is why path drop-offs
//!   and strict-funnel drop-offs agree by construction.
//!
//! Event order: (timestamp, event code). Two events of one actor in the same millisecond are
//! ordered by code, the same way in every answer.

use crate::step::{Actor, Step, call_code, outcome_code};
use valuetrace_facts::facts::{CallSeg, Names, OutcomeSeg};
use valuetrace_facts::par::par_calls;
use valuetrace_facts::{Facts, Scope};

/// A position in an actor's event order: (timestamp, event code).
pub type Key = (i64, u32);

/// No position: the actor never reached this point.
pub const NEVER: Key = (i64::MAX, u32::MAX);

/// What a journey pass reads.
pub struct Cx<'a> {
    pub facts: &'a Facts,
    pub scope: &'a Scope,
    pub actor: Actor,
}

impl Cx<'_> {
    pub fn names(&self) -> &Names {
        &self.scope.names
    }

    /// Actor ids run from 1 to `actors() - 1`; index 0 is "no actor".
    pub fn actors(&self) -> usize {
        self.actor.count(self.names()) + 1
    }

    #[inline]
    fn call_in_scope(&self, seg: &CallSeg, row: usize) -> bool {
        self.scope.is_everything() || self.scope.call_ok(seg, row)
    }

    /// Runs `on_call` over the calls of `[from, to)` in parallel (one state per thread, merged
    /// with `merge`), then `on_outcome` over the outcomes on the merged state.
    pub fn scan<T: Send>(
        &self,
        (from, to): (i64, i64),
        calls: bool,
        init: impl Fn() -> T + Sync,
        on_call: impl Fn(&mut T, &CallSeg, usize, i64) + Sync,
        merge: impl Fn(&mut T, T),
        mut on_outcome: impl FnMut(&mut T, &OutcomeSeg, usize, i64),
    ) -> T {
        let mut states = if calls {
            par_calls(&self.facts.calls, from, to, &init, |state, seg| {
                for row in 0..seg.len() {
                    let t = seg.ts[row];
                    if t >= from && t < to && self.call_in_scope(seg, row) {
                        on_call(state, seg, row, t);
                    }
                }
            })
        } else {
            Vec::new()
        }
        .into_iter();
        let mut state = states.next().unwrap_or_else(&init);
        for other in states {
            merge(&mut state, other);
        }
        for seg in &self.facts.outcomes {
            if seg.max_ts < from || seg.min_ts >= to {
                continue;
            }
            for row in 0..seg.len() {
                let t = seg.ts[row];
                if t >= from && t < to {
                    on_outcome(&mut state, seg, row, t);
                }
            }
        }
        state
    }
}

/// Per actor: the best key found so far and, when asked for, the breakdown group of its event.
pub struct Firsts {
    pub at: Vec<Key>,
    /// Breakdown group of the event at `at` (calls only; outcomes carry no dimensions: 0).
    pub group: Vec<u32>,
    /// Whether the event at `at` matched the step given to [`next_event`].
    pub matched: Vec<bool>,
}

impl Firsts {
    fn new(n: usize, group: bool, matched: bool) -> Firsts {
        Firsts {
            at: vec![NEVER; n],
            group: if group { vec![0; n] } else { Vec::new() },
            matched: if matched { vec![false; n] } else { Vec::new() },
        }
    }

    #[inline]
    fn offer(&mut self, actor: usize, key: Key, group: u32, matched: bool) {
        if key < self.at[actor] {
            self.at[actor] = key;
            if !self.group.is_empty() {
                self.group[actor] = group;
            }
            if !self.matched.is_empty() {
                self.matched[actor] = matched;
            }
        }
    }

    fn merge(&mut self, other: Firsts) {
        for actor in 0..self.at.len() {
            let key = other.at[actor];
            if key < self.at[actor] {
                let group = other.group.get(actor).copied().unwrap_or(0);
                let matched = other.matched.get(actor).copied().unwrap_or(false);
                self.offer(actor, key, group, matched);
            }
        }
    }
}

/// Where a pass may look, per actor: strictly after `after[a]` and before `deadline[a]`.
///
/// A `backward` walk (paths towards an end step) reads the event order reversed: its keys are
/// `(-timestamp, u32::MAX - code)`, so "after" means earlier and the deadline is the negated
/// earliest timestamp allowed. [`Bounds::code`] turns a key back into its event code.
pub struct Bounds<'a> {
    pub after: &'a [Key],
    pub deadline: &'a [i64],
    pub backward: bool,
}

impl Bounds<'_> {
    #[inline]
    pub fn key(&self, t: i64, code: u32) -> Key {
        if self.backward {
            (-t, u32::MAX - code)
        } else {
            (t, code)
        }
    }

    /// The event code of a key of this walk.
    pub fn code(&self, key: Key) -> u32 {
        if self.backward {
            u32::MAX - key.1
        } else {
            key.1
        }
    }

    #[inline]
    fn allows(&self, actor: usize, key: Key) -> bool {
        let after = self.after[actor];
        after != NEVER && key > after && key.0 < self.deadline[actor]
    }
}

/// Per actor, the earliest event of `[from, to)` matching `step` (within `bounds` if given).
pub fn first_match(
    cx: &Cx,
    step: &Step,
    (from, to): (i64, i64),
    bounds: Option<&Bounds>,
    with_group: bool,
) -> Firsts {
    let n = cx.actors();
    let names = cx.names();
    cx.scan(
        (from, to),
        step.matches_calls(),
        || Firsts::new(n, with_group, false),
        |state, seg, row, t| {
            if !step.call(seg, row) {
                return;
            }
            let actor = cx.actor.of_call(seg, row) as usize;
            let key = (t, call_code(seg, row));
            if actor != 0 && bounds.is_none_or(|b| b.allows(actor, key)) {
                state.offer(actor, key, cx.scope.group(seg, row), false);
            }
        },
        Firsts::merge,
        |state, seg, row, t| {
            if !step.is_outcome() || !step.outcome(seg, row) {
                return;
            }
            let actor = cx.actor.of_outcome(seg, row) as usize;
            let key = (t, outcome_code(names, seg, row));
            if actor != 0 && bounds.is_none_or(|b| b.allows(actor, key)) {
                state.offer(actor, key, 0, false);
            }
        },
    )
}

/// Per actor, the next distinct event after `bounds.after` (see the module doc); `noise[code]`
/// marks event codes to skip. When `step` is given, `matched[a]` says whether that next event
/// is the step.
pub fn next_event(
    cx: &Cx,
    (from, to): (i64, i64),
    bounds: &Bounds,
    noise: &[bool],
    step: Option<&Step>,
) -> Firsts {
    let n = cx.actors();
    let names = cx.names();
    let skip = |code: u32| noise.get(code as usize).copied().unwrap_or(false);
    cx.scan(
        (from, to),
        true,
        || Firsts::new(n, false, step.is_some()),
        |state, seg, row, t| {
            let actor = cx.actor.of_call(seg, row) as usize;
            let code = call_code(seg, row);
            let key = bounds.key(t, code);
            if actor == 0 || !bounds.allows(actor, key) || key.1 == bounds.after[actor].1 {
                return;
            }
            if key < state.at[actor] && !skip(code) {
                state.offer(actor, key, 0, step.is_some_and(|s| s.call(seg, row)));
            }
        },
        Firsts::merge,
        |state, seg, row, t| {
            let actor = cx.actor.of_outcome(seg, row) as usize;
            let code = outcome_code(names, seg, row);
            let key = bounds.key(t, code);
            if actor == 0 || !bounds.allows(actor, key) || key.1 == bounds.after[actor].1 {
                return;
            }
            if key < state.at[actor] && !skip(code) {
                state.offer(
                    actor,
                    key,
                    0,
                    step.is_some_and(|s| s.is_outcome() && s.outcome(seg, row)),
                );
            }
        },
    )
}

/// Deadlines `entry + window` for every actor that has an entry (forward walks).
pub fn deadlines(entry: &[Key], window: i64) -> Vec<i64> {
    entry
        .iter()
        .map(|k| {
            if *k == NEVER {
                i64::MIN
            } else {
                k.0.saturating_add(window)
            }
        })
        .collect()
}

/// A forward position turned into the start of a backward walk: keys reversed, deadline
/// `-(t - window)` (events no earlier than `window` before the position).
pub fn backward_start(entry: &[Key], window: i64) -> (Vec<Key>, Vec<i64>) {
    entry
        .iter()
        .map(|k| {
            if *k == NEVER {
                (NEVER, i64::MIN)
            } else {
                ((-k.0, u32::MAX - k.1), -(k.0 - window))
            }
        })
        .unzip()
}
