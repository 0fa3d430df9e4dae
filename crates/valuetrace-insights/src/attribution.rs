//! Assisted revenue attribution: the value of outcomes in the window, credited to the endpoints
//! their user (or, for outcomes without a user, their session) called within the attribution
//! window before the outcome.
//!
//! One pass: outcomes are indexed per user and per session (sorted by time); every call that
//! passes the scope looks up its user's outcomes in `[t, t + window]` by binary search and marks
//! itself as a touch of each. Per outcome the first touch, the last touch and the distinct touched
//! (endpoint, group) keys are kept; then
//! - first touch: the whole value to the earliest touch's key,
//! - last touch: the whole value to the latest touch's key,
//! - linear: the value split equally across the distinct touched keys (so the keys' shares sum
//!   exactly to the attributed total).
//!
//! Only inbound endpoints are touches (an outbound provider call is not a product surface).

use crate::cache::Facts;
use crate::scope::{Scope, key, key_parts};
use crate::usage::{BitSet, KeyTable};

#[derive(Debug, Default, Clone)]
pub struct Credit {
    pub first_touch: f64,
    pub last_touch: f64,
    pub linear: f64,
    /// Outcomes this key touched (any model), weighted.
    pub outcomes: f64,
    /// Users whose outcomes this key touched.
    pub users: BitSet,
}

#[derive(Debug)]
pub struct Attribution {
    pub credits: KeyTable<Credit>,
    /// Value of outcomes with at least one touch, and of those without.
    pub attributed: f64,
    pub unattributed: f64,
    pub outcomes: f64,
    pub touched_outcomes: f64,
}

struct Pending {
    ts: i64,
    value: f64,
    user: u32,
    first: (i64, u64),
    last: (i64, u64),
    touched: Vec<u64>,
}

/// Index of outcomes by an id (user or session): `starts[id]..starts[id + 1]` into `order`.
struct Csr {
    starts: Vec<u32>,
    order: Vec<u32>,
}

fn index_by(ids: &[u32], size: usize, outcomes: &[Pending]) -> Csr {
    let mut starts = vec![0u32; size + 2];
    for &id in ids {
        if id != 0 {
            starts[id as usize + 1] += 1;
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut fill = starts.clone();
    let mut order = vec![0u32; *starts.last().unwrap_or(&0) as usize];
    for (index, &id) in ids.iter().enumerate() {
        if id != 0 {
            order[fill[id as usize] as usize] = index as u32;
            fill[id as usize] += 1;
        }
    }
    // Outcomes were collected in segment order: sort each id's run by time.
    for id in 0..=size {
        let (a, b) = (starts[id] as usize, starts[id + 1] as usize);
        if b - a > 1 {
            order[a..b].sort_by_key(|&i| outcomes[i as usize].ts);
        }
    }
    Csr { starts, order }
}

impl Csr {
    fn run(&self, id: u32) -> &[u32] {
        let id = id as usize;
        if id + 1 >= self.starts.len() {
            return &[];
        }
        &self.order[self.starts[id] as usize..self.starts[id + 1] as usize]
    }
}

/// Attribution of outcomes with a value in `[from, to)` named in `names` (all when empty).
pub fn attribute(facts: &Facts, scope: &Scope, from: i64, to: i64, window: i64, names: &[u32], all_names: bool) -> Attribution {
    let mut pending = Vec::new();
    let (mut by_user, mut by_session) = (Vec::new(), Vec::new());
    for seg in &facts.outcomes {
        if seg.max_ts < from || seg.min_ts >= to {
            continue;
        }
        for row in 0..seg.len() {
            let t = seg.ts[row];
            if t < from || t >= to || seg.value[row].is_nan() {
                continue;
            }
            if !all_names && !names.contains(&seg.name[row]) {
                continue;
            }
            let (user, session) = (seg.user[row], seg.session[row]);
            if user == 0 && session == 0 {
                continue;
            }
            pending.push(Pending {
                ts: t,
                value: seg.value[row] * f64::from(seg.weight[row]),
                user,
                first: (i64::MAX, 0),
                last: (i64::MIN, 0),
                touched: Vec::new(),
            });
            // An outcome with a user is found through the user, else through its session.
            by_user.push(user);
            by_session.push(if user == 0 { session } else { 0 });
        }
    }
    let users = index_by(&by_user, facts.names.users, &pending);
    let sessions = index_by(&by_session, facts.names.sessions, &pending);
    let lookback = from - window;
    for seg in &facts.calls {
        if seg.max_ts < lookback || seg.min_ts >= to {
            continue;
        }
        for row in 0..seg.len() {
            let t = seg.ts[row];
            if t < lookback || t >= to {
                continue;
            }
            let (user, session) = (seg.user[row], seg.session[row]);
            let runs = [users.run(user), sessions.run(session)];
            if runs[0].is_empty() && runs[1].is_empty() {
                continue;
            }
            let endpoint = seg.endpoint[row];
            if scope.names.endpoint(endpoint).outbound || !scope.call_ok(seg, row) {
                continue;
            }
            let k = key(endpoint, scope.group(seg, row));
            for run in runs {
                let start = run.partition_point(|&i| pending[i as usize].ts < t);
                for &i in &run[start..] {
                    let outcome = &mut pending[i as usize];
                    if outcome.ts - t > window {
                        break;
                    }
                    if t < outcome.first.0 {
                        outcome.first = (t, k);
                    }
                    if t >= outcome.last.0 {
                        outcome.last = (t, k);
                    }
                    if !outcome.touched.contains(&k) {
                        outcome.touched.push(k);
                    }
                }
            }
        }
    }
    let mut out = Attribution {
        credits: KeyTable::new(scope),
        attributed: 0.0,
        unattributed: 0.0,
        outcomes: pending.len() as f64,
        touched_outcomes: 0.0,
    };
    for outcome in &pending {
        if outcome.touched.is_empty() {
            out.unattributed += outcome.value;
            continue;
        }
        out.attributed += outcome.value;
        out.touched_outcomes += 1.0;
        let (e, g) = key_parts(outcome.first.1);
        out.credits.get_mut(e, g).first_touch += outcome.value;
        let (e, g) = key_parts(outcome.last.1);
        out.credits.get_mut(e, g).last_touch += outcome.value;
        let share = outcome.value / outcome.touched.len() as f64;
        for &k in &outcome.touched {
            let (e, g) = key_parts(k);
            let credit = out.credits.get_mut(e, g);
            credit.linear += share;
            credit.outcomes += 1.0;
            if outcome.user != 0 {
                credit.users.insert(outcome.user);
            }
        }
    }
    out
}
