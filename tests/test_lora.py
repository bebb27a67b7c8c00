"""Hand-written LoRA: equal to the base at init, only adapters and head train, merge keeps the outputs."""

import copy

import pytest
import torch
from tiny_models import tiny_batch, tiny_bert, train_steps
from torch import nn

from tlcourse.lora import LoRALinear, add_lora, lora_state_dict, merge_lora
from tlcourse.train import count_parameters


def test_lora_linear_starts_as_base_and_merges():
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    lora = LoRALinear(copy.deepcopy(base), r=2, alpha=4)
    x = torch.randn(3, 6)
    assert torch.equal(lora(x), base(x))  # B = 0 at init
    assert lora.scaling == 2.0 and lora.lora_A.shape == (2, 6) and lora.lora_B.shape == (5, 2)
    with torch.no_grad():
        lora.lora_B.normal_()
    assert not torch.allclose(lora(x), base(x))
    merged = lora.merge()
    assert isinstance(merged, nn.Linear)
    torch.testing.assert_close(merged(x), lora(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lora.delta_weight(), merged.weight - base.weight, rtol=1e-5, atol=1e-6)
    assert "r=2" in repr(lora)


def test_lora_linear_rejects_bad_input():
    with pytest.raises(TypeError):
        LoRALinear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError):
        LoRALinear(nn.Linear(2, 2), r=0)


def test_add_lora_equals_base_at_init_and_trains_only_adapters_and_head():
    base = tiny_bert()
    model = copy.deepcopy(base)
    wrapped = add_lora(model, targets=["query", "value"], r=4, alpha=8)
    assert len(wrapped) == 4 and all(n.endswith(("query", "value")) for n in wrapped)
    ids, labels = tiny_batch()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, base(input_ids=ids).logits)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or n.startswith("classifier.") for n in trainable)
    assert {"classifier.weight", "classifier.bias"} <= trainable
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model, ids, labels)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable
    assert any("lora_B" in n for n in changed)  # the update really moved
    n_train, n_total = count_parameters(model)
    assert n_train == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    assert n_total == count_parameters(base)[1] + sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert set(lora_state_dict(model)) == trainable


def test_merge_lora_gives_same_outputs():
    model = tiny_bert()
    add_lora(model, targets=["query", "value", "attention.output.dense"], r=2)
    ids, labels = tiny_batch()
    train_steps(model, ids, labels)
    with torch.no_grad():
        before = model(input_ids=ids).logits
        merge_lora(model)
        after = model(input_ids=ids).logits
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_add_lora_on_sequential_with_regex_and_errors():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    assert add_lora(model, targets=[r"0"], r=1, trainable=[]) == ["0"]
    assert count_parameters(model) == (1 * 4 + 8 * 1, 4 * 8 + 8 + 8 * 3 + 3 + 12)
    with pytest.raises(ValueError, match="no nn.Linear matched"):
        add_lora(nn.Sequential(nn.Linear(2, 2)), targets=["query"])
