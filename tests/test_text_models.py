import os

import numpy as np
import pytest
import torch

from tlcourse import config, costs, text_models
from tlcourse.text_data import rotten_tomatoes

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TINY = dict(train_size=16, eval_size=8, epochs=1.0, max_length=16, batch_size=8, bf16=False)


@pytest.fixture(scope="module")
def rt():
    return rotten_tomatoes()


@pytest.fixture(scope="module")
def tok_model():
    return text_models.new_classifier(text_models.recipe(smoke=True))


def test_recipe_modes_and_overrides():
    full, smoke = text_models.recipe(smoke=False), text_models.recipe(smoke=True)
    assert full.train_size is None and full.max_length == 64 and full.epochs >= 1
    assert smoke.train_size is not None and smoke.train_size < 500 and smoke.epochs == 1
    assert text_models.recipe(smoke=False, lr=1e-4).lr == 1e-4
    with pytest.raises(TypeError):
        text_models.recipe(smoke=False, learning_rate=1e-4)


def test_tokenize_truncates_without_padding(rt, tok_model):
    tok, _ = tok_model
    small = rt["train"].select(range(20))
    enc = text_models.tokenize(small, tok, max_length=12)
    lengths = [len(x) for x in enc["input_ids"]]
    assert max(lengths) == 12 and min(lengths) < 12  # truncated, and not padded to a fixed length
    assert all(len(a) == len(i) for a, i in zip(enc["attention_mask"], enc["input_ids"], strict=True))
    both = text_models.tokenize(rt.filter(lambda _: False), tok)  # a DatasetDict works too
    assert set(both) == {"train", "validation", "test"}
    with pytest.raises(ValueError, match="no column 'review'"):
        text_models.tokenize(small, tok, text_column="review")


def test_collator_pads_each_batch_to_its_longest(tok_model):
    tok, _ = tok_model
    feats = [tok(t) for t in ["good", "a very long and rather wonderful film"]]
    batch = text_models.collator(tok)(feats)
    longest = max(len(f["input_ids"]) for f in feats)
    assert batch["input_ids"].shape == (2, longest)
    assert batch["attention_mask"].sum(1).tolist() == [len(f["input_ids"]) for f in feats]


def test_scores_and_compute_metrics():
    out = text_models.compute_metrics((np.array([[2.0, 0], [0, 1], [0, 1], [1, 0]]), np.array([0, 1, 0, 1])))
    assert out == pytest.approx({"accuracy": 0.5, "f1": 0.5})
    assert text_models.scores([1, 1, 0], [1, 1, 0]) == {"accuracy": 1.0, "f1": 1.0}
    assert text_models.scores([0, 0], [0, 0])["f1"] == 0.0  # no positives: 0, not a crash
    assert text_models.scores([0, 1, 2], [0, 2, 2])["f1"] == pytest.approx(5 / 9)  # macro F1 for 3 classes
    with pytest.raises(ValueError, match="same shape"):
        text_models.scores([0, 1], [0])


def test_new_classifier_labels_and_seeded_head():
    tok, m1 = text_models.new_classifier(text_models.recipe(smoke=True))
    _, m2 = text_models.new_classifier(text_models.recipe(smoke=True))
    assert m1.config.id2label == {0: "negative", 1: "positive"}
    assert torch.equal(m1.classifier.weight, m2.classifier.weight)


def test_predict_proba(tok_model):
    tok, model = tok_model
    p = text_models.predict_proba(model, tok, ["great", "awful film", "meh"], batch_size=2)
    assert p.shape == (3, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert text_models.predict_proba(model, tok, []).shape == (0, 2)
    texts = ["a long sentence about a film that goes on and on", "ok", "a middling one", "bad"]
    each = np.concatenate([text_models.predict_proba(model, tok, [t]) for t in texts])
    assert np.allclose(text_models.predict_proba(model, tok, texts, batch_size=2), each, atol=1e-5)  # order kept
    with pytest.raises(TypeError, match="list of strings"):
        text_models.predict_proba(model, tok, "great")


def test_fine_tune_trains_and_keeps_best(rt):
    rec = text_models.recipe(smoke=True, **TINY, seed=1)
    tok, trainer = text_models.fine_tune(rt, rec, progress=False)
    logs = trainer.state.log_history
    assert any("eval_accuracy" in r and "eval_f1" in r for r in logs) and trainer.train_seconds > 0
    assert trainer.state.best_metric is not None and not trainer.model.training
    assert trainer.args.report_to in ([], "none", ["none"]) and not trainer.args.push_to_hub


def test_make_trainer_settings(rt, tok_model, tmp_path):
    tok, model = tok_model
    data = text_models.tokenize(rt["train"].select(range(8)), tok, 16).remove_columns(["text", "movie"])
    tr = text_models.make_trainer(model, tok, data, data, text_models.recipe(smoke=True), tmp_path, progress=False)
    assert tr.args.load_best_model_at_end and tr.args.metric_for_best_model == "accuracy"
    assert tr.args.eval_strategy == "epoch" and tr.args.save_only_model
    assert tr.args.train_sampling_strategy == "group_by_length"
    fixed = text_models.make_trainer(model, tok, data, None, text_models.recipe(smoke=True), tmp_path, progress=False)
    assert (
        fixed.args.eval_strategy == "no" and fixed.args.save_strategy == "no" and not fixed.args.load_best_model_at_end
    )


def test_save_reload_pipeline_same_predictions(tok_model, tmp_path):
    tok, model = tok_model
    path = text_models.save_model(model, tok, tmp_path / "clf")
    assert (path / "model.safetensors").is_file() and not list(tmp_path.glob(".clf.*"))
    text_models.save_model(model, tok, path)  # overwriting works
    texts = ["a triumph", "a dull, lifeless mess"]
    pipe = text_models.load_pipeline(path)
    got = pipe(texts, top_k=None)
    probs = text_models.predict_proba(model, tok, texts)
    for row, p in zip(got, probs, strict=True):
        by_label = {d["label"]: d["score"] for d in row}
        assert by_label["positive"] == pytest.approx(p[1], abs=1e-4)
    tok2, model2 = text_models.load_classifier(path)
    assert np.allclose(text_models.predict_proba(model2, tok2, texts), probs, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="save_model"):
        text_models.load_pipeline(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="save_model"):
        text_models.load_classifier(tmp_path / "nothing")
    (path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")  # damaged header
    for load in (text_models.load_classifier, text_models.load_pipeline):
        with pytest.raises(RuntimeError, match=r"saved model at .*clf is damaged .*delete that folder"):
            load(path)
    (path / "config.json").write_text("{broken")
    with pytest.raises(RuntimeError, match="is damaged"):
        text_models.load_classifier(path)


def test_cache_key_depends_on_settings_and_mode(monkeypatch):
    monkeypatch.delenv("TLCOURSE_SMOKE", raising=False)
    a = text_models.cache_key(text_models.recipe(smoke=False))
    assert a != text_models.cache_key(text_models.recipe(smoke=False, lr=1e-4))
    assert a == text_models.cache_key(text_models.recipe(smoke=False))
    monkeypatch.setenv("TLCOURSE_SMOKE", "1")
    assert text_models.cache_key(text_models.recipe(smoke=False)) != a
    assert text_models.cache_key(text_models.Recipe(name="bert-base-uncased")).startswith("bert-base-uncased-")


def test_sentiment_model_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "data_dir", lambda: tmp_path)
    rec = text_models.recipe(smoke=True, **TINY)
    calls = []
    real = text_models.fine_tune
    monkeypatch.setattr(text_models, "fine_tune", lambda *a, **k: calls.append(1) or real(*a, **k))
    tok, model = text_models.sentiment_model(rec, progress=False)
    assert (tmp_path / "models" / text_models.cache_key(rec) / "model.safetensors").is_file()
    tok2, model2 = text_models.sentiment_model(rec)
    assert len(calls) == 1 and not model2.training
    assert torch.equal(model.classifier.weight, model2.classifier.weight)


def test_cache_path_is_under_data_dir_models():
    rec = text_models.recipe(smoke=False)
    assert text_models.cache_path(rec) == config.data_dir() / "models" / text_models.cache_key(rec)
    assert text_models.cache_path() == text_models.cache_path(text_models.recipe())


def test_step_seconds_leaves_model_untouched(tok_model):
    tok, model = tok_model
    before = model.classifier.weight.detach().clone()
    s = costs.step_seconds(model, tok, ["good", "bad film"], max_length=8, repeats=1, fixed_padding=True)
    assert 0 < s < 60 and torch.equal(model.classifier.weight, before)
    for p in model.parameters():
        p.requires_grad = False
    with pytest.raises(ValueError, match="no trainable parameters"):
        costs.step_seconds(model, tok, ["good"])
    for p in model.parameters():
        p.requires_grad = True


def test_fine_tuned_bf16_model_predicts_like_its_reloaded_copy(rt, tmp_path):
    rec = text_models.recipe(smoke=True, **{**TINY, "bf16": True})
    tok, trainer = text_models.fine_tune(rt, rec, progress=False)
    assert "_original_forward" not in trainer.model.__dict__  # the autocast wrapper is gone
    texts = ["a triumph", "a dull, lifeless mess", "fine"]
    tok2, model2 = text_models.load_classifier(text_models.save_model(trainer.model, tok, tmp_path / "m"))
    assert np.allclose(
        text_models.predict_proba(trainer.model, tok, texts), text_models.predict_proba(model2, tok2, texts), atol=1e-5
    )
