//! Intervals that agree with adjusted p-values.
//!
//! A report that shows a Holm-adjusted p-value next to an unadjusted 95% interval contradicts
//! itself: the interval can exclude 0 while the adjusted p says "no clear difference". So each
//! adjusted p-value gets an interval at the level Holm's procedure actually tested it at
//! ([`holm_levels`]), computed by the interval that inverts the same test:
//!
//! - rates: the score interval ([`two_proportion_interval`]), whose test at a difference of 0 is the
//!   pooled z-test of [`two_proportion`](super::two_proportion);
//! - means: Welch's interval at that level ([`welch_interval`]);
//! - quantiles: bootstrap order statistics chosen by the same count as the bootstrap p-value
//!   ([`bootstrap_interval`]).
//!
//! So the interval excludes 0 exactly when the adjusted p-value is below α.

use super::Summary;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The error level each hypothesis is tested at by Holm's step-down procedure with family-wise
/// level `alpha`, in input order; the interval shown next to a Holm-adjusted p-value has
/// confidence `1 − level`.
///
/// With p sorted ascending (0-based rank j) and r the rank of the first hypothesis Holm keeps:
/// a rejected hypothesis (rank j < r) gets `alpha / (m − j)` (the Bonferroni level of its step);
/// every kept one gets `alpha / (m − r)` (the level at which the procedure stopped). Then the
/// interval excludes 0 iff the adjusted p-value (see [`holm`](super::holm)) is below `alpha`:
/// rejected at step j means p₍ⱼ₎ < alpha/(m − j); kept means p ≥ p₍ᵣ₎ ≥ alpha/(m − r).
/// NaN counts as 1, as in `holm`.
pub fn holm_levels(p_values: &[f64], alpha: f64) -> Vec<f64> {
    let (p, order) = super::sorted_p(p_values);
    let m = p.len();
    let mut levels = vec![alpha; m];
    let mut stopped: Option<f64> = None;
    for (rank, &i) in order.iter().enumerate() {
        let step = alpha / (m - rank) as f64;
        if stopped.is_none() && p[i] >= step {
            stopped = Some(step);
        }
        levels[i] = stopped.unwrap_or(step);
    }
    levels
}

/// Interval of the rate difference (treatment − control) at confidence `1 − level`, by inverting
/// the score test (Farrington–Manning; Miettinen–Nurminen without their n/(n − 1) factor): the
/// differences δ whose statistic (d − δ)/√V(δ) is within ±z₁₋ₗₑᵥₑₗ/₂, with V(δ) the variance
/// at the rates that maximize the likelihood under a difference of δ. At δ = 0 those rates are the
/// pooled rate, so 0 is outside the interval exactly when [`two_proportion`](super::two_proportion)'s
/// p-value is below `level`. It also behaves well at rates near 0 or 1, where the Wald interval
/// collapses.
///
/// `None` for invalid counts (as `two_proportion`) or a level outside (0, 1).
pub fn two_proportion_interval(
    control_successes: f64,
    control_n: f64,
    treatment_successes: f64,
    treatment_n: f64,
    level: f64,
) -> Option<[f64; 2]> {
    let valid = |s: f64, n: f64| n.is_finite() && n > 0.0 && s >= 0.0 && s <= n;
    let sides_ok = valid(control_successes, control_n) && valid(treatment_successes, treatment_n);
    if !(sides_ok && level > 0.0 && level < 1.0) {
        return None;
    }
    let score = Score {
        control: (control_successes, control_n),
        treatment: (treatment_successes, treatment_n),
    };
    let d = treatment_successes / treatment_n - control_successes / control_n;
    let critical = Normal::standard().inverse_cdf(1.0 - level / 2.0);
    let inside = |delta: f64| score.statistic(d, delta).abs() <= critical;
    Some([
        boundary(-1.0, d, inside, true),
        boundary(d, 1.0, inside, false),
    ])
}

/// The edge of the set of accepted values between `outside` and `inside` points, by bisection:
/// `lower` when the accepted set lies to the right of the edge.
fn boundary(a: f64, b: f64, inside: impl Fn(f64) -> bool, lower: bool) -> f64 {
    let (mut out, mut ins) = if lower { (a, b) } else { (b, a) };
    if inside(out) {
        return out;
    }
    for _ in 0..200 {
        let mid = 0.5 * (out + ins);
        if mid == out || mid == ins {
            break;
        }
        if inside(mid) {
            ins = mid;
        } else {
            out = mid;
        }
    }
    ins
}

/// The two samples of a rate comparison, as (successes, n).
struct Score {
    control: (f64, f64),
    treatment: (f64, f64),
}

impl Score {
    /// (d − δ)/√V(δ); 0 when both are 0, ±∞ when only V is.
    fn statistic(&self, d: f64, delta: f64) -> f64 {
        let (pc, pt) = self.restricted(delta);
        let variance = pt * (1.0 - pt) / self.treatment.1 + pc * (1.0 - pc) / self.control.1;
        let gap = d - delta;
        if gap == 0.0 {
            0.0
        } else if variance > 0.0 {
            gap / variance.sqrt()
        } else {
            gap.signum() * f64::INFINITY
        }
    }

    /// The (control, treatment) rates of highest likelihood with treatment − control = δ: the
    /// log-likelihood is concave in the control rate, so its derivative is bisected to 0 inside
    /// the rates allowed (both in [0, 1]).
    fn restricted(&self, delta: f64) -> (f64, f64) {
        let (low, high) = ((-delta).max(0.0), (1.0 - delta).min(1.0));
        if high <= low {
            return (low, low + delta);
        }
        let (sc, nc) = self.control;
        let (st, nt) = self.treatment;
        let term = |s: f64, f: f64, p: f64| {
            (if s > 0.0 { s / p } else { 0.0 }) - (if f > 0.0 { f / (1.0 - p) } else { 0.0 })
        };
        let slope = |pc: f64| term(sc, nc - sc, pc) + term(st, nt - st, pc + delta);
        let (mut a, mut b) = (low, high);
        for _ in 0..200 {
            let mid = 0.5 * (a + b);
            if mid == a || mid == b {
                break;
            }
            if slope(mid) > 0.0 { a = mid } else { b = mid }
        }
        let pc = 0.5 * (a + b);
        (pc, (pc + delta).clamp(0.0, 1.0))
    }
}

/// Welch's interval of `treatment.mean − control.mean` at confidence `1 − level`: difference ±
/// t_df,1−level/2 · √(s_c + s_t), the same standard error and degrees of freedom as
/// [`welch`](super::welch), so it excludes 0 iff Welch's p-value is below `level`. `None` where
/// `welch` is `None` or the level is outside (0, 1).
pub fn welch_interval(control: &Summary, treatment: &Summary, level: f64) -> Option<[f64; 2]> {
    if !(level > 0.0 && level < 1.0) {
        return None;
    }
    let c = super::welch(control, treatment)?;
    let (sc, st) = (
        control.variance / control.n,
        treatment.variance / treatment.n,
    );
    let se2 = sc + st;
    let (rc, rt) = (sc / se2, st / se2);
    let df = 1.0 / (rc * rc / (control.n - 1.0) + rt * rt / (treatment.n - 1.0));
    let half = StudentsT::new(0.0, 1.0, df)
        .ok()?
        .inverse_cdf(1.0 - level / 2.0)
        * se2.sqrt();
    Some([c.difference - half, c.difference + half])
}

/// Interval of a bootstrapped difference at confidence `1 − level`, from the sorted resampled
/// differences `sorted_diffs` (see [`bootstrap_quantile_diff_draws`](super::bootstrap_quantile_diff_draws))
/// and the point `difference`.
///
/// The bootstrap p-value is 2·(k + 1)/(R + 1) with k the resamples at or beyond 0 on the far side,
/// so it is below `level` iff k ≤ K = ⌈level·(R + 1)/2 − 1⌉ − 1. The bounds are the order
/// statistics K and R − 1 − K (0-based): the near bound is beyond 0 exactly when k ≤ K. When
/// R resamples cannot reach the level (K < 0) or the difference is 0, the interval is widened to
/// reach 0: no more can be said with R resamples. `None` without resamples or with a level
/// outside (0, 1).
pub fn bootstrap_interval(sorted_diffs: &[f64], difference: f64, level: f64) -> Option<[f64; 2]> {
    let r = sorted_diffs.len();
    if r == 0 || !(level > 0.0 && level < 1.0) {
        return None;
    }
    let k = (level * (r as f64 + 1.0) / 2.0 - 1.0).ceil() - 1.0;
    let index = (k.max(0.0) as usize).min((r - 1) / 2);
    let mut interval = [sorted_diffs[index], sorted_diffs[r - 1 - index]];
    let far = if difference > 0.0 {
        sorted_diffs.iter().filter(|&&d| d <= 0.0).count()
    } else {
        sorted_diffs.iter().filter(|&&d| d >= 0.0).count()
    };
    let p = 2.0 * (far as f64 + 1.0) / (r as f64 + 1.0);
    if k < 0.0 || difference == 0.0 || p >= level {
        interval = [interval[0].min(0.0), interval[1].max(0.0)];
    }
    Some(interval)
}
