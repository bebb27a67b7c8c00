"""Tests for tlcourse.features (and the check of exercise 1.2): tiny inputs, real (small) backbone passes."""

import numpy as np
import pytest
import torch

from tlcourse import features, models
from tlcourse.checks.lesson01 import check_nearest_centroid


@pytest.fixture(scope="module")
def backbone():
    return features.load_backbone("lite0", pretrained=True)


def blobs(n=120, k=3, d=5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(0, 0.5, (n, d)) + np.eye(k, d)[y] * 4
    return x.astype(np.float32), y.astype(np.int64)


def test_stage_names_and_pooled_shapes(backbone):
    names = features.stage_names(backbone)
    assert names[0] == "stem" and names[-1] == "head" and len(names) == 9
    out = features.pooled_stages(backbone, torch.zeros(2, 3, 32, 32), ["block1", "stem", "head"])
    assert {k: tuple(v.shape) for k, v in out.items()} == {"stem": (2, 32), "block1": (2, 24), "head": (2, 1280)}
    with pytest.raises(ValueError, match="unknown stages"):
        features.pooled_stages(backbone, torch.zeros(1, 3, 32, 32), ["block99"])


def test_pooled_stages_builds_a_graph_only_when_asked():
    model = models.load_efficientnet("lite0", pretrained=False)  # trainable weights
    x = torch.zeros(1, 3, 32, 32)
    assert not features.pooled_stages(model, x, ["block1"])["block1"].requires_grad  # feature extraction: no graph
    feats = features.pooled_stages(model, x, ["block1"], grad=True)["block1"]
    assert feats.requires_grad  # LP-FT trains the backbone through the pooled features
    with torch.no_grad():  # the caller's no_grad still wins (evaluation)
        assert not features.pooled_stages(model, x, ["block1"], grad=True)["block1"].requires_grad


def test_load_backbone_is_frozen_and_seeded():
    a = features.load_backbone(pretrained=False, seed=3)
    b = features.load_backbone(pretrained=False, seed=3)
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    assert torch.equal(a.conv_stem.weight, b.conv_stem.weight)
    assert not torch.equal(a.conv_stem.weight, features.load_backbone(pretrained=False, seed=4).conv_stem.weight)


def test_extract_features_batches_match_one_pass(backbone):
    imgs = np.random.default_rng(0).integers(0, 255, (5, 28, 28), dtype=np.uint8)
    a = features.extract_features(backbone, imgs, ["block2"], size=32, batch_size=2, progress=False)
    b = features.extract_features(backbone, imgs, ["block2"], size=32, batch_size=5, progress=False)
    assert a["block2"].shape == (5, 40) and a["block2"].dtype == np.float32
    np.testing.assert_allclose(a["block2"], b["block2"], atol=1e-4)


def test_feature_key_changes_with_everything():
    base = dict(dataset="fashion_mnist", split="test", indices=np.arange(4), variant="lite0", pretrained=True,
                seed=0, stage="block5", size=64)  # fmt: skip
    k0 = features.cache_path(features.feature_key(**base))
    for change in [dict(split="train"), dict(indices=np.arange(1, 5)), dict(indices=None), dict(pretrained=False),
                   dict(stage="block4"), dict(size=96), dict(variant="lite2"), dict(reestimate_bn=True)]:  # fmt: skip
        assert features.cache_path(features.feature_key(**{**base, **change})) != k0, change
    assert features.cache_path(features.feature_key(**base)) == k0


def test_cached_features_caches_and_never_serves_stale(tmp_path, monkeypatch):
    idx = np.array([0, 3, 7])
    kw = dict(stages=["block0"], size=32, cache_dir=tmp_path, progress=False)
    first = features.cached_features("fashion_mnist", "test", idx, **kw)["block0"]
    assert first.shape == (3, 16) and len(list(tmp_path.glob("*.safetensors"))) == 1
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file

    def boom(*a, **k):
        raise AssertionError("extracted again although cached")

    monkeypatch.setattr(features, "extract_features", boom)
    np.testing.assert_array_equal(features.cached_features("fashion_mnist", "test", idx, **kw)["block0"], first)
    monkeypatch.undo()
    other = features.cached_features("fashion_mnist", "test", np.array([0, 3, 8]), **kw)["block0"]
    assert not np.allclose(other[2], first[2])  # a different subset is a different key, not the old file
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    # a file whose stored key does not match is recomputed, not trusted
    path = features.cache_path(
        features.feature_key("fashion_mnist", "test", idx, "lite0", True, 0, "block0", 32), tmp_path
    )
    features._save(path, {"something": "else"}, np.zeros((3, 16), np.float32))
    again = features.cached_features("fashion_mnist", "test", idx, **kw)["block0"]
    np.testing.assert_allclose(again, first, atol=1e-5)
    with pytest.raises(ValueError, match="unknown dataset"):
        features.cached_features("imagenet", "test", idx, **kw)


def test_pixels_and_probes():
    imgs = np.full((2, 3, 3), 255, np.uint8)
    p = features.pixels(imgs)
    assert p.shape == (2, 9) and p.max() == 1.0
    x, y = blobs()
    assert features.probe_accuracy(x[:60], y[:60], x[60:], y[60:]) > 0.95
    assert features.probe_accuracy(x[:60], y[:60], x[60:], (y[60:] + 1) % 3) < 0.1  # the score must be able to fail
    assert hasattr(features.logistic_probe(x, y), "predict_proba")


def test_stack_stages_concatenates_in_order():
    f = {"a": np.ones((4, 2), np.float32), "b": np.zeros((4, 3), np.float32)}
    out = features.stack_stages(f, ["b", "a"])
    assert out.shape == (4, 5) and out[:, :3].sum() == 0 and out[:, 3:].sum() == 8
    with pytest.raises(ValueError, match="not in the features"):
        features.stack_stages(f, ["c"])


def test_choose_c_picks_best_validation_accuracy(monkeypatch):
    x, y = blobs()
    best, scores = features.choose_C(x[:60], y[:60], x[60:], y[60:], grid=(1.0, 0.1))
    assert list(scores) == [0.1, 1.0] and scores[best] == max(scores.values()) > 0.95
    fake = {0.01: 0.5, 0.1: 0.8, 1.0: 0.8}
    monkeypatch.setattr(features, "probe_accuracy", lambda *a, C: fake[C])
    assert features.choose_C(x, y, x, y, grid=(1.0, 0.01, 0.1)) == (0.1, fake)  # best, ties to the smaller C
    with pytest.raises(ValueError, match="grid is empty"):
        features.choose_C(x, y, x, y, grid=())


def test_train_linear_head_learns():
    x, y = blobs(300, k=4, d=8)
    head, hist = features.train_linear_head(x[:200], y[:200], x[200:], y[200:], epochs=30, lr=0.05, progress=False)
    assert len(hist["val_acc"]) == 30 and hist["val_acc"][-1] > 0.9
    assert isinstance(head[0], features.Standardize) and not head.training


def test_frozen_backbone_classifier_only_trains_head(backbone):
    clf = features.FrozenBackboneClassifier(backbone, "block2", 10)
    clf.train()
    assert clf.training and not clf.backbone.training
    logits = clf(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert clf.head.weight.grad is not None and backbone.conv_stem.weight.grad is None
    two = features.FrozenBackboneClassifier(backbone, ["block1", "block2"], 10)
    assert two.head.in_features == 24 + 40 and two(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_data_efficiency_shape_and_custom_score():
    x, y = blobs(300)
    out = features.data_efficiency(x[:200], y[:200], x[200:], y[200:], shots=[2, 5], seeds=[0, 1])
    assert list(out) == [2, 5, "full"] and len(out[2]) == 2 and len(out["full"]) == 1
    calls = []
    out = features.data_efficiency(
        x[:200], y[:200], x[200:], y[200:], [3], [0], lambda a, b, c, d: calls.append(len(a)) or 0.5, full=False
    )
    assert out == {3: [0.5]} and calls == [9]


def _centroid(train_x, train_y, test_x, test_y):
    means = np.stack([train_x[train_y == c].mean(0) for c in np.unique(train_y)])
    return float((((test_x[:, None] - means[None]) ** 2).sum(-1).argmin(1) == test_y).mean())


def _stub(*args):
    raise NotImplementedError()


def test_check_nearest_centroid_verdicts(capsys):
    assert check_nearest_centroid(_centroid)
    assert not check_nearest_centroid(lambda *a: 1 - _centroid(*a))
    assert not check_nearest_centroid(lambda *a: "0.9")
    assert not check_nearest_centroid(_stub)
    out = capsys.readouterr().out
    assert out.count("✅") == 1 and out.count("❌") == 2 and out.count("⏳") == 1


def test_reestimate_batchnorm_uses_the_images_statistics_and_nothing_else():
    model = features.load_backbone("lite0", pretrained=False)  # stored statistics: mean 0, var 1
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    features.reestimate_batchnorm(model, images, size=32, batch_size=20)  # equal batches: the mean of batch means
    assert not model.training and model.bn1.momentum == 0.1  # left in eval mode, momentum restored
    x = models.to_lite_input(images, 32)  # [40,3,32,32]
    h = model.conv_stem(x)  # [40,32,16,16] the first BatchNorm's input
    torch.testing.assert_close(model.bn1.running_mean, h.mean((0, 2, 3)), atol=1e-4, rtol=1e-4)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())  # weights untouched
    before = model.bn2.running_mean.clone()
    features.reestimate_batchnorm(model, images, size=32, layers=[model.bn1])  # only the layers asked for
    assert torch.equal(model.bn2.running_mean, before)
    with pytest.raises(ValueError, match="no images"):
        features.reestimate_batchnorm(model, images[:0], size=32)
    with pytest.raises(ValueError, match="no BatchNorm"):
        features.reestimate_batchnorm(torch.nn.Linear(2, 2), images, size=32)


def test_cached_features_with_reestimated_batchnorm_differ(tmp_path):
    idx = np.array([0, 3, 7, 9])
    kw = dict(stages=["block0"], size=32, cache_dir=tmp_path, progress=False, pretrained=False)
    plain = features.cached_features("fashion_mnist", "test", idx, **kw)["block0"]
    renorm = features.cached_features("fashion_mnist", "test", idx, reestimate_bn=True, **kw)["block0"]
    assert plain.shape == renorm.shape and not np.allclose(plain, renorm)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2  # two keys, two files


def test_probe_predictions_and_curve_rows_pair_by_seed():
    x, y = blobs(n=300, k=3)
    pred = features.probe_predictions(x[:150], y[:150], x[150:], C=0.1)
    assert pred.shape == (150,) and (pred == y[150:]).mean() > 0.9
    curve = features.probe_curve(x[:150], y[:150], x[150:], shots=[2, 5], seeds=[0, 1, 2], C=0.1)
    assert set(curve) == {2, 5, "full"} and curve[2].shape == (3, 150) and curve["full"].shape == (1, 150)
    again = features.probe_curve(x[:150], y[:150], x[150:], shots=[2], seeds=[0, 1, 2], C=0.1, full=False)
    np.testing.assert_array_equal(again[2], curve[2])  # same seed, same labelled subset, same predictions
    acc = features.data_efficiency(x[:150], y[:150], x[150:], y[150:], [5], [1], full=False)
    assert acc[5][0] == pytest.approx((curve[5][1] == y[150:]).mean())  # row 1 is seed 1
