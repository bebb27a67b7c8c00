"""Exercise checks of lesson 01 (feature extraction): each calls the learner's function, compares it with a reference
computation and prints one friendly verdict (never a traceback)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tlcourse import data, features
from tlcourse.checks import call, expect, expect_type, run_check


def check_probe_stage(fn: Callable, size: int = 64, n_per_class: int = 20, n_test: int = 1000) -> bool:
    """Exercise 1.1: fn(stage, train_idx, test_idx) -> test accuracy of a scaled logistic probe on that stage."""

    def body():
        _, ytr = data.fashion_mnist("train")
        _, yte = data.fashion_mnist("test")
        tr, te = data.per_class_indices(ytr, n_per_class, seed=1), np.arange(n_test)
        stage = "block3"
        got = call(fn, stage, tr, te)
        expect_type(got, (float, np.floating), f"probe_stage({stage!r}, ...)")
        expect(0.0 <= got <= 1.0, f"probe_stage returned {got}, which is not an accuracy in [0, 1]",
               "return the fraction of test images classified correctly")  # fmt: skip
        f_tr = features.cached_features("fashion_mnist", "train", tr, stages=[stage], size=size, progress=False)
        f_te = features.cached_features("fashion_mnist", "test", te, stages=[stage], size=size, progress=False)
        want = features.probe_accuracy(f_tr[stage], ytr[tr], f_te[stage], yte[te])
        expect(abs(got - want) < 0.03, f"probe_stage({stage!r}) gave {got:.3f}, the reference probe gives {want:.3f}",
               f"use cached_features(..., stages=[stage], size={size}) for both splits, then probe_accuracy")  # fmt: skip
        return f"{stage} features: {got:.3f} with {n_per_class} labels per class."

    return run_check("Exercise 1.1 (probe another stage)", body)


def _centroid_reference(train_x, train_y, test_x, test_y) -> float:
    classes = np.unique(train_y)
    means = np.stack([train_x[train_y == c].mean(0) for c in classes])  # [K,D]
    dists = ((test_x[:, None, :] - means[None]) ** 2).sum(-1)  # [N,K]
    return float((classes[dists.argmin(1)] == test_y).mean())


def check_nearest_centroid(fn: Callable) -> bool:
    """Exercise 1.2: fn(train_x, train_y, test_x, test_y) -> accuracy of the nearest-class-mean classifier."""

    def body():
        rng = np.random.default_rng(0)
        for k, d in [(3, 2), (10, 16)]:
            centres = rng.normal(0, 1.5, (k, d))
            train_y, test_y = rng.integers(0, k, 60), rng.integers(0, k, 200)
            train_x = centres[train_y] + rng.normal(0, 1, (60, d))
            test_x = centres[test_y] + rng.normal(0, 1, (200, d))
            got = call(fn, train_x, train_y, test_x, test_y)
            expect_type(got, (float, np.floating), "nearest_centroid_accuracy(...)")
            want = _centroid_reference(train_x, train_y, test_x, test_y)
            expect(abs(got - want) < 1e-6, f"on a {k}-class toy problem you got {got:.3f}, expected {want:.3f}",
                   "mean of each class's training rows; predict the class whose mean is nearest (Euclidean)")  # fmt: skip
        return "a classifier with no hyper-parameters at all, ready for the data-efficiency curve."

    return run_check("Exercise 1.2 (nearest-centroid classifier)", body)


def check_most_confused(fn: Callable, cm: np.ndarray | None = None, class_names: list[str] | None = None) -> bool:
    """Exercise 1.3: fn(cm) -> (true_class, predicted_class) of the largest off-diagonal count of a confusion matrix."""

    def body():
        rng = np.random.default_rng(0)
        cases = [rng.integers(0, 50, (k, k)) + np.eye(k, dtype=int) * 500 for k in (3, 5, 10)]
        cases.append(np.array([[1, 9], [2, 8]]))  # the diagonal is not the largest entry: it must still be skipped
        if cm is not None:
            cases.append(np.asarray(cm))
        for m in cases:
            got = call(fn, m.copy())
            expect_type(got, tuple, "most_confused_pair(cm)")
            expect(len(got) == 2, f"expected a pair (true, predicted), got {got!r}", "return (i, j)")
            off = m.astype(float).copy()
            np.fill_diagonal(off, -np.inf)
            want = np.unravel_index(int(off.argmax()), m.shape)
            tied = {(int(i), int(j)) for i, j in zip(*np.nonzero(off == off.max()), strict=True)}
            expect(tuple(int(v) for v in got) in tied,
                   f"for a {len(m)}x{len(m)} matrix you returned {got}, expected {tuple(int(v) for v in want)}",
                   "ignore the diagonal (correct predictions); rows are true classes, columns predicted")  # fmt: skip
        if cm is not None and class_names is not None:
            i, j = want
            return f"most often, a true {class_names[i]!r} is called {class_names[j]!r} ({int(m[i, j])} times)."
        return None

    return run_check("Exercise 1.3 (most confused pair)", body)
