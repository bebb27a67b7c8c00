"""Lesson 06's sources, targets and ranking helpers: real networks on tiny inputs, synthetic accuracies, fake MedMNIST."""

import sys
import types

import numpy as np
import pytest
import torch

from tlcourse import features, models, ranking, sources, targets

TINY = np.random.default_rng(0).integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)


# ---- sources ----------------------------------------------------------------------------------------------------------


def test_lite_inputs_become_torchvision_normalisation():
    x = models.to_lite_input(TINY, 20)  # (x - 127) / 128
    want = torch.as_tensor(TINY).permute(0, 3, 1, 2).float() / 255 - torch.tensor(sources.IMAGENET_MEAN).view(
        1, 3, 1, 1
    )
    want = want / torch.tensor(sources.IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(sources.LiteToImageNet()(x), want, atol=1e-5)


@pytest.mark.parametrize("name", list(sources.SOURCES))
def test_every_source_gives_1280_features_and_imagenet_logits(name):
    src = sources.load_source(name, device="cpu")
    out = sources.outputs(src, TINY, 32, progress=False)
    assert out["features"].shape == (3, 1280) and out["logits"].shape == (3, 1000)
    assert np.isfinite(out["features"]).all() and not any(p.requires_grad for p in src.backbone.parameters())


def test_mobilenet_v2_weights_see_the_coffee_photo():
    from tlcourse import data

    coffee = data.photos(["coffee"])["coffee"][None]
    logits = sources.outputs(sources.load_source("mobilenet_v2", device="cpu"), coffee, 224, progress=False)["logits"]
    p = torch.tensor(logits).softmax(-1)[0]
    assert models.imagenet_classes()[int(p.argmax())] == "espresso" and float(p.max()) > 0.9


def test_unknown_source_is_one_line():
    with pytest.raises(ValueError, match="unknown source 'resnet'; choose from"):
        sources.load_source("resnet")


def test_cached_outputs_extract_once_keep_their_seconds_and_notice_new_images(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "data_dir", lambda: tmp_path)
    first, seconds, cached = sources.cached_outputs("lite0", "tiny", TINY, 32, progress=False)
    assert not cached and seconds > 0 and len(list((tmp_path / "features").glob("tiny-lite0-*.safetensors"))) == 1
    again, seconds_again, cached_again = sources.cached_outputs("lite0", "tiny", TINY, 32, progress=False)
    assert cached_again and seconds_again == pytest.approx(seconds, abs=1e-3)
    assert np.array_equal(first["features"], again["features"]) and np.array_equal(first["logits"], again["logits"])
    changed = TINY.copy()
    changed[0, 0, 0] ^= 1
    assert not sources.cached_outputs("lite0", "tiny", changed, 32, progress=False)[2]  # another image: extracted


def test_fine_tune_trains_a_new_head_and_refuses_the_random_init():
    y = np.arange(8) % 2
    x = np.random.default_rng(1).integers(0, 256, (8, 16, 16), dtype=np.uint8)
    model, hist = sources.fine_tune("mobilenet_v2", (x, y), size=32, epochs=1, batch_size=4, progress=False)
    assert len(hist["train_loss"]) == 1 and sources.predict_images(model, x, 32).shape == (8,)
    with pytest.raises(ValueError, match="random init needs another recipe"):
        sources.fine_tune("random", (x, y))


# ---- targets ----------------------------------------------------------------------------------------------------------


def test_split_is_class_balanced_disjoint_complete_and_seeded():
    labels = np.repeat(np.arange(3), [10, 6, 8])
    train, val, test = targets.split(labels, 3, 2, seed=4)
    assert [np.bincount(labels[p], minlength=3).tolist() for p in (train, val)] == [[3, 3, 3], [2, 2, 2]]
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(labels)))
    assert all(
        np.array_equal(a, b) for a, b in zip((train, val, test), targets.split(labels, 3, 2, seed=4), strict=True)
    )
    assert not np.array_equal(train, targets.split(labels, 3, 2, seed=5)[0])
    with pytest.raises(ValueError, match="class 1 has 6 images: too few for 4 train \\+ 2 val \\+ 1 test"):
        targets.split(labels, 4, 2)


def test_cut_outs_are_composited_on_white_and_kept_square():
    from PIL import Image

    rgba = Image.new("RGBA", (40, 20), (255, 0, 0, 0))  # fully transparent red
    rgba.paste((0, 0, 255, 255), (10, 5, 30, 15))  # an opaque blue box
    img = targets.on_white(rgba, size=20)
    assert img.shape == (20, 20, 3) and (img[0, 0] == 255).all() and img[10, 10, 2] > 200 and img[10, 10, 0] < 50


def test_the_lessons_targets_load_with_their_classes():
    textile, tux = targets.load_target("textile"), targets.load_target("tuxpaint")
    assert textile.images.shape == (600, 250, 250) and np.bincount(textile.labels).tolist() == [200, 200, 200]
    assert tux.images.shape[1:] == (160, 160, 3) and len(tux) == 187 and tux.classes[2] == "insects"
    assert np.bincount(tux.labels).tolist() == [35, 64, 9, 11, 26, 18, 24]
    small = tux.subset(5, seed=1)
    assert len(small) == 35 and small.classes == tux.classes
    with pytest.raises(ValueError, match="unknown target 'imagenet'"):
        targets.load_target("imagenet")


def test_medmnist_offline_is_one_line_and_online_gives_a_target(monkeypatch):
    monkeypatch.setitem(sys.modules, "medmnist", None)  # not installed
    with pytest.raises(RuntimeError, match="not installed — no labelled medical image set ships") as info:
        targets.medmnist()
    assert "\n" not in str(info.value)

    class FakePath:  # what medmnist.PathMNIST(split=..., download=True) gives: imgs [N,28,28,3], labels [N,1]
        def __init__(self, split, download):
            self.imgs = np.zeros((30, 28, 28, 3), np.uint8)
            self.labels = (np.arange(30) % 3)[:, None]

    fake = types.SimpleNamespace(INFO={"pathmnist": {"task": "multi-class", "python_class": "PathMNIST",
                                                     "label": {"0": "a", "1": "b", "2": "c"}, "license": "CC BY 4.0"},
                                       "chestmnist": {"task": "multi-label, binary-class"}}, PathMNIST=FakePath)  # fmt: skip
    monkeypatch.setitem(sys.modules, "medmnist", fake)
    med = targets.medmnist("pathmnist", n_per_class=4)
    assert len(med) == 12 and med.classes == ["a", "b", "c"] and med.images.shape == (12, 28, 28, 3)
    with pytest.raises(ValueError, match="not a single-label 2-D MedMNIST set; choose from \\['pathmnist'\\]"):
        targets.medmnist("chestmnist")

    def offline(split, download):
        raise OSError("no network")

    fake.PathMNIST = offline
    with pytest.raises(RuntimeError, match="could not be loaded \\(OSError: no network\\)"):
        targets.medmnist("pathmnist")


# ---- ranking ----------------------------------------------------------------------------------------------------------


def blobs(n=60, d=300, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return rng.normal(0, 1, (k, d))[y] * 0.5 + rng.normal(0, 1, (n, d)), y


def test_span_probe_is_the_scaled_logistic_probe():
    x, y = blobs()
    test_x, test_y = blobs(seed=1)
    for C in (0.01, 0.1):
        span = ranking.SpanProbe(x[:30], y[:30], C)
        full = features.probe_predictions(x[:30], y[:30], test_x, C)
        assert (span.predict(test_x) == full).mean() >= 0.98 and span.basis.shape == (29, 300)  # centred: rank N − 1
        assert span.at(C).score(test_x, test_y) == span.score(test_x, test_y)


def test_probe_ground_truth_chooses_c_on_validation_and_tests_every_subset():
    x, y = blobs(90)
    splits = [targets.split(y, 10, 5, seed=s) for s in range(3)]
    res = ranking.probe_ground_truth(x, y, splits, grid=(0.01, 1.0))
    assert len(res.C) == 3 and all(c in (0.01, 1.0) for c in res.C)
    assert all(v[c] == max(v.values()) for c, v in zip(res.C, res.val_by_C, strict=True))  # each on its own validation
    assert len(res.test_acc) == 3 and all(
        len(p) == len(te) for p, (_, _, te) in zip(res.test_pred, splits, strict=True)
    )
    assert res.mean == pytest.approx(np.mean(res.test_acc)) and res.seconds > 0


ACCS = {"a": [0.90, 0.91, 0.92, 0.90], "b": [0.80, 0.82, 0.81, 0.80], "c": [0.89, 0.92, 0.91, 0.90]}


def test_within_noise_kendall_and_resolved_pairs():
    top = ranking.within_noise(ACCS)
    assert top.best == "a" and set(top.tied) == {"a", "c"} and top.comparisons["b"].verdict == "a beats b"
    assert ranking.kendall_tau({"a": 3, "b": 1, "c": 2}, {s: np.mean(v) for s, v in ACCS.items()}) == pytest.approx(1.0)
    assert ranking.resolved_pairs({"a": 3, "b": 1, "c": 2}, ACCS) == (2, 2)  # a>b and c>b resolved; a vs c a tie
    assert ranking.resolved_pairs({"a": 1, "b": 3, "c": 2}, ACCS) == (0, 2)
    assert ranking.pick_rate({"a": [1, 0, 0, 0], "b": [0, 1, 0, 0], "c": [0, 0, 1, 1]}, top) == (3, 4)
    with pytest.raises(ValueError, match="same ≥ 2 sources"):
        ranking.kendall_tau({"a": 1}, {"a": 1, "b": 2})


def test_agreement_rows():
    values = {s: {"good": [v + 1 for v in a], "bad": [-v for v in a]} for s, a in ACCS.items()}
    rows = ranking.agreement(ACCS, values, floor="b")
    assert rows["good"]["τ"] == pytest.approx(1.0) and rows["good"]["pick ok"] and rows["good"]["b last"]
    assert rows["bad"]["pick"] == "b" and not rows["bad"]["pick ok"] and rows["bad"]["subset picks ok"] == 0
    assert (rows["good"]["pairs in order"], rows["good"]["pairs resolved"]) == (2, 2)


def test_fine_tune_ground_truth_chooses_the_rate_on_validation():
    x = np.random.default_rng(2).integers(0, 256, (24, 16, 16), dtype=np.uint8)
    y = np.arange(24) % 2
    splits = [targets.split(y, 3, 2, seed=s) for s in range(2)]
    res = ranking.fine_tune_ground_truth("lite0", x, y, splits, lrs=(1e-4, 3e-4), size=32, epochs=1, progress=False)
    assert res.lr in (1e-4, 3e-4) and res.val_by_lr[res.lr] == max(res.val_by_lr.values())
    assert len(res.test_acc) == 2 and len(res.train_seconds) == 3  # two rates on the first subset, one on the second


def test_within_noise_adjusts_for_comparing_the_best_with_every_other_source():
    accs = {"a": [0.90, 0.91, 0.92], "b": [0.85, 0.87, 0.84], "c": [0.89, 0.90, 0.93]}
    from tlcourse import stats

    assert stats.compare_scores(accs["a"], accs["b"]).verdict == "A beats B"  # alone, at 95%: a "win"
    top = ranking.within_noise(accs)  # a vs b and a vs c: each at 97.5%, 95% together
    assert [c.level for c in top.comparisons.values()] == pytest.approx([0.975, 0.975]) and top.level == 0.95
    assert (
        top.ok("b")
        and "97.5% CI" in str(top.comparisons["b"])
        and "2 comparisons" in top.family()
        and top.comparisons["b"].p == pytest.approx(min(1, 2 * stats.compare_scores(accs["a"], accs["b"]).p))
    )
    assert ranking.within_noise({"a": [0.9, 0.91], "b": [0.5, 0.52]}).comparisons["b"].level == 0.95  # one: as is
    assert ranking.bonferroni(0.95, 4) == pytest.approx(0.9875) and ranking.bonferroni(0.95, 0) == 0.95
    twins = {"a": accs["a"], "b": accs["b"], "c": [0.91, 0.90, 0.92]}  # a − b: p = 0.04 alone
    assert ranking.resolved_pairs({"a": 3, "b": 1, "c": 2}, twins) == (0, 0)  # 3 pairs: each at 98.33%, none resolved


def test_chance_of_hits_is_the_binomial_tail_and_handles_unequal_chances():
    from scipy import stats as st

    assert ranking.chance_of_hits([0.6] * 5, 4) == pytest.approx(st.binom.sf(3, 5, 0.6))
    assert ranking.chance_of_hits([0.8, 0.2], 2) == pytest.approx(0.16)
    assert ranking.chance_of_hits([0.8, 0.2], 1) == pytest.approx(1 - 0.2 * 0.8)
    assert ranking.chance_of_hits([0.5, 0.5], 0) == 1.0
    with pytest.raises(ValueError, match="hits in 0..2"):
        ranking.chance_of_hits([0.5, 0.5], 3)
