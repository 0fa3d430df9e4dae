//! Edge cases of `valuetrace_journeys::abstats`: invalid input gives `None`, degenerate input
//! gives documented values, and no result field is ever NaN.

use valuetrace_journeys::abstats::{
    Comparison, Summary, Welford, benjamini_hochberg, bootstrap_quantile_diff, holm, quantile,
    sample_ratio_mismatch, two_proportion, welch,
};

fn finite(c: &Comparison) -> bool {
    let r = c.relative.is_none_or(f64::is_finite);
    [
        c.control,
        c.treatment,
        c.difference,
        c.ci95[0],
        c.ci95[1],
        c.p_value,
    ]
    .iter()
    .all(|x| x.is_finite())
        && r
}

#[test]
fn two_proportion_edges() {
    assert!(two_proportion(0.0, 0.0, 1.0, 10.0).is_none());
    assert!(two_proportion(1.0, 10.0, 11.0, 10.0).is_none());
    assert!(two_proportion(f64::NAN, 10.0, 1.0, 10.0).is_none());
    assert!(two_proportion(-1.0, 10.0, 1.0, 10.0).is_none());
    for (cs, ts) in [(0.0, 0.0), (10.0, 10.0)] {
        let c = two_proportion(cs, 10.0, ts, 10.0).expect("valid");
        assert!(finite(&c));
        assert_eq!((c.difference, c.p_value, c.significant), (0.0, 1.0, false));
    }
    let c = two_proportion(0.0, 100.0, 100.0, 100.0).expect("valid");
    assert!(finite(&c) && c.significant && c.relative.is_none());
    assert_eq!(c.ci95, [1.0, 1.0]);
}

#[test]
fn welch_edges() {
    let one = Summary {
        n: 1.0,
        mean: 1.0,
        variance: 0.0,
    };
    let s = Summary::of(&[1.0, 2.0, 3.0]);
    assert!(welch(&one, &s).is_none());
    let flat = Summary::of(&[2.0, 2.0, 2.0]);
    assert!(welch(&flat, &flat).is_none(), "both variances 0");
    let c = welch(&flat, &s).expect("one variance is enough");
    assert!(finite(&c) && c.difference == 0.0 && c.p_value == 1.0);
    let c = welch(&s, &s).expect("identical");
    assert_eq!((c.difference, c.p_value, c.relative), (0.0, 1.0, Some(0.0)));
    let bad = Summary {
        n: 5.0,
        mean: f64::NAN,
        variance: 1.0,
    };
    assert!(welch(&bad, &s).is_none());
    let tiny = Summary {
        n: 3.0,
        mean: 1.0,
        variance: 1e-300,
    };
    assert!(welch(&tiny, &tiny).is_some_and(|c| finite(&c)));
}

#[test]
fn summary_and_welford_agree() {
    let values: Vec<f64> = (0..1000).map(|i| 1e6 + f64::from(i % 37) * 0.25).collect();
    let (left, right) = values.split_at(313);
    let (mut a, mut b) = (Welford::new(), Welford::new());
    left.iter().for_each(|&x| a.push(x));
    right.iter().for_each(|&x| b.push(x));
    b.push(f64::NAN);
    a.merge(&b);
    a.merge(&Welford::new());
    let (s, w) = (Summary::of(&values), a.summary());
    assert_eq!(a.count(), 1000);
    assert!((s.mean - w.mean).abs() < 1e-9 && (s.variance - w.variance).abs() < 1e-9 * s.variance);
    assert_eq!(
        Summary::of(&[]),
        Summary {
            n: 0.0,
            mean: 0.0,
            variance: 0.0
        }
    );
    assert_eq!(
        Summary::of(&[f64::NAN, 4.0]),
        Summary {
            n: 1.0,
            mean: 4.0,
            variance: 0.0
        }
    );
    let mut empty = Welford::new();
    empty.merge(&a);
    assert_eq!(empty, a);
}

#[test]
fn quantile_edges() {
    assert_eq!(quantile(&[], 0.5), None);
    assert_eq!(quantile(&[1.0], 1.5), None);
    assert_eq!(quantile(&[1.0], f64::NAN), None);
    assert_eq!(quantile(&[7.0], 0.3), Some(7.0));
    assert_eq!(quantile(&[1.0, 2.0], 1.0), Some(2.0));
    // Nearest rank (issue 18, point 7): an observed value, never an interpolation.
    assert_eq!(quantile(&[1.0, 2.0], 0.25), Some(1.0));
    assert_eq!(quantile(&[1.0, 2.0], 0.75), Some(2.0));
}

#[test]
fn bootstrap_edges_and_determinism() {
    let x = [1.0, 2.0, 3.0];
    assert!(bootstrap_quantile_diff(&[], &x, 0.5, 100, 1).is_none());
    assert!(bootstrap_quantile_diff(&[f64::NAN], &x, 0.5, 100, 1).is_none());
    assert!(bootstrap_quantile_diff(&x, &x, 1.1, 100, 1).is_none());
    assert!(bootstrap_quantile_diff(&x, &x, 0.5, 0, 1).is_none());
    let same = bootstrap_quantile_diff(&x, &x, 0.5, 200, 1).expect("valid");
    assert_eq!((same.difference, same.p_value), (0.0, 1.0));
    let a = bootstrap_quantile_diff(&[5.0; 4], &[7.0; 9], 0.9, 99, 3).expect("valid");
    assert_eq!((a.difference, a.ci95, a.p_value), (2.0, [2.0, 2.0], 0.02));
    assert_eq!(a.relative, Some(0.4));
    let one = bootstrap_quantile_diff(&[1.0], &[2.0, 4.0], 1.0, 50, 9).expect("valid");
    assert!(finite(&one) && one.difference == 3.0);
    let v: Vec<f64> = (0..300).map(|i| f64::from((i * 37) % 101)).collect();
    let r1 = bootstrap_quantile_diff(&v, &v[..200], 0.9, 500, 42);
    assert_eq!(r1, bootstrap_quantile_diff(&v, &v[..200], 0.9, 500, 42));
    assert_ne!(r1, bootstrap_quantile_diff(&v, &v[..200], 0.9, 500, 43));
}

#[test]
fn srm_edges() {
    assert!(sample_ratio_mismatch(&[10.0], &[1.0]).is_none());
    assert!(sample_ratio_mismatch(&[10.0, 10.0], &[1.0]).is_none());
    assert!(sample_ratio_mismatch(&[10.0, 10.0], &[1.0, 0.0]).is_none());
    assert!(sample_ratio_mismatch(&[0.0, 0.0], &[1.0, 1.0]).is_none());
    assert!(sample_ratio_mismatch(&[-1.0, 3.0], &[1.0, 1.0]).is_none());
    let s = sample_ratio_mismatch(&[50.0, 50.0], &[0.5, 0.5]).expect("valid");
    assert_eq!(
        (s.statistic, s.p_value, s.mismatch, s.df),
        (0.0, 1.0, false, 1.0)
    );
    let s = sample_ratio_mismatch(&[0.0, 100.0], &[1.0, 1.0]).expect("valid");
    assert!(s.mismatch && s.p_value.is_finite());
}

#[test]
fn multiple_comparison_edges() {
    assert!(holm(&[]).is_empty() && benjamini_hochberg(&[]).is_empty());
    assert_eq!(holm(&[0.03]), vec![0.03]);
    assert_eq!(holm(&[f64::NAN, 0.01]), vec![1.0, 0.02]);
    let bh = benjamini_hochberg(&[f64::NAN, 0.01, 2.0]);
    assert!(
        bh[0] == 1.0 && (bh[1] - 0.03).abs() < 1e-15 && bh[2] == 1.0,
        "{bh:?}"
    );
    let c = two_proportion(10.0, 100.0, 25.0, 100.0).expect("valid");
    assert!(c.significant);
    let adjusted = c.with_p_value(0.2);
    assert!(!adjusted.significant && adjusted.p_value == 0.2);
}

/// Issue 18 (6): an interval shown next to an adjusted p-value excludes 0 exactly when that
/// p-value is below α, for every Holm step, for rates, means and bootstrapped quantiles.
#[test]
fn issue_18_adjusted_intervals_exclude_zero_iff_adjusted_p_is_below_alpha() {
    use valuetrace_journeys::abstats::{
        bootstrap_interval, bootstrap_quantile_diff_draws, holm_levels, two_proportion_interval,
        welch_interval,
    };
    let mut state = 0x9e37_79b9_u64;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut checked = [0usize; 2];
    for round in 0..400 {
        // A family of m rate comparisons with effects from none to large.
        let m = 1 + next(12) as usize;
        let tests: Vec<[f64; 4]> = (0..m)
            .map(|_| {
                let (cn, tn) = (20 + next(400), 20 + next(400));
                let cs = next(cn + 1);
                let ts = (cs * tn / cn + next(tn / 4 + 1)).min(tn);
                [cs as f64, cn as f64, ts as f64, tn as f64]
            })
            .collect();
        let compared: Vec<Comparison> = tests
            .iter()
            .map(|t| two_proportion(t[0], t[1], t[2], t[3]).expect("valid"))
            .collect();
        let p: Vec<f64> = compared.iter().map(|c| c.p_value).collect();
        let (adjusted, levels) = (holm(&p), holm_levels(&p, 0.05));
        for ((t, c), (adj, level)) in tests
            .iter()
            .zip(&compared)
            .zip(adjusted.iter().zip(&levels))
        {
            let ci = two_proportion_interval(t[0], t[1], t[2], t[3], *level).expect("valid");
            let excludes = ci[0] > 0.0 || ci[1] < 0.0;
            assert_eq!(
                excludes,
                *adj < 0.05,
                "round {round}: {t:?} {c:?} {ci:?} {adj} {level}"
            );
            assert!(ci[0] <= c.difference + 1e-12 && c.difference <= ci[1] + 1e-12);
            checked[usize::from(excludes)] += 1;
        }
        // Means: Welch's interval at the same levels.
        let summaries: Vec<(Summary, Summary)> = (0..m)
            .map(|_| {
                let n = 5.0 + next(200) as f64;
                let c = Summary {
                    n,
                    mean: 10.0,
                    variance: 1.0 + next(30) as f64,
                };
                let shift = next(40) as f64 / 10.0 - 1.0;
                let t = Summary {
                    n: n + 3.0,
                    mean: 10.0 + shift,
                    variance: 1.0 + next(30) as f64,
                };
                (c, t)
            })
            .collect();
        let p: Vec<f64> = summaries
            .iter()
            .map(|(c, t)| welch(c, t).expect("valid").p_value)
            .collect();
        let (adjusted, levels) = (holm(&p), holm_levels(&p, 0.05));
        for ((c, t), (adj, level)) in summaries.iter().zip(adjusted.iter().zip(&levels)) {
            let ci = welch_interval(c, t, *level).expect("valid");
            assert_eq!(
                ci[0] > 0.0 || ci[1] < 0.0,
                *adj < 0.05,
                "{c:?} {t:?} {ci:?} {adj}"
            );
        }
    }
    assert!(checked[0] > 100 && checked[1] > 100, "{checked:?}");
    // Bootstrapped quantiles: families of latency shifts.
    for m in [1usize, 4, 30, 80] {
        let draws: Vec<(Comparison, Vec<f64>)> = (0..m)
            .map(|i| {
                let control: Vec<f64> = (0..300).map(|j| ((j * 37) % 100) as f64).collect();
                let shift = (i % 7) as f64 * 2.0;
                let treatment: Vec<f64> = control.iter().map(|x| x + shift).collect();
                bootstrap_quantile_diff_draws(&control, &treatment, 0.5, 2000, i as u64)
                    .expect("valid")
            })
            .collect();
        let p: Vec<f64> = draws.iter().map(|(c, _)| c.p_value).collect();
        let (adjusted, levels) = (holm(&p), holm_levels(&p, 0.05));
        for ((c, d), (adj, level)) in draws.iter().zip(adjusted.iter().zip(&levels)) {
            let ci = bootstrap_interval(d, c.difference, *level).expect("valid");
            assert_eq!(
                ci[0] > 0.0 || ci[1] < 0.0,
                *adj < 0.05,
                "m={m} {c:?} {ci:?} {adj}"
            );
        }
    }
}

/// The score interval of a rate difference at 95% against an independent computation: the
/// Farrington–Manning restricted rates in closed form (the cubic of Miettinen & Nurminen 1985),
/// and the bounds where the score statistic equals ±1.96.
#[test]
fn score_interval_matches_the_closed_form_restricted_rates() {
    use valuetrace_journeys::abstats::two_proportion_interval;
    // Treatment 1, control 2 as in the paper: statistic (p̂1 − p̂2 − δ)/√V(δ).
    let statistic = |s1: f64, n1: f64, s2: f64, n2: f64, delta: f64| {
        let (p1, p2) = (s1 / n1, s2 / n2);
        let theta = n2 / n1;
        let a = 1.0 + theta;
        let b = -(1.0 + theta + p1 + theta * p2 + delta * (theta + 2.0));
        let c = delta * delta + delta * (2.0 * p1 + theta + 1.0) + p1 + theta * p2;
        let d = -p1 * delta * (1.0 + delta);
        let v = b.powi(3) / (27.0 * a.powi(3)) - b * c / (6.0 * a * a) + d / (2.0 * a);
        let u = v.signum() * (b * b / (9.0 * a * a) - c / (3.0 * a)).sqrt();
        let w = (std::f64::consts::PI + (v / u.powi(3)).clamp(-1.0, 1.0).acos()) / 3.0;
        let r1 = 2.0 * u * w.cos() - b / (3.0 * a);
        let r2 = r1 - delta;
        (p1 - p2 - delta) / (r1 * (1.0 - r1) / n1 + r2 * (1.0 - r2) / n2).sqrt()
    };
    for (s1, n1, s2, n2) in [
        (56.0, 70.0, 48.0, 80.0),
        (9.0, 10.0, 3.0, 10.0),
        (85.0, 300.0, 60.0, 300.0),
    ] {
        let ci = two_proportion_interval(s2, n2, s1, n1, 0.05).expect("valid");
        for bound in ci {
            let z = statistic(s1, n1, s2, n2, bound).abs();
            assert!(
                (z - 1.959_963_985).abs() < 1e-6,
                "{s1}/{n1} vs {s2}/{n2}: {ci:?} z={z}"
            );
        }
    }
}
