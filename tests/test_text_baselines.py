import numpy as np
import pytest
import torch

from tlcourse import text_baselines as tb
from tlcourse.models import load_minilm


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def test_majority_baseline():
    assert tb.majority_baseline([1, 0, 1], 4).tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="empty"):
        tb.majority_baseline([], 2)


def test_tfidf_baseline_learns_words():
    texts = ["great film", "wonderful great acting", "awful plot", "boring awful film", "great fun", "awful mess"] * 3
    labels = [1, 1, 0, 0, 1, 0] * 3
    clf = tb.tfidf_baseline(texts, labels)
    assert clf.predict(["great great", "awful awful"]).tolist() == [1, 0]


def test_mean_pool_ignores_padding():
    hidden = torch.arange(12.0).reshape(1, 4, 3)  # [B,T,H]
    out = tb.mean_pool(hidden, torch.tensor([[1, 1, 0, 0]]))
    assert torch.allclose(out, hidden[0, :2].mean(0, keepdim=True))


def test_embed_is_eval_mode_order_preserving_and_normalised(minilm):
    tok, enc = minilm
    enc.train()
    texts = ["a long and winding road of a movie", "great", "not good at all"]
    x = tb.embed(texts, tok, enc, batch_size=2, progress=False)
    assert x.shape == (3, 384) and not enc.training
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    one = tb.embed([texts[2]], tok, enc, progress=False)
    assert np.allclose(one[0], x[2], atol=1e-4)  # same vector whatever the batch and its padding
    with pytest.raises(TypeError, match="list of strings"):
        tb.embed("great", tok, enc)


def test_logistic_probe():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = (x[:, 0] > 0).astype(int)
    assert (tb.logistic_probe(x, y).predict(x) == y).mean() > 0.9
    with pytest.raises(ValueError, match="2-D"):
        tb.logistic_probe(x[:, 0], y)
