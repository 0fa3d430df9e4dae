//! Statistics for per-endpoint A/B experiment reports: the difference of each variant vs the
//! control with a 95% confidence interval and a two-sided p-value.
//!
//! - rates: two-proportion z-test ([`two_proportion`]);
//! - means: Welch's t-test ([`welch`], from [`Summary`] or the streaming [`Welford`]);
//! - latency quantiles: percentile bootstrap ([`bootstrap_quantile_diff`]);
//! - assignment health: sample-ratio-mismatch chi-square test ([`sample_ratio_mismatch`]);
//! - many metrics at once: Holm–Bonferroni adjusted p-values ([`holm`], the default; it controls
//!   the family-wise error rate). [`benjamini_hochberg`] (false discovery rate) is offered too;
//! - intervals that agree with adjusted p-values ([`holm_levels`] and the intervals of
//!   [`adjusted`]).
//!
//! Distributions (normal, Student's t, chi-square) come from `statrs`. Reference values from
//! scipy/statsmodels are checked in `tests/abstats_scipy.rs`. No function returns NaN: invalid
//! input gives `None`.

pub mod adjusted;

pub use adjusted::{bootstrap_interval, holm_levels, two_proportion_interval, welch_interval};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// A result is `significant` when its p-value is below this (two-sided 5%).
pub const ALPHA: f64 = 0.05;
/// Sample-ratio mismatch is flagged below this p-value (0.001, the usual SRM threshold: the check
/// runs on every experiment, so it must rarely fire by chance).
pub const SRM_ALPHA: f64 = 0.001;
/// Bootstrap sides with more values than this are subsampled first (see [`bootstrap_quantile_diff`]).
pub const MAX_BOOTSTRAP_VALUES: usize = 20_000;

/// One metric of one variant compared with the control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The control's value (rate, mean or quantile).
    pub control: f64,
    /// The treatment's value.
    pub treatment: f64,
    /// `treatment - control`.
    pub difference: f64,
    /// `difference / control`; `None` when the control's value is 0.
    pub relative: Option<f64>,
    /// 95% confidence interval of `difference`, `[low, high]`.
    pub ci95: [f64; 2],
    /// Two-sided p-value of "no difference", in `[0, 1]`.
    pub p_value: f64,
    /// `p_value < ALPHA`.
    pub significant: bool,
}

impl Comparison {
    fn new(control: f64, treatment: f64, difference: f64, ci95: [f64; 2], p: f64) -> Self {
        let relative = (control != 0.0).then(|| difference / control);
        let c = Comparison {
            control,
            treatment,
            difference,
            relative,
            ci95,
            p_value: 0.0,
            significant: false,
        };
        c.with_p_value(p)
    }

    /// The same comparison with `p_value` replaced (e.g. by a [`holm`]-adjusted one) and
    /// `significant` recomputed. NaN becomes 1; values are clamped to `[0, 1]`.
    pub fn with_p_value(mut self, p: f64) -> Self {
        self.p_value = clean_p(p);
        self.significant = self.p_value < ALPHA;
        self
    }
}

fn clean_p(p: f64) -> f64 {
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}

/// Two-proportion comparison of rates `successes / n` (counts are `f64` because sampled data is
/// re-weighted).
///
/// - `difference` = treatment rate − control rate; `relative` = difference / control rate;
/// - `ci95` = difference ± z₀.₉₇₅ · √(p_c(1−p_c)/n_c + p_t(1−p_t)/n_t) (unpooled Wald interval);
/// - `p_value` = 2·(1 − Φ(|z|)), z = difference / √(p(1−p)(1/n_c + 1/n_t)) with the pooled rate
///   p = (s_c + s_t)/(n_c + n_t), as statsmodels `proportions_ztest`. When both rates are 0 or both
///   are 1 the pooled standard error is 0 and the difference is 0: p-value 1.
///
/// `None` when a side has `n <= 0`, or successes outside `[0, n]`, or a non-finite input.
pub fn two_proportion(
    control_successes: f64,
    control_n: f64,
    treatment_successes: f64,
    treatment_n: f64,
) -> Option<Comparison> {
    let (cs, cn, ts, tn) = (
        control_successes,
        control_n,
        treatment_successes,
        treatment_n,
    );
    let valid = |s: f64, n: f64| n.is_finite() && n > 0.0 && s >= 0.0 && s <= n;
    if !valid(cs, cn) || !valid(ts, tn) {
        return None;
    }
    let (pc, pt) = (cs / cn, ts / tn);
    let d = pt - pc;
    let pooled = (cs + ts) / (cn + tn);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / cn + 1.0 / tn)).sqrt();
    let normal = Normal::standard();
    let z = if se_pooled > 0.0 { d / se_pooled } else { 0.0 };
    let p = 2.0 * normal.sf(z.abs());
    let half = normal.inverse_cdf(0.975) * (pc * (1.0 - pc) / cn + pt * (1.0 - pt) / tn).sqrt();
    Some(Comparison::new(pc, pt, d, [d - half, d + half], p))
}

/// Size, mean and sample variance (ddof = 1) of a metric for one variant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values (may be a re-weighted, non-integer count).
    pub n: f64,
    /// Arithmetic mean (0 when `n == 0`).
    pub mean: f64,
    /// Sample variance Σ(x − mean)² / (n − 1); 0 when `n < 2`.
    pub variance: f64,
}

impl Summary {
    /// Summary of the finite values of `values` (NaN and ±∞ are skipped), via [`Welford`].
    pub fn of(values: &[f64]) -> Summary {
        let mut w = Welford::new();
        values.iter().for_each(|&x| w.push(x));
        w.summary()
    }
}

/// Streaming mean/variance (Welford), so callers can accumulate per thread and [`merge`](Self::merge).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value; NaN and ±∞ are ignored.
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Adds all values of `other` (Chan et al.'s pairwise update).
    pub fn merge(&mut self, other: &Welford) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let d = other.mean - self.mean;
        self.mean += d * nb / n;
        self.m2 += other.m2 + d * d * na * nb / n;
        self.n += other.n;
    }

    /// Number of values pushed.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The [`Summary`] of the values pushed (variance with ddof = 1, 0 when fewer than 2).
    pub fn summary(&self) -> Summary {
        let variance = if self.n >= 2 {
            self.m2 / (self.n - 1) as f64
        } else {
            0.0
        };
        Summary {
            n: self.n as f64,
            mean: self.mean,
            variance,
        }
    }
}

/// Welch's unequal-variance t-test of `treatment.mean − control.mean`, as
/// `scipy.stats.ttest_ind(treatment, control, equal_var=False)`.
///
/// With sₓ = varianceₓ / nₓ: t = difference / √(s_c + s_t); Welch–Satterthwaite degrees of freedom
/// df = (s_c + s_t)² / (s_c²/(n_c − 1) + s_t²/(n_t − 1)); `p_value` = 2·P(T_df > |t|);
/// `ci95` = difference ± t_df,0.975 · √(s_c + s_t).
///
/// `None` when a side has `n < 2`, a non-finite or negative input, or when both variances are 0
/// (the test is undefined there; scipy returns NaN).
pub fn welch(control: &Summary, treatment: &Summary) -> Option<Comparison> {
    let (c, t) = (control, treatment);
    let valid = |s: &Summary| finite(&[s.n, s.mean, s.variance]) && s.n >= 2.0 && s.variance >= 0.0;
    if !valid(c) || !valid(t) {
        return None;
    }
    let (sc, st) = (c.variance / c.n, t.variance / t.n);
    let se2 = sc + st;
    if se2 <= 0.0 || !se2.is_finite() {
        return None;
    }
    // Written with ratios so that tiny variances cannot underflow to 0/0.
    let (rc, rt) = (sc / se2, st / se2);
    let df = 1.0 / (rc * rc / (c.n - 1.0) + rt * rt / (t.n - 1.0));
    let se = se2.sqrt();
    let d = t.mean - c.mean;
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = 2.0 * dist.sf((d / se).abs());
    let half = dist.inverse_cdf(0.975) * se;
    Some(Comparison::new(c.mean, t.mean, d, [d - half, d + half], p))
}

fn finite(values: &[f64]) -> bool {
    values.iter().all(|x| x.is_finite())
}

/// The `q`-quantile of ascending `sorted` values at the product's nearest rank
/// ([`valuetrace_model::quantile::nearest_rank`]: 1-based rank ⌈q·n⌉, numpy's
/// `method="inverted_cdf"`), as endpoint health, funnels and time to first value read them.
/// `None` when empty or `q` is not in `[0, 1]`.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let (lo, frac) = virtual_index(sorted.len(), q);
    let a = *sorted.get(lo)?;
    Some(match sorted.get(lo + 1) {
        Some(&b) if frac > 0.0 => lerp(a, b, frac),
        _ => a,
    })
}

/// The index of the `q`-quantile and the fraction towards the next value: the product's nearest
/// rank, so the fraction is always 0 (callers keep the interpolating shape of numpy's methods,
/// unused).
fn virtual_index(len: usize, q: f64) -> (usize, f64) {
    if len == 0 {
        return (0, 0.0);
    }
    let index = valuetrace_model::quantile::nearest_rank(len as u64, q);
    (index as usize, 0.0)
}

/// numpy's `_lerp`: the formula is switched at 0.5 so that `frac = 1` gives `b` exactly.
fn lerp(a: f64, b: f64, frac: f64) -> f64 {
    if frac >= 0.5 {
        b - (b - a) * (1.0 - frac)
    } else {
        a + (b - a) * frac
    }
}

/// Difference of the `q`-quantiles (treatment − control, [`quantile`] definition) with a
/// percentile-bootstrap 95% interval.
///
/// Each of `resamples` rounds resamples both sides with replacement (same size as the side) and
/// takes the difference of their `q`-quantiles. `ci95` is the 2.5% and 97.5% [`quantile`] of those
/// differences. `p_value` = min(1, 2·(k + 1)/(resamples + 1)), where k counts resampled differences
/// at or beyond 0 on the side opposite to the point difference (a point difference of 0 gives 1);
/// the +1 keeps it from being exactly 0 with finitely many resamples.
///
/// Cost: a resample's quantile depends only on two order statistics, which are drawn directly
/// (the k-th smallest of n uniform draws is Beta(k, n−k+1), the next follows from it), so a
/// resample costs O(1) after one sort, with the same distribution as resampling the values.
/// A side with more than [`MAX_BOOTSTRAP_VALUES`] finite values is first reduced to a seeded random
/// subsample of that size (without replacement) to bound the sort; the point estimate still uses
/// all values, and that side's resampled deviations from the subsample's quantile are scaled by
/// √(subsample/n) (m-out-of-n bootstrap) and added to the full point estimate.
///
/// Deterministic for a given `seed` (SplitMix64). NaN/±∞ values are skipped. `None` when a side
/// has no finite value, `q` is not in `[0, 1]`, or `resamples == 0`.
pub fn bootstrap_quantile_diff(
    control: &[f64],
    treatment: &[f64],
    q: f64,
    resamples: usize,
    seed: u64,
) -> Option<Comparison> {
    bootstrap_quantile_diff_draws(control, treatment, q, resamples, seed).map(|(c, _)| c)
}

/// [`bootstrap_quantile_diff`] with its resampled differences, sorted ascending (for intervals
/// at other levels: [`bootstrap_interval`]).
pub fn bootstrap_quantile_diff_draws(
    control: &[f64],
    treatment: &[f64],
    q: f64,
    resamples: usize,
    seed: u64,
) -> Option<(Comparison, Vec<f64>)> {
    if !(0.0..=1.0).contains(&q) || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let c = BootSide::new(control, q, &mut rng)?;
    let t = BootSide::new(treatment, q, &mut rng)?;
    let difference = t.estimate - c.estimate;
    let resample = |_| t.resample(q, &mut rng) - c.resample(q, &mut rng);
    let mut diffs: Vec<f64> = (0..resamples).map(resample).collect();
    diffs.sort_unstable_by(f64::total_cmp);
    let ci95 = [quantile(&diffs, 0.025)?, quantile(&diffs, 0.975)?];
    let side = difference.signum();
    let beyond = if difference == 0.0 {
        resamples
    } else {
        diffs.iter().filter(|&&d| d * side <= 0.0).count()
    };
    let p = 2.0 * (beyond as f64 + 1.0) / (resamples as f64 + 1.0);
    let comparison = Comparison::new(c.estimate, t.estimate, difference, ci95, p);
    Some((comparison, diffs))
}

/// One side of the bootstrap: sorted (sub)sample, point estimate on all values, and the scaling of
/// resampled deviations (1 without subsampling).
struct BootSide {
    sorted: Vec<f64>,
    estimate: f64,
    center: f64,
    scale: f64,
}

impl BootSide {
    fn new(values: &[f64], q: f64, rng: &mut SplitMix64) -> Option<Self> {
        let mut all: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let n = all.len();
        if n <= MAX_BOOTSTRAP_VALUES {
            all.sort_unstable_by(f64::total_cmp);
            let estimate = quantile(&all, q)?;
            return Some(BootSide {
                sorted: all,
                estimate,
                center: estimate,
                scale: 1.0,
            });
        }
        // Exact point estimate on all values in O(n), then a partial Fisher–Yates subsample.
        let (lo, frac) = virtual_index(n, q);
        let (_, &mut a, rest) = all.select_nth_unstable_by(lo, f64::total_cmp);
        let next = rest.iter().copied().min_by(f64::total_cmp);
        let estimate = match next {
            Some(b) if frac > 0.0 => lerp(a, b, frac),
            _ => a,
        };
        for i in 0..MAX_BOOTSTRAP_VALUES {
            let j = i + rng.below(n - i);
            all.swap(i, j);
        }
        all.truncate(MAX_BOOTSTRAP_VALUES);
        all.sort_unstable_by(f64::total_cmp);
        let center = quantile(&all, q)?;
        let scale = (MAX_BOOTSTRAP_VALUES as f64 / n as f64).sqrt();
        Some(BootSide {
            sorted: all,
            estimate,
            center,
            scale,
        })
    }

    /// The `q`-quantile of one bootstrap resample, drawn through its two order statistics.
    fn resample(&self, q: f64, rng: &mut SplitMix64) -> f64 {
        let n = self.sorted.len();
        let (lo, frac) = virtual_index(n, q);
        let k = lo + 1; // 1-based rank of the lower order statistic
        let (gk, grest) = (rng.gamma(k as f64), rng.gamma((n - k + 1) as f64));
        let u = gk / (gk + grest);
        let a = self.at(u);
        let value = if frac > 0.0 && k < n {
            // The smallest of the n − k draws above u, uniform on (u, 1).
            let v = rng.open01();
            let next = u + (1.0 - u) * -(v.ln() / (n - k) as f64).exp_m1();
            lerp(a, self.at(next), frac)
        } else {
            a
        };
        if self.scale == 1.0 {
            value
        } else {
            self.estimate + (value - self.center) * self.scale
        }
    }

    /// The value a uniform draw `u` in [0, 1) picks: `sorted[⌊u·n⌋]`.
    fn at(&self, u: f64) -> f64 {
        let n = self.sorted.len();
        let i = ((u * n as f64) as usize).min(n - 1);
        self.sorted[i]
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, seedable, good enough for resampling.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1).
    fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n` (multiply-shift; bias below 2⁻³² for our sizes).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Gamma(shape, 1) for shape ≥ 1 (Marsaglia–Tsang 2000, Box–Muller normals).
    fn gamma(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x =
                (-2.0 * self.open01().ln()).sqrt() * (std::f64::consts::TAU * self.open01()).cos();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            if self.open01().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

/// Sample-ratio-mismatch check: were units assigned in the configured shares?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Srm {
    /// Pearson's chi-square statistic Σ (observed − expected)² / expected.
    pub statistic: f64,
    /// Degrees of freedom: number of variants − 1.
    pub df: f64,
    /// P(χ²_df ≥ statistic).
    pub p_value: f64,
    /// `p_value < SRM_ALPHA` (0.001).
    pub mismatch: bool,
    /// Expected counts: total observed × share / Σ shares.
    pub expected: Vec<f64>,
}

/// Chi-square goodness-of-fit test of `observed` counts per variant against `expected_shares`
/// (any positive weights; normalized to sum 1), as `scipy.stats.chisquare(observed, expected)`.
///
/// `None` with fewer than 2 variants, mismatched lengths, a negative or non-finite count, a share
/// that is not positive and finite, or a total of 0.
pub fn sample_ratio_mismatch(observed: &[f64], expected_shares: &[f64]) -> Option<Srm> {
    let (obs, shares) = (observed, expected_shares);
    let counts_ok = finite(obs) && obs.iter().all(|&o| o >= 0.0);
    let shares_ok = finite(shares) && shares.iter().all(|&s| s > 0.0);
    if obs.len() < 2 || obs.len() != shares.len() || !counts_ok || !shares_ok {
        return None;
    }
    let (total, share_sum) = (obs.iter().sum::<f64>(), shares.iter().sum::<f64>());
    if !total.is_finite() || total <= 0.0 || !share_sum.is_finite() {
        return None;
    }
    let expected: Vec<f64> = shares.iter().map(|s| total * s / share_sum).collect();
    let chi2 = |(o, e): (&f64, &f64)| (o - e) * (o - e) / e;
    let statistic: f64 = obs.iter().zip(&expected).map(chi2).sum();
    let df = (obs.len() - 1) as f64;
    let p_value = clean_p(ChiSquared::new(df).ok()?.sf(statistic));
    Some(Srm {
        statistic,
        df,
        p_value,
        mismatch: p_value < SRM_ALPHA,
        expected,
    })
}

/// Holm–Bonferroni step-down adjusted p-values, in input order, as statsmodels
/// `multipletests(p, method="holm")`: with p sorted ascending, adjusted p₍ᵢ₎ =
/// maxⱼ≤ᵢ min(1, (m − j)·p₍ⱼ₎) (0-based j). This is the default correction for reports showing
/// many metrics: it controls the family-wise error rate. NaN counts as 1; inputs are clamped to
/// `[0, 1]`.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let (p, order) = sorted_p(p_values);
    let m = p.len();
    let mut out = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Benjamini–Hochberg adjusted p-values (false discovery rate), in input order, as statsmodels
/// `multipletests(p, method="fdr_bh")`: with p sorted ascending, adjusted p₍ᵢ₎ =
/// minⱼ≥ᵢ min(1, p₍ⱼ₎·m/(j + 1)) (0-based j). Less strict than [`holm`]; not the default.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let (p, order) = sorted_p(p_values);
    let m = p.len();
    let mut out = vec![1.0; m];
    let mut running: f64 = 1.0;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] / ((rank + 1) as f64 / m as f64));
        out[i] = running;
    }
    out
}

fn sorted_p(p_values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let p: Vec<f64> = p_values.iter().map(|&p| clean_p(p)).collect();
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    (p, order)
}

#[cfg(test)]
mod tests {
    //! Private helpers; the public API's edge cases are in `tests/abstats_edges.rs` and the
    //! scipy reference values in `tests/abstats_scipy.rs`.
    use super::*;

    #[test]
    fn rng_draws_are_in_range_and_gamma_has_the_right_moments() {
        let mut rng = SplitMix64(1);
        assert!((0..10_000).all(|_| (0.0..1.0).contains(&rng.open01()) && rng.below(7) < 7));
        for shape in [1.0, 3.0, 250.0] {
            let draws: Vec<f64> = (0..20_000).map(|_| rng.gamma(shape)).collect();
            let s = Summary::of(&draws);
            assert!((s.mean / shape - 1.0).abs() < 0.03, "{shape}: {s:?}");
            assert!((s.variance / shape - 1.0).abs() < 0.06, "{shape}: {s:?}");
        }
    }

    #[test]
    fn lerp_and_lookup_stay_inside_the_data() {
        assert_eq!((lerp(1.0, 3.0, 1.0), lerp(1.0, 3.0, 0.0)), (3.0, 1.0));
        assert_eq!(virtual_index(0, 0.5), (0, 0.0));
        let side = BootSide {
            sorted: vec![1.0, 2.0],
            estimate: 1.0,
            center: 1.0,
            scale: 1.0,
        };
        assert_eq!((side.at(0.0), side.at(0.5), side.at(1.0)), (1.0, 2.0, 2.0));
    }
}
