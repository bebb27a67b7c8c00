"""Exercise checks of lesson 05 (LoRA): each calls the learner's function, compares with a reference, prints a verdict."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tlcourse.checks import call, expect, expect_type, run_check
from tlcourse.lora import LoRALinear


def check_lora_extra_params(fn: Callable) -> bool:
    """Exercise 5.1: fn(d_in, d_out, r) -> the number of parameters LoRA adds to one d_in -> d_out linear layer."""

    def body():
        for d_in, d_out, r in [(384, 384, 8), (384, 1536, 4), (1536, 384, 1), (10, 3, 2)]:
            got = call(fn, d_in, d_out, r)
            expect_type(got, int, f"lora_extra_params({d_in}, {d_out}, {r})")
            want = sum(p.numel() for n, p in LoRALinear(nn.Linear(d_in, d_out), r=r).named_parameters() if "lora_" in n)
            hint = "A is [r, d_in] and B is [d_out, r]; the frozen W and its bias do not count"
            expect(got == want, f"lora_extra_params({d_in}, {d_out}, {r}) returned {got}, expected {want}", hint)
        return f"r=8 on a 384x384 layer adds {384 * 8 * 2:,} parameters next to its {384 * 384:,} frozen weights."

    return run_check("Exercise 5.1 (LoRA parameter count)", body)


def _tiny_bert() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=3, num_attention_heads=2, intermediate_size=16,
                     max_position_embeddings=16, num_labels=2)  # fmt: skip
    return BertForSequenceClassification(cfg)


def _attention_linears(model: nn.Module) -> set[str]:
    return {n for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".attention." in n}


def check_attention_targets(fn: Callable, model: nn.Module | None = None) -> bool:
    """Exercise 5.2: fn(model) -> names of every nn.Linear inside the attention blocks (query, key, value, output)."""

    def body():
        models = [_tiny_bert()] + ([model] if model is not None else [])
        for m in models:
            got = call(fn, m)
            expect_type(got, (list, tuple, set), "the returned names")
            got = set(got)
            want = _attention_linears(m)
            missing, extra = sorted(want - got), sorted(got - want)
            expect(not missing, f"{len(missing)} attention layers are missing, e.g. {missing[:2]}",
                   "walk model.named_modules() and keep the nn.Linear ones whose name contains '.attention.'")  # fmt: skip
            expect(not extra, f"{len(extra)} names are not linear layers inside attention, e.g. {extra[:2]}",
                   "the feed-forward layers are '...intermediate.dense' and '...output.dense' (without 'attention')")  # fmt: skip
        if model is None:
            return None
        per_layer = sum(
            m.in_features + m.out_features for n, m in model.named_modules() if n in _attention_linears(model)
        )
        total = sum(p.numel() for p in model.parameters())
        return f"{len(_attention_linears(model))} layers; at r=8 LoRA on them trains {8 * per_layer:,} weights ({800 * per_layer / total:.2f}% of the model)."

    return run_check("Exercise 5.2 (choose target modules)", body)


def check_merged_weight(fn: Callable) -> bool:
    """Exercise 5.3: fn(W, A, B, alpha, r) -> the merged weight W + (alpha / r) B A."""

    def body():
        g = torch.Generator().manual_seed(5)
        for d_in, d_out, r, alpha in [(6, 4, 2, 4.0), (5, 7, 3, 1.0)]:
            layer = LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=alpha)
            with torch.no_grad():
                layer.lora_B.copy_(torch.randn(d_out, r, generator=g))
            W, A, B = layer.base.weight.detach(), layer.lora_A.detach(), layer.lora_B.detach()
            got = call(fn, W.clone(), A.clone(), B.clone(), alpha, r)
            expect_type(got, torch.Tensor, "the merged weight")
            expect(tuple(got.shape) == (d_out, d_in), f"the merged weight has shape {tuple(got.shape)}, expected "
                   f"{(d_out, d_in)} like W", "B is [d_out, r] and A is [r, d_in]: which order gives [d_out, d_in]?")  # fmt: skip
            want = layer.merge().weight.detach()
            hint = (
                "don't forget the scaling alpha / r"
                if torch.allclose(got, W + B @ A, atol=1e-6)
                else "W + (alpha / r) * B @ A"
            )
            expect(torch.allclose(got, want, atol=1e-5), "the merged weight differs from W + (alpha/r) B A", hint)
        return "a merged layer costs exactly what the original layer costs at inference."

    return run_check("Exercise 5.3 (merge the update)", body)


def _smallest(accuracies: dict[int, float], full_acc: float, points: float) -> int | None:
    ok = [r for r, a in accuracies.items() if a >= full_acc - points / 100 - 1e-9]  # tolerate float rounding
    return min(ok) if ok else None


def check_smallest_rank(
    fn: Callable, accuracies: dict[int, float] | None = None, full_acc: float | None = None
) -> bool:
    """Exercise 5.4: fn(accuracies {rank: acc}, full_acc, points=1.0) -> the smallest rank within `points` of full_acc."""

    def body():
        cases = [({4: 0.80, 1: 0.70, 2: 0.795, 8: 0.81}, 0.805, 1.0), ({1: 0.6, 2: 0.7}, 0.9, 1.0),
                 ({16: 0.85, 8: 0.84}, 0.85, 0.5), ({2: 0.79, 1: 0.79}, 0.80, 1.0)]  # fmt: skip
        for acc, full, points in cases:
            got = call(fn, dict(acc), full, points)
            want = _smallest(acc, full, points)
            if want is not None:
                expect_type(got, int, "the rank")
            hint = (
                "accuracies are fractions (0.80) and points are percent (1.0 = 0.01); return None if no rank is close"
            )
            if got != want and got in acc and want is not None and abs(acc[got] - (full - points / 100)) < 1e-6:
                want = got  # on the boundary to float precision: either side is a right answer
            expect(got == want, f"for {acc}, full {full}, {points} point(s): got {got!r}, expected {want!r}", hint)
        if accuracies is None or full_acc is None:
            return None
        best = _smallest(accuracies, full_acc, 1.0)
        found = "no rank" if best is None else f"r={best}"
        return f"In this run's sweep, {found} came within 1 point of full fine-tuning ({full_acc:.3f})."

    return run_check("Exercise 5.4 (smallest good rank)", body)
