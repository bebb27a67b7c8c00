"""Mistakes a learner makes with the public functions get one line saying what was wrong and what to pass."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import features, models, text_baselines, text_models, train


def test_probe_mismatched_lengths_one_class_and_wrong_shape():
    x, y = np.random.default_rng(0).normal(size=(10, 4)), np.arange(10) % 2
    with pytest.raises(ValueError, match="training: 10 examples but 9 labels"):
        features.probe_accuracy(x, y[:9], x, y)
    with pytest.raises(ValueError, match="test: 10 examples but 3 labels"):
        features.probe_accuracy(x, y, x, y[:3])
    with pytest.raises(ValueError, match="every label is 1; a classifier needs examples of at least 2 classes"):
        features.probe_accuracy(x, np.ones(10, int), x, y)
    with pytest.raises(ValueError, match=r"2-D array \[N,D\]"):
        features.logistic_probe(x[:, :, None], y)
    with pytest.raises(ValueError, match="every label is 0"):
        text_baselines.logistic_probe(x, np.zeros(10, int))


def test_tfidf_empty_none_and_tiny():
    with pytest.raises(ValueError, match="training: no examples"):
        text_baselines.tfidf_baseline([], [])
    with pytest.raises(TypeError, match=r"1 of 3 entries are not strings \(first: index 1, None\)"):
        text_baselines.tfidf_baseline(["good", None, "bad"], [1, 0, 0])
    with pytest.raises(TypeError, match="wrap a single sentence"):
        text_baselines.tfidf_baseline("good film", [1])
    clf = text_baselines.tfidf_baseline(["good film", "bad film", "good plot", "bad plot"], [1, 0, 1, 0])
    assert clf.predict(["good"]).tolist() == [1]  # four texts are enough (words seen once still count)


def test_none_in_texts_for_the_model_helpers():
    with pytest.raises(TypeError, match="entries are not strings"):
        text_models.predict_proba(None, None, ["fine", float("nan")])
    with pytest.raises(TypeError, match="entries are not strings"):
        text_baselines.embed(["fine", None], None, None, progress=False)


def test_fit_and_predict_refuse_batches_that_are_not_pairs():
    three = DataLoader(TensorDataset(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(4)), batch_size=2)
    with pytest.raises(ValueError, match=r"expected batches \(x, y\) .* got a batch of 3 items"):
        train.fit(nn.Linear(3, 2), three, progress=False, device="cpu")
    with pytest.raises(ValueError, match="got a batch of 3 items"):
        train.predict(nn.Linear(3, 2), three)
    only_x = DataLoader(torch.zeros(4, 3), batch_size=2)  # a plain tensor dataset: batches are tensors
    with pytest.raises(ValueError, match="got a Tensor"):
        train.predict(nn.Linear(3, 2), only_x)


def test_pooled_stages_wants_three_channel_batches():
    torch.manual_seed(0)
    model = models.load_efficientnet("lite0", pretrained=False).eval()
    for channels in (1, 2):
        with pytest.raises(ValueError, match=r"expected a batch \[B,3,H,W\] .*models.to_lite_input"):
            features.pooled_stages(model, torch.zeros(2, channels, 32, 32), ["block1"])
    with pytest.raises(ValueError, match=r"\[B,3,H,W\]"):
        features.pooled_stages(model, torch.zeros(3, 32, 32), ["block1"])
