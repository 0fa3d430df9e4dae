//! First successful call per (new account, key): the scorecard's time to first success. Filled
//! by the usage pass (see `usage::usage_tracking`) so that no extra scan is needed.

use crate::usage::FxHashMap;

/// What the usage pass needs to track first successes: the dense index of each account among
/// the new accounts (`u32::MAX`: not new) and the width of a key slot (`endpoint × width +
/// group`).
pub(crate) struct FirstSuccessSpec<'a> {
    pub new_index: &'a [u32],
    pub new_accounts: usize,
    pub width: usize,
    pub slots: usize,
}

/// First successful call per (new account, key): a dense array when new accounts × keys is
/// small enough (the common case: no per-row hashing), else a hash map.
///
/// Dense tables with at most 64 keys also remember, per account, which keys were first seen in
/// an earlier segment and the latest of those first successes: rows of a segment that starts at
/// or after it cannot lower them and skip the table. Threads read segments oldest first, so past
/// an account's first segment almost every row skips (a cache-resident mask test instead of a
/// random write).
#[derive(Debug)]
pub(crate) enum FirstSuccess {
    Dense {
        keys: usize,
        at: Vec<i64>,
        masks: Vec<Masks>,
    },
    Sparse(FxHashMap<(u32, u32), i64>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Masks {
    /// Start of the segment `fresh` belongs to.
    segment: i64,
    old: u64,
    old_latest: i64,
    fresh: u64,
    fresh_latest: i64,
}

const NO_MASKS: Masks = Masks {
    segment: i64::MIN,
    old: 0,
    old_latest: i64::MIN,
    fresh: 0,
    fresh_latest: i64::MIN,
};

const DENSE_FIRST_SUCCESS: usize = 8 << 20;

impl FirstSuccess {
    pub(crate) fn new(new_accounts: usize, keys: usize) -> FirstSuccess {
        match new_accounts.checked_mul(keys) {
            Some(n) if n <= DENSE_FIRST_SUCCESS => FirstSuccess::Dense {
                keys,
                at: vec![i64::MAX; n],
                masks: if keys <= 64 {
                    vec![NO_MASKS; new_accounts]
                } else {
                    Vec::new()
                },
            },
            _ => FirstSuccess::Sparse(FxHashMap::default()),
        }
    }

    /// Offers a success at `t` from a segment whose rows start at `segment_start`.
    #[inline]
    pub(crate) fn offer(&mut self, account: u32, slot: u32, t: i64, segment_start: i64) {
        match self {
            FirstSuccess::Dense { keys, at, masks } => {
                let a = account as usize;
                let cell = &mut at[a * *keys + slot as usize];
                let Some(m) = masks.get_mut(a) else {
                    *cell = (*cell).min(t);
                    return;
                };
                if m.segment != segment_start {
                    m.old |= m.fresh;
                    m.old_latest = m.old_latest.max(m.fresh_latest);
                    m.fresh = 0;
                    m.fresh_latest = i64::MIN;
                    m.segment = segment_start;
                }
                let bit = 1u64 << slot;
                if m.old & bit != 0 && m.old_latest <= segment_start {
                    return;
                }
                *cell = (*cell).min(t);
                m.fresh |= bit;
                m.fresh_latest = m.fresh_latest.max(*cell);
            }
            FirstSuccess::Sparse(map) => {
                let cell = map.entry((account, slot)).or_insert(t);
                *cell = (*cell).min(t);
            }
        }
    }

    pub(crate) fn merge(&mut self, other: FirstSuccess) {
        match (self, other) {
            (FirstSuccess::Dense { at, .. }, FirstSuccess::Dense { at: theirs, .. }) => {
                for (mine, theirs) in at.iter_mut().zip(theirs) {
                    *mine = (*mine).min(theirs);
                }
            }
            (mine, FirstSuccess::Sparse(theirs)) => {
                for ((account, slot), t) in theirs {
                    mine.offer(account, slot, t, i64::MIN);
                }
            }
            (FirstSuccess::Sparse(_), FirstSuccess::Dense { .. }) => {
                unreachable!("every thread picks the same representation")
            }
        }
    }

    /// `(new account, key slot, first success)` of every filled cell.
    pub(crate) fn cells(self) -> Vec<(u32, u32, i64)> {
        match self {
            FirstSuccess::Dense { keys, at, .. } => at
                .into_iter()
                .enumerate()
                .filter(|(_, t)| *t != i64::MAX)
                .map(|(i, t)| ((i / keys) as u32, (i % keys) as u32, t))
                .collect(),
            FirstSuccess::Sparse(map) => map.into_iter().map(|((a, s), t)| (a, s, t)).collect(),
        }
    }
}
