"""Reference values for tests/abstats_scipy.rs (valuetrace_journeys::abstats).

Not run in CI. To refresh the numbers pasted into abstats_scipy.rs:

    python3 -m venv /tmp/abstats-venv
    /tmp/abstats-venv/bin/pip install numpy scipy statsmodels
    /tmp/abstats-venv/bin/python crates/valuetrace-journeys/tests/abstats_scipy.py

The fixed inputs here and in abstats_scipy.rs must stay identical.
"""

import math

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

print(f"# numpy {np.__version__}, scipy {scipy.__version__}, statsmodels {statsmodels.__version__}")

# --- two-proportion z-test: (control_successes, control_n, treatment_successes, treatment_n)
PROPORTIONS = [
    (120.0, 2400.0, 156.0, 2380.0),
    (37.5, 812.25, 21.0, 790.5),
    (0.0, 500.0, 3.0, 500.0),
    (980.0, 1000.0, 950.0, 1000.0),
]
print("\n# two_proportion: difference, ci_lo, ci_hi, p_value")
for xc, nc, xt, nt in PROPORTIONS:
    # pooled standard error for the test, as the Rust code documents
    _, p = proportions_ztest([xt, xc], [nt, nc], alternative="two-sided")
    # unpooled (Wald) interval of the difference treatment - control
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff", alpha=0.05)
    print(f"({xt / nt - xc / nc!r}, {float(lo)!r}, {float(hi)!r}, {float(p)!r}),")


# --- Welch's t-test on raw values
def welch_inputs():
    a1 = [12.1, 14.3, 11.8, 15.2, 13.3, 12.9, 14.8, 13.1]
    b1 = [15.4, 16.1, 14.9, 17.2, 15.8, 16.6, 14.7]
    # the same formulas are evaluated in Rust (f64 sin/cos)
    a2 = [100.0 + 10.0 * math.sin(i * 1.7) + i * 0.3 for i in range(40)]
    b2 = [103.0 + 25.0 * math.cos(i * 0.9) for i in range(25)]
    a3 = [1.0, 2.0, 3.0, 4.0, 5.0]
    b3 = [1.0, 2.0, 3.0, 4.0, 5.0]
    return [(a1, b1), (a2, b2), (a3, b3)]


print("\n# welch (values): difference, ci_lo, ci_hi, p_value, statistic, df")
for a, b in welch_inputs():
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(0.95)
    d = float(np.mean(b) - np.mean(a))
    r = [d, ci.low, ci.high, res.pvalue, res.statistic, res.df]
    print("(" + ", ".join(repr(float(x)) for x in r) + "),")

# Welch from summaries with re-weighted (non-integer) n: (n, mean, variance) control, treatment
SUMMARIES = [
    ((1520.5, 231.25, 4410.0), (1498.25, 224.5, 3969.0)),
    ((12.0, 3.5, 0.0), (9.0, 4.25, 1.5)),
]
print("\n# welch (summaries): difference, ci_lo, ci_hi, p_value, df")
for (nc, mc, vc), (nt, mt, vt) in SUMMARIES:
    res = stats.ttest_ind_from_stats(mt, math.sqrt(vt), nt, mc, math.sqrt(vc), nc, equal_var=False)
    sc, st = vc / nc, vt / nt
    df = (sc + st) ** 2 / (sc**2 / (nc - 1) + st**2 / (nt - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(sc + st)
    d = mt - mc
    r = [d, d - half, d + half, res.pvalue, df]
    print("(" + ", ".join(repr(float(x)) for x in r) + "),")

# --- the product's quantile: nearest rank (numpy method="inverted_cdf")
QVALUES = [9.0, 1.5, 7.25, 3.0, 3.0, 12.0, -2.0, 5.5, 8.0, 0.25, 3.0]
QS = [0.0, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0]
print("\n# quantile of QVALUES at QS")
print(repr([float(np.quantile(QVALUES, q, method="inverted_cdf")) for q in QS]))


# --- bootstrap: only the point estimate is deterministic across implementations
def latencies():
    control = [float(40 + (i * 37) % 113 + (i * i) % 17) for i in range(500)]
    treatment = [float(30 + (i * 41) % 97 + (i * i) % 13) for i in range(450)]
    return control, treatment


c, t = latencies()
print("\n# bootstrap point estimates: q, control_q, treatment_q, difference")
for q in [0.5, 0.9, 0.99]:
    qc, qt = (float(np.quantile(c, q, method="inverted_cdf")), float(np.quantile(t, q, method="inverted_cdf")))
    print(f"({q!r}, {qc!r}, {qt!r}, {qt - qc!r}),")

# --- sample-ratio mismatch: scipy.stats.chisquare with expected = total * normalized shares
SRM = [
    ([5012.0, 4988.0], [0.5, 0.5]),
    ([5200.0, 4800.0], [0.5, 0.5]),
    ([3310.0, 3350.0, 3340.0], [1.0, 1.0, 1.0]),
    ([1021.5, 2050.25], [1.0, 2.0]),
    ([1000.0, 1200.0], [0.5, 0.5]),
]
print("\n# chisquare: statistic, p_value")
for obs, shares in SRM:
    shares = np.asarray(shares) / np.sum(shares)
    res = stats.chisquare(obs, np.sum(obs) * shares)
    print(f"({float(res.statistic)!r}, {float(res.pvalue)!r}),")

# --- multiple comparisons
PVALUES = [
    [0.01, 0.04, 0.03, 0.005, 0.20, 0.04],
    [0.5, 0.001, 0.3],
    [0.9, 0.8, 0.95, 0.02],
]
print("\n# holm")
for ps in PVALUES:
    print(repr([float(x) for x in multipletests(ps, method="holm")[1]]) + ",")
print("\n# benjamini-hochberg")
for ps in PVALUES:
    print(repr([float(x) for x in multipletests(ps, method="fdr_bh")[1]]) + ",")
