"""Tests for the lesson-06 checks: a right answer gets ✅, each typical wrong one ❌ with its own message, a stub ⏳."""

import numpy as np
from verdicts import stub, verdict

from tlcourse.checks import lesson06 as c6

# ---- 6.1 H-score from its formula -------------------------------------------------------------------------------------


def h_score(features, labels):
    cov_f = np.cov(features, rowvar=False)
    g = np.zeros_like(features, dtype=float)
    for c in np.unique(labels):
        g[labels == c] = features[labels == c].mean(0)
    return float(np.trace(np.linalg.pinv(cov_f) @ np.cov(g, rowvar=False)))


def test_h_score_check_accepts_the_formula_and_reports_k_minus_1_on_few_images():
    ok, line = verdict(c6.check_h_score, h_score)
    assert ok and line.startswith("✅")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 4)  # 12 images, 40 features: fewer images than dimensions
    feats = {"full rank": rng.normal(0, 1, (12, 40)), "rank 3": rng.normal(0, 1, (12, 3)) @ rng.normal(0, 1, (3, 40))}
    ok, line = verdict(c6.check_h_score, h_score, feats, y)
    assert ok and "full rank 2.000" in line and "(here: full rank)" in line and "K − 1 = 2" in line


def test_h_score_check_catches_each_typical_mistake():
    def per_class_means(features, labels):  # cov over the K class means instead of one row per image
        means = np.stack([features[labels == c].mean(0) for c in np.unique(labels)])
        return float(np.trace(np.linalg.pinv(np.cov(features, rowvar=False)) @ np.cov(means, rowvar=False)))

    def plain_inverse(features, labels):
        g = np.zeros_like(features, dtype=float)
        for c in np.unique(labels):
            g[labels == c] = features[labels == c].mean(0)
        with np.errstate(all="ignore"):
            inv = np.linalg.inv(np.cov(features, rowvar=False) + 0 * np.eye(features.shape[1]))
        return float(np.trace(inv @ np.cov(g, rowvar=False)))

    cases = {
        "class means": (per_class_means, "not over the K class means"),
        "inv": (plain_inverse, ""),
        "rows": (lambda f, y: float(np.trace(np.cov(f))), "np.cov(f, rowvar=False)"),
        "not a float": (lambda f, y: "3", "should be a float"),
        "crash": (lambda f, y: f.nope, "AttributeError"),
    }
    for name, (fn, text) in cases.items():
        ok, line = verdict(c6.check_h_score, fn)
        assert not ok and line.startswith("❌") and text in line, (name, line)
    ok, line = verdict(c6.check_h_score, stub)
    assert not ok and line.startswith("⏳")


# ---- 6.2 predict the ranking first -------------------------------------------------------------------------------------

GRID = {"digits": {"a": 0.9, "b": 0.8, "c": 0.7}, "photos": {"a": 0.6, "b": 0.8, "c": 0.7}}
MEASURED = {
    "a": [0.90, 0.91, 0.92, 0.90, 0.91],
    "b": [0.80, 0.82, 0.81, 0.80, 0.79],
    "c": [0.89, 0.92, 0.91, 0.91, 0.9],
}


def test_ranking_check_accepts_a_first_pick_that_is_best_or_tied():
    ok, line = verdict(c6.check_ranking_prediction, lambda grid: ["a", "c", "b"], GRID, MEASURED, "new")
    assert ok and "first pick a is the best" in line and "τ of your whole ranking +1.00" in line
    ok, line = verdict(c6.check_ranking_prediction, lambda grid: ["c", "a", "b"], GRID, MEASURED, "new",
                       {"LogME": ["b", "a", "c"]})  # fmt: skip
    assert ok and "within noise of the best" in line and "LogME b (beaten)" in line


def test_ranking_check_catches_a_beaten_pick_and_malformed_rankings():
    ok, line = verdict(c6.check_ranking_prediction, lambda grid: ["b", "a", "c"], GRID, MEASURED, "new")
    assert not ok and "you put b first" in line and "a beats it" in line
    cases = {
        "not a list": (lambda grid: "a", "expected a list"),
        "unknown": (lambda grid: ["a", "b", "z"], "not sources"),
        "missing": (lambda grid: ["a", "b"], "rank every source exactly once"),
        "twice": (lambda grid: ["a", "a", "b", "c"], "rank every source exactly once"),
        "crash": (lambda grid: grid["nope"], "KeyError"),
    }
    for name, (fn, text) in cases.items():
        ok, line = verdict(c6.check_ranking_prediction, fn, GRID, MEASURED)
        assert not ok and line.startswith("❌") and text in line, (name, line)
    ok, line = verdict(c6.check_ranking_prediction, stub, GRID, MEASURED)
    assert not ok and line.startswith("⏳")


# ---- 6.3 a source under a budget --------------------------------------------------------------------------------------

ANSWERS = {("probe", "a"): 0.6, ("probe", "b"): 0.9, ("probe", "c"): 0.8,
           ("fine-tune", "a"): 0.95, ("fine-tune", "b"): 0.7, ("fine-tune", "c"): 0.85}  # fmt: skip
COSTS = {("probe", s): 1.0 for s in "abc"} | {("fine-tune", s): 10.0 for s in "abc"}
FINE_TUNED = {"a": [0.95, 0.94, 0.96], "b": [0.70, 0.72, 0.69], "c": [0.94, 0.96, 0.95]}


def probe_top2(ask, budget):
    probes = {s: ask("probe", s) for s in ask.sources}
    tuned = {s: ask("fine-tune", s) for s in sorted(probes, key=probes.get, reverse=True)[:2]}
    return max(tuned, key=tuned.get)


def test_budget_check_accepts_a_choice_within_noise_and_budget():
    ok, line = verdict(c6.check_budget_choice, probe_top2, ANSWERS, COSTS, 23.0, FINE_TUNED)
    assert ok and "spent 23 of 23 s" in line and "chose c" in line and "tied within noise with the best (a)" in line


def test_budget_check_catches_overspending_a_beaten_choice_and_bad_returns():
    def everything(ask, budget):
        return max(ask.sources, key=lambda s: ask("fine-tune", s))

    ok, line = verdict(c6.check_budget_choice, everything, ANSWERS, COSTS, 23.0, FINE_TUNED)
    assert not ok and "over budget" in line and "costs 10.0 s, only 3.0 s" in line
    ok, line = verdict(c6.check_budget_choice, lambda ask, b: max(ask.sources, key=lambda s: ask("probe", s)),
                       ANSWERS, COSTS, 23.0, FINE_TUNED)  # fmt: skip
    assert not ok and "you chose b" in line and "a beats it" in line
    ok, line = verdict(c6.check_budget_choice, lambda ask, b: "z", ANSWERS, COSTS, 23.0, FINE_TUNED)
    assert not ok and "return one of the sources" in line
    ok, line = verdict(c6.check_budget_choice, lambda ask, b: ask("LogME", "a"), ANSWERS, COSTS, 23.0, FINE_TUNED)
    assert not ok and "KeyError" in line and "nothing to ask for" in line
    ok, line = verdict(c6.check_budget_choice, stub, ANSWERS, COSTS, 23.0, FINE_TUNED)
    assert not ok and line.startswith("⏳")


def test_budget_charges_once_and_tells_what_is_left():
    ask = c6.Budget(ANSWERS, COSTS, 12.0)
    assert ask.sources == ["a", "b", "c"] and ask.cost("probe", "a") == 1.0
    assert ask("probe", "a") == 0.6 and ask("probe", "a") == 0.6 and ask.spent == 1.0 and ask.left == 11.0
    assert ask.cost("probe", "a") == 0.0
    ask("fine-tune", "b")
    try:
        ask("fine-tune", "c")
    except c6.BudgetExceeded as e:
        assert "only 1.0 s of 12.0 s are left" in str(e)
    else:
        raise AssertionError("the budget let an unaffordable fine-tune through")


def _class_means(f, y):
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(0)
    return g


def test_h_score_check_names_inv_instead_of_pinv_and_mixed_normalisations():
    def with_inv(f, y):
        return float(np.trace(np.linalg.inv(np.cov(f, rowvar=False)) @ np.cov(_class_means(f, y), rowvar=False)))

    def mixed(f, y):
        cov_f = np.cov(f, rowvar=False, bias=True)
        return float(np.trace(np.linalg.pinv(cov_f) @ np.cov(_class_means(f, y), rowvar=False)))

    ok, line = verdict(c6.check_h_score, with_inv)
    assert not ok and "singular" in line and "np.linalg.pinv" in line
    ok, line = verdict(c6.check_h_score, mixed)
    assert not ok and "same normalisation" in line


def test_budget_charges_the_shared_forward_pass_once_per_source_and_never_to_a_fine_tune():
    ask = c6.Budget(ANSWERS, COSTS, 40.0, shared={"a": 5.0, "b": 5.0, "c": 5.0})
    assert ask.cost("probe", "a") == 6.0 and ask("probe", "a") == 0.6 and ask.spent == 6.0
    assert ask.cost("fine-tune", "b") == 10.0 and ask("fine-tune", "b") and ask.cost("probe", "b") == 6.0
    ask("probe", "b")
    assert ask.spent == 22.0 and ask.cost("probe", "c") == 6.0
