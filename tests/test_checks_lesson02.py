"""Tests for the reworked lesson-02 checks (2.1 a decay for a budget, 2.3 what CKA cannot see): a right answer gets ✅,
each typical wrong one ❌ with its own message, a stub ⏳ — one line each, never a traceback."""

from verdicts import stub, verdict

from tlcourse.checks import lesson02 as fc

# ---- 2.1 a decay for a budget ----------------------------------------------------------------------------------------


def _decay(names, low, high, ratio):
    return ratio ** (1 / (names.index(high) - names.index(low)))


def test_decay_check_accepts_the_kth_root_and_measures_the_course_rates():
    ok, line = verdict(fc.check_layerwise_lrs, _decay)
    assert ok and line.startswith("✅")
    assert "8 stages below the head" in line and "decay ≤ 0.688" in line and "misses" in line  # 0.7 ** 8 > 1/20


def test_decay_check_catches_each_wrong_answer():
    cases = {
        "whole list": (lambda n, lo, hi, r: r ** (1 / (len(n) - 1)), "not the length of the list"),
        "ratio to the power": (lambda n, lo, hi, r: r ** (n.index(hi) - n.index(lo)), "solve decay ** k = ratio"),
        "off by one": (lambda n, lo, hi, r: r ** (1 / (n.index(hi) - n.index(lo) + 1)), "expected"),
        "the ratio itself": (lambda n, lo, hi, r: r, "expected"),
        "text": (lambda n, lo, hi, r: "0.7", "should be a float or int, got str"),
        "crash": (lambda n, lo, hi, r: n.index("nope"), "ValueError"),
    }
    for name, (fn, text) in cases.items():
        ok, line = verdict(fc.check_layerwise_lrs, fn)
        assert not ok and line.startswith("❌") and text in line, (name, line)
    ok, line = verdict(fc.check_layerwise_lrs, stub)
    assert not ok and line.startswith("⏳")


def test_reference_decay():
    assert fc.reference_largest_decay(list("abcde"), "a", "e", 1 / 16) == 0.5
    assert abs(fc.reference_largest_decay(list("abc"), "b", "c", 0.3) - 0.3) < 1e-12


# ---- 2.3 what CKA cannot see -----------------------------------------------------------------------------------------

RIGHT = {"rotate": True, "permute": True, "scale": True, "shift": True, "stretch_one": False, "mix": False,
         "noise": False}  # fmt: skip


def test_cka_check_accepts_the_right_answers_and_reports_the_lesson_run():
    ok, line = verdict(fc.check_cka, lambda: dict(RIGHT))
    assert ok and "CKA is blind to rotate, permute, scale, shift" in line
    cka = {"head only": {"block3": 1.0, "head": 1.0}, "full": {"block3": 0.99, "head": 0.9},
           "random init": {"block3": 0.4, "head": 0.95}, "scratch lr": {"block3": 0.7, "head": float("nan")}}  # fmt: skip
    kept = {"head only": 1.0, "full": 0.1, "random init": 0.0, "scratch lr": 0.0}
    ok, line = verdict(fc.check_cka, lambda: dict(RIGHT), cka, kept)
    assert ok and "'full' has CKA 0.900 at head and kept 10%" in line  # head only and random init are left out


def test_cka_check_catches_each_wrong_answer():
    for name in RIGHT:
        flipped = {**RIGHT, name: not RIGHT[name]}
        ok, line = verdict(fc.check_cka, lambda f=flipped: f)
        assert not ok and line.startswith("❌") and "1 of 7 answers wrong; e.g. you say CKA is" in line, name
        assert repr(name) in line and fc.BLIND_HINTS[name] in line
    all_true = {k: True for k in RIGHT}
    assert "3 of 7 answers wrong" in verdict(fc.check_cka, lambda: all_true)[1]
    cases = {
        "missing key": (lambda: {k: v for k, v in RIGHT.items() if k != "mix"}, "missing ['mix']"),
        "extra key": (lambda: {**RIGHT, "flip": True}, "unexpected ['flip']"),
        "unanswered": (lambda: {**RIGHT, "noise": None}, "not True or False"),
        "not a dict": (lambda: [True] * 7, "should be a dict"),
        "crash": (lambda: 1 / 0, "ZeroDivisionError"),
    }
    for name, (fn, text) in cases.items():
        ok, line = verdict(fc.check_cka, fn)
        assert not ok and line.startswith("❌") and text in line, (name, line)
    ok, line = verdict(fc.check_cka, stub)
    assert not ok and line.startswith("⏳")
