"""Lesson-05 exercise checks: right answers pass; wrong answers, wrong types and stubs get a verdict, never a traceback."""

import pytest
from torch import nn

from tlcourse import lora_checks


def stub(*args, **kwargs):
    raise NotImplementedError()


def crash(*args, **kwargs):
    raise KeyError("oops")


def extra_params(d_in, d_out, r):
    return r * (d_in + d_out)


def attention_targets(model):
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".attention." in n]


def merged_weight(W, A, B, alpha, r):
    return W + (alpha / r) * B @ A


def smallest_rank(accuracies, full_acc, points=1.0):
    ok = [r for r, a in accuracies.items() if a >= full_acc - points / 100]
    return min(ok) if ok else None


CASES = {
    "extra": (lora_checks.check_lora_extra_params, extra_params,
              [lambda d_in, d_out, r: r * d_in * d_out, lambda d_in, d_out, r: float(r * (d_in + d_out))]),
    "targets": (lora_checks.check_attention_targets, attention_targets,
                [lambda m: [n for n, x in m.named_modules() if isinstance(x, nn.Linear)],
                 lambda m: [n for n, _ in m.named_modules() if n.endswith(("query", "key", "value"))], lambda m: "query"]),
    "merge": (lora_checks.check_merged_weight, merged_weight,
              [lambda W, A, B, alpha, r: W + B @ A, lambda W, A, B, alpha, r: W + (alpha / r) * (A.T @ B.T).T.T,
               lambda W, A, B, alpha, r: (W + (alpha / r) * B @ A).tolist()]),
    "rank": (lora_checks.check_smallest_rank, smallest_rank,
             [lambda acc, full, points=1.0: max(acc), lambda acc, full, points=1.0: min(r for r, a in acc.items() if a >= full - points),
              lambda acc, full, points=1.0: str(min(acc))]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_right_wrong_stub_and_crash(name, capsys):
    check, right, wrongs = CASES[name]
    assert check(right) is True
    assert capsys.readouterr().out.startswith("✅")
    for wrong in wrongs:
        assert check(wrong) is False, wrong
        assert capsys.readouterr().out.startswith("❌")
    assert check(stub) is False
    assert capsys.readouterr().out.startswith("⏳")
    assert check(crash) is False
    assert "KeyError" in capsys.readouterr().out
    assert check("not a function") is False


def test_checks_report_on_the_lesson_data(capsys):
    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16)
    assert lora_checks.check_attention_targets(attention_targets, BertForSequenceClassification(cfg)) is True
    out = capsys.readouterr().out
    assert "8 layers" in out and "% of the model" in out
    assert lora_checks.check_smallest_rank(smallest_rank, {1: 0.70, 4: 0.795, 8: 0.80}, 0.80) is True
    assert "r=4 came within 1 point" in capsys.readouterr().out
    assert lora_checks.check_smallest_rank(smallest_rank, {1: 0.70}, 0.80) is True
    assert "no rank came within" in capsys.readouterr().out


def test_smallest_rank_on_the_float_boundary_is_right():
    def naive(acc, full, points=1.0):  # no tolerance: the learner's straightforward answer
        ok = [r for r, a in acc.items() if a >= full - points / 100]
        return min(ok) if ok else None

    assert lora_checks.check_smallest_rank(naive)
    assert lora_checks.check_smallest_rank(lambda acc, full, points=1.0: min(acc)) is False
