import math
import time
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from tlcourse import stats
from tlcourse.stats import Comparison

Z95 = 1.959963984540054


def _pair(n=2000, wrong_b=0.10, seed=0):
    """Labels, A right everywhere, B wrong on the first `wrong_b` fraction of items."""
    y = np.random.default_rng(seed).integers(0, 10, n)
    b = y.copy()
    b[: int(wrong_b * n)] = (y[: int(wrong_b * n)] + 1) % 10
    return y, y.copy(), b


def _noisy(acc, n=2000, seeds=1, rng=None):
    """[seeds, n] predictions that are right with probability acc, with labels y (fixed rng so tests are repeatable)."""
    rng = rng or np.random.default_rng(42)
    y = np.arange(n) % 10
    return y, np.where(rng.random((seeds, n)) < acc, y, (y + 1) % 10)


def test_accuracy_se_hand_values():
    assert stats.accuracy_se(0.5, 100) == pytest.approx(0.05)
    assert stats.accuracy_se(0.9, 100) == pytest.approx(0.03)
    assert stats.accuracy_se(1.0, 10) == 0.0


def test_accuracy_ci_is_wilson_and_matches_scipy():
    lo, hi = stats.accuracy_ci(0.86, 100)
    ref = sps.binomtest(86, 100).proportion_ci(confidence_level=0.95, method="wilson")
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    # Wilson by hand at p=0.5, n=100: centre 0.5, half-width z sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)
    half = Z95 * math.sqrt(0.25 / 100 + Z95**2 / (4 * 100**2)) / (1 + Z95**2 / 100)
    assert stats.accuracy_ci(0.5, 100) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-9)
    lo99, hi99 = stats.accuracy_ci(0.86, 100, level=0.99)
    assert lo99 < lo < 0.86 < hi < hi99
    assert stats.accuracy_ci(1.0, 50)[1] == pytest.approx(1.0) and stats.accuracy_ci(1.0, 50)[0] < 1.0


@pytest.mark.parametrize(
    "call", [lambda: stats.accuracy_se(0.5, 0), lambda: stats.accuracy_se(1.5, 10), lambda: stats.accuracy_se(86, 100),
             lambda: stats.accuracy_ci(-0.1, 10), lambda: stats.accuracy_ci(0.5, 10, level=95)],
)  # fmt: skip
def test_accuracy_errors_are_one_line(call):
    with pytest.raises(ValueError, match="pass") as e:
        call()
    assert "\n" not in str(e.value)


def test_summarize_uses_sample_sd_and_formats():
    s = stats.summarize([1.0, 2.0, 3.0])
    assert (s.mean, s.sd, s.min, s.max, s.n, s.values) == (2.0, 1.0, 1.0, 3.0, 3, (1.0, 2.0, 3.0))
    assert str(s) == "2.000 ± 1.000 (1.000–3.000, n=3)"
    assert str(stats.summarize(np.array([0.851, 0.856, 0.861]))) == "0.856 ± 0.005 (0.851–0.861, n=3)"
    one = stats.summarize([0.9])
    assert one.sd == 0.0 and str(one) == "0.900 ± 0.000 (0.900–0.900, n=1)"
    assert str(stats.summarize([-0.1, 0.2])).startswith("0.050 ± 0.212 (\u22120.100–0.200")


@pytest.mark.parametrize("values", [[], [0.1, float("nan")]])
def test_summarize_errors(values):
    with pytest.raises(ValueError, match="non-empty list of numbers without NaN"):
        stats.summarize(values)


def test_identical_predictions_are_a_tie_with_p_one():
    y, pred = _noisy(0.8)
    for p in (pred[0], pred):  # one seed (McNemar) and one seed given as a 2-D array
        c = stats.paired_compare(y, p, p)
        assert (c.diff, c.lo, c.hi, c.p, c.verdict) == (0.0, 0.0, 0.0, 1.0, "tie within noise")
    y, pred = _noisy(0.8, seeds=3)
    c = stats.paired_compare(y, pred, pred)
    assert (c.diff, c.lo, c.hi, c.p, c.n_seeds) == (0.0, 0.0, 0.0, 1.0, 3)


def test_a_right_where_b_wrong_on_10_percent():
    y, a, b = _pair()
    c = stats.paired_compare(y, a, b)
    assert c.diff == pytest.approx(0.10) and c.verdict == "A beats B"
    se = math.sqrt(0.1 * 0.9 / 2000)  # paired difference here is a Bernoulli(0.1) per item
    assert 0 < c.lo < 0.1 < c.hi and c.lo == pytest.approx(0.1 - Z95 * se, abs=0.004)
    assert c.hi == pytest.approx(0.1 + Z95 * se, abs=0.004)
    assert c.p < 1e-6 and c.p == pytest.approx(sps.binomtest(200, 200).pvalue)  # exact McNemar: 200 discordant
    assert (c.n_seeds, c.n_items, c.per_seed) == (1, 2000, pytest.approx((0.1,)))


def test_mcnemar_counts_only_discordant_items():
    y = np.zeros(100, dtype=int)
    a, b = y.copy(), y.copy()
    a[:10], b[10:13] = 1, 1  # A wrong on 10 items, B wrong on 3 others: 3 vs 10 discordant
    c = stats.paired_compare(y, a, b)
    assert c.diff == pytest.approx(-0.07) and c.p == pytest.approx(sps.binomtest(3, 13).pvalue)


def test_swapping_arms_flips_sign_and_verdict():
    y, a = _noisy(0.85, seeds=5)
    b = _noisy(0.80, seeds=5, rng=np.random.default_rng(7))[1]
    ab = stats.paired_compare(y, a, b, a="LP-FT", b="probe")
    ba = stats.paired_compare(y, b, a, a="probe", b="LP-FT")
    assert ba.diff == pytest.approx(-ab.diff) and (ba.lo, ba.hi) == pytest.approx((-ab.hi, -ab.lo))
    assert ab.p == pytest.approx(ba.p) and ab.verdict == ba.verdict == "LP-FT beats probe"
    assert stats.paired_compare(y, b, a).verdict == "B beats A"


def test_multi_seed_input_shapes_agree():
    y = np.array([0, 1, 0, 1])
    a = [[0, 1, 0, 1], [0, 1, 0, 0], [1, 1, 0, 1]]  # accuracies 1.0, 0.75, 0.75
    b = [[0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 1, 1]]  # accuracies 0.75, 0.75, 0.25
    ref = stats.paired_compare(y, a, b)
    assert ref.per_seed == pytest.approx((0.25, 0.0, 0.5)) and ref.diff == pytest.approx(0.25) and ref.n_seeds == 3
    for pa, pb in [(np.array(a), np.array(b)), ([np.array(r) for r in a], [np.array(r) for r in b])]:
        assert stats.paired_compare(y, pa, pb) == ref
    one = stats.paired_compare(y, a[0], b[0])
    assert one == stats.paired_compare(y, np.array(a[:1]), [b[0]]) and one.n_seeds == 1


def test_several_seeds_use_a_t_interval_over_seeds_plus_test_items():
    y, a, b = _pair(wrong_b=0.05)
    assert stats.paired_compare(y, b, a).hi < 0 < stats.paired_compare(y, a, b).lo  # each seed alone: clear
    c = stats.paired_compare(y, [a, b, a], [b, a, b])  # per-seed A − B: +0.05, −0.05, +0.05
    assert c.per_seed == pytest.approx((0.05, -0.05, 0.05)) and c.diff == pytest.approx(0.05 / 3)
    assert c.lo < 0 < c.hi and c.verdict == "tie within noise" and c.p > 0.05
    d = np.array([(np.equal(pa, y).astype(float) - np.equal(pb, y)) for pa, pb in [(a, b), (b, a), (a, b)]])  # [3,N]
    se = np.sqrt(d.mean(1).var(ddof=1) / 3 + d.mean(0).var(ddof=1) / len(y))  # seeds + items, by hand
    half = sps.t.ppf(0.975, 2) * se
    assert (c.lo, c.hi) == pytest.approx((c.diff - half, c.diff + half))
    assert c.p == pytest.approx(2 * sps.t.sf(abs(c.diff) / se, 2))


def test_three_seeds_are_not_treated_as_many():
    """Three agreeing seeds with a small spread: the t quantile with 2 df (4.3) keeps the interval wide."""
    y = np.zeros(2000, int)
    right = lambda k: np.r_[np.zeros(2000 - k, int), np.ones(k, int)]  # noqa: E731  wrong on the last k items
    a = [right(300), right(282), right(318)]  # accuracies .850 .859 .841
    b = [right(340), right(362), right(330)]  # .830 .819 .835: A − B = +2.0, +4.0, +0.6 points
    c = stats.paired_compare(y, a, b)
    seeds_only = sps.t.ppf(0.975, 2) * np.std(c.per_seed, ddof=1) / np.sqrt(3)
    assert c.hi - c.lo > 2 * seeds_only  # at least as wide as the seeds alone, with the items added
    assert c.verdict == "tie within noise"  # +2.2 points on average, but three seeds cannot pin it down
    strong = stats.paired_compare(y, [right(300)] * 3, [right(400)] * 3)  # every seed +5 points
    assert strong.lo > 0 and strong.p < 0.01 and strong.verdict == "A beats B"


def test_deterministic_for_a_seed_and_vectorised():
    y, a = _noisy(0.86, seeds=1)
    b = _noisy(0.85, seeds=1, rng=np.random.default_rng(3))[1]
    start = time.perf_counter()
    c1 = stats.paired_compare(y, a, b, seed=5)  # 2,000 resamples of 2,000 items
    assert time.perf_counter() - start < 5  # typically well under a second; a per-resample Python loop is far slower
    c2 = stats.paired_compare(y, a, b, seed=5)
    assert c1 == c2 and stats.paired_compare(y, a, b, seed=6).lo != c1.lo
    assert stats.paired_compare(y, a, b, n_boot=500) != stats.paired_compare(y, a, b, n_boot=2000)


@pytest.mark.parametrize(
    "args, match",
    [((np.zeros(4), np.zeros(3), np.zeros(4)), "pred_a seed 0 has shape"),
     ((np.zeros(4), np.zeros(4), [np.zeros(4), np.zeros(3)]), "pred_b seed 1 has shape"),
     ((np.zeros(4), np.zeros((2, 4)), np.zeros((3, 4))), "2 seeds but pred_b has 3"),
     ((np.zeros(0), np.zeros(0), np.zeros(0)), "non-empty 1-D"),
     ((np.zeros(4), [], np.zeros(4)), "pred_a is empty")],
)  # fmt: skip
def test_paired_compare_errors(args, match):
    with pytest.raises(ValueError, match=match) as e:
        stats.paired_compare(*args)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="level"):
        stats.paired_compare(np.zeros(4), np.zeros(4), np.zeros(4), level=95)


def test_compare_scores_matches_ttest_rel_and_hand_values():
    a, b = [0.86, 0.87, 0.85, 0.88], [0.85, 0.85, 0.84, 0.86]  # differences 0.01, 0.02, 0.01, 0.02
    c = stats.compare_scores(a, b, a="LP-FT", b="probe", n_items=2000)
    ref = sps.ttest_rel(a, b)
    assert c.p == pytest.approx(ref.pvalue) and (c.lo, c.hi) == pytest.approx(tuple(ref.confidence_interval()))
    half = sps.t.ppf(0.975, 3) * np.std([0.01, 0.02, 0.01, 0.02], ddof=1) / 2  # t(3) × sd / sqrt(4)
    assert c.diff == pytest.approx(0.015) and (c.lo, c.hi) == pytest.approx((0.015 - half, 0.015 + half))
    assert c.lo == pytest.approx(0.0058130, abs=1e-6) and c.verdict == "LP-FT beats probe"
    assert (c.n_seeds, c.n_items, c.per_seed) == (4, 2000, pytest.approx((0.01, 0.02, 0.01, 0.02)))
    assert "4 seeds × 2,000 test items" in str(c) and str(stats.compare_scores(a, b)).endswith("4 seeds)")


def test_compare_scores_identical_differences_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = stats.compare_scores([0.9, 0.8, 0.7], [0.8, 0.7, 0.6])
        z = stats.compare_scores([0.9, 0.8], [0.9, 0.8])
    assert (c.lo, c.hi) == pytest.approx((0.1, 0.1)) and c.p == 0.0 and c.verdict == "A beats B"
    assert (z.diff, z.lo, z.hi, z.p, z.verdict) == (0.0, 0.0, 0.0, 1.0, "tie within noise")


@pytest.mark.parametrize(
    "a, b, match",
    [([0.9], [0.8], "needs ≥ 2 paired seeds.*paired_compare"), ([0.9, 0.8], [0.8], "2 seeds but scores_b has 1"),
     ([0.9, float("nan")], [0.8, 0.7], "without NaN")],
)  # fmt: skip
def test_compare_scores_errors(a, b, match):
    with pytest.raises(ValueError, match=match):
        stats.compare_scores(a, b)


def test_comparison_strings_row_and_verdict():
    win = Comparison("LP-FT", "probe", 0.016, 0.004, 0.028, 0.01, 3, 2000, (0.01, 0.02, 0.018))
    assert str(win) == "LP-FT beats probe: +1.6 points (95% CI +0.4 to +2.8, p=0.01, 3 seeds × 2,000 test items)"
    assert win.points() == "+1.6 points (95% CI +0.4 to +2.8)" and stats.verdict(win) == "LP-FT beats probe"
    tie = Comparison("full", "discriminative", 0.003, -0.009, 0.015, 0.6, 3, 2000, ())
    assert str(tie) == ("full vs discriminative: tie within noise, +0.3 points "
                        "(95% CI \u22120.9 to +1.5, p=0.60, 3 seeds × 2,000 test items)")  # fmt: skip
    loss = Comparison("A", "B", -0.02, -0.03, -0.01, 0.004, 1, 500, (-0.02,), level=0.9)
    assert loss.verdict == "B beats A" and str(loss).startswith(
        "B beats A: +2.0 points (90% CI +1.0 to +3.0"
    )  # winner's side
    assert loss.points() == "\u22122.0 points (90% CI \u22123.0 to \u22121.0)"  # points() keeps A − B
    assert "p=0.004, 1 seed × 500 test items)" in str(loss)
    assert Comparison("A", "B", -0.0004, -0.0004, 0.0, 1.0, 1, 10, ()).points().startswith("+0.0 points")
    assert win.row() == {"comparison": "LP-FT vs probe", "A − B (points)": 1.6, "95% CI": "+0.4 to +2.8",
                         "p": 0.01, "verdict": "LP-FT beats probe"}  # fmt: skip
