"""Friendly checks for the lesson-04 exercises (domain adaptation); each prints one verdict and never raises."""

from __future__ import annotations

import numpy as np
import torch

from tlcourse.checks import CheckFailed, call, expect, expect_type, run_check


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


def check_prior_threshold(fn) -> bool:
    """Exercise 4.3: threshold_for_rate(scores, rate) so that a fraction `rate` of scores is >= the threshold."""

    def body():
        rng = np.random.default_rng(1)
        for n, rate in ((1000, 0.72), (343, 0.5), (50, 0.1)):
            scores = rng.random(n)
            out = call(fn, scores, rate)
            expect_type(out, (float, np.floating), "threshold_for_rate(...)")
            got = float((scores >= float(out)).mean())
            expect(abs(got - rate) <= 1.0 / n + 1e-9,
                   f"with rate={rate}, {got:.3f} of the scores are >= your threshold {float(out):.3f}",
                   hint="the (1 - rate) quantile of the scores: np.quantile(scores, 1 - rate)")  # fmt: skip
        scores = rng.random(100)
        if abs(float(call(fn, scores, 0.3)) - float(call(fn, scores, 0.7))) < 1e-12:
            raise CheckFailed("the threshold does not depend on the rate", hint="use the rate argument")
        return "the threshold now matches the positive rate you expect in the target domain."

    return run_check("Exercise 4.3 (threshold for a target prior)", body)
