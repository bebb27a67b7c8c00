"""Tests for tlcourse.bootstrap: point values match sklearn, intervals cover, clusters widen, paired verdicts."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from tlcourse import bootstrap


def _scores(n=1500, strength=0.3, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.7).astype(int)
    p = np.clip(0.5 + strength * (2 * y - 1) * rng.random(n) + rng.normal(0, 0.2, n), 0, 1)
    return y, (np.round(p, 1) if ties else p)


@pytest.mark.parametrize("ties", [False, True])
def test_point_values_match_sklearn(ties):
    y, p = _scores(ties=ties)
    r = bootstrap.binary_report(y, p, n_boot=50)
    assert r.values["accuracy"] == pytest.approx(np.mean((p >= 0.5) == y))
    assert r.values["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p >= 0.5))
    assert r.values["auc"] == pytest.approx(roc_auc_score(y, p))
    for m in bootstrap.METRICS:
        lo, hi = r.intervals[m]
        assert lo <= r.values[m] <= hi and hi - lo > 0


def test_two_column_probs_and_thresholds():
    y, p = _scores()
    a = bootstrap.binary_report(y, np.c_[1 - p, p], n_boot=20)
    assert a.values == bootstrap.binary_report(y, p, n_boot=20).values
    high = bootstrap.binary_report(y, p, threshold=0.9, n_boot=20)
    assert high.values["auc"] == pytest.approx(a.values["auc"]) and high.values["accuracy"] != a.values["accuracy"]


def test_interval_width_shrinks_like_one_over_root_n():
    y, p = _scores(n=4000)
    wide = bootstrap.binary_report(y[:400], p[:400], n_boot=400).intervals["accuracy"]
    narrow = bootstrap.binary_report(y, p, n_boot=400).intervals["accuracy"]
    ratio = (wide[1] - wide[0]) / (narrow[1] - narrow[0])
    assert 2.3 < ratio < 4.3  # sqrt(10) ≈ 3.2


def test_clusters_of_identical_items_widen_the_interval():
    y, p = _scores(n=100)
    y10, p10 = np.repeat(y, 10), np.repeat(p, 10)  # every item copied ten times: 1,000 items, 100 independent
    groups = np.repeat(np.arange(100), 10)
    items = bootstrap.binary_report(y10, p10, n_boot=400)
    clusters = bootstrap.binary_report(y10, p10, groups=groups, n_boot=400)
    w = {r.n_groups: r.intervals["accuracy"][1] - r.intervals["accuracy"][0] for r in (items, clusters)}
    assert w[100] > 2.3 * w[1000] and clusters.n_items == 1000


def test_majority_comparison():
    y, p = _scores()
    good = bootstrap.binary_report(y, p, majority=1, n_boot=200)
    assert good.majority == pytest.approx(y.mean()) and good.vs_majority.lo > 0
    assert good.row()["vs majority"].startswith("beats")
    always = bootstrap.binary_report(y, np.ones_like(p), majority=1, n_boot=200)
    assert always.vs_majority.diff == 0 and always.row()["vs majority"].startswith("ties")
    assert always.values["balanced_accuracy"] == 0.5 and always.values["auc"] == 0.5
    assert "95% bootstrap over 1,500 items" in str(good)


def test_paired_metric_one_seed_and_several():
    y, p = _scores()
    rng = np.random.default_rng(1)
    worse = np.clip(p + rng.normal(0, 0.3, len(p)), 0, 1)
    c = bootstrap.paired_metric(y, p, worse, "auc", a="clean", b="noisy", n_boot=300)
    assert c.lo > 0 and c.verdict == "clean beats noisy" and c.n_seeds == 1
    same = bootstrap.paired_metric(y, p, p, "balanced_accuracy", n_boot=100)
    assert same.diff == 0 and same.verdict == "tie within noise"
    seeds = bootstrap.paired_metric(y, [p, p, p], [worse, worse, worse], "auc", n_boot=100)
    assert seeds.n_seeds == 3 and seeds.lo > 0
    flipped = bootstrap.paired_metric(y, worse, p, "auc", a="noisy", b="clean", n_boot=300)
    assert flipped.diff == pytest.approx(-c.diff) and flipped.verdict == "clean beats noisy"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bootstrap.binary_report([0, 1, 1], [0.2, 0.8]), "same N"),
        (lambda: bootstrap.binary_report([1, 1, 1], [0.2, 0.8, 0.5]), "both classes"),
        (lambda: bootstrap.binary_report([0, 2, 1], [0.2, 0.8, 0.5]), "0/1"),
        (lambda: bootstrap.binary_report([0, 1], [0.2, 0.8], groups=[1]), "one group id per test item"),
        (lambda: bootstrap.binary_report([0, 1], [0.2, 0.8], majority=2), "majority must be"),
        (lambda: bootstrap.paired_metric([0, 1], [0.2, 0.8], [0.3, 0.7], "f1"), "unknown metric"),
        (lambda: bootstrap.paired_metric([0, 1], [[0.2, 0.8]], [[0.3, 0.7]] * 2), "same number"),
        (lambda: bootstrap.paired_metric([0, 1], [], [0.3, 0.7]), "empty"),
    ],
)
def test_errors_are_one_line(call, match):
    with pytest.raises(ValueError, match=match):
        call()
