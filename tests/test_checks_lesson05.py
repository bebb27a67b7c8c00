"""Lesson-05 exercise checks: right answers pass; wrong answers, wrong types and stubs get a verdict, never a traceback."""

import numpy as np
import pytest
from torch import nn
from verdicts import assert_every_verdict

from tlcourse.checks import lesson05


def largest_rank(shapes, budget):
    return budget // sum(d_in + d_out for d_in, d_out in shapes)


def attention_targets(model):
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".attention." in n]


def switch_adapter(W_merged, old, new):
    (A_old, B_old, s_old), (A_new, B_new, s_new) = old, new
    return W_merged - s_old * B_old @ A_old + s_new * B_new @ A_new


def smallest_rank(accuracies, full_acc, points=1.0):
    ok = [r for r, a in accuracies.items() if a >= full_acc - points / 100]
    return min(ok) if ok else None


CASES = {
    "rank budget": (lesson05.check_largest_rank, largest_rank,
                    [lambda shapes, budget: budget // sum(a * b for a, b in shapes),  # counts d_in × d_out
                     lambda shapes, budget: budget // (shapes[0][0] + shapes[0][1]),  # one layer only
                     lambda shapes, budget: round(budget / sum(a + b for a, b in shapes)),  # rounds up too
                     lambda shapes, budget: budget / sum(a + b for a, b in shapes), lambda shapes, budget: None]),
    "targets": (lesson05.check_attention_targets, attention_targets,
                [lambda m: [n for n, x in m.named_modules() if isinstance(x, nn.Linear)],
                 lambda m: [n for n, _ in m.named_modules() if n.endswith(("query", "key", "value"))], lambda m: "query"]),
    "switch": (lesson05.check_switch_adapter, switch_adapter,
               [lambda W, old, new: W + new[2] * new[1] @ new[0],  # merges the new one on top of the old
                lambda W, old, new: W - old[2] * old[1] @ old[0],  # only undoes
                lambda W, old, new: W - old[1] @ old[0] + new[1] @ new[0],  # no scaling
                lambda W, old, new: (W - old[2] * old[1] @ old[0] + new[2] * new[1] @ new[0]).tolist(), lambda W, old, new: W]),
    "rank": (lesson05.check_smallest_rank, smallest_rank,
             [lambda acc, full, points=1.0: max(acc), lambda acc, full, points=1.0: min(r for r, a in acc.items() if a >= full - points),
              lambda acc, full, points=1.0: str(min(acc))]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_right_wrong_stub_and_crash(name):
    assert_every_verdict(*CASES[name])


@pytest.mark.parametrize(
    ("name", "wrong", "words"),
    [("rank budget", 0, "not d_in × d_out"), ("rank budget", 1, "add up their d_in + d_out"),
     ("rank budget", 2, "round down"), ("switch", 0, "take the old update out first"),
     ("switch", 1, "now add the new task's update"), ("switch", 2, "own scaling")],
)  # fmt: skip
def test_typical_wrong_answers_get_their_own_hint(name, wrong, words, capsys):
    check, _, wrongs = CASES[name]
    assert check(wrongs[wrong]) is False
    out = capsys.readouterr().out
    assert out.startswith("❌") and "Hint:" in out and words in out and len(out.strip().splitlines()) == 1


def test_checks_report_on_the_lesson_data(capsys):
    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16)
    assert lesson05.check_attention_targets(attention_targets, BertForSequenceClassification(cfg)) is True
    out = capsys.readouterr().out
    assert "8 layers" in out and "% of the model" in out
    # 2 layers: query+value at r=8 = 8 * 2 * 2 * 16 = 512 numbers; all 12 encoder linears cost 2 * (4*16 + 2*24) = 224
    assert lesson05.check_largest_rank(largest_rank, BertForSequenceClassification(cfg)) is True
    out = capsys.readouterr().out
    assert "the 512 numbers of r=8 on query+value (4 layers) buy r=2 on all 12 linear layers" in out
    assert lesson05.check_switch_adapter(switch_adapter) is True
    assert "rounding" in capsys.readouterr().out
    assert lesson05.check_smallest_rank(smallest_rank, {1: 0.70, 4: 0.795, 8: 0.80}, 0.80, n_items=400) is True
    out = capsys.readouterr().out
    assert "one seed per rank" in out and "400 validation items is 2.0 points" in out
    assert lesson05.check_smallest_rank(smallest_rank, {1: 0.70, 4: 0.795, 8: 0.80}, 0.80) is True
    assert "r=4 came within 1 point" in capsys.readouterr().out
    assert lesson05.check_smallest_rank(smallest_rank, {1: 0.70}, 0.80) is True
    assert "no rank came within" in capsys.readouterr().out


def test_smallest_rank_on_the_float_boundary_is_right():
    def naive(acc, full, points=1.0):  # no tolerance: the learner's straightforward answer
        ok = [r for r, a in acc.items() if a >= full - points / 100]
        return min(ok) if ok else None

    assert lesson05.check_smallest_rank(naive)
    assert lesson05.check_smallest_rank(lambda acc, full, points=1.0: min(acc)) is False


def test_student_stubs_of_lesson_05_say_not_done_yet(capsys):
    """The solution cells of notebook 05, stubbed as tlcourse.assign does for students, give ⏳ and no traceback."""
    from pathlib import Path

    import nbformat
    import torch

    from tlcourse.assign import BEGIN, strip_solutions

    path = Path(__file__).resolve().parent.parent / "notebooks" / "05_lora_peft.ipynb"
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and BEGIN in c.source]
    names = {}
    for src in cells:
        exec(strip_solutions(src)[0], {"torch": torch, "nn": nn}, names)
    checks = {"largest_rank": lesson05.check_largest_rank, "switch_adapter": lesson05.check_switch_adapter,
              "attention_targets": lesson05.check_attention_targets,
              "smallest_rank_within": lesson05.check_smallest_rank}  # fmt: skip
    assert set(checks) <= set(names), sorted(names)
    for name, check in checks.items():
        assert check(names[name]) is False
        out = capsys.readouterr().out
        assert out.startswith("⏳") and "Traceback" not in out, (name, out)


def test_modules_instead_of_names_and_numpy_ints_get_a_plain_answer(capsys):
    """A list of nn.Linear modules (not names) gets a hint, not a crash inside the check; np.int64 is an int."""
    modules = lambda m: [x for n, x in m.named_modules() if isinstance(x, nn.Linear) and ".attention." in n]  # noqa: E731
    assert lesson05.check_attention_targets(modules) is False
    out = capsys.readouterr().out
    assert out.startswith("❌") and "modules, not their names" in out and "TypeError" not in out
    assert lesson05.check_largest_rank(lambda shapes, budget: np.int64(largest_rank(shapes, budget))) is True
    capsys.readouterr()
    assert lesson05.check_largest_rank(lambda shapes, budget: True) is False  # a bool is not a rank
    out = capsys.readouterr().out
    assert "should be an int, got bool" in out and "floating" not in out and "integer" not in out
