//! One pass over the calls of a window: per (endpoint, group) requests, failures, latency, direct
//! value, distinct users and sessions; per group the active users. Most answers start here.

use crate::cache::Facts;
use crate::scope::Scope;
use crate::stats::{Draw, Tally};
use crate::usage_summary::SegUsage;

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

    /// Sizes an empty set for ids below `ids` (sets start unallocated).
    #[inline]
    pub fn ensure(&mut self, ids: usize) {
        if self.words.is_empty() {
            *self = BitSet::with_capacity(ids);
        }
    }

    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        self.words
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
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

    /// Ids in both sets.
    pub fn intersection<'a>(&'a self, other: &'a BitSet) -> impl Iterator<Item = u32> + 'a {
        self.words
            .iter()
            .zip(&other.words)
            .enumerate()
            .flat_map(|(i, (a, b))| {
                let mut bits = a & b;
                std::iter::from_fn(move || {
                    (bits != 0).then(|| {
                        let bit = bits.trailing_zeros();
                        bits &= bits - 1;
                        (i * 64) as u32 + bit
                    })
                })
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut bits = w;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let bit = bits.trailing_zeros();
                    bits &= bits - 1;
                    (i * 64) as u32 + bit
                })
            })
        })
    }
}

/// A fast hasher for integer keys (FxHash's multiply-rotate): the per-row maps of the kernels
/// hash dense ids, where SipHash's DoS resistance buys nothing and costs 4×.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A hash map keyed by dense ids, hashed with [`FxHasher`].
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// A dense table indexed by (endpoint, group): no hashing and no pointer chase on the per-row
/// path (values are stored inline).
#[derive(Debug)]
pub struct KeyTable<T> {
    width: usize,
    slots: Vec<Option<T>>,
}

impl<T: Default> KeyTable<T> {
    pub fn new(scope: &Scope) -> KeyTable<T> {
        let width = scope.width();
        let slots = (0..(scope.names.endpoints.len() + 1) * width)
            .map(|_| None)
            .collect();
        KeyTable { width, slots }
    }

    #[inline]
    pub fn get_mut(&mut self, endpoint: u32, group: u32) -> &mut T {
        let index = endpoint as usize * self.width + group as usize;
        self.slots[index].get_or_insert_with(Default::default)
    }

    /// Removes and returns a slot's value.
    pub fn take(&mut self, endpoint: u32, group: u32) -> Option<T> {
        self.slots
            .get_mut(endpoint as usize * self.width + group as usize)?
            .take()
    }

    pub fn get(&self, endpoint: u32, group: u32) -> Option<&T> {
        self.slots
            .get(endpoint as usize * self.width + group as usize)?
            .as_ref()
    }

    /// `(endpoint, group, value)` of every filled slot.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, &T)> {
        let width = self.width;
        self.slots.iter().enumerate().filter_map(move |(i, slot)| {
            slot.as_ref()
                .map(|v| ((i / width) as u32, (i % width) as u32, v))
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
    /// Sampled calls per (sampling unit, rate), [requests, direct value]: gathered over every
    /// segment of the window, then turned into the variances of `requests` and `direct` (and
    /// emptied) at the end of the pass, so a session read from several files, days or threads
    /// is one sampling unit.
    pub draws: Vec<Draw>,
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
        self.conversions
            .get(session as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// Average value of a conversion that carried one.
    pub fn average_value(&self) -> Option<f64> {
        crate::stats::ratio(self.total_value, self.total)
    }
}

pub fn session_conversions(
    facts: &Facts,
    outcome: Option<u32>,
    from: i64,
    to: i64,
) -> SessionConversions {
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
    /// Inbound requests of every key, and outbound ones, with variances over sampling units.
    pub requests: Tally,
    pub outbound_requests: Tally,
    /// `active` while the pass runs, indexed by group (no hashing per call).
    active_dense: Vec<BitSet>,
}

impl Usage {
    fn merge(&mut self, other: Usage, conversions: &SessionConversions) {
        self.requests.merge(&other.requests);
        self.failures += other.failures;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.latency_ms += other.latency_ms;
        self.direct.merge(&other.direct);
        self.direct_calls += other.direct_calls;
        self.direct_users.union_with(&other.direct_users);
        self.users.union_with(&other.users);
        // A session seen by both halves counted its conversions twice.
        for session in self.sessions.intersection(&other.sessions) {
            self.conversions_in_sessions -= f64::from(conversions.of(session));
        }
        self.sessions.union_with(&other.sessions);
        self.calls_in_sessions += other.calls_in_sessions;
        self.calls_in_converting_sessions += other.calls_in_converting_sessions;
        self.conversions_in_sessions += other.conversions_in_sessions;
        self.draws.extend(other.draws);
    }
}

impl<T: Default> KeyTable<T> {
    /// Moves every filled slot of `other` into `self` with `merge`.
    pub fn merge_with(&mut self, other: KeyTable<T>, merge: impl Fn(&mut T, T)) {
        for (index, slot) in other.slots.into_iter().enumerate() {
            if let Some(value) = slot {
                match &mut self.slots[index] {
                    Some(mine) => merge(mine, value),
                    empty => *empty = Some(value),
                }
            }
        }
    }
}

pub use valuetrace_facts::par::{par_calls, threads};

/// Usage of every (endpoint, group) over calls in `[from, to)` that pass the scope.
pub fn usage(
    facts: &Facts,
    scope: &Scope,
    from: i64,
    to: i64,
    conversions: &SessionConversions,
) -> UsagePass {
    let users = facts.names.users + 1;
    let init = || UsagePass {
        keys: KeyTable::new(scope),
        active: Default::default(),
        active_all: BitSet::with_capacity(users),
        requests: Tally::default(),
        outbound_requests: Tally::default(),
        active_dense: Vec::new(),
    };
    let sessions = facts.names.sessions + 1;
    let by = scope.by().is_some();
    let mut passes = par_calls(&facts.calls, from, to, init, |pass, seg| {
        let whole = seg.min_ts >= from && seg.max_ts < to;
        if whole && scope.is_everything() {
            SegUsage::whole(seg, scope).merge_into(pass, conversions, users, sessions, by);
        } else {
            let everything = scope.is_everything();
            SegUsage::of(
                seg,
                (from, to),
                scope.width(),
                |row| everything || scope.call_ok(seg, row),
                |row| scope.group(seg, row),
            )
            .merge_into(pass, conversions, users, sessions, by);
        }
    });
    let mut pass = passes.pop().unwrap_or_else(init);
    for other in passes {
        pass.keys
            .merge_with(other.keys, |mine, theirs| mine.merge(theirs, conversions));
        pass.active_all.union_with(&other.active_all);
        pass.requests.merge(&other.requests);
        if pass.active_dense.len() < other.active_dense.len() {
            pass.active_dense
                .resize_with(other.active_dense.len(), BitSet::default);
        }
        for (mine, theirs) in pass.active_dense.iter_mut().zip(&other.active_dense) {
            if !theirs.is_empty() {
                mine.union_with(theirs);
            }
        }
    }
    for (group, set) in std::mem::take(&mut pass.active_dense)
        .into_iter()
        .enumerate()
    {
        if !set.is_empty() {
            pass.active.insert(group as u32, set);
        }
    }
    if scope.by().is_none() {
        pass.active.insert(0, pass.active_all.clone());
    }
    settle_variances(&mut pass, scope);
    pass
}

/// Turns the draws of every key into the variances of its `requests` and `direct` value, and of
/// the pass's total requests per direction (a session calling several endpoints is one unit of
/// the total too: its calls' errors move together).
fn settle_variances(pass: &mut UsagePass, scope: &Scope) {
    let width = pass.keys.width;
    let (mut inbound, mut outbound) = (Vec::new(), Vec::new());
    let (mut requests, mut outbound_requests) = (Tally::default(), Tally::default());
    for (index, slot) in pass.keys.slots.iter_mut().enumerate() {
        let Some(u) = slot else { continue };
        Draw::coalesce(&mut u.draws);
        u.requests.settle(&u.draws, |v| v[0]);
        u.direct.settle(&u.draws, |v| v[1]);
        let endpoint = (index / width) as u32;
        let out = endpoint != 0 && scope.names.endpoint(endpoint).outbound;
        let (total, draws) = if out {
            (&mut outbound_requests, &mut outbound)
        } else {
            (&mut requests, &mut inbound)
        };
        total.sum += u.requests.sum;
        draws.append(&mut u.draws);
    }
    for (total, draws) in [
        (&mut requests, &mut inbound),
        (&mut outbound_requests, &mut outbound),
    ] {
        Draw::coalesce(draws);
        total.settle(draws, |v| v[0]);
    }
    pass.requests = requests;
    pass.outbound_requests = outbound_requests;
}

/// A small set of (endpoint, group) keys: a bitmask of endpoint ids below 256 within one group
/// (the usual case: a session has one plan), else a list.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    group: Option<u32>,
    mask: [u64; 4],
    extra: Vec<(u32, u32)>,
}

impl KeySet {
    #[inline]
    pub fn insert(&mut self, endpoint: u32, group: u32) {
        let group_ok = match self.group {
            None => {
                self.group = Some(group);
                true
            }
            Some(g) => g == group,
        };
        if group_ok && endpoint < 256 {
            self.mask[(endpoint / 64) as usize] |= 1u64 << (endpoint % 64);
        } else if !self.extra.contains(&(endpoint, group)) {
            self.extra.push((endpoint, group));
        }
    }

    pub fn clear(&mut self) {
        self.group = None;
        self.mask = [0; 4];
        self.extra.clear();
    }

    /// Adds every key of `other`.
    pub fn union_with(&mut self, other: &KeySet) {
        if self.group.is_none() || self.group == other.group {
            self.group = self.group.or(other.group);
            for (mine, theirs) in self.mask.iter_mut().zip(other.mask) {
                *mine |= theirs;
            }
            for &(endpoint, group) in &other.extra {
                self.insert(endpoint, group);
            }
        } else {
            other.for_each(|endpoint, group| self.insert(endpoint, group));
        }
    }

    /// Every (endpoint, group) in the set.
    pub fn for_each(&self, mut each: impl FnMut(u32, u32)) {
        if let Some(group) = self.group {
            for (word, bits) in self.mask.iter().enumerate() {
                let mut bits = *bits;
                while bits != 0 {
                    let bit = bits.trailing_zeros();
                    bits &= bits - 1;
                    each(word as u32 * 64 + bit, group);
                }
            }
        }
        for &(endpoint, group) in &self.extra {
            each(endpoint, group);
        }
    }
}

#[inline]
pub(crate) fn add_user(
    pass: &mut UsagePass,
    endpoint: u32,
    group: u32,
    user: u32,
    users: usize,
    by: bool,
) {
    let u = pass.keys.get_mut(endpoint, group);
    if u.users.words.is_empty() {
        u.users = BitSet::with_capacity(users);
    }
    u.users.insert(user);
    add_active(pass, group, user, users, by);
}

/// Marks `user` active in the slice (and in `group` when the answer breaks down).
#[inline]
pub(crate) fn add_active(pass: &mut UsagePass, group: u32, user: u32, users: usize, by: bool) {
    pass.active_all.insert(user);
    if by {
        let group = group as usize;
        if pass.active_dense.len() <= group {
            pass.active_dense.resize_with(group + 1, BitSet::default);
        }
        let set = &mut pass.active_dense[group];
        if set.words.is_empty() {
            *set = BitSet::with_capacity(users);
        }
        set.insert(user);
    }
}
