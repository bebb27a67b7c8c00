"""peft LoRA and the lesson-05 measurements, on a tiny BERT built from a config (no download)."""

import copy
import sys

import pytest
import torch
from tiny_models import tiny_batch, tiny_bert, train_steps

from tlcourse import costs, peft_tools
from tlcourse.lora import LoRALinear
from tlcourse.train import count_parameters


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
    import numpy as np
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
    assert not model.training and row["seed"] == rec.seed
    # test_prob follows the test set's own order (the Trainer's length-grouped eval sampler would reorder it)
    _, ordered = _tiny_data()

    def sensitive(method, r, rec):  # a head scaled up, so that every item's probabilities differ visibly
        model = tiny_bert(30522)
        with torch.no_grad():
            model.classifier.weight.mul_(1000)
        return tok, peft_tools.adapt(model, method, r)

    monkeypatch.setattr(peft_tools, "build", sensitive)
    model, row = peft_tools.train_and_measure("peft", 2, tok, data, data, ordered, rec, tmp_path / "ck2", lr=1e-3,
                                              progress=False)  # fmt: skip
    with torch.no_grad():  # one unpadded item at a time, in the dataset's order
        direct = [model(input_ids=torch.tensor([ids])).logits.softmax(-1)[0].numpy() for ids in ordered["input_ids"]]
    direct = np.stack(direct)
    assert np.abs(direct - direct[::-1]).max() > 1e-3  # another order would show
    np.testing.assert_allclose(row["test_prob"], direct, atol=1e-5)
    assert row["test_acc"] == pytest.approx(float((row["test_prob"].argmax(1) == np.array(ordered["label"])).mean()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_peak_memory_runs_in_a_fresh_process():
    out = costs.peak_memory("head", batch_size=2, seq_len=8, steps=1, bf16=False)
    assert out["method"] == "head" and out["peak_mb"] >= out["loaded_mb"] > 50
    assert out["train_mb"] == out["peak_mb"] - out["loaded_mb"]
    with pytest.raises(ValueError, match="unknown method"):
        costs.peak_memory("prefix")


def test_class_weights_and_weighted_loss():
    import torch.nn.functional as F

    w = peft_tools.class_weights([0, 1, 1, 1])
    torch.testing.assert_close(w, torch.tensor([2.0, 2 / 3]))
    assert float((w * torch.tensor([1.0, 3.0])).sum()) == pytest.approx(4.0)  # each class carries half of the weight
    with pytest.raises(ValueError, match="at least one example"):
        peft_tools.class_weights([1, 1])
    logits, labels = torch.randn(6, 2), torch.tensor([0, 1, 1, 1, 0, 1])
    loss = peft_tools.weighted_loss(w)
    torch.testing.assert_close(loss({"logits": logits}, labels), F.cross_entropy(logits, labels, weight=w))
    torch.testing.assert_close(loss((logits,), labels, num_items_in_batch=6), F.cross_entropy(logits, labels, weight=w))
    torch.testing.assert_close(peft_tools.weighted_loss([1.0, 1.0])({"logits": logits}, labels),
                               F.cross_entropy(logits, labels))  # fmt: skip


def test_binary_metrics_adds_balanced_accuracy():
    import numpy as np

    logits = np.array([[0.0, 1.0]] * 4)  # always positive
    out = peft_tools.binary_metrics((logits, np.array([1, 1, 1, 0])))
    assert out["accuracy"] == 0.75 and out["balanced_accuracy"] == 0.5 and "f1" in out


def test_seed_changes_lora_init_and_same_seed_repeats_it():
    def lora_a(seed):
        model = peft_tools.adapt(tiny_bert(), "peft", r=2, seed=seed)
        return torch.cat([p.detach().flatten() for n, p in model.named_parameters() if "lora_A" in n])

    assert torch.equal(lora_a(0), lora_a(0)) and not torch.equal(lora_a(0), lora_a(1))
    hand = [peft_tools.adapt(tiny_bert(), "hand", r=2, seed=s) for s in (0, 1)]
    assert not torch.equal(*(m.bert.encoder.layer[0].attention.self.query.lora_A for m in hand))


def _tiny_data(n=24):
    from datasets import Dataset
    from transformers import AutoTokenizer

    from tlcourse import text_models
    from tlcourse.models import minilm_path

    tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    texts = [" ".join(["good" if i % 2 else "bad"] * (1 + i % 5)) + f" {i}" for i in range(n)]  # lengths vary
    data = text_models.tokenize(Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(n)]}), tok, 16)
    return tok, data.remove_columns(["text"])


def test_same_seed_gives_every_method_the_same_batches(monkeypatch, tmp_path):
    from tlcourse import text_models

    tok, data = _tiny_data()
    monkeypatch.setattr(
        peft_tools, "build", lambda method, r, rec: (tok, peft_tools.adapt(tiny_bert(30522), method, r, seed=rec.seed))
    )
    real_make_trainer = text_models.make_trainer

    def batches_of(method, seed):
        seen = []

        def recording(*args, **kwargs):
            trainer = real_make_trainer(*args, **kwargs)
            collate = trainer.data_collator
            trainer.data_collator = lambda feats: (
                seen.append(tuple(tuple(f["input_ids"]) for f in feats)) or collate(feats)
            )
            return trainer

        monkeypatch.setattr(text_models, "make_trainer", recording)
        rec = text_models.recipe(smoke=True, epochs=2.0, batch_size=4, bf16=False, seed=seed)
        peft_tools.train_and_measure(method, 2, tok, data, data, data, rec, tmp_path / method, lr=1e-3, progress=False)
        return seen

    full, peft = batches_of("full", 0), batches_of("peft", 0)
    assert full == peft and len(full) > 12  # training batches of both epochs, then the evaluations
    assert batches_of("full", 1) != full


def test_fit_with_class_weights_selects_on_balanced_accuracy(tmp_path):
    import numpy as np

    from tlcourse import text_models

    tok, data = _tiny_data()
    rec = text_models.recipe(smoke=True, epochs=2.0, batch_size=8, bf16=False)
    model = peft_tools.adapt(tiny_bert(30522), "peft", r=2)
    _, row = peft_tools.fit(model, "peft", tok, data, data, data, rec, tmp_path / "ck", progress=False,
                            weights=peft_tools.class_weights(data["label"]), select="balanced_accuracy")  # fmt: skip
    assert len(row["val_history"]) == 2 and row["best_epoch"] == int(np.argmax(row["val_history"])) + 1
    assert row["test_prob"].shape == (len(data), 2) and row["r"] is None
