"""Exercise checks of lesson 05 (LoRA): each calls the learner's function, compares with a reference, prints a verdict."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tlcourse.checks.base import call, expect, expect_type, run_check


def _largest_rank(shapes, budget: int) -> int:
    per_rank = sum(d_in + d_out for d_in, d_out in shapes)
    return budget // per_rank


def _linear_shapes(model: nn.Module, keep: Callable[[str], bool]) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for n, m in model.named_modules() if isinstance(m, nn.Linear) and keep(n)]


def check_largest_rank(fn: Callable, model: nn.Module | None = None) -> bool:
    """Exercise 5.1: fn(shapes [(d_in, d_out), ...], budget) -> the largest rank r such that LoRA on every one of
    these layers trains at most `budget` numbers (0 when not even r = 1 fits). With `model` (MiniLM), the check then
    compares query+value at r = 8 with the same budget spread over every linear layer of the encoder."""

    def body():
        cases = [([(384, 384)] * 12, 73_728), ([(384, 384)] * 2, 12_287), ([(384, 1536), (1536, 384)], 10_000),
                 ([(10, 3)], 12), ([(6, 4), (4, 6), (8, 8)], 1_000)]  # fmt: skip
        for shapes, budget in cases:
            got = call(fn, list(shapes), budget)
            expect_type(got, int, f"largest_rank({len(shapes)} layers, {budget:,})")
            want = _largest_rank(shapes, budget)
            per_rank = sum(a + b for a, b in shapes)
            what = f"for {len(shapes)} layer(s) {shapes[:2]}{'…' if len(shapes) > 2 else ''} and a budget of {budget:,}"
            if got == want:
                continue
            if got == budget // sum(a * b for a, b in shapes) or got == budget // (shapes[0][0] * shapes[0][1]):
                hint = "a rank-r adapter is A [r, d_in] and B [d_out, r]: r (d_in + d_out) numbers, not d_in × d_out"
            elif len(shapes) > 1 and got == budget // (shapes[0][0] + shapes[0][1]):
                hint = "the budget pays for every layer in `shapes`: add up their d_in + d_out before dividing"
            elif got == want + 1:
                hint = f"rank {got} needs {got * per_rank:,} numbers, more than the budget: round down, not up"
            else:
                hint = "each rank costs d_in + d_out numbers per layer; the largest r with r × (their sum) ≤ budget"
            expect(False, f"{what} you returned {got}, expected {want}", hint)
        if model is None:
            return None
        qv = _linear_shapes(model, lambda n: n.endswith(("attention.self.query", "attention.self.value")))
        every = _linear_shapes(model, lambda n: ".encoder." in n)
        budget = 8 * sum(a + b for a, b in qv)
        r_all = call(fn, every, budget)
        return (f"the {budget:,} numbers of r=8 on query+value ({len(qv)} layers) buy r={r_all} on all {len(every)} "
                f"linear layers of the encoder ({sum(a + b for a, b in every):,} numbers per rank).")  # fmt: skip

    return run_check("Exercise 5.1 (rank under a budget)", body)


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
            expect(all(isinstance(g, str) for g in got), "the list holds modules, not their names",
                   "return the names model.named_modules() gives (strings), not the nn.Linear modules")  # fmt: skip
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


def _update(adapter) -> torch.Tensor:
    A, B, scaling = adapter
    return scaling * B @ A


def check_switch_adapter(fn: Callable) -> bool:
    """Exercise 5.3: fn(W_merged, old, new) -> the weight for task `new` from a layer with `old` merged into it;
    `old` and `new` are (A [r, d_in], B [d_out, r], scaling) tuples, possibly of different ranks and scalings."""

    def body():
        g = torch.Generator().manual_seed(53)
        for d_in, d_out, r_old, r_new, s_old, s_new in [(6, 4, 2, 3, 2.0, 0.5), (5, 7, 1, 1, 1.0, 4.0)]:
            W = torch.randn(d_out, d_in, generator=g)
            old = (torch.randn(r_old, d_in, generator=g), torch.randn(d_out, r_old, generator=g), s_old)
            new = (torch.randn(r_new, d_in, generator=g), torch.randn(d_out, r_new, generator=g), s_new)
            merged = W + _update(old)
            got = call(fn, merged.clone(), tuple(x.clone() if torch.is_tensor(x) else x for x in old),
                       tuple(x.clone() if torch.is_tensor(x) else x for x in new))  # fmt: skip
            expect_type(got, torch.Tensor, "the new weight")
            expect(tuple(got.shape) == (d_out, d_in), f"the new weight has shape {tuple(got.shape)}, expected "
                   f"{(d_out, d_in)} like W", "B is [d_out, r] and A is [r, d_in]: which order gives [d_out, d_in]?")  # fmt: skip
            want = W + _update(new)

            def near(x, got=got):
                return torch.allclose(got, x, atol=1e-4)

            if near(want):
                continue
            if near(merged + _update(new)):
                hint = ("W_merged still holds the old task's update: adding the new one gives W + ΔW_old + ΔW_new, "
                        "a model neither task was trained as; take the old update out first")  # fmt: skip
            elif near(W):
                hint = "that is the original W: now add the new task's update"
            elif near(merged - old[1] @ old[0] + new[1] @ new[0]):
                hint = "each update is scaling * B @ A, with that adapter's own scaling"
            else:
                hint = "undo the old update (scaling * B @ A), then apply the new one"
            expect(False, "the returned weight is not what merging `new` into the original W gives", hint)
        W = torch.randn(384, 384, generator=g) / 20  # MiniLM-sized layer, weights of MiniLM's order of magnitude
        adapters = [(torch.randn(8, 384, generator=g) / 20, torch.randn(384, 8, generator=g) / 100, 2.0) for _ in "ab"]
        swapped = call(fn, W + _update(adapters[0]), *adapters)
        err = float((swapped - (W + _update(adapters[1]))).abs().max())
        return (f"on a 384×384 float32 layer, undo-then-apply differs from merging into the original W by at most "
                f"{err:.0e} (rounding): a merged model can switch tasks in place.")  # fmt: skip

    return run_check("Exercise 5.3 (switch a merged layer to another task)", body)


def _smallest(accuracies: dict[int, float], full_acc: float, points: float) -> int | None:
    ok = [r for r, a in accuracies.items() if a >= full_acc - points / 100 - 1e-9]  # tolerate float rounding
    return min(ok) if ok else None


def check_smallest_rank(
    fn: Callable, accuracies: dict[int, float] | None = None, full_acc: float | None = None, n_items: int | None = None
) -> bool:
    """Exercise 5.4: fn(accuracies {rank: acc}, full_acc, points=1.0) -> the smallest rank within `points` of full_acc.

    With this run's sweep (validation accuracies) it applies the rule and says how much one run's accuracies can be
    trusted (n_items validation items)."""

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
        out = f"On validation, {found} came within 1 point of full fine-tuning ({full_acc:.3f})"
        if n_items:
            se = 100 * (full_acc * (1 - full_acc) / n_items) ** 0.5
            out += (f" — one seed per rank, and one standard error of one accuracy on {n_items:,} validation items is "
                    f"{se:.1f} points, so which rank passes a 1-point cut can change from run to run; choosing a rank "
                    "needs seeds and intervals")  # fmt: skip
        return out + "."

    return run_check("Exercise 5.4 (smallest good rank)", body)
