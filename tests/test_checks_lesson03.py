import numpy as np
import pytest
import torch

from tlcourse.checks import lesson03 as sc
from tlcourse.checks.base import FAIL, PASS, TODO


def _stub(*args):
    raise NotImplementedError()


def _verdict(capsys, check, fn):
    ok = check(fn)
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and "Traceback" not in out
    return ok, out


def _metrics_right(eval_pred):
    logits, labels = eval_pred
    pred = logits.argmax(-1)
    tp, fp, fn = [int(((pred == a) & (labels == b)).sum()) for a, b in [(1, 1), (1, 0), (0, 1)]]
    return {"accuracy": float((pred == labels).mean()), "f1": 2 * tp / (2 * tp + fp + fn)}


@pytest.mark.parametrize(
    "fn, ok, mark, words",
    [
        (_metrics_right, True, PASS, "matches"),
        (lambda e: {"accuracy": float((e[0].argmax(-1) == e[1]).mean()), "f1": 0.5}, False, FAIL, "f1"),
        (lambda e: {"accuracy": float((e[0].argmax(-1) == e[1]).mean())}, False, FAIL, "lacks ['f1']"),
        (lambda e: [0.5, 0.5], False, FAIL, "should be a dict"),
        (lambda e: {"accuracy": 0.5, "f1": 0.5}, False, FAIL, "accuracy"),
        (_stub, False, TODO, "not done yet"),
    ],
)
def test_check_compute_metrics(capsys, fn, ok, mark, words):
    got, out = _verdict(capsys, sc.check_compute_metrics, fn)
    assert got is ok and out.startswith(mark) and words in out


@pytest.mark.parametrize(
    "fn, ok, mark, words",
    [
        (lambda h, m: (h * m[..., None]).sum(1) / m.sum(1, keepdim=True), True, PASS, "correct"),
        (lambda h, m: h.mean(1), False, FAIL, "padding"),
        (lambda h, m: h.sum(1), False, FAIL, "differ"),
        (lambda h, m: (h * m[..., None]).mean(2), False, FAIL, "shape"),
        (lambda h, m: h.numpy().mean(1), False, FAIL, "Tensor"),
        (_stub, False, TODO, "not done yet"),
    ],
)
def test_check_mean_pool(capsys, fn, ok, mark, words):
    got, out = _verdict(capsys, sc.check_mean_pool, fn)
    assert got is ok and out.startswith(mark) and words in out


def _freeze(model, what="embeddings", count=True):
    part = model.base_model.embeddings if what == "embeddings" else model.base_model
    for p in part.parameters():
        p.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad) if count else 1.0


@pytest.mark.parametrize(
    "fn, ok, mark, words",
    [
        (_freeze, True, PASS, "trainable"),
        (lambda m: _freeze(m, "encoder"), False, FAIL, "outside the embeddings"),
        (lambda m: sum(p.numel() for p in m.parameters()), False, FAIL, "still trainable"),
        (lambda m: _freeze(m, count=False), False, FAIL, "should be an int"),
        (lambda m: _freeze(m) + 1, False, FAIL, "you returned"),
        (_stub, False, TODO, "not done yet"),
    ],
)
def test_check_freeze_embeddings(capsys, fn, ok, mark, words):
    got, out = _verdict(capsys, sc.check_freeze_embeddings, fn)
    assert got is ok and out.startswith(mark) and words in out


@pytest.mark.parametrize(
    "fn, ok, mark, words",
    [
        (lambda n, c: int(np.sort(n)[int(np.ceil(c * len(n))) - 1]), True, PASS, "correct"),
        (lambda n, c: int(max(n)), False, FAIL, "is enough"),
        (lambda n, c: int(min(n)), False, FAIL, "fit"),
        (lambda n, c: float(np.quantile(n, c)), False, FAIL, "should be an int"),
        (lambda n, c: torch.tensor(1) / 0 + [], False, FAIL, "your code raised"),
        (_stub, False, TODO, "not done yet"),
    ],
)
def test_check_max_length_for(capsys, fn, ok, mark, words):
    got, out = _verdict(capsys, sc.check_max_length_for, fn)
    assert got is ok and out.startswith(mark) and words in out
