//! Assisted revenue attribution: the value of outcomes in the window, credited to the endpoints
//! their user (or, for outcomes without a user, their session) called within the attribution
//! window before the outcome.
//!
//! One pass: outcomes are indexed per user and per session (sorted by time); every call that
//! passes the scope is a touch of each outcome of its user or session in `[t, t + window]`. A
//! session's calls form one time-ordered run, so a run is skipped when no outcome follows it
//! within the window, and an outcome that every call of the run can reach takes the run's
//! summary (earliest, latest, distinct keys) at once instead of call by call. Per outcome the first touch, the last touch and the distinct touched
//! (endpoint, group) keys are kept; then
//! - first touch: the whole value to the earliest touch's key,
//! - last touch: the whole value to the latest touch's key,
//! - linear: the value split equally across the distinct touched keys (so the keys' shares sum
//!   exactly to the attributed total).
//!
//! Only inbound endpoints are touches (an outbound provider call is not a product surface).

use crate::cache::Facts;
use crate::scope::{Scope, key, key_parts};
use crate::usage::{BitSet, KeySet, KeyTable, par_calls};

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

/// An outcome being attributed.
struct Pending {
    ts: i64,
    value: f64,
    user: u32,
}

/// What one thread saw of an outcome's touches; merged across threads (earliest first touch,
/// latest last touch, union of the touched keys).
#[derive(Clone)]
struct Touches {
    first: (i64, u64),
    last: (i64, u64),
    keys: KeySet,
}

impl Default for Touches {
    fn default() -> Self {
        Touches {
            first: (i64::MAX, 0),
            last: (i64::MIN, 0),
            keys: KeySet::default(),
        }
    }
}

impl Touches {
    /// Ties go to the smaller key first and the larger key last, so the answer does not depend
    /// on storage order.
    #[inline]
    fn touch(&mut self, t: i64, endpoint: u32, group: u32) {
        let k = key(endpoint, group);
        self.first = self.first.min((t, k));
        self.last = self.last.max((t, k));
        self.keys.insert(endpoint, group);
    }

    fn keys(&self) -> Vec<u64> {
        let mut keys = Vec::new();
        self.keys
            .for_each(|endpoint, group| keys.push(key(endpoint, group)));
        keys
    }

    /// Touched by every call of a run at once: its earliest and latest (time, key) and its keys.
    #[inline]
    fn absorb(&mut self, first: (i64, u64), last: (i64, u64), keys: &KeySet) {
        self.first = self.first.min(first);
        self.last = self.last.max(last);
        self.keys.union_with(keys);
    }

    fn merge(&mut self, other: &Touches) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        other
            .keys
            .for_each(|endpoint, group| self.keys.insert(endpoint, group));
    }

    fn touched(&self) -> bool {
        self.first.0 != i64::MAX
    }
}

/// Outcomes sorted by (owner id, time); `starts[id]..starts[id + 1]` are the outcomes of owner
/// `id` (a user, or a session for outcomes without a user).
struct Owned {
    pending: Vec<Pending>,
    starts: Vec<u32>,
    /// Owners with at least one outcome: a cache-resident test before the (large) `starts`.
    owners: BitSet,
}

impl Owned {
    fn new(mut pending: Vec<(u32, Pending)>, size: usize) -> Owned {
        pending.sort_by_key(|(owner, p)| (*owner, p.ts));
        let mut starts = vec![0u32; if pending.is_empty() { 0 } else { size + 2 }];
        let mut owners = BitSet::default();
        for (owner, _) in &pending {
            starts[*owner as usize + 1] += 1;
            owners.insert(*owner);
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        Owned {
            pending: pending.into_iter().map(|(_, p)| p).collect(),
            starts,
            owners,
        }
    }

    #[inline]
    fn run(&self, owner: u32) -> std::ops::Range<usize> {
        let id = owner as usize;
        if id + 1 >= self.starts.len() || !self.owners.contains(owner) {
            return 0..0;
        }
        self.starts[id] as usize..self.starts[id + 1] as usize
    }
}

/// Attribution of outcomes with a value in `[from, to)` named in `names` (all when empty).
pub fn attribute(
    facts: &Facts,
    scope: &Scope,
    from: i64,
    to: i64,
    window: i64,
    names: &[u32],
    all_names: bool,
) -> Attribution {
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
            let pending = Pending {
                ts: t,
                value: seg.value[row] * f64::from(seg.weight[row]),
                user,
            };
            if user != 0 {
                by_user.push((user, pending));
            } else if session != 0 {
                by_session.push((session, pending));
            }
        }
    }
    let users = Owned::new(by_user, facts.names.users);
    let sessions = Owned::new(by_session, facts.names.sessions);
    let count = users.pending.len() + sessions.pending.len();
    let inbound: Vec<bool> = std::iter::once(false)
        .chain(scope.names.endpoints.iter().map(|e| !e.outbound))
        .collect();
    let lookback = from - window;
    let everything = scope.is_everything();
    let parts = par_calls(
        &facts.calls,
        lookback,
        to,
        || {
            (
                vec![Touches::default(); users.pending.len()],
                vec![Touches::default(); sessions.pending.len()],
            )
        },
        |(user_touches, session_touches), seg| {
            let run = RunScan {
                seg,
                scope,
                inbound: &inbound,
                everything,
                range: (lookback, to),
                inside: seg.min_ts >= lookback && seg.max_ts < to,
            };
            let mut rows = Vec::new();
            let mut start = 0;
            while start < seg.len() {
                let end = seg.run_end(start);
                let user = seg.user[start];
                if seg.user[start..end].iter().all(|u| *u == user) {
                    let owners = [
                        (&users, user_touches.as_mut_slice(), users.run(user)),
                        (
                            &sessions,
                            session_touches.as_mut_slice(),
                            sessions.run(seg.session[start]),
                        ),
                    ];
                    run.touch_run(start..end, &mut rows, owners, window);
                } else {
                    run.touch_rows(
                        start..end,
                        (&users, user_touches.as_mut_slice()),
                        (&sessions, session_touches.as_mut_slice()),
                        window,
                    );
                }
                start = end;
            }
        },
    );
    let mut parts = parts.into_iter();
    let (mut user_touches, mut session_touches) = parts.next().unwrap_or_default();
    for (more_users, more_sessions) in parts {
        for (mine, theirs) in user_touches
            .iter_mut()
            .zip(&more_users)
            .chain(session_touches.iter_mut().zip(&more_sessions))
        {
            if theirs.touched() {
                mine.merge(theirs);
            }
        }
    }
    let mut out = Attribution {
        credits: KeyTable::new(scope),
        attributed: 0.0,
        unattributed: 0.0,
        outcomes: count as f64,
        touched_outcomes: 0.0,
    };
    let all = users
        .pending
        .iter()
        .zip(&user_touches)
        .chain(sessions.pending.iter().zip(&session_touches));
    for (outcome, touches) in all {
        if !touches.touched() {
            out.unattributed += outcome.value;
            continue;
        }
        let touched = touches.keys();
        out.attributed += outcome.value;
        out.touched_outcomes += 1.0;
        let (e, g) = key_parts(touches.first.1);
        out.credits.get_mut(e, g).first_touch += outcome.value;
        let (e, g) = key_parts(touches.last.1);
        out.credits.get_mut(e, g).last_touch += outcome.value;
        let share = outcome.value / touched.len() as f64;
        for &k in &touched {
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

/// One segment's rows as the attribution pass reads them.
struct RunScan<'a> {
    seg: &'a crate::facts::CallSeg,
    scope: &'a Scope,
    inbound: &'a [bool],
    everything: bool,
    range: (i64, i64),
    /// The whole segment is inside `range`: no per-row time test.
    inside: bool,
}

type Owner<'a, 'b> = (&'a Owned, &'b mut [Touches], std::ops::Range<usize>);

impl RunScan<'_> {
    /// Whether call `row` can touch an outcome: inside the range, inbound, in the scope.
    #[inline]
    fn counts(&self, row: usize) -> bool {
        let (seg, t) = (self.seg, self.seg.ts[row]);
        (self.inside || (t >= self.range.0 && t < self.range.1))
            && self.inbound[seg.endpoint[row] as usize]
            && (self.everything || self.scope.call_ok(seg, row))
    }

    /// A session run of one user (rows in time order). Outcomes of the user or the session that
    /// every call of the run can reach (the run lies within the window before them: the usual
    /// case, sessions being minutes and the window a day) take the run's summary at once; the
    /// others are touched call by call.
    fn touch_run(
        &self,
        rows: std::ops::Range<usize>,
        kept: &mut Vec<(i64, u32, u32)>,
        owners: [Owner; 2],
        window: i64,
    ) {
        // Rows are in time order: skip the run unless some outcome lies within the window after
        // one of its calls (most sessions are not in the day before a purchase).
        let (t0, t1) = (self.seg.ts[rows.start], self.seg.ts[rows.end - 1]);
        let reachable = owners.iter().any(|(owned, _, run)| {
            let begin = run.start + owned.pending[run.clone()].partition_point(|p| p.ts < t0);
            begin < run.end && owned.pending[begin].ts - window <= t1
        });
        if !reachable {
            return;
        }
        kept.clear();
        for row in rows {
            if self.counts(row) {
                let seg = self.seg;
                kept.push((seg.ts[row], seg.endpoint[row], self.scope.group(seg, row)));
            }
        }
        let (Some(&(t_first, ..)), Some(&(t_last, ..))) = (kept.first(), kept.last()) else {
            return;
        };
        let first = kept.iter().map(|&(t, e, g)| (t, key(e, g))).min();
        let last = kept.iter().map(|&(t, e, g)| (t, key(e, g))).max();
        let (Some(first), Some(last)) = (first, last) else {
            return;
        };
        let mut keys = KeySet::default();
        for &(_, endpoint, group) in kept.iter() {
            keys.insert(endpoint, group);
        }
        for (owned, touches, run) in owners {
            let begin = run.start + owned.pending[run.clone()].partition_point(|p| p.ts < t_first);
            let outcomes = owned.pending[begin..run.end].iter();
            for (outcome, touch) in outcomes.zip(&mut touches[begin..run.end]) {
                let ts = outcome.ts;
                if ts - window > t_last {
                    break;
                }
                if ts >= t_last && ts - window <= t_first {
                    touch.absorb(first, last, &keys);
                    continue;
                }
                for &(t, endpoint, group) in kept.iter() {
                    if t <= ts && ts - t <= window {
                        touch.touch(t, endpoint, group);
                    }
                }
            }
        }
    }

    /// A run whose calls belong to several users (calls without a session): call by call, each
    /// walking its user's and its session's outcomes with a cursor.
    fn touch_rows(
        &self,
        rows: std::ops::Range<usize>,
        (users, user_touches): (&Owned, &mut [Touches]),
        (sessions, session_touches): (&Owned, &mut [Touches]),
        window: i64,
    ) {
        let seg = self.seg;
        let session_run = sessions.run(seg.session[rows.start]);
        let (mut user, mut user_run) = (u32::MAX, 0..0);
        let (mut user_cursor, mut session_cursor) = (0, session_run.start);
        for row in rows {
            if seg.user[row] != user {
                user = seg.user[row];
                user_run = users.run(user);
                user_cursor = user_run.start;
            }
            if (user_run.is_empty() && session_run.is_empty()) || !self.counts(row) {
                continue;
            }
            let (t, endpoint) = (seg.ts[row], seg.endpoint[row]);
            let group = self.scope.group(seg, row);
            for (owned, touches, run, cursor) in [
                (users, &mut *user_touches, &user_run, &mut user_cursor),
                (
                    sessions,
                    &mut *session_touches,
                    &session_run,
                    &mut session_cursor,
                ),
            ] {
                while *cursor < run.end && owned.pending[*cursor].ts < t {
                    *cursor += 1;
                }
                let ahead = owned.pending[*cursor..run.end].iter();
                for (outcome, touch) in ahead.zip(&mut touches[*cursor..run.end]) {
                    if outcome.ts - t > window {
                        break;
                    }
                    touch.touch(t, endpoint, group);
                }
            }
        }
    }
}
