"""Lesson 02 exercise checks: each calls the learner's function, compares it with a reference and prints one verdict."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from tlcourse import finetune, forgetting, models
from tlcourse.checks.base import CheckFailed, call, expect, expect_type, run_check


def reference_largest_decay(names: list[str], low: str, high: str, ratio: float) -> float:
    """The largest d with d ** k <= ratio, k the number of stages from `low` up to `high`: d = ratio ** (1 / k)."""
    return ratio ** (1.0 / (names.index(high) - names.index(low)))


def check_layerwise_lrs(fn: Callable) -> bool:
    """Exercise 2.1: fn(names, low, high, ratio) -> the largest per-stage decay under which stage `low` learns at most
    `ratio` times as fast as stage `high` (each stage at `decay` times the rate of the stage above it; names input to
    output). Toy lists catch counting the whole list or the wrong number of steps; the ✅ line measures the course's
    own rates (finetune.DISCRIMINATIVE_LRS) against the budget of the lesson: the stem at most 1/20 of the head."""

    def body():
        toys = [(list("abcde"), "a", "e", 1 / 16), (list("abcdef"), "b", "e", 0.125), (list("abcd"), "c", "d", 0.3)]
        for names, low, high, ratio in toys:
            got = call(fn, list(names), low, high, ratio)
            expect_type(got, (float, int), "largest_decay(...)")
            want = reference_largest_decay(names, low, high, ratio)
            k = names.index(high) - names.index(low)
            where = f"with names {names}, low={low!r}, high={high!r}, ratio={ratio:g}"
            if math.isclose(float(got), want, rel_tol=1e-6):
                continue
            if any(math.isclose(float(got), ratio ** (1 / n), rel_tol=1e-6) for n in {len(names), len(names) - 1}):
                hint = f"count the steps from {low!r} up to {high!r} ({k} here), not the length of the list"
            elif math.isclose(float(got), ratio**k, rel_tol=1e-6):
                hint = "you raised ratio to the power k; k steps give decay ** k: solve decay ** k = ratio"
            else:
                hint = "k steps of decay multiply the rate by decay ** k: it must be at most ratio"
            raise CheckFailed(f"{where} you returned {float(got):.4g}, expected {want:.4g}", hint)
        names = list(finetune.stages(models.load_efficientnet(pretrained=False, num_classes=10)))
        budget = 1 / 20
        got = float(call(fn, names, "stem", "head", budget))
        want = reference_largest_decay(names, "stem", "head", budget)
        expect(math.isclose(got, want, rel_tol=1e-6),
               f"for the EfficientNet stages you returned {got:.4g}, expected {want:.4g}")  # fmt: skip
        lrs = finetune.DISCRIMINATIVE_LRS
        course = lrs["stem"] / lrs["head"]  # the course's stem-to-head ratio, from its rates
        steps = names.index("head") - names.index("stem")
        meets = "meets" if course <= budget * (1 + 1e-9) else "misses"
        return (f"the stem is {steps} stages below the head, so a 1/20 budget needs decay ≤ {want:.3f}; the course's "
                f"rates give the stem 1/{1 / course:.0f} of the head's (decay {course ** (1 / steps):.2f}): it {meets} "
                "that budget.")  # fmt: skip

    return run_check("Exercise 2.1 (a decay for a budget)", body)


def check_unfreeze_top(fn: Callable) -> bool:
    """Exercise 2.2: fn(model, k) leaves only the classifier and the k stages below it trainable."""

    def body():
        names = None
        for k in (0, 2, 5):
            model = models.load_efficientnet(pretrained=False, num_classes=10)
            names = list(finetune.stages(model))
            out = call(fn, model, k)
            expect(out is None or out is model, "return nothing (or the model): change the model in place")
            want = set(names[len(names) - 1 - k :])
            for n in names:
                flags = {p.requires_grad for p in finetune.stage_params(model, n)}
                expect(flags == {n in want}, f"with k={k}, stage {n!r} should be {'trainable' if n in want else 'frozen'}",
                       hint="freeze every stage first, then unfreeze the classifier and the k stages just below it")  # fmt: skip
            if k == 2:
                expect(_pinned(model.bn1), "the stem's BatchNorm is not pinned: use finetune.freeze_stages, not only requires_grad",
                       hint="finetune.freeze_stages(model, names) also keeps frozen BatchNorm layers in eval mode")  # fmt: skip
        return f"with k=2, {', '.join(names[-3:])} train; everything below stays as ImageNet left it."

    return run_check("Exercise 2.2 (unfreeze the top k stages)", body)


def _pinned(bn: torch.nn.Module) -> bool:
    return hasattr(bn, "_tl_pin")


def _blind_cases(seed: int = 0) -> dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
    """The changes of exercise 2.3, each as (description, function of a feature matrix [N,D])."""
    g = torch.Generator().manual_seed(seed)
    d = 12
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))  # orthogonal
    mix = torch.randn(d, d, generator=g, dtype=torch.float64)  # invertible (almost surely), not orthogonal
    perm = torch.randperm(d, generator=g)
    c = torch.randn(d, generator=g, dtype=torch.float64) * 10
    stretch = torch.ones(d, dtype=torch.float64)
    stretch[0] = 5.0
    noise = torch.randn(200, d, generator=g, dtype=torch.float64)
    return {
        "rotate": ("X @ Q with Q orthogonal", lambda x: x @ q),
        "permute": ("the channels in another order", lambda x: x[:, perm]),
        "scale": ("3 * X", lambda x: 3.0 * x),
        "shift": ("X + c, the same vector c added to every row", lambda x: x + c),
        "stretch_one": ("one channel times 5", lambda x: x * stretch),
        "mix": ("X @ A with A invertible but not orthogonal", lambda x: x @ mix),
        "noise": ("X + independent noise", lambda x: x + noise[: len(x)]),
    }


BLIND_HINTS = {
    "rotate": "with Y = XQ, YᵀX = Qᵀ(XᵀX) and YᵀY = Qᵀ(XᵀX)Q: an orthogonal Q changes no Frobenius norm",
    "permute": "a permutation is a rotation (an orthogonal matrix) too",
    "scale": "numerator and denominator both grow with the square of the scale",
    "shift": "CKA centres every column first: a shift is gone before anything is compared",
    "stretch_one": "stretching one channel changes which directions carry the variance, and CKA weighs them by it",
    "mix": "only orthogonal maps (and one overall scale) keep every angle and length ratio; a general A does not",
    "noise": "noise adds variance that has nothing to do with X",
}


def check_cka(fn: Callable, cka: dict[str, dict[str, float]] | None = None,
              kept: dict[str, float] | None = None) -> bool:  # fmt: skip
    """Exercise 2.3: fn() -> {change: True if linear CKA(X, change(X)) is exactly 1}. The check measures each change with
    forgetting.linear_cka on a correlated random matrix; with the lesson's `cka` and `kept` the ✅ line puts the answer
    next to the strategy whose CKA and kept ImageNet predictions disagree most."""

    def body():
        answers = call(fn)
        expect_type(answers, dict, "cka_is_blind_to()")
        cases = _blind_cases()
        missing, extra = sorted(set(cases) - set(answers)), sorted(set(answers) - set(cases))
        expect(not missing and not extra, f"the keys should be {list(cases)}; missing {missing}, unexpected {extra}",
               "keep the keys of the template, answer True or False for each")  # fmt: skip
        for name, value in answers.items():
            expect(isinstance(value, (bool, np.bool_)), f"the answer for {name!r} is {value!r}, not True or False",
                   "True if CKA stays exactly 1, False if it drops")  # fmt: skip
        g = torch.Generator().manual_seed(1)
        x = torch.randn(200, 12, generator=g, dtype=torch.float64)
        x = x @ torch.randn(12, 12, generator=g, dtype=torch.float64)  # [200,12], correlated channels of unequal spread
        truth = {name: forgetting.linear_cka(x, change(x)) for name, (_, change) in cases.items()}
        wrong = [name for name in cases if bool(answers[name]) != (truth[name] > 1 - 1e-6)]
        if wrong:
            first = wrong[0]
            said = "blind to" if answers[first] else "not blind to"
            raise CheckFailed(f"{len(wrong)} of {len(cases)} answers wrong; e.g. you say CKA is {said} {first!r} "
                              f"({cases[first][0]})", BLIND_HINTS[first] + "; try forgetting.linear_cka(x, ...)")  # fmt: skip
        blind = [name for name in cases if truth[name] > 1 - 1e-6]
        said = f"CKA is blind to {', '.join(blind)}: it compares shapes, not the coordinates a fixed classifier reads."
        if not cka or not kept:
            return said
        rows = []  # (CKA at the deepest measured stage - ImageNet top-1 kept, ...) of the runs that began at ImageNet
        for name, per_stage in cka.items():
            measured = [stage for stage, v in per_stage.items() if not math.isnan(v)]
            if name in kept and measured and name not in ("head only", "random init"):
                value = per_stage[measured[-1]]
                rows.append((value - kept[name], name, measured[-1], value, kept[name]))
        if not rows:
            return said
        _, name, stage, value, k = max(rows)
        return (
            f"{said} In this run's first seed {name!r} has CKA {value:.3f} at {stage} and kept {k:.0%} of the "
            "confident ImageNet top-1 answers: consistent with a rotation CKA ignores, though few images and CKA's "
            "upward bias on them could also explain part of it."
        )

    return run_check("Exercise 2.3 (what CKA cannot see)", body)
