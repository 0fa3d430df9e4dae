//! The usage pass in two steps: a segment's rows are first summarized into a [`SegUsage`]
//! (additive counters per key, and per session run the keys it called), which then merges into
//! the pass with the window's session conversions.
//!
//! A summary of a whole segment without a slice depends only on the segment and the breakdown,
//! never on the window: such summaries are kept with the segment ([`KeptUsage`], one of its [`SegExtensions`](valuetrace_facts::extensions::SegExtensions)), so an
//! answer whose window holds the segment merges it instead of reading its rows again (the
//! breakdown-less one is built with the segment's facts, the others by the first answer that
//! asks). Segments at the window's edges and sliced questions summarize their rows on the fly.

use crate::facts::CallSeg;
use crate::scope::{Dim, Scope};
use crate::stats::{Draw, Tally, sampling_unit};
use crate::usage::{KeySet, SessionConversions, UsagePass};
use std::sync::Arc;

/// The counters of one key that add up across segments.
#[derive(Debug, Default, Clone)]
struct Sums {
    requests: Tally,
    failures: f64,
    client_errors: f64,
    server_errors: f64,
    latency_ms: f64,
    direct: Tally,
    direct_calls: f64,
    calls_in_sessions: f64,
    /// Sampled calls per (sampling unit, rate): `values` = [requests, direct value]. Their
    /// variance is computed once the whole window is merged ([`crate::usage::usage`]).
    draws: Vec<Draw>,
}

/// A key called in a session run.
#[derive(Debug, Clone, Copy)]
struct Entry {
    endpoint: u32,
    group: u32,
    /// Weighted calls of the key in the run.
    calls: f32,
    /// The run's user made some of them (the others' users are in `others`).
    by_run_user: bool,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    session: u32,
    user: u32,
    /// End of the run's entries (they start where the previous run's end).
    entries_end: u32,
}

/// One segment's usage (see the module documentation).
#[derive(Debug, Default)]
pub struct SegUsage {
    sums: Vec<((u32, u32), Sums)>,
    runs: Vec<Run>,
    entries: Vec<Entry>,
    /// (endpoint, group, user) of calls whose user is not their run's.
    others: Vec<(u32, u32, u32)>,
    /// (endpoint, group, user) of successful calls that carried a value.
    direct_users: Vec<(u32, u32, u32)>,
}

impl SegUsage {
    pub fn bytes(&self) -> usize {
        self.sums.len() * 96
            + self
                .sums
                .iter()
                .map(|(_, s)| s.draws.len() * 32)
                .sum::<usize>()
            + self.runs.len() * 12
            + self.entries.len() * 16
            + (self.others.len() + self.direct_users.len()) * 12
    }

    /// Summarizes the rows of `seg` in `[from, to)` that `keep` accepts, grouped by `group_of`
    /// (groups below `width`).
    pub fn of(
        seg: &CallSeg,
        (from, to): (i64, i64),
        width: usize,
        keep: impl Fn(usize) -> bool,
        group_of: impl Fn(usize) -> u32,
    ) -> SegUsage {
        let inside = seg.min_ts >= from && seg.max_ts < to;
        let mut out = SegUsage::default();
        // Dense by endpoint × width + group, grown on demand.
        let mut sums: Vec<Option<Sums>> = Vec::new();
        // The run's keys: a few, found by a linear search.
        let mut run_entries: Vec<Entry> = Vec::new();
        let mut seen_others = KeySet::default();
        let mut start = 0;
        while start < seg.len() {
            let end = seg.run_end(start);
            let (session, run_user) = (seg.session[start], seg.user[start]);
            run_entries.clear();
            seen_others.clear();
            for row in start..end {
                if !inside {
                    let t = seg.ts[row];
                    if t < from || t >= to {
                        continue;
                    }
                }
                if !keep(row) {
                    continue;
                }
                let (endpoint, group) = (seg.endpoint[row], group_of(row));
                let weight = seg.weight[row];
                let w = f64::from(weight);
                let (status, user) = (seg.status[row], seg.user[row]);
                let slot = endpoint as usize * width + group as usize;
                if sums.len() <= slot {
                    sums.resize(slot + 1, None);
                }
                let s = sums[slot].get_or_insert_with(Sums::default);
                s.requests.sum += w;
                let direct = status < 400 && seg.has_value(row);
                if weight > 1.0 {
                    s.draws.push(Draw {
                        unit: sampling_unit(session, user),
                        weight,
                        values: [w, if direct { w * seg.value[row] } else { 0.0 }],
                    });
                }
                s.latency_ms += w * f64::from(seg.latency[row]);
                if status >= 400 {
                    s.failures += w;
                    if status >= 500 {
                        s.server_errors += w;
                    } else {
                        s.client_errors += w;
                    }
                } else if direct {
                    s.direct.sum += w * seg.value[row];
                    s.direct_calls += w;
                    if user != 0 {
                        out.direct_users.push((endpoint, group, user));
                    }
                }
                if session != 0 {
                    s.calls_in_sessions += w;
                }
                let mine = user != 0 && user == run_user;
                match run_entries
                    .iter_mut()
                    .find(|e| e.endpoint == endpoint && e.group == group)
                {
                    Some(e) => {
                        e.calls += weight;
                        e.by_run_user |= mine;
                    }
                    None => run_entries.push(Entry {
                        endpoint,
                        group,
                        calls: weight,
                        by_run_user: mine,
                    }),
                }
                if user != 0 && !mine {
                    out.others.push((endpoint, group, user));
                }
            }
            if !run_entries.is_empty() {
                out.entries.extend_from_slice(&run_entries);
                out.runs.push(Run {
                    session,
                    user: run_user,
                    entries_end: out.entries.len() as u32,
                });
            }
            start = end;
        }
        out.sums = sums
            .into_iter()
            .enumerate()
            .filter_map(|(slot, s)| s.map(|s| (((slot / width) as u32, (slot % width) as u32), s)))
            .collect();
        for (_, s) in &mut out.sums {
            Draw::coalesce(&mut s.draws);
        }
        out.direct_users.sort_unstable();
        out.direct_users.dedup();
        out.others.sort_unstable();
        out.others.dedup();
        out
    }

    /// The summaries kept from the start: without a breakdown and by plan (the dashboard's and
    /// the CLI's usual questions); other breakdowns are kept when first asked.
    pub fn keep_usual(seg: &CallSeg) {
        let none = SegUsage::of(seg, (i64::MIN, i64::MAX), 1, |_| true, |_| 0);
        let plans = seg.plan.iter().max().map_or(1, |max| *max as usize + 1);
        let by_plan = SegUsage::of(
            seg,
            (i64::MIN, i64::MAX),
            plans,
            |_| true,
            |row| seg.plan[row],
        );
        if let Ok(mut kept) = seg.extensions.get_or_init(KeptUsage::default).0.lock() {
            kept.push((None, Arc::new(none)));
            kept.push((Some(Dim::Plan), Arc::new(by_plan)));
        }
    }

    /// The summary of every row of `seg` grouped by `by`: the segment's kept one, built on
    /// first use.
    pub fn whole(seg: &CallSeg, scope: &Scope) -> Arc<SegUsage> {
        let by = scope.by();
        let kept = seg.extensions.get_or_init(KeptUsage::default);
        if let Ok(kept) = kept.0.lock()
            && let Some((_, summary)) = kept.iter().find(|(b, _)| *b == by)
        {
            return Arc::clone(summary);
        }
        let summary = Arc::new(SegUsage::of(
            seg,
            (i64::MIN, i64::MAX),
            scope.width(),
            |_| true,
            |row| scope.group(seg, row),
        ));
        if let Ok(mut kept) = kept.0.lock()
            && !kept.iter().any(|(b, _)| *b == by)
        {
            kept.push((by, Arc::clone(&summary)));
        }
        summary
    }

    /// Adds the summary to the pass: counters, users, and per run its sessions and conversions
    /// (`users` and `sessions` size the sets; `by` says whether active users are kept per group).
    pub fn merge_into(
        &self,
        pass: &mut UsagePass,
        conversions: &SessionConversions,
        users: usize,
        sessions: usize,
        by: bool,
    ) {
        for ((endpoint, group), s) in &self.sums {
            let u = pass.keys.get_mut(*endpoint, *group);
            u.requests.merge(&s.requests);
            u.failures += s.failures;
            u.client_errors += s.client_errors;
            u.server_errors += s.server_errors;
            u.latency_ms += s.latency_ms;
            u.direct.merge(&s.direct);
            u.direct_calls += s.direct_calls;
            u.calls_in_sessions += s.calls_in_sessions;
            u.draws.extend_from_slice(&s.draws);
        }
        for &(endpoint, group, user) in &self.direct_users {
            let u = pass.keys.get_mut(endpoint, group);
            u.direct_users.ensure(users);
            u.direct_users.insert(user);
        }
        for &(endpoint, group, user) in &self.others {
            crate::usage::add_user(pass, endpoint, group, user, users, by);
        }
        let mut begin = 0;
        for run in &self.runs {
            let end = run.entries_end as usize;
            let converted = if run.session != 0 {
                conversions.of(run.session)
            } else {
                0.0
            };
            let mut last_group = u32::MAX;
            for e in &self.entries[begin..end] {
                let u = pass.keys.get_mut(e.endpoint, e.group);
                if run.session != 0 {
                    if converted > 0.0 {
                        u.calls_in_converting_sessions += f64::from(e.calls);
                    }
                    u.sessions.ensure(sessions);
                    if u.sessions.insert(run.session) {
                        u.conversions_in_sessions += f64::from(converted);
                    }
                }
                if e.by_run_user {
                    u.users.ensure(users);
                    u.users.insert(run.user);
                    if e.group != last_group {
                        last_group = e.group;
                        crate::usage::add_active(pass, e.group, run.user, users, by);
                    }
                }
            }
            begin = end;
        }
    }
}

/// The usage summaries kept with a segment, each with the breakdown it was built for.
#[derive(Default)]
pub struct KeptUsage(std::sync::Mutex<Vec<(Option<Dim>, Arc<SegUsage>)>>);

impl valuetrace_facts::extensions::SegExtension for KeptUsage {
    fn bytes(&self) -> usize {
        self.0.lock().map_or(0, |kept| {
            kept.iter().map(|(_, summary)| summary.bytes()).sum()
        })
    }
}
