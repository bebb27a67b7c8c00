"""Tests for the reworked lesson-01 checks: a right answer gets ✅, each typical wrong one ❌ with its own message, a stub ⏳."""

import numpy as np
from verdicts import stub, verdict

from tlcourse import features
from tlcourse.checks import lesson01 as fc

# ---- 1.1 choose on validation, report test once -----------------------------------------------------------------------


def _accuracy(stages, train, held_out):
    (f_tr, y_tr), (f_ho, y_ho) = train, held_out
    return features.probe_accuracy(features.stack_stages(f_tr, stages), y_tr, features.stack_stages(f_ho, stages), y_ho)


def _choose_by(split_name):
    """A learner who selects on `split_name` ('fit', 'val' or 'test') and then reports the chosen one's test accuracy."""

    def choose(candidates, fit, val, test):
        on = {"fit": fit, "val": val, "test": test}[split_name]
        scores = {name: _accuracy(stages, fit, on) for name, stages in candidates.items()}
        best = max(scores, key=scores.get)
        return best, _accuracy(candidates[best], fit, test)

    return choose


def test_probe_stage_check_accepts_choosing_on_validation_and_reports_the_optimism():
    ok, line = verdict(fc.check_probe_stage, _choose_by("val"))
    assert ok and line.startswith("✅")
    lesson = fc._toy_splits(seed=2)  # stands in for the lesson's splits: validation and test disagree here
    ok, line = verdict(fc.check_probe_stage, _choose_by("val"), fc.TOY_CANDIDATES, *lesson)
    assert ok and "validation chose a" in line and "would have picked b" in line and "points of optimism" in line
    ok, line = verdict(fc.check_probe_stage, _choose_by("val"), {"only a": ("s_a",)}, *lesson)
    assert ok and "picked the same" in line


def test_probe_stage_check_catches_each_wrong_protocol():
    def reports_val(candidates, fit, val, test):
        name, _ = _choose_by("val")(candidates, fit, val, test)
        return name, _accuracy(candidates[name], fit, val)

    def reports_best_test(candidates, fit, val, test):
        name, _ = _choose_by("val")(candidates, fit, val, test)
        return name, max(_accuracy(s, fit, test) for s in candidates.values())

    cases = {
        "chooses on test": (_choose_by("test"), "best candidate on the TEST set"),
        "chooses on fit": (_choose_by("fit"), "very images its probe was fitted on"),
        "reports val": (reports_val, "validation accuracy"),
        "reports best test": (reports_best_test, "best test accuracy of all"),
        "not a pair": (lambda c, f, v, t: "a", "expected a pair"),
        "unknown name": (lambda c, f, v, t: ("z", 0.5), "not one of the candidates"),
        "accuracy as text": (lambda c, f, v, t: ("a", "0.9"), "should be a float"),
        "crash": (lambda c, f, v, t: c["missing"], "KeyError"),
    }
    for name, (fn, text) in cases.items():
        ok, line = verdict(fc.check_probe_stage, fn)
        assert not ok and line.startswith("❌") and text in line, (name, line)
    ok, line = verdict(fc.check_probe_stage, stub)
    assert not ok and line.startswith("⏳")


def test_toy_splits_tell_the_three_choices_apart():
    fit, val, test = fc._toy_splits()
    scores = fc._probe_scores(fc.TOY_CANDIDATES, fit, fit, val, test)
    best = [fc._best({n: v[i] for n, v in scores.items()}) for i in range(3)]
    assert all(len(b) == 1 for b in best) and len(set.union(*best)) == 3, scores


# ---- 1.3 what the features fixed -------------------------------------------------------------------------------------


def _gain(before, after):
    b = before / before.sum(1, keepdims=True)
    a = after / after.sum(1, keepdims=True)
    c = int(np.argmax(np.diag(a) - np.diag(b)))
    fall = b[c] - a[c]
    fall[c] = -np.inf
    return c, int(np.argmax(fall))


def test_most_confused_check_accepts_recall_gain_and_reports_the_lesson_case():
    ok, line = verdict(fc.check_most_confused, _gain)
    assert ok and line.startswith("✅")
    before = np.array([[50, 40, 10], [10, 80, 10], [5, 5, 90]])
    after = np.array([[85, 10, 5], [10, 85, 5], [3, 7, 90]])
    ok, line = verdict(fc.check_most_confused, _gain, before, after, ["tee", "shirt", "bag"])
    assert ok
    assert "'tee' gained most recall (0.50 → 0.85)" in line and "called 'shirt' (40% → 10%)" in line
    assert "a true 'tee' called 'shirt' 10 times (40 before)" in line


def test_most_confused_check_catches_each_wrong_reading():
    def counts(before, after):  # raw counts instead of recall
        c = int(np.argmax(np.diag(after) - np.diag(before)))
        return c, _gain(before, after)[1]

    def columns(before, after):  # precision instead of recall
        return _gain(before.T, after.T)

    def reached(before, after):  # highest recall after, not the largest gain
        a = after / after.sum(1, keepdims=True)
        return int(np.argmax(np.diag(a))), 0

    def left(before, after):  # the right class, but the largest confusion left instead of the one that shrank
        c, _ = _gain(before, after)
        row = after[c].astype(float)
        row[c] = -1
        return c, int(row.argmax())

    cases = {
        "counts": (counts, "more test images"),
        "columns": (columns, "you read the columns"),
        "reached": (reached, "highest recall afterwards"),
        "left": (left, "largest confusion left in the row"),
        "not a pair": (lambda b, a: 3, "expected a pair"),
        "floats": (lambda b, a: (1.0, 0.0), "expected two ints"),
        "crash": (lambda b, a: 1 / 0, "ZeroDivisionError"),
    }
    for name, (fn, text) in cases.items():
        ok, line = verdict(fc.check_most_confused, fn)
        assert not ok and line.startswith("❌") and text in line, (name, line)
    ok, line = verdict(fc.check_most_confused, stub)
    assert not ok and line.startswith("⏳")


def test_most_confused_check_accepts_any_tied_answer():
    before = np.array([[50, 50, 0], [0, 50, 50], [0, 0, 100]])
    after = np.array([[100, 0, 0], [0, 100, 0], [0, 0, 100]])  # classes 0 and 1 tie on the gain

    def last_tied(before, after):
        b, a = before / before.sum(1, keepdims=True), after / after.sum(1, keepdims=True)
        gain = np.diag(a) - np.diag(b)
        c = int(np.flatnonzero(gain == gain.max())[-1])
        fall = b[c] - a[c]
        fall[c] = -np.inf
        return c, int(np.flatnonzero(fall == fall.max())[-1])

    assert last_tied(before, after) == (1, 2) and _gain(before, after) == (0, 1)
    assert verdict(fc.check_most_confused, last_tied, before, after)[0]
    assert verdict(fc.check_most_confused, _gain, before, after)[0]
