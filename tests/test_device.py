"""One device flow: every helper that takes a model computes where the model's weights live, and training and loading
default to `config.get_device()` (Colab's GPU).

A CPU-only machine has a second device for this: PyTorch's `meta` device, whose tensors have shapes but no data. Any op
that mixes a meta tensor with a CPU tensor raises "... is not on the expected device ...", exactly as CUDA and CPU
tensors do in Colab. A correct helper gets further: it computes on meta and fails only when it reads a result back
(`.cpu()`, `.item()`: "Cannot copy out of meta tensor"). So each test puts the model on meta (or makes meta the default
device) and asserts the call fails only in that read-back, never with a device mismatch, and never by moving the model.
"""

from __future__ import annotations

import traceback

import numpy as np
import pytest
import torch
from tiny_models import tiny_bert
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import (
    checkpoints,
    config,
    costs,
    dann,
    domains,
    features,
    forgetting,
    lpft,
    models,
    text_baselines,
    text_models,
    train,
)

META = torch.device("meta")
EITHER = {"returned", "read back"}  # no mismatch either way; whether it reads a value back does not matter here
MISMATCH = ("expected device", "same device", "Expected all tensors")


def computes_on_model_device(call) -> str:
    """Run call(); return how it ended ("returned" or "read back") or fail the test on a device mismatch.

    "read back": it ran on the meta device and stopped where it copied a result out, as a correct helper must.
    """
    try:
        call()
    except (RuntimeError, NotImplementedError) as e:
        msg = str(e)
        if any(s in msg for s in MISMATCH):
            pytest.fail(f"device mismatch: a tensor on another device than the model's: {msg.splitlines()[0]}")
        if "meta" not in msg.lower():
            raise
        frames = [f.name for f in traceback.extract_tb(e.__traceback__)]
        if "_apply" in frames:  # Module.to(...) copying the weights out of meta: the helper moved the model elsewhere
            pytest.fail("the helper moved the model off its device (Module.to), instead of using the model's device")
        return "read back"
    return "returned"


@pytest.fixture
def meta_default(monkeypatch):
    """config.get_device() answers `meta`, as it answers `cuda` in Colab."""
    monkeypatch.setattr(config, "get_device", lambda *a, **k: META)


def lite0(pretrained=False):
    torch.manual_seed(0)
    return models.load_efficientnet("lite0", pretrained=pretrained).eval()


def loader(x, y, batch_size=4):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


IMAGES = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)  # [N,H,W] uint8 like Fashion-MNIST


def test_the_meta_trick_catches_a_mismatch_and_lets_a_correct_call_through():
    head = nn.Linear(3, 2).to(META)
    with pytest.raises(pytest.fail.Exception, match="device mismatch"):
        computes_on_model_device(lambda: head(torch.zeros(1, 3)))  # a CPU input into a model on another device
    assert computes_on_model_device(lambda: head(torch.zeros(1, 3, device=META)).cpu()) == "read back"
    with pytest.raises(pytest.fail.Exception, match="moved the model"):
        computes_on_model_device(lambda: head.to("cpu"))


def test_predict_evaluate_and_batchnorm_use_the_models_device():
    net = domains.digit_cnn().to(META)
    data = loader(torch.zeros(8, 3, 28, 28), torch.zeros(8, dtype=torch.long))
    assert computes_on_model_device(lambda: train.predict(net, data)) == "read back"
    assert computes_on_model_device(lambda: train.evaluate(net, data)) == "read back"
    assert computes_on_model_device(lambda: train.reestimate_batchnorm(net, data)) in EITHER
    assert computes_on_model_device(lambda: domains.encode(net.encoder, torch.zeros(5, 3, 28, 28))) == "read back"


def test_fit_and_dann_train_on_get_device(meta_default):
    net, disc = domains.digit_cnn().to(META), dann.DomainDiscriminator(domains.FEATURE_DIM).to(META)
    src = loader(torch.zeros(8, 3, 28, 28), torch.zeros(8, dtype=torch.long))
    tgt = loader(torch.zeros(8, 3, 28, 28), torch.zeros(8, dtype=torch.long))
    assert computes_on_model_device(lambda: train.fit(net, src, progress=False)) == "read back"
    assert (
        computes_on_model_device(lambda: dann.train_dann(net, disc, src, tgt, epochs=1, progress=False)) == "read back"
    )


def test_feature_extraction_runs_on_the_backbones_device():
    backbone = lite0().to(META)
    stages = ["block1", "block3"]
    assert (
        computes_on_model_device(lambda: features.extract_features(backbone, IMAGES, stages, progress=False))
        == "read back"
    )
    assert computes_on_model_device(lambda: features.reestimate_batchnorm(backbone, IMAGES)) in EITHER
    assert computes_on_model_device(lambda: features.FrozenBackboneClassifier(backbone, stages, 10)) == "returned"
    clf = features.FrozenBackboneClassifier(backbone, stages, 10)
    assert {p.device for p in clf.parameters()} == {META}  # the new head joins the backbone
    assert computes_on_model_device(lambda: models.topk(backbone, [IMAGES[0]], size=32)) == "read back"
    x = forgetting.photo_batch([np.zeros((40, 30, 3), np.uint8)] * 2, size=64)
    assert computes_on_model_device(lambda: forgetting.stage_features(backbone, x)) == "read back"


def test_loading_puts_models_on_get_device(meta_default, tmp_path):
    assert {p.device for p in features.load_backbone("lite0", pretrained=False).parameters()} == {META}
    saved = checkpoints.save_model(lite0(), tmp_path / "m.safetensors")
    assert {p.device for p in checkpoints.load_model(saved, num_classes=1000).parameters()} == {META}


def test_cached_features_extract_on_get_device(meta_default, tmp_path):
    """Extraction goes to the default device (a GPU in Colab); the CPU-only code returned features without asking."""
    idx = np.arange(4)
    call = lambda: features.cached_features("fashion_mnist", "test", idx, stages=["block1"], pretrained=False,  # noqa: E731
                                            cache_dir=tmp_path, progress=False)  # fmt: skip
    assert computes_on_model_device(call) == "read back"


def test_probe_network_lives_with_its_backbone():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    dim = 24 + 80  # block1 + block3 widths of Lite0
    rng = np.random.default_rng(0)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=50)).fit(rng.normal(size=(20, dim)),
                                                                                 np.arange(20) % 10)  # fmt: skip
    net = lpft.ProbeNetwork(lite0(pretrained=False).to(META), probe, ("block1", "block3"))
    assert {t.device for t in [*net.parameters(), *net.buffers()]} == {META}


def test_text_helpers_use_the_models_device():
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film"]
    tmp = __import__("tempfile").mkdtemp()
    (__import__("pathlib").Path(tmp) / "vocab.txt").write_text("\n".join(vocab))
    tok = BertTokenizerFast(vocab_file=f"{tmp}/vocab.txt")
    model = tiny_bert(vocab_size=len(vocab)).to(META)
    texts = ["a good film", "a bad film"]
    assert computes_on_model_device(lambda: text_models.predict_proba(model, tok, texts)) == "read back"
    assert computes_on_model_device(lambda: text_baselines.embed(texts, tok, model, progress=False)) == "read back"
    assert computes_on_model_device(lambda: costs.step_seconds(model, tok, texts, repeats=1, bf16=False)) in EITHER


def test_saved_text_models_load_on_get_device(meta_default, tmp_path):
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    tok = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    path = text_models.save_model(tiny_bert(vocab_size=len(vocab)), tok, tmp_path / "saved")
    _, model = text_models.load_classifier(path)
    assert model.device == META
    assert text_models.load_pipeline(path).device == META
