"""Friendly checks for the lesson-04 exercises (domain adaptation); each prints one verdict (see tlcourse.checks.base)."""

from __future__ import annotations

import numpy as np
import torch

from tlcourse.checks.base import call, expect, expect_type, run_check


def check_reverse_gradient(fn) -> bool:
    """Exercise 4.1: reverse_gradient(x, lam) is x in the forward pass and has gradient -lam (no autograd.Function)."""

    def body():
        gen = torch.Generator().manual_seed(0)
        for lam in (0.0, 0.5, 2.0):
            x = torch.randn(4, 3, generator=gen, requires_grad=True)
            out = call(fn, x, lam)
            expect_type(out, torch.Tensor, "reverse_gradient(x, lam)")
            expect(out.shape == x.shape, f"the output has shape {tuple(out.shape)}, expected {tuple(x.shape)}")
            expect(torch.allclose(out, x, atol=1e-6), f"with lam={lam} the forward pass changes x",
                   hint="the forward value must be exactly x")  # fmt: skip
            expect(out.requires_grad, "no gradient flows back to x", hint="keep one term that is not detached")
            w = torch.randn(4, 3, generator=gen)
            (grad,) = torch.autograd.grad((out * w).sum(), x)
            expect(torch.allclose(grad, -lam * w, atol=1e-5),
                   f"with lam={lam} the gradient reaching x is not -lam times the incoming gradient",
                   hint="x.detach() carries the value without a gradient; a term -lam * x carries the gradient")  # fmt: skip
        return "identity forward, gradient × −λ backward: a gradient reversal layer in one line."

    return run_check("Exercise 4.1 (gradient reversal)", body)


def check_balanced_accuracy(fn) -> bool:
    """Exercise 4.2: balanced_accuracy(labels, predictions) = mean recall over the classes present in labels."""

    def ref(y, p):
        return float(np.mean([(p[y == c] == c).mean() for c in np.unique(y)]))

    def body():
        rng = np.random.default_rng(0)
        cases = [
            (np.array([1, 1, 1, 1, 1, 1, 0, 0]), np.ones(8, int)),  # all positive: accuracy .75, balanced .5
            (np.array([0, 1, 1, 1]), np.array([0, 1, 0, 1])),
        ]
        y = (rng.random(200) < 0.72).astype(int)
        cases.append((y, np.where(rng.random(200) < 0.8, y, 1 - y)))
        cases.append((rng.integers(0, 3, 90), rng.integers(0, 3, 90)))  # three classes
        for y, p in cases:
            out = call(fn, y, p)
            expect_type(out, (float, np.floating), "balanced_accuracy(...)")
            expect(abs(float(out) - ref(y, p)) < 1e-9,
                   f"for labels {y[:8].tolist()}… you returned {float(out):.4f}, expected {ref(y, p):.4f}",
                   hint="the recall of each class (correct / examples of that class), then the mean over classes")  # fmt: skip
        return "an all-positive guess on 72%-positive data now scores 0.5, not 0.72."

    return run_check("Exercise 4.2 (balanced accuracy)", body)


def _balanced(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Balanced accuracy of predicting positive where scores >= threshold (scikit-learn's definition)."""
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(labels, (scores >= threshold).astype(int)))


def check_threshold_from_labels(fn) -> bool:
    """Exercise 4.3: threshold_from_labels(scores, labels) reaches the best balanced accuracy any threshold reaches."""

    def body():
        rng = np.random.default_rng(3)
        cases = [(np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9]), np.array([0, 0, 1, 1, 1, 1]))]  # best cut at 0.3, not 0.5
        cases.append((np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.45]), np.array([0, 0, 1, 0, 1, 1, 1, 1])))
        for n, shift in ((16, -0.25), (64, 0.2), (200, -0.1)):  # a miscalibrated model on a shifted target
            y = (rng.random(n) < 0.72).astype(int)
            y[:2] = [0, 1]  # both classes present
            cases.append((np.clip(0.5 + shift + 0.25 * (2 * y - 1) + rng.normal(0, 0.2, n), 0, 1), y))
        for scores, y in cases:
            out = call(fn, scores.copy(), y.copy())
            expect_type(out, (float, int, np.floating, np.integer), "threshold_from_labels(...)")
            best = max(_balanced(scores, y, t) for t in np.r_[np.unique(scores), np.inf])
            got = _balanced(scores, y, float(out))
            expect(got >= best - 1e-9,
                   f"on {len(y)} labelled examples your threshold {float(out):.3f} reaches balanced accuracy {got:.3f}; "
                   f"the best threshold reaches {best:.3f}",
                   hint="predict positive when score >= t; try every score as t and keep the t with the highest "
                        "balanced accuracy on these labelled examples")  # fmt: skip
        return "your threshold is the best one these labelled examples can tell you."

    return run_check("Exercise 4.3 (a threshold from k labelled reviews)", body)
