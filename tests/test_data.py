import numpy as np
import pytest

from tlcourse import data, text_data


def test_fashion_mnist_shapes():
    x, y = data.fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [1000] * 10 and len(data.FASHION_CLASSES) == 10
    with pytest.raises(ValueError, match="unknown split 'val'"):
        data.fashion_mnist("val")


def test_idx_reader_rejects_garbage(tmp_path):
    import gzip

    p = tmp_path / "bad.gz"
    p.write_bytes(gzip.compress(b"not an idx file"))
    with pytest.raises(Exception, match="is not an idx file"):
        data._read_idx(p)


def test_small_digit_sets():
    x, y = data.mnist5000()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8 and np.bincount(y).tolist() == [500] * 10
    x, y = data.uci_digits()
    assert x.shape == (1797, 8, 8) and x.max() == 16 and set(y.tolist()) == set(range(10))


def test_photos():
    p = data.photos(["coffee", "grass"])
    assert list(p) == ["coffee", "grass"] and p["coffee"].shape == (400, 600, 3) and p["grass"].shape[-1] == 3
    with pytest.raises(ValueError, match="unknown photo 'dog'"):
        data.photos(["dog"])


def test_per_class_indices_is_seeded_and_balanced():
    y = np.repeat(np.arange(3), 10)
    a = data.per_class_indices(y, 4, seed=1)
    assert np.array_equal(a, data.per_class_indices(y, 4, seed=1)) and np.bincount(y[a]).tolist() == [4, 4, 4]
    assert not np.array_equal(a, data.per_class_indices(y, 4, seed=2))
    with pytest.raises(ValueError, match="has only 10 examples"):
        data.per_class_indices(y, 11)


def test_train_val_split_and_tensor_dataset():
    tr, va = data.train_val_split(100, 0.2, seed=0)
    assert len(tr) == 80 and len(va) == 20 and not set(tr) & set(va)
    ds = data.tensor_dataset(np.zeros((3, 2)), [0, 1, 1])
    assert len(ds) == 3 and ds[0][0].dtype.is_floating_point
    with pytest.raises(ValueError, match="differ in length"):
        data.tensor_dataset(np.zeros((3, 2)), [0, 1])


def test_rotten_tomatoes_split_by_movie():
    rt = text_data.rotten_tomatoes()
    sizes = {k: len(v) for k, v in rt.items()}
    assert sizes == {"test": 2591, "validation": 1237, "train": 8924}
    movies = {k: set(v["movie"]) for k, v in rt.items()}
    assert not movies["train"] & movies["test"] and not movies["train"] & movies["validation"]
    assert rt["train"].features["label"].names == ["negative", "positive"]
    assert len(set(rt["train"]["text"]) & set(rt["test"]["text"])) == 0


def test_drug_reviews_and_uci_sentences():
    dr = text_data.drug_reviews()
    assert len(dr["train"]) == 546 and len(dr["test"]) == 343
    assert 0.70 < np.mean(dr["train"]["label"]) < 0.72 and "&#039;" not in " ".join(dr["train"]["text"])
    for source in text_data.UCI_SOURCES:
        ds = text_data.uci_sentences(source)
        assert len(ds) == 1000 and sum(ds["label"]) == 500
    with pytest.raises(ValueError, match="unknown source 'twitter'"):
        text_data.uci_sentences("twitter")
