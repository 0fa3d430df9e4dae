//! Small statistics the answers share: Wilson intervals for rates, exact quantiles, estimates of
//! sampled counts and sums (and their variance over the client's sampling units: [`Draw`]).

use serde::{Deserialize, Serialize};

const Z95: f64 = 1.959_963_984_540_054;

/// A rate with its 95% Wilson score interval (good at small counts and near 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub successes: f64,
    pub trials: f64,
    pub rate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

pub fn wilson(successes: f64, trials: f64) -> Rate {
    if trials <= 0.0 {
        return Rate {
            successes,
            trials,
            rate: None,
            ci_low: None,
            ci_high: None,
        };
    }
    let p = successes / trials;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / trials;
    let centre = (p + z2 / (2.0 * trials)) / denominator;
    let half = Z95 * (p * (1.0 - p) / trials + z2 / (4.0 * trials * trials)).sqrt() / denominator;
    Rate {
        successes,
        trials,
        rate: Some(p),
        ci_low: Some((centre - half).max(0.0)),
        ci_high: Some((centre + half).min(1.0)),
    }
}

/// The `q` quantile (0..=1) of `values` by the nearest-rank method; sorts in place.
pub fn quantile(values: &mut [f32], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = valuetrace_model::quantile::nearest_rank(values.len() as u64, q) as usize;
    let (_, value, _) = values.select_nth_unstable_by(rank, f32::total_cmp);
    Some(f64::from(*value))
}

/// Quantile of i64 durations (ms), nearest rank.
pub fn quantile_ms(values: &mut [i64], q: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let rank = valuetrace_model::quantile::nearest_rank(values.len() as u64, q) as usize;
    let (_, value, _) = values.select_nth_unstable(rank);
    Some(*value)
}

/// A count or sum over events kept with probability `1 / weight`: the Horvitz–Thompson estimate
/// `sum = Σ w·x`, the part of it that sampled events (weight above 1) make, and its variance over
/// the client's sampling units ([`Draw`]; `add` treats each event as a unit of its own).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub sum: f64,
    pub variance: f64,
    /// The part of `sum` estimated from sampled events (the rest was kept whole: exact).
    pub sampled_sum: f64,
    /// Sampling units that contributed sampled events.
    pub units: f64,
}

impl Tally {
    #[inline]
    pub fn add(&mut self, weight: f32, x: f64) {
        let w = f64::from(weight);
        self.sum += w * x;
        if weight > 1.0 {
            self.variance += w * (w - 1.0) * x * x;
            self.sampled_sum += w * x;
            self.units += 1.0;
        }
    }

    /// Adds the variance of `value` over `draws` sorted by [`Draw::coalesce`] (their totals
    /// are already in `sum`).
    pub fn settle(&mut self, draws: &[Draw], value: impl Fn(&[f64; 2]) -> f64) {
        let spread = Draw::spread(draws, value);
        self.variance += spread.variance;
        self.sampled_sum += spread.sampled;
        self.units += spread.units;
    }

    pub fn merge(&mut self, other: &Tally) {
        self.sum += other.sum;
        self.variance += other.variance;
        self.sampled_sum += other.sampled_sum;
        self.units += other.units;
    }

    pub fn sampled(&self) -> bool {
        self.variance > 0.0
    }

    /// The 95% interval when any contributing event was sampled.
    ///
    /// The estimate of a sampled part is a sum over a few kept units of very different sizes:
    /// skewed to the right (most samples hold fewer of the large sessions than their share, and
    /// then also estimate a smaller variance), so a symmetric normal interval misses the truth
    /// above it far more often than below. The interval is therefore symmetric on the log scale
    /// of the sampled part (`exact + S·e^(±t·se/S)`), with Student's t on `units − 1` degrees of
    /// freedom for the estimated variance; checked by simulation in
    /// `tests/sampling_simulation.rs` (93–97% coverage).
    pub fn interval(&self) -> Option<[f64; 2]> {
        if !self.sampled() {
            return None;
        }
        let half = t95(self.units - 1.0) * self.variance.sqrt();
        let exact = self.sum - self.sampled_sum;
        if self.sampled_sum > 0.0 {
            let spread = (half / self.sampled_sum).exp();
            Some([
                (exact + self.sampled_sum / spread).max(0.0),
                exact + self.sampled_sum * spread,
            ])
        } else {
            Some([self.sum - half, self.sum + half])
        }
    }
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (the normal one for large
/// `df`): exact for 1 and 2, else the Cornish–Fisher expansion (Abramowitz & Stegun 26.7.5),
/// within 0.1% from 3 up.
pub fn t95(df: f64) -> f64 {
    if df.is_nan() || df < 1.5 {
        return 12.706_204_736;
    }
    if df < 2.5 {
        return 4.302_652_730;
    }
    let z = Z95;
    let (z2, n) = (z * z, df);
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92_160.0;
    z + g1 / n + g2 / (n * n) + g3 / n.powi(3) + g4 / n.powi(4)
}

/// The unit the client samples a call with: it keeps or drops every call of a session (else of a
/// user, else the call alone) with one hash, so a unit's calls are one cluster for the variance.
/// Sessions and users get distinct units (a user's calls without a session hash the user id, its
/// calls in sessions the session ids); 0 is a call alone. The unit is the id over the whole
/// window, so a session split across days, files or threads is still one unit.
#[inline]
pub fn sampling_unit(session: u32, user: u32) -> u64 {
    if session != 0 {
        1 << 32 | u64::from(session)
    } else if user != 0 {
        2 << 32 | u64::from(user)
    } else {
        0
    }
}

/// The re-weighted totals of one sampling unit's kept calls at one rate (`weight` = 1 / rate),
/// per estimated quantity (`values[k]` = Σ weight · yₖ). Only calls sampled below rate 1 make
/// draws: a call kept with certainty adds nothing to the variance.
///
/// Draws are kept until every segment of the window is read ([`Draw::coalesce`]) because the
/// variance is not additive over the rows of a unit, only over units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    pub unit: u64,
    pub weight: f32,
    pub values: [f64; 2],
}

impl Draw {
    /// The sort key: unit, then rate ascending (weight descending).
    #[inline]
    fn key(&self) -> (u64, std::cmp::Reverse<u32>) {
        (self.unit, std::cmp::Reverse(self.weight.to_bits()))
    }

    /// Sorts `draws` by unit and rate and sums the draws of the same unit and rate (calls alone,
    /// unit 0, stay apart).
    pub fn coalesce(draws: &mut Vec<Draw>) {
        draws.sort_unstable_by_key(Draw::key);
        draws.dedup_by(|later, kept| {
            let same = later.unit != 0 && later.key() == kept.key();
            if same {
                kept.values[0] += later.values[0];
                kept.values[1] += later.values[1];
            }
            same
        });
    }

    /// The variance of `Σ value(draw)`, the sampled total and the number of units: see
    /// [`Draw::variance`].
    pub fn spread(draws: &[Draw], value: impl Fn(&[f64; 2]) -> f64) -> Spread {
        let mut units = 0.0;
        let mut last = u64::MAX;
        let mut sampled = 0.0;
        for draw in draws {
            let x = value(&draw.values);
            if x == 0.0 {
                continue;
            }
            sampled += x;
            if draw.unit != last || draw.unit == 0 {
                units += 1.0;
                last = draw.unit;
            }
        }
        Spread {
            variance: Draw::variance(draws, value),
            sampled,
            units,
        }
    }

    /// The Horvitz–Thompson variance estimate of `Σ value(draw)` over draws sorted by
    /// [`Draw::coalesce`].
    ///
    /// The client keeps a call at rate `r` when its unit's hash `u` (uniform on [0, 1)) is below
    /// `r`: units are independent, and within a unit calls at rates `r ≤ r'` are kept together
    /// with probability `min(r, r') = r`. The unbiased estimator `Σᵢⱼ (πᵢⱼ − πᵢπⱼ)/(πᵢⱼπᵢπⱼ)·yᵢyⱼ`
    /// over kept pairs of the same unit then reduces to `Σ_g,h (1 − max(r_g, r_h))·T_g·T_h` over
    /// the unit's rates, with `T_g` its re-weighted total at rate `r_g`: a unit kept at one rate
    /// adds `(1 − r)·T²` (its whole total, not the sum of its calls' squares: counting a session
    /// as independent calls gives too narrow an interval), calls kept with certainty add nothing.
    pub fn variance(draws: &[Draw], value: impl Fn(&[f64; 2]) -> f64) -> f64 {
        let mut variance = 0.0;
        let (mut unit, mut below) = (u64::MAX, 0.0);
        for draw in draws {
            if draw.unit != unit || draw.unit == 0 {
                unit = draw.unit;
                below = 0.0;
            }
            let rate = 1.0 / f64::from(draw.weight);
            let total = value(&draw.values);
            // Pairs with the unit's lower rates (seen before) and with itself.
            variance += (1.0 - rate).max(0.0) * total * (total + 2.0 * below);
            below += total;
        }
        variance.max(0.0)
    }
}

/// The variance over sampling units of a sampled total, the part of the total that was
/// sampled, and how many units contributed to it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub variance: f64,
    pub sampled: f64,
    pub units: f64,
}

/// A share `a / b` of two estimated totals (`draws` carry [a, b] per unit and rate) with its
/// 95% interval, or `None` when `b` is 0.
///
/// `a / b` of two Horvitz–Thompson totals is biased upwards by about `a/b · CV²(b)` (1/b is
/// convex): with errors always kept and the calls around them sampled, `a` is exact and the whole
/// bias is there, a few % on a few dozen sampled sessions. Beale's estimator
/// `a/b · (1 + cov(a, b)/(a·b)) / (1 + var(b)/b²)` removes that first-order bias. The interval
/// linearizes over the units: the variance of `Σ (a − R·b)` divided by `b²`, with Student's t on
/// `units − 1` degrees of freedom.
pub fn ratio_estimate(a: f64, b: f64, draws: &[Draw]) -> Option<(f64, Option<[f64; 2]>)> {
    let plain = ratio(a, b)?;
    let var_b = Draw::variance(draws, |v| v[1]);
    if var_b <= 0.0 {
        let var_a = Draw::variance(draws, |v| v[0]) / (b * b);
        return Some((plain, (var_a > 0.0).then(|| bounds(plain, var_a, draws))));
    }
    let var_a = Draw::variance(draws, |v| v[0]);
    let cov = (Draw::variance(draws, |v| v[0] + v[1]) - var_a - var_b) / 2.0;
    let beale = if a > 0.0 {
        plain * (1.0 + cov / (a * b)) / (1.0 + var_b / (b * b))
    } else {
        plain
    };
    let variance = Draw::variance(draws, |v| v[0] - beale * v[1]) / (b * b);
    Some((beale + 0.0, Some(bounds(beale, variance, draws))))
}

fn bounds(r: f64, variance: f64, draws: &[Draw]) -> [f64; 2] {
    let units = Draw::spread(draws, |v| v[1].max(v[0])).units;
    let half = t95(units - 1.0) * variance.sqrt();
    [(r - half).max(0.0), (r + half).min(1.0)]
}

/// `a / b`, `None` when `b` is 0.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    // `+ 0.0` turns -0.0 (an empty float sum is -0.0) into 0.0, so answers never say "-0".
    (b != 0.0).then(|| a / b + 0.0)
}

/// Rounds for display in JSON answers (keeps goldens stable across float noise).
pub fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_never_negative_zero() {
        let empty: f64 = std::iter::empty::<f64>().sum();
        let r = ratio(empty, 4.0).expect("defined");
        assert!(r == 0.0 && r.is_sign_positive(), "{r}");
        assert_eq!(serde_json::to_string(&r).ok().as_deref(), Some("0.0"));
        assert_eq!(ratio(1.0, 0.0), None);
    }

    #[test]
    fn wilson_matches_a_textbook_value() {
        // 81 of 263: p = 0.308, Wilson 95% = [0.2553, 0.3662] (Newcombe 1998, table I).
        let rate = wilson(81.0, 263.0);
        assert!((rate.ci_low.unwrap() - 0.2553).abs() < 5e-4, "{rate:?}");
        assert!((rate.ci_high.unwrap() - 0.3662).abs() < 5e-4, "{rate:?}");
        assert_eq!(wilson(0.0, 0.0).rate, None);
    }

    #[test]
    fn nearest_rank_quantiles() {
        let mut values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&mut values, 0.5), Some(3.0));
        assert_eq!(quantile(&mut values, 0.95), Some(5.0));
        assert_eq!(quantile(&mut values, 0.0), Some(1.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn t_quantiles_match_tables() {
        for (df, t) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (3.0, 3.182),
            (5.0, 2.571),
            (10.0, 2.228),
            (30.0, 2.042),
            (1e9, 1.960),
        ] {
            assert!(
                (t95(df) - t).abs() < 2e-3 * t,
                "t({df}) = {} not {t}",
                t95(df)
            );
        }
    }

    #[test]
    fn sampled_tallies_carry_an_interval() {
        let mut tally = Tally::default();
        tally.add(1.0, 1.0);
        assert_eq!(tally.interval(), None);
        tally.add(10.0, 1.0); // one event kept at rate 0.1 stands for 10
        assert_eq!(tally.sum, 11.0);
        let [low, high] = tally.interval().unwrap();
        assert!(low < 11.0 && high > 11.0);
        assert!((tally.variance - 90.0).abs() < 1e-9);
    }

    fn draw(unit: u64, weight: f32, value: f64) -> Draw {
        Draw {
            unit,
            weight,
            values: [value, 0.0],
        }
    }

    #[test]
    fn a_unit_of_k_calls_adds_k_squared_variance_wherever_its_calls_were_read() {
        // A session's four calls at rate 0.1, read from three segments in any order.
        let mut draws = vec![
            draw(7, 10.0, 10.0),
            draw(9, 10.0, 10.0),
            draw(7, 10.0, 20.0),
            draw(7, 10.0, 10.0),
        ];
        Draw::coalesce(&mut draws);
        assert_eq!(draws.len(), 2);
        let variance = Draw::variance(&draws, |v| v[0]);
        // (1 − 0.1)·40² + (1 − 0.1)·10² = 90·16 + 90.
        assert!((variance - (90.0 * 16.0 + 90.0)).abs() < 1e-9, "{variance}");
        // Calls alone stay apart: 2 × (1 − 0.1)·10².
        let mut alone = vec![draw(0, 10.0, 10.0), draw(0, 10.0, 10.0)];
        Draw::coalesce(&mut alone);
        assert!((Draw::variance(&alone, |v| v[0]) - 180.0).abs() < 1e-9);
    }

    /// The variance of a unit with calls at two rates, by enumerating the hash's outcomes: the
    /// estimator's expectation is the true variance of the estimate.
    #[test]
    fn mixed_rates_in_a_unit_are_estimated_without_bias() {
        // One call at rate 0.2 (value 3), two at rate 0.5 (values 1 and 4), one error at rate 1.
        let calls = [(0.2, 3.0), (0.5, 1.0), (0.5, 4.0), (1.0, 2.0)];
        let truth: f64 = calls.iter().map(|c| c.1).sum();
        let (mut mean_sq_error, mut mean_estimate) = (0.0, 0.0);
        // u uniform: [0, 0.2) keeps all, [0.2, 0.5) the rate-0.5 and rate-1 calls, else the error.
        for (u_share, threshold) in [(0.2, 0.1), (0.3, 0.3), (0.5, 0.9)] {
            let mut draws: Vec<Draw> = calls
                .iter()
                .filter(|(rate, _)| threshold < *rate && *rate < 1.0)
                .map(|(rate, y)| draw(5, (1.0 / rate) as f32, y / rate))
                .collect();
            let certain: f64 = calls.iter().filter(|c| c.0 >= 1.0).map(|c| c.1).sum();
            let estimate = certain + draws.iter().map(|d| d.values[0]).sum::<f64>();
            Draw::coalesce(&mut draws);
            mean_estimate += u_share * estimate;
            mean_sq_error += u_share * (estimate - truth).powi(2);
            // Its expected value over u is the true variance.
            mean_sq_error -= u_share * Draw::variance(&draws, |v| v[0]);
        }
        assert!((mean_estimate - truth).abs() < 1e-6, "{mean_estimate}");
        assert!(
            mean_sq_error.abs() < 1e-4,
            "bias of the variance {mean_sq_error}"
        );
    }
}
