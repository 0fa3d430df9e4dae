//! `valuetrace_journeys::abstats` against reference values from scipy/statsmodels.
//!
//! The numbers below were printed by `abstats_scipy.py` (beside this file; not run in CI) with
//! numpy 2.4.6, scipy 1.17.1, statsmodels 0.15.0. The fixed inputs there and here must match.

use valuetrace_journeys::abstats::{
    Comparison, Summary, Welford, benjamini_hochberg, bootstrap_quantile_diff, holm, quantile,
    sample_ratio_mismatch, two_proportion, welch,
};

const REL: f64 = 1e-9;

fn close(actual: f64, expected: f64, what: &str) {
    let tol = REL * expected.abs().max(1e-12);
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: {actual:e} vs scipy {expected:e}"
    );
}

fn check(c: &Comparison, expected: (f64, f64, f64, f64), what: &str) {
    close(c.difference, expected.0, &format!("{what} difference"));
    close(c.ci95[0], expected.1, &format!("{what} ci low"));
    close(c.ci95[1], expected.2, &format!("{what} ci high"));
    close(c.p_value, expected.3, &format!("{what} p"));
    assert_eq!(c.significant, expected.3 < 0.05, "{what} significant");
}

#[test]
fn two_proportion_matches_statsmodels() {
    // (control successes, control n, treatment successes, treatment n)
    let inputs = [
        (120.0, 2400.0, 156.0, 2380.0),
        (37.5, 812.25, 21.0, 790.5),
        (0.0, 500.0, 3.0, 500.0),
        (980.0, 1000.0, 950.0, 1000.0),
    ];
    // difference, Wald CI (confint_proportions_2indep "wald"), p (proportions_ztest, pooled)
    let expected = [
        (
            0.015546218487394958,
            0.0023216276577928303,
            0.028770809316997086,
            0.02122365375625991,
        ),
        (
            -0.019602586812582243,
            -0.03787641830360031,
            -0.001328755321564179,
            0.0364197066894749,
        ),
        (
            0.006,
            -0.0007691152164252266,
            0.012769115216425226,
            0.08280197671798482,
        ),
        (
            -0.030000000000000027,
            -0.04605496455519529,
            -0.013945035444804764,
            0.00026210551099920194,
        ),
    ];
    for (i, ((cs, cn, ts, tn), e)) in inputs.into_iter().zip(expected).enumerate() {
        let c = two_proportion(cs, cn, ts, tn).expect("valid input");
        check(&c, e, &format!("proportions[{i}]"));
        close(c.control, cs / cn, "control rate");
        match c.relative {
            Some(r) => close(r, (ts / tn - cs / cn) / (cs / cn), "relative"),
            None => assert_eq!(cs, 0.0, "relative is None only for a control rate of 0"),
        }
    }
}

fn welch_inputs() -> Vec<(Vec<f64>, Vec<f64>)> {
    let a1 = vec![12.1, 14.3, 11.8, 15.2, 13.3, 12.9, 14.8, 13.1];
    let b1 = vec![15.4, 16.1, 14.9, 17.2, 15.8, 16.6, 14.7];
    let a2 = (0..40)
        .map(|i| 100.0 + 10.0 * (f64::from(i) * 1.7).sin() + f64::from(i) * 0.3)
        .collect();
    let b2 = (0..25)
        .map(|i| 103.0 + 25.0 * (f64::from(i) * 0.9).cos())
        .collect();
    let a3 = vec![1.0, 2.0, 3.0, 4.0, 5.0];
    vec![(a1, b1), (a2, b2), (a3.clone(), a3)]
}

#[test]
fn welch_matches_scipy_ttest_ind() {
    // difference, CI (TtestResult.confidence_interval), p; statistic and df are not reported
    let expected = [
        (
            2.376785714285715,
            1.1800606678228605,
            3.5735107607485697,
            0.000911567485246294,
        ),
        (
            -2.59133033130162,
            -10.46771659336773,
            5.285055930764488,
            0.5066383058700711,
        ),
        (0.0, -2.306004135204166, 2.306004135204166, 1.0),
    ];
    for (i, ((a, b), e)) in welch_inputs().into_iter().zip(expected).enumerate() {
        let c = welch(&Summary::of(&a), &Summary::of(&b)).expect("valid input");
        check(&c, e, &format!("welch[{i}]"));
        // the streaming accumulator, split across two "threads", gives the same answer
        let (mut wa, mut wb, mut wb2) = (Welford::new(), Welford::new(), Welford::new());
        a.iter().for_each(|&x| wa.push(x));
        let (b_left, b_right) = b.split_at(b.len() / 2);
        b_left.iter().for_each(|&x| wb.push(x));
        b_right.iter().for_each(|&x| wb2.push(x));
        wb.merge(&wb2);
        let s = welch(&wa.summary(), &wb.summary()).expect("valid input");
        check(&s, e, &format!("welch streamed[{i}]"));
    }
}

#[test]
fn welch_matches_scipy_from_stats_with_weighted_n() {
    let inputs = [
        (
            Summary {
                n: 1520.5,
                mean: 231.25,
                variance: 4410.0,
            },
            Summary {
                n: 1498.25,
                mean: 224.5,
                variance: 3969.0,
            },
        ),
        (
            Summary {
                n: 12.0,
                mean: 3.5,
                variance: 0.0,
            },
            Summary {
                n: 9.0,
                mean: 4.25,
                variance: 1.5,
            },
        ),
    ];
    // difference, CI (t.ppf at Welch df), p (ttest_ind_from_stats); df 3012.42…, 8.0
    let expected = [
        (
            -6.75,
            -11.368997031312675,
            -2.1310029686873246,
            0.004194257868312298,
        ),
        (
            0.75,
            -0.19142224599969948,
            1.6914222459996995,
            0.10350185318138756,
        ),
    ];
    for (i, ((c, t), e)) in inputs.iter().zip(expected).enumerate() {
        check(
            &welch(c, t).expect("valid input"),
            e,
            &format!("welch summary[{i}]"),
        );
    }
}

#[test]
fn quantile_matches_numpy_nearest_rank() {
    let mut values = vec![9.0, 1.5, 7.25, 3.0, 3.0, 12.0, -2.0, 5.5, 8.0, 0.25, 3.0];
    values.sort_by(f64::total_cmp);
    let qs = [0.0, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0];
    // np.quantile(values, q, method="inverted_cdf"): the product's nearest rank.
    let expected = [-2.0, 0.25, 1.5, 3.0, 9.0, 12.0, 12.0, 12.0];
    for (q, e) in qs.into_iter().zip(expected) {
        close(
            quantile(&values, q).expect("valid q"),
            e,
            &format!("quantile {q}"),
        );
    }
}

fn latencies() -> (Vec<f64>, Vec<f64>) {
    let control = (0u32..500)
        .map(|i| f64::from(40 + (i * 37) % 113 + (i * i) % 17))
        .collect();
    let treatment = (0u32..450)
        .map(|i| f64::from(30 + (i * 41) % 97 + (i * i) % 13))
        .collect();
    (control, treatment)
}

#[test]
fn bootstrap_point_estimates_match_numpy_and_cis_are_sane() {
    let (control, treatment) = latencies();
    // q, np.quantile(control, q), np.quantile(treatment, q), difference
    let expected = [
        (0.5, 104.0, 84.0, -20.0),
        (0.9, 149.0, 123.0, -26.0),
        (0.99, 164.0, 135.0, -29.0),
    ];
    for (q, qc, qt, d) in expected {
        let c = bootstrap_quantile_diff(&control, &treatment, q, 2000, 7).expect("valid input");
        close(c.control, qc, "control quantile");
        close(c.treatment, qt, "treatment quantile");
        close(c.difference, d, "difference");
        assert!(
            c.ci95[0] <= c.difference && c.difference <= c.ci95[1],
            "q={q}: {c:?}"
        );
        assert!(
            c.ci95[1] < 0.0 && c.p_value < 0.05 && c.significant,
            "q={q}: {c:?}"
        );
        // identical inputs: no difference
        let same = bootstrap_quantile_diff(&control, &control, q, 2000, 7).expect("valid input");
        assert!(
            same.ci95[0] <= 0.0 && 0.0 <= same.ci95[1] && same.p_value > 0.05,
            "{same:?}"
        );
    }
    // two halves of one distribution: usually not significant, CI contains 0
    let (a, b) = control.split_at(250);
    let c = bootstrap_quantile_diff(a, b, 0.5, 2000, 11).expect("valid input");
    assert!(
        c.ci95[0] <= c.difference && c.difference <= c.ci95[1] && c.p_value > 0.05,
        "{c:?}"
    );
}

/// Percentile CI of the plain bootstrap (resample every value), for comparison with the
/// order-statistic shortcut used by `bootstrap_quantile_diff`.
fn naive_bootstrap_ci(control: &[f64], treatment: &[f64], q: f64, resamples: usize) -> [f64; 2] {
    let mut state = 0x1234_5678_9abc_def0_u64;
    let mut draw = |values: &[f64]| {
        let mut resample: Vec<f64> = (0..values.len())
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                values[((u128::from(state) * values.len() as u128) >> 64) as usize]
            })
            .collect();
        resample.sort_by(f64::total_cmp);
        quantile(&resample, q).expect("non-empty")
    };
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| draw(treatment) - draw(control))
        .collect();
    diffs.sort_by(f64::total_cmp);
    [
        quantile(&diffs, 0.025).expect("non-empty"),
        quantile(&diffs, 0.975).expect("non-empty"),
    ]
}

#[test]
fn bootstrap_shortcut_matches_plain_resampling() {
    let (control, treatment) = latencies();
    for q in [0.5, 0.9, 0.99] {
        let naive = naive_bootstrap_ci(&control, &treatment, q, 4000);
        let fast = bootstrap_quantile_diff(&control, &treatment, q, 4000, 5)
            .expect("valid")
            .ci95;
        let width = naive[1] - naive[0];
        for k in 0..2 {
            assert!(
                (fast[k] - naive[k]).abs() <= 0.1 * width + 1.0,
                "q={q}: {fast:?} vs {naive:?}"
            );
        }
    }
}

#[test]
fn bootstrap_subsamples_large_sides_with_the_right_width() {
    // Low-discrepancy points in [0, 1): median standard error ≈ 0.5/√n per side.
    let uniform = |n: usize, shift: f64| -> Vec<f64> {
        (0..n)
            .map(|i| (i as f64 * 0.618_033_988_749_894_9).fract() + shift)
            .collect()
    };
    for n in [20_000, 200_000] {
        let (c, t) = (uniform(n, 0.0), uniform(n, 0.01));
        let r = bootstrap_quantile_diff(&c, &t, 0.5, 2000, 3).expect("valid");
        let half = (r.ci95[1] - r.ci95[0]) / 2.0;
        let expected = 1.959_964 * 2f64.sqrt() * 0.5 / (n as f64).sqrt();
        assert!(
            (0.85..1.15).contains(&(half / expected)),
            "n={n}: {half} vs {expected}"
        );
        assert!(
            r.ci95[0] <= r.difference && r.difference <= r.ci95[1],
            "n={n}: {r:?}"
        );
        close(
            r.difference,
            quantile_of(&t, 0.5) - quantile_of(&c, 0.5),
            "full-data estimate",
        );
        assert!(r.significant, "n={n}: {r:?}");
    }
}

fn quantile_of(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile(&sorted, q).expect("non-empty")
}

#[test]
fn srm_matches_scipy_chisquare() {
    let inputs: [(&[f64], &[f64]); 5] = [
        (&[5012.0, 4988.0], &[0.5, 0.5]),
        (&[5200.0, 4800.0], &[0.5, 0.5]),
        (&[3310.0, 3350.0, 3340.0], &[1.0, 1.0, 1.0]),
        (&[1021.5, 2050.25], &[1.0, 2.0]),
        (&[1000.0, 1200.0], &[0.5, 0.5]),
    ];
    let expected = [
        (0.0576, 0.8103302566044083),
        (16.0, 6.334248366623988e-05),
        (0.26, 0.8780954309205613),
        (0.008555790673069098, 0.9263027638181373),
        (18.181818181818183, 2.007865612426481e-05),
    ];
    for (i, ((obs, shares), (stat, p))) in inputs.into_iter().zip(expected).enumerate() {
        let s = sample_ratio_mismatch(obs, shares).expect("valid input");
        close(s.statistic, stat, &format!("srm[{i}] statistic"));
        close(s.p_value, p, &format!("srm[{i}] p"));
        assert_eq!(s.df, (obs.len() - 1) as f64);
        assert_eq!(s.mismatch, p < 0.001);
    }
}

#[test]
fn holm_and_bh_match_statsmodels_multipletests() {
    let inputs: [&[f64]; 3] = [
        &[0.01, 0.04, 0.03, 0.005, 0.20, 0.04],
        &[0.5, 0.001, 0.3],
        &[0.9, 0.8, 0.95, 0.02],
    ];
    let holm_expected: [&[f64]; 3] = [
        &[0.05, 0.12, 0.12, 0.03, 0.2, 0.12],
        &[0.6, 0.003, 0.6],
        &[1.0, 1.0, 1.0, 0.08],
    ];
    let bh_expected: [&[f64]; 3] = [
        &[
            0.030000000000000002,
            0.048,
            0.048,
            0.030000000000000002,
            0.2,
            0.048,
        ],
        &[0.5, 0.003, 0.45],
        &[0.95, 0.95, 0.95, 0.08],
    ];
    for (i, p) in inputs.iter().enumerate() {
        for (name, got, want) in [
            ("holm", holm(p), holm_expected[i]),
            ("bh", benjamini_hochberg(p), bh_expected[i]),
        ] {
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want.iter()) {
                close(*g, *w, &format!("{name}[{i}]"));
            }
        }
    }
}
