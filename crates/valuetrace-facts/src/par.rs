//! Passes over the segments of a window in parallel: per-thread groups of similar row counts,
//! each thread's state merged by the caller.

/// Threads for a pass: `VALUETRACE_QUERY_THREADS` if set, else the machine's cores, at most 8.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("VALUETRACE_QUERY_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 8)
    })
}

/// Splits the call segments overlapping `[from, to)` into per-thread groups of similar row
/// counts, runs `each` on every group in its own thread (each thread's segments in ascending
/// `min_ts`) and returns the per-thread states.
pub fn par_calls<'a, T: Send>(
    segments: &'a [std::sync::Arc<crate::facts::CallSeg>],
    from: i64,
    to: i64,
    init: impl Fn() -> T + Sync,
    each: impl Fn(&mut T, &'a crate::facts::CallSeg) + Sync,
) -> Vec<T> {
    let mut relevant: Vec<&crate::facts::CallSeg> = segments
        .iter()
        .map(|s| &**s)
        .filter(|s| !s.is_empty() && s.max_ts >= from && s.min_ts < to)
        .collect();
    relevant.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let n = threads().min(relevant.len()).max(1);
    let mut groups: Vec<(usize, Vec<&crate::facts::CallSeg>)> =
        (0..n).map(|_| (0, Vec::new())).collect();
    for seg in relevant {
        let lightest = groups
            .iter_mut()
            .min_by_key(|(rows, _)| *rows)
            .expect("n >= 1");
        lightest.0 += seg.len();
        lightest.1.push(seg);
    }
    // Each thread reads its segments oldest first (kernels may rely on it to skip work).
    for (_, segs) in &mut groups {
        segs.sort_by_key(|s| s.min_ts);
    }
    if n == 1 {
        let mut state = init();
        for seg in &groups[0].1 {
            each(&mut state, seg);
        }
        return vec![state];
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .iter()
            .map(|(_, segs)| {
                let (init, each) = (&init, &each);
                scope.spawn(move || {
                    let mut state = init();
                    for seg in segs {
                        each(&mut state, seg);
                    }
                    state
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a pass thread panicked"))
            .collect()
    })
}
