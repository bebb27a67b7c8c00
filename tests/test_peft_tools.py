"""peft LoRA and the lesson-05 measurements, on a tiny BERT built from a config (no download)."""

import copy
import sys

import pytest
import torch
from tiny_models import tiny_batch, tiny_bert, train_steps

from tlcourse import peft_tools
from tlcourse.lora import LoRALinear, count_parameters


def test_lora_config_for_sequence_classification():
    cfg = peft_tools.lora_config(r=4, dropout=0.0)
    assert cfg.r == 4 and cfg.lora_alpha == 8 and cfg.task_type == "SEQ_CLS"
    assert set(cfg.target_modules) == {"query", "value"} and cfg.modules_to_save == ["classifier"]
    assert peft_tools.lora_config(r=2, alpha=5).lora_alpha == 5


def test_peft_lora_equals_base_trains_adapter_and_head_and_merges():
    base = tiny_bert()
    model = peft_tools.adapt(copy.deepcopy(base), "peft", r=4, dropout=0.0)
    ids, labels = tiny_batch()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, base(input_ids=ids).logits)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "modules_to_save" in n for n in trainable)
    assert any("classifier" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model, ids, labels)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable and any("lora_B" in n for n in changed)
    assert peft_tools.base_parameters(model) == count_parameters(base)[1]
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        merged = model.merge_and_unload()
        torch.testing.assert_close(merged(input_ids=ids).logits, adapted, rtol=1e-4, atol=1e-5)
    assert type(merged) is type(base)


@pytest.mark.parametrize("method", ["head", "full", "hand"])
def test_adapt_other_methods(method):
    base = tiny_bert()
    model = peft_tools.adapt(copy.deepcopy(base), method, r=2, dropout=0.0)
    ids, labels = tiny_batch()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, base(input_ids=ids).logits)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    n_train, _ = count_parameters(model)
    if method == "head":
        assert trainable == {"classifier.weight", "classifier.bias"} and n_train == 16 * 2 + 2
    elif method == "full":
        assert n_train == count_parameters(base)[1]
    else:
        assert sum(isinstance(m, LoRALinear) for m in model.modules()) == 4
        assert n_train == 4 * 2 * (16 + 16) + 16 * 2 + 2  # 4 adapters of r(in+out), plus the head
    assert peft_tools.base_parameters(model) == count_parameters(base)[1]
    with pytest.raises(ValueError, match="unknown method"):
        peft_tools.adapt(base, "prefix")
    with pytest.raises(ValueError, match="unknown method"):
        peft_tools.build("prefix")


def test_checkpoint_sizes(tmp_path):
    sizes = {m: peft_tools.checkpoint_bytes(peft_tools.adapt(tiny_bert(), m, r=2), m, tmp_path / m)
             for m in ["head", "full", "hand", "peft"]}  # fmt: skip
    assert (tmp_path / "peft" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "hand" / "trainable.safetensors").is_file()
    assert sizes["head"] < sizes["hand"] < sizes["full"] and sizes["peft"] < sizes["full"]
    assert sizes["full"] > 4 * sum(p.numel() for p in tiny_bert().parameters())  # fp32 weights
    assert peft_tools.dir_bytes(tmp_path / "hand") == peft_tools.dir_bytes(tmp_path / "hand" / "trainable.safetensors")
    assert (
        peft_tools.checkpoint_bytes(peft_tools.adapt(tiny_bert(), "head"), "head", tmp_path / "head") == sizes["head"]
    )
    with pytest.raises(ValueError):
        peft_tools.checkpoint_bytes(tiny_bert(), "prefix", tmp_path / "x")


def test_step_timer_records_each_step():
    timer = peft_tools.step_timer()
    for _ in range(3):
        timer.on_step_begin(None, None, None)
        timer.on_step_end(None, None, None)
    assert len(timer.times) == 3 and all(t >= 0 for t in timer.times)


def test_train_and_measure_with_a_tiny_model(tmp_path, monkeypatch):
    from datasets import Dataset
    from transformers import AutoTokenizer

    from tlcourse import text_models
    from tlcourse.models import minilm_path

    tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    monkeypatch.setattr(
        peft_tools, "build", lambda method, r, rec: (tok, peft_tools.adapt(tiny_bert(30522), method, r))
    )
    texts = ["a gem", "a mess", "wonderful film", "dull and long"] * 4
    data = text_models.tokenize(Dataset.from_dict({"text": texts, "label": [1, 0, 1, 0] * 4}), tok, 16)
    data = data.remove_columns(["text"])
    rec = text_models.recipe(smoke=True, epochs=1.0, batch_size=8, bf16=False)
    model, row = peft_tools.train_and_measure("peft", 2, tok, data, data, data, rec, tmp_path / "ck", lr=1e-3,
                                              progress=False)  # fmt: skip
    assert row["method"] == "peft" and row["r"] == 2 and 0.0 <= row["test_acc"] <= 1.0
    assert row["trainable"] == 4 * 2 * 32 + 34 and row["base"] == count_parameters(tiny_bert(30522))[1]
    assert row["ckpt_bytes"] == peft_tools.dir_bytes(tmp_path / "ck") > 0 and row["step_s"] > 0
    assert not model.training


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_peak_memory_runs_in_a_fresh_process():
    out = peft_tools.peak_memory("head", batch_size=2, seq_len=8, steps=1, bf16=False)
    assert out["method"] == "head" and out["peak_mb"] >= out["loaded_mb"] > 50
    assert out["train_mb"] == out["peak_mb"] - out["loaded_mb"]
    with pytest.raises(ValueError, match="unknown method"):
        peft_tools.peak_memory("prefix")
