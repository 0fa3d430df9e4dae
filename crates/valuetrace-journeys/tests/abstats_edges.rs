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
    assert_eq!(quantile(&[1.0, 2.0], 0.25), Some(1.25));
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
