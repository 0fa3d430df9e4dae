//! One pass over the calls of a window: per (endpoint, group) requests, failures, latency, direct
//! value, distinct users and sessions; per group the active users. Most answers start here.

use crate::cache::Facts;
use crate::scope::Scope;
use crate::stats::Tally;

/// A set of dense ids.
#[derive(Debug, Clone, Default)]
pub struct BitSet {
    words: Vec<u64>,
    count: usize,
}

impl BitSet {
    pub fn with_capacity(ids: usize) -> BitSet {
        BitSet {
            words: vec![0; ids / 64 + 1],
            count: 0,
        }
    }

    /// Adds `id`; true when it was new.
    #[inline]
    pub fn insert(&mut self, id: u32) -> bool {
        let (word, bit) = ((id / 64) as usize, id % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        let new = self.words[word] & mask == 0;
        self.words[word] |= mask;
        self.count += usize::from(new);
        new
    }

    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        self.words.get((id / 64) as usize).is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn union_with(&mut self, other: &BitSet) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
        self.count = self.words.iter().map(|w| w.count_ones() as usize).sum();
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            (0..64).filter(move |b| w & (1u64 << b) != 0).map(move |b| (i * 64 + b) as u32)
        })
    }
}

/// A dense table indexed by (endpoint, group): no hashing on the per-row path.
#[derive(Debug)]
pub struct KeyTable<T> {
    width: usize,
    slots: Vec<Option<Box<T>>>,
}

impl<T: Default> KeyTable<T> {
    pub fn new(scope: &Scope) -> KeyTable<T> {
        let width = if scope.by().is_some() { scope.names.dim_count() + 1 } else { 1 };
        let slots = (0..(scope.names.endpoints.len() + 1) * width).map(|_| None).collect();
        KeyTable { width, slots }
    }

    #[inline]
    pub fn get_mut(&mut self, endpoint: u32, group: u32) -> &mut T {
        let index = endpoint as usize * self.width + group as usize;
        self.slots[index].get_or_insert_with(Default::default)
    }

    pub fn get(&self, endpoint: u32, group: u32) -> Option<&T> {
        self.slots.get(endpoint as usize * self.width + group as usize)?.as_deref()
    }

    /// `(endpoint, group, value)` of every filled slot.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, &T)> {
        let width = self.width;
        self.slots.iter().enumerate().filter_map(move |(i, slot)| {
            slot.as_deref().map(|v| ((i / width) as u32, (i % width) as u32, v))
        })
    }
}

/// Per (endpoint, group) usage in a window.
#[derive(Debug, Default)]
pub struct Usage {
    pub requests: Tally,
    /// Status >= 400.
    pub failures: f64,
    pub client_errors: f64,
    pub server_errors: f64,
    pub latency_ms: f64,
    /// Value of successful calls that carried one.
    pub direct: Tally,
    pub direct_calls: f64,
    /// Users with a successful call that carried a value.
    pub direct_users: BitSet,
    pub users: BitSet,
    pub sessions: BitSet,
    pub calls_in_sessions: f64,
    /// Calls made in sessions that converted, and those sessions' conversions (counted once per
    /// session and endpoint).
    pub calls_in_converting_sessions: f64,
    pub conversions_in_sessions: f64,
}

impl Usage {
    pub fn success_rate(&self) -> Option<f64> {
        crate::stats::ratio(self.requests.sum - self.server_errors, self.requests.sum)
    }
}

/// Conversions per session (the configured conversion outcome) in a window.
#[derive(Debug, Default)]
pub struct SessionConversions {
    pub conversions: Vec<f32>,
    pub value: Vec<f64>,
    /// Conversions, and their value, that carried a session.
    pub total: f64,
    pub total_value: f64,
}

impl SessionConversions {
    pub fn of(&self, session: u32) -> f32 {
        self.conversions.get(session as usize).copied().unwrap_or(0.0)
    }

    /// Average value of a conversion that carried one.
    pub fn average_value(&self) -> Option<f64> {
        crate::stats::ratio(self.total_value, self.total)
    }
}

pub fn session_conversions(facts: &Facts, outcome: Option<u32>, from: i64, to: i64) -> SessionConversions {
    let mut out = SessionConversions {
        conversions: vec![0.0; facts.names.sessions + 1],
        value: vec![0.0; facts.names.sessions + 1],
        ..Default::default()
    };
    let Some(outcome) = outcome else { return out };
    for seg in &facts.outcomes {
        if seg.max_ts < from || seg.min_ts >= to {
            continue;
        }
        for row in 0..seg.len() {
            let (t, session) = (seg.ts[row], seg.session[row] as usize);
            if t < from || t >= to || seg.name[row] != outcome || session == 0 {
                continue;
            }
            let w = f64::from(seg.weight[row]);
            out.conversions[session] += seg.weight[row];
            out.total += w;
            if !seg.value[row].is_nan() {
                out.value[session] += w * seg.value[row];
                out.total_value += w * seg.value[row];
            }
        }
    }
    out
}

/// The result of [`usage`].
#[derive(Debug)]
pub struct UsagePass {
    pub keys: KeyTable<Usage>,
    /// Group → users with any call in the slice.
    pub active: std::collections::HashMap<u32, BitSet>,
    pub active_all: BitSet,
    pub requests: Tally,
}

/// Usage of every (endpoint, group) over calls in `[from, to)` that pass the scope.
pub fn usage(facts: &Facts, scope: &Scope, from: i64, to: i64, conversions: &SessionConversions) -> UsagePass {
    let mut pass = UsagePass {
        keys: KeyTable::new(scope),
        active: Default::default(),
        active_all: BitSet::with_capacity(facts.names.users + 1),
        requests: Tally::default(),
    };
    for seg in &facts.calls {
        if seg.max_ts < from || seg.min_ts >= to {
            continue;
        }
        for row in 0..seg.len() {
            let t = seg.ts[row];
            if t < from || t >= to || !scope.call_ok(seg, row) {
                continue;
            }
            let group = scope.group(seg, row);
            let weight = seg.weight[row];
            let w = f64::from(weight);
            let (status, user, session) = (seg.status[row], seg.user[row], seg.session[row]);
            let u = pass.keys.get_mut(seg.endpoint[row], group);
            u.requests.add(weight, 1.0);
            pass.requests.add(weight, 1.0);
            u.latency_ms += w * f64::from(seg.latency[row]);
            if status >= 400 {
                u.failures += w;
                if status >= 500 {
                    u.server_errors += w;
                } else {
                    u.client_errors += w;
                }
            } else if seg.has_value(row) {
                u.direct.add(weight, seg.value[row]);
                u.direct_calls += w;
                if user != 0 {
                    u.direct_users.insert(user);
                }
            }
            if user != 0 {
                if u.users.words.is_empty() {
                    u.users = BitSet::with_capacity(facts.names.users + 1);
                }
                u.users.insert(user);
                pass.active_all.insert(user);
                if scope.by().is_some() {
                    pass.active
                        .entry(group)
                        .or_insert_with(|| BitSet::with_capacity(facts.names.users + 1))
                        .insert(user);
                }
            }
            if session != 0 {
                if u.sessions.words.is_empty() {
                    u.sessions = BitSet::with_capacity(facts.names.sessions + 1);
                }
                u.calls_in_sessions += w;
                let converted = conversions.of(session);
                if converted > 0.0 {
                    u.calls_in_converting_sessions += w;
                }
                if u.sessions.insert(session) {
                    u.conversions_in_sessions += f64::from(converted);
                }
            }
        }
    }
    if scope.by().is_none() {
        pass.active.insert(0, pass.active_all.clone());
    }
    pass
}
