"""Tests for tlcourse.checks.lesson04: right, wrong, wrong-type and unfinished answers each get a verdict, never a raise."""

import numpy as np
from verdicts import verdict

from tlcourse.checks import lesson04 as dc


def _stub(*args):
    raise NotImplementedError()


def test_reverse_gradient_check(capsys):
    assert dc.check_reverse_gradient(lambda x, lam: x.detach() * (1 + lam) - lam * x)
    assert not dc.check_reverse_gradient(lambda x, lam: x)  # identity: gradient +1
    assert not dc.check_reverse_gradient(lambda x, lam: -lam * x)  # wrong forward
    assert not dc.check_reverse_gradient(lambda x, lam: x.detach())  # no gradient
    assert not dc.check_reverse_gradient(lambda x, lam: x.tolist())  # wrong type
    assert not dc.check_reverse_gradient(_stub)
    out = capsys.readouterr().out
    assert "not done yet" in out and "✅" in out and "❌" in out


def test_balanced_accuracy_check(capsys):
    def right(y, p):
        y, p = np.asarray(y), np.asarray(p)
        return float(np.mean([(p[y == c] == c).mean() for c in np.unique(y)]))

    assert dc.check_balanced_accuracy(right)
    assert not dc.check_balanced_accuracy(lambda y, p: float(np.mean(np.asarray(y) == np.asarray(p))))  # plain accuracy
    assert not dc.check_balanced_accuracy(lambda y, p: "0.5")
    assert not dc.check_balanced_accuracy(lambda y, p: 1 / 0)
    assert not dc.check_balanced_accuracy(_stub)
    assert "ZeroDivisionError" in capsys.readouterr().out


def _best_threshold(s, y):
    s, y = np.asarray(s), np.asarray(y)

    def bal(t):
        return np.mean([((s >= t)[y == c] == c).mean() for c in (0, 1)])

    return float(max(np.unique(s), key=bal))


def test_threshold_from_labels_check():
    assert dc.check_threshold_from_labels(_best_threshold)
    ok, line = verdict(dc.check_threshold_from_labels, lambda s, y: 0.5)  # the default threshold is not the best
    assert not ok and "try every score" in line
    assert not dc.check_threshold_from_labels(lambda s, y: float(np.quantile(s, 1 - np.mean(y))))  # prior matching
    assert not dc.check_threshold_from_labels(lambda s, y: [0.5])
    assert not dc.check_threshold_from_labels(_stub)
