"""Exercise checks of lesson 01 (feature extraction): each calls the learner's function, compares it with a reference
computation and prints one friendly verdict (never a traceback)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tlcourse import features
from tlcourse.checks.base import CheckFailed, call, expect, expect_type, run_check

Split = tuple[dict[str, np.ndarray], np.ndarray]  # (pooled features {stage: [N,C]}, labels [N])


def _probe_scores(candidates: dict[str, tuple[str, ...]], fit: Split, *held_out: Split) -> dict[str, list[float]]:
    """Per candidate: the accuracies on each held-out split of the scaled logistic probe (default C) fitted on `fit`."""
    out = {}
    for name, stages in candidates.items():
        probe = features.logistic_probe(features.stack_stages(fit[0], stages), fit[1])
        out[name] = [float(probe.score(features.stack_stages(f, stages), y)) for f, y in held_out]
    return out


def _toy_splits(seed: int = 2) -> tuple[Split, Split, Split]:
    """Three splits where the best candidate on fit, on val and on test are three different ones (see the check)."""
    rng = np.random.default_rng(seed)
    k, d = 3, 4
    centres = {s: rng.normal(0, 1.0, (k, d)) for s in ("s_a", "s_b")}

    def split(n_per_class: int, kind: str) -> Split:
        y = np.repeat(np.arange(k), n_per_class)
        feats = {}
        for s in ("s_a", "s_b"):
            if (s == "s_a" and kind != "test") or (s == "s_b" and kind != "val"):
                label = y  # informative
            else:  # s_a misleads on test (a shifted class), s_b says nothing on val
                label = (y + 1) % k if s == "s_a" else rng.integers(0, k, len(y))
            feats[s] = centres[s][label] + rng.normal(0, 1, (len(y), d))
        feats["s_n"] = rng.normal(0, 1, (len(y), 80))  # pure noise, wide enough to fit its 60 training images exactly
        return feats, y

    return split(20, "fit"), split(40, "val"), split(40, "test")


TOY_CANDIDATES = {"a": ("s_a",), "b": ("s_b",), "noise": ("s_n",), "a+b": ("s_a", "s_b")}


def _best(scores: dict[str, float]) -> set[str]:
    top = max(scores.values())
    return {n for n, v in scores.items() if v >= top - 1e-9}


def check_probe_stage(fn: Callable, candidates: dict[str, tuple[str, ...]] | None = None, fit: Split | None = None,
                      val: Split | None = None, test: Split | None = None) -> bool:  # fmt: skip
    """Exercise 1.1: fn(candidates, fit, val, test) -> (chosen name, its test accuracy). The choice must be the best
    candidate on `val` for the scaled logistic probe (default C) fitted on `fit`; the test split is scored once, for it.

    A toy case where the best candidate on fit, on val and on test differ tells the three choices apart; then, if given,
    the lesson's own candidates, and the ✅ line says how much choosing on the test set would have flattered the result.
    """

    def run(cands, fit_, val_, test_, where):
        got = call(fn, dict(cands), fit_, val_, test_)
        expect(isinstance(got, (tuple, list)) and len(got) == 2,
               f"{where}: expected a pair (chosen name, test accuracy), got {got!r}", "return name, accuracy")  # fmt: skip
        name, acc = got
        expect(name in cands, f"{where}: {name!r} is not one of the candidates {list(cands)}")
        expect_type(acc, (float, np.floating), "the reported test accuracy")
        scores = _probe_scores(cands, fit_, fit_, val_, test_)
        on = {split: {n: v[i] for n, v in scores.items()} for i, split in enumerate(("fit", "val", "test"))}
        if name not in _best(on["val"]):
            if name in _best(on["test"]):
                raise CheckFailed(f"{where}: you chose {name!r}, the best candidate on the TEST set",
                                  "choose with the validation split only; the test split is for the final number")  # fmt: skip
            if name in _best(on["fit"]):
                raise CheckFailed(f"{where}: you chose {name!r}, the best on the very images its probe was fitted on",
                                  "a probe can memorise its own training images: score every candidate on `val`")  # fmt: skip
            val_text = ", ".join(f"{n} {v:.3f}" for n, v in on["val"].items())
            raise CheckFailed(f"{where}: you chose {name!r}; the validation accuracies are {val_text}",
                              "fit features.probe_accuracy's probe (default C) on `fit`, score it on `val`")  # fmt: skip
        want = on["test"][name]
        if abs(float(acc) - want) > 1e-6:
            if abs(float(acc) - on["val"][name]) <= 1e-6:
                raise CheckFailed(f"{where}: {float(acc):.3f} is {name!r}'s validation accuracy",
                                  "report the test accuracy of the chosen candidate")  # fmt: skip
            if abs(float(acc) - max(on["test"].values())) <= 1e-6:
                raise CheckFailed(f"{where}: {float(acc):.3f} is the best test accuracy of all the candidates",
                                  "score only the chosen candidate on the test split, once")  # fmt: skip
            raise CheckFailed(f"{where}: the test accuracy of {name!r} is {want:.3f}, you reported {float(acc):.3f}",
                              "fit on `fit`, score on `test`: features.probe_accuracy")  # fmt: skip
        return name, on

    def body():
        run(TOY_CANDIDATES, *_toy_splits(), "on a toy problem")
        if candidates is None or fit is None or val is None or test is None:
            return "validation chose, the test set was read once."
        name, on = run(candidates, fit, val, test, "on the lesson's features")
        best_test = max(on["test"], key=on["test"].get)
        said = f"validation chose {name} (val {on['val'][name]:.3f}), scored once on test: {on['test'][name]:.3f}."
        gain = on["test"][best_test] - on["test"][name]
        if gain <= 1e-9:
            return (
                said + " Choosing on the test set would have picked the same here, but you could only know by looking."
            )
        return (f"{said} Choosing on the test set would have picked {best_test} and reported "
                f"{on['test'][best_test]:.3f}: {100 * gain:.1f} points of optimism no new image would confirm.")  # fmt: skip

    return run_check("Exercise 1.1 (choose on validation, test once)", body)


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


def _recall_shares(cm: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix (rows = true classes) divided by its total: shares of that class's images."""
    cm = np.asarray(cm, dtype=float)
    totals = cm.sum(1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def _gain_reference(before: np.ndarray, after: np.ndarray) -> tuple[set[int], dict[int, set[int]]]:
    """Classes whose recall rose most (ties kept), and for each the wrong predictions whose share fell most."""
    b, a = _recall_shares(before), _recall_shares(after)
    gain = np.diag(a) - np.diag(b)
    classes = {int(c) for c in np.flatnonzero(gain >= gain.max() - 1e-12)}
    fixed = {}
    for c in classes:
        fall = b[c] - a[c]
        fall[c] = -np.inf
        fixed[c] = {int(j) for j in np.flatnonzero(fall >= fall.max() - 1e-12)}
    return classes, fixed


def _gain_toys() -> list[tuple[np.ndarray, np.ndarray]]:
    """Confusion-matrix pairs that tell recall apart from counts, from precision and from the recall reached."""
    counts_trap = (np.array([[800, 150, 50], [30, 50, 20], [10, 10, 80]]),  # class 0 has 10x the test images
                   np.array([[860, 100, 40], [5, 80, 15], [5, 3, 92]]))  # fmt: skip
    columns_trap = (np.array([[60, 40, 0], [0, 100, 0], [0, 20, 80]]),
                    np.array([[90, 10, 0], [0, 100, 0], [0, 15, 85]]))  # fmt: skip
    rng = np.random.default_rng(0)
    sizes = rng.integers(20, 400, 10)[:, None]  # unequal classes
    before = rng.integers(0, 30, (10, 10)) + np.eye(10, dtype=int) * 60
    after = rng.integers(0, 20, (10, 10)) + np.eye(10, dtype=int) * rng.integers(40, 140, 10)
    return [counts_trap, columns_trap, (before * sizes // 50, after * sizes // 50)]


def check_most_confused(fn: Callable, cm_before: np.ndarray | None = None, cm_after: np.ndarray | None = None,
                        class_names: list[str] | None = None) -> bool:  # fmt: skip
    """Exercise 1.3: fn(cm_before, cm_after) -> (c, j): the class c whose recall rose most between two confusion
    matrices of the same test images (rows = true class), and the wrong prediction j whose share of class c fell most.
    Toy pairs tell recall apart from raw counts, from precision (columns) and from the recall reached; then, if given,
    the lesson's raw-pixel and ImageNet-feature matrices, whose answer the ✅ line reports."""

    def run(before, after):
        got = call(fn, before.copy(), after.copy())
        expect(isinstance(got, (tuple, list)) and len(got) == 2, f"expected a pair (class, prediction), got {got!r}",
               "return c, j")  # fmt: skip
        expect(all(isinstance(v, (int, np.integer)) for v in got), f"expected two ints, got {got!r}", "int(...)")
        c, j = (int(v) for v in got)
        classes, fixed = _gain_reference(before, after)
        b, a = _recall_shares(before), _recall_shares(after)
        k = len(before)
        if c not in classes:
            want = min(classes)
            if c == int(np.argmax(np.diag(after) - np.diag(before))):
                hint = "that class gained the most correct images, but it also has more test images: compare recalls"
            elif c == int(np.argmax(np.diag(_recall_shares(after.T)) - np.diag(_recall_shares(before.T)))):
                hint = "you read the columns (precision); rows are the true classes: recall = diagonal / row total"
            elif c == int(np.argmax(np.diag(a))):
                hint = "that class has the highest recall afterwards; the question is which one gained most"
            else:
                hint = "recall of class c = cm[c, c] / cm[c].sum(); compare it before and after"
            raise CheckFailed(f"on a {k}-class pair you answered class {c}; class {want}'s recall rose most "
                              f"({b[want, want]:.2f} → {a[want, want]:.2f})", hint)  # fmt: skip
        if j not in fixed[c]:
            left = a[c].copy()
            left[c] = -1
            hint = ("that is the largest confusion left in the row, not the one that shrank most"
                    if j == int(left.argmax()) else
                    "compare row c's shares before and after (each row divided by its total), skipping the diagonal")  # fmt: skip
            raise CheckFailed(f"on a {k}-class pair, class {c}'s share predicted as {j} went "
                              f"{b[c, j]:.2f} → {a[c, j]:.2f}; another wrong prediction fell further", hint)  # fmt: skip
        return c, j

    def body():
        for before, after in _gain_toys():
            run(before, after)
        if cm_before is None or cm_after is None:
            return None
        before, after = np.asarray(cm_before), np.asarray(cm_after)
        c, j = run(before, after)
        names = class_names or [str(i) for i in range(len(before))]
        b, a = _recall_shares(before), _recall_shares(after)
        off = after.astype(float).copy()
        np.fill_diagonal(off, -np.inf)
        r, s = np.unravel_index(int(off.argmax()), off.shape)
        return (f"{names[c]!r} gained most recall ({b[c, c]:.2f} → {a[c, c]:.2f}), mostly as fewer of its images "
                f"were called {names[j]!r} ({b[c, j]:.0%} → {a[c, j]:.0%}); the largest confusion left: a true "
                f"{names[r]!r} called {names[s]!r} {int(after[r, s])} times ({int(before[r, s])} before).")  # fmt: skip

    return run_check("Exercise 1.3 (what the features fixed)", body)
