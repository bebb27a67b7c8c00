"""Lesson 02 exercise checks: each calls the learner's function, compares it with a reference and prints one verdict."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from tlcourse import finetune, forgetting, models
from tlcourse.checks import call, expect, expect_type, run_check


def reference_layerwise_lrs(names: list[str], top_lr: float, decay: float) -> dict[str, float]:
    """The last name gets top_lr, the one before top_lr * decay, and so on down to the first."""
    return {n: top_lr * decay ** (len(names) - 1 - i) for i, n in enumerate(names)}


def check_layerwise_lrs(fn: Callable) -> bool:
    """Exercise 2.1: fn(names, top_lr, decay) -> {name: lr}, geometric decay from the output down to the input."""

    def body():
        toy = call(fn, ["a", "b", "c"], 1.0, 0.5)
        expect_type(toy, dict, "the result")
        expect(list(toy) == ["a", "b", "c"], f"keys {list(toy)} should be the names in order ['a', 'b', 'c']")
        want = {"a": 0.25, "b": 0.5, "c": 1.0}
        expect(all(math.isclose(float(toy[k]), v) for k, v in want.items()),
               f"layerwise_lrs(['a','b','c'], 1.0, 0.5) gave {toy}, expected {want}",
               hint="the LAST name gets top_lr; each step towards the input multiplies by decay")  # fmt: skip
        names = list(finetune.stages(models.load_efficientnet(pretrained=False, num_classes=10)))
        got = call(fn, names, 3e-3, 0.6)
        ref = reference_layerwise_lrs(names, 3e-3, 0.6)
        expect(isinstance(got, dict) and set(got) == set(ref), "on the EfficientNet stage names the keys differ")
        expect(all(math.isclose(float(got[n]), ref[n], rel_tol=1e-6) for n in names), f"got {got}, expected {ref}")
        return f"the stem would learn at {ref['stem']:.1e}, the classifier at {ref['classifier']:.1e}."

    return run_check("Exercise 2.1 (layer-wise learning rates)", body)


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


def check_cka(fn: Callable) -> bool:
    """Exercise 2.3: fn(x, y) -> linear CKA as a float, equal to forgetting.linear_cka."""

    def body():
        g = torch.Generator().manual_seed(2)
        x = torch.randn(60, 5, generator=g)  # [N,D1]
        y = x @ torch.randn(5, 7, generator=g) + 0.5 * torch.randn(60, 7, generator=g)  # [N,D2], related to x
        got = call(fn, x, y)
        expect(isinstance(got, (float, int)) or (torch.is_tensor(got) and got.numel() == 1),
               f"return one number, got {type(got).__name__}", hint="float(...) of your result")  # fmt: skip
        ref = forgetting.linear_cka(x, y)
        expect(math.isclose(float(got), ref, rel_tol=1e-4), f"CKA(x, y) = {float(got):.4f}, expected {ref:.4f}",
               hint="centre each column first; then ||Yᵀ X||²_F / (||Xᵀ X||_F · ||Yᵀ Y||_F)")  # fmt: skip
        shifted = call(fn, x + 10.0, 3.0 * y)
        expect(math.isclose(float(shifted), ref, rel_tol=1e-4),
               f"CKA should not change when x is shifted or y scaled: got {float(shifted):.4f} vs {ref:.4f}",
               hint="did you centre the columns (subtract the mean of each feature)?")  # fmt: skip
        return f"CKA of these related matrices is {ref:.3f}; of a matrix with itself it is 1."

    return run_check("Exercise 2.3 (linear CKA)", body)
