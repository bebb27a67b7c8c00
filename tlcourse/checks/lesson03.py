"""Lesson 03 exercise checks (BERT sentiment): each calls the learner's function and prints one friendly verdict."""

from __future__ import annotations

import numpy as np
import torch

from tlcourse.checks.base import CheckFailed, call, expect, expect_type, run_check


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) < 1e-6


def check_compute_metrics(fn) -> bool:
    """Exercise 3.1: fn((logits [N,C], labels [N])) -> {"accuracy": float, "f1": float} (F1 of the positive class)."""
    from tlcourse.text_models import scores

    def body():
        rng = np.random.default_rng(3)
        cases = [
            (rng.normal(size=(40, 2)).astype(np.float32), rng.integers(0, 2, 40)),
            (np.array([[2.0, -1], [0.5, 0.1], [-1, 3], [0, 1], [1, 0], [3, 4]], np.float32), np.array([0, 1, 1, 1, 0, 0])),
        ]  # fmt: skip
        for logits, labels in cases:
            out = call(fn, (logits, labels))
            expect_type(out, dict, "compute_metrics(...)")
            missing = {"accuracy", "f1"} - set(out)
            expect(not missing, f"the dict lacks {sorted(missing)}", hint='return {"accuracy": ..., "f1": ...}')
            for key in ("accuracy", "f1"):
                expect(isinstance(out[key], (float, int, np.floating)), f"{key} should be a number, got {type(out[key]).__name__}",
                       hint="convert with float(...)")  # fmt: skip
            ref = scores(labels, logits.argmax(-1))
            expect(_close(out["accuracy"], ref["accuracy"]), f"accuracy {float(out['accuracy']):.4f}, expected {ref['accuracy']:.4f}",
                   hint="predictions are logits.argmax(-1); accuracy is the mean of (predictions == labels)")  # fmt: skip
            expect(_close(out["f1"], ref["f1"]), f"f1 {float(out['f1']):.4f}, expected {ref['f1']:.4f}",
                   hint="F1 of the positive class: 2·precision·recall / (precision + recall)")  # fmt: skip
        return "Your compute_metrics matches sklearn on two test cases."

    return run_check("Exercise 3.1 (compute_metrics with F1)", body)


def check_mean_pool(fn) -> bool:
    """Exercise 3.2: fn(hidden [B,T,H], mask [B,T]) -> [B,H] mean over real tokens only (padding ignored)."""

    def body():
        g = torch.Generator().manual_seed(0)
        hidden = torch.randn(3, 5, 4, generator=g)  # [B,T,H]
        mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])  # [B,T]
        out = call(fn, hidden.clone(), mask.clone())
        expect_type(out, torch.Tensor, "mean_pool(...)")
        expect(tuple(out.shape) == (3, 4), f"output shape {tuple(out.shape)}, expected (3, 4) = [batch, hidden]",
               hint="average over the token dimension (dim=1)")  # fmt: skip
        ref = torch.stack([hidden[i, : int(mask[i].sum())].mean(0) for i in range(3)])  # [B,H]
        if torch.allclose(out.float(), hidden.mean(1), atol=1e-5):
            raise CheckFailed(
                "you averaged over padding tokens too", hint="multiply by the mask and divide by mask.sum"
            )
        expect(torch.allclose(out.float(), ref, atol=1e-5), "the pooled vectors differ from the mean of the real tokens",
               hint="(hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)")  # fmt: skip
        return "Padding is ignored, as in sentence-transformers."

    return run_check("Exercise 3.2 (mean pooling with a mask)", body)


def check_freeze_embeddings(fn) -> bool:
    """Exercise 3.3: fn(model) freezes the embedding layer of a sequence classifier; returns the trainable count."""
    from tlcourse.models import load_minilm

    def body():
        _, model = load_minilm(num_labels=2)
        out = call(fn, model)
        emb = model.base_model.embeddings
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
        expect(all(not p.requires_grad for p in emb.parameters()), "some embedding parameters are still trainable",
               hint="loop over model.base_model.embeddings.parameters() and set requires_grad = False")  # fmt: skip
        emb_ids = {id(p) for p in emb.parameters()}
        extra = [n for n, p in model.named_parameters() if not p.requires_grad and id(p) not in emb_ids]
        expect(not extra, f"{len(extra)} parameters outside the embeddings were frozen too (e.g. {extra[:1]})",
               hint="freeze only model.base_model.embeddings")  # fmt: skip
        expect(bool(frozen), "nothing was frozen", hint="set requires_grad = False on the embedding parameters")
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        expect_type(out, (int, np.integer), "the return value")
        expect(int(out) == n, f"you returned {int(out):,} trainable parameters, the model has {n:,}",
               hint="sum p.numel() over parameters with p.requires_grad")  # fmt: skip
        total = sum(p.numel() for p in model.parameters())
        return f"{n:,} of {total:,} parameters stay trainable ({n / total:.0%})."

    return run_check("Exercise 3.3 (freeze the embeddings)", body)


def check_max_length_for(fn) -> bool:
    """Exercise 3.4: fn(lengths, coverage) -> the smallest max_length that leaves `coverage` of texts untruncated."""

    def reference(lengths, coverage):
        lengths = np.sort(np.asarray(lengths))
        return int(lengths[int(np.ceil(coverage * len(lengths))) - 1])

    def body():
        rng = np.random.default_rng(1)
        cases = [([5, 9, 12, 30], 0.5), ([5, 9, 12, 30], 1.0), ([7] * 10, 0.9),
                 (list(rng.integers(3, 90, 501)), 0.95), (list(rng.integers(3, 90, 200)), 0.8)]  # fmt: skip
        for lengths, coverage in cases:
            out = call(fn, list(lengths), coverage)
            expect_type(out, (int, np.integer), "the return value")
            want = reference(lengths, coverage)
            kept = float(np.mean(np.asarray(lengths) <= int(out)))
            expect(kept >= coverage, f"with max_length={int(out)} only {kept:.0%} of texts fit, not {coverage:.0%}",
                   hint="sort the lengths and pick the one at position ceil(coverage·N) - 1")  # fmt: skip
            expect(int(out) == want, f"max_length={int(out)} works but {want} is enough (coverage {coverage})",
                   hint="the smallest length such that at least that fraction of texts is no longer")  # fmt: skip
        return "Right on five cases, including the edges."

    return run_check("Exercise 3.4 (max_length for 95% of snippets)", body)
