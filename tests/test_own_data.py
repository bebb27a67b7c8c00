"""Own data: image folders and arrays, CSVs / DataFrames / lists of texts, into the lessons' functions."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tlcourse import features, finetune, models, own_data, text_baselines, text_data, text_models


def write_folder(root, classes=("cats", "dogs"), n=3, sizes=((40, 30), (20, 50), (33, 33))):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            w, h = sizes[i % len(sizes)]
            mode = ["RGB", "L", "RGBA"][i % 3]  # colour, grey and transparent files side by side
            arr = rng.integers(0, 256, (h, w, {"RGB": 3, "L": 1, "RGBA": 4}[mode]), dtype=np.uint8)
            Image.fromarray(arr.squeeze(-1) if mode == "L" else arr, mode).save(root / c / f"{i}.png")
    (root / classes[0] / "notes.txt").write_text("not an image")  # skipped: not an image extension
    (root / ".hidden").mkdir()  # skipped: hidden
    return root


def test_image_folder_reads_classes_of_any_size_and_mode(tmp_path):
    x, y, names = own_data.image_folder(write_folder(tmp_path / "pets"), size=32)
    assert x.shape == (6, 32, 32, 3) and x.dtype == np.uint8
    assert names == ["cats", "dogs"] and y.tolist() == [0, 0, 0, 1, 1, 1]
    x2, y2, names2 = own_data.image_folder(tmp_path / "pets", size=32, classes=["dogs", "cats"])
    assert names2 == ["dogs", "cats"] and y2.tolist() == [0, 0, 0, 1, 1, 1] and np.array_equal(x2[:3], x[3:])


def test_image_folder_mistakes_get_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected .*<class name>/<image files>"):
        own_data.image_folder(tmp_path / "nowhere")
    (tmp_path / "one" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "one" / "a" / "x.png")
    with pytest.raises(ValueError, match="at least two"):
        own_data.image_folder(tmp_path / "one")
    (tmp_path / "one" / "b").mkdir()
    with pytest.raises(ValueError, match=r"\['b'\] .*hold no images"):
        own_data.image_folder(tmp_path / "one")
    (tmp_path / "one" / "b" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png is not a readable image"):
        own_data.image_folder(tmp_path / "one")
    with pytest.raises(ValueError, match=r"class folders \['c'\] not in"):
        own_data.image_folder(tmp_path / "one", classes=["a", "c"])


def test_to_uint8_scales_by_the_datas_own_range_and_layout():
    digits = np.arange(17, dtype=np.float64).reshape(1, 1, 17).repeat(2, 0)  # 0..16, like sklearn's digits
    out = own_data.to_uint8(digits)
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() == 0  # not wrapped to 240..255
    assert own_data.to_uint8(np.full((1, 2, 2), 0.5)).max() == 128  # 0..1 floats
    assert own_data.to_uint8(np.full((1, 2, 2), 8.0), max_value=16).max() == 128
    chw = np.zeros((2, 3, 5, 6), np.float32)
    assert own_data.to_uint8(chw + 1).shape == (2, 5, 6, 3)  # channels-first -> last
    assert own_data.to_uint8(np.ones((2, 1, 5, 6), np.float32)).shape == (2, 5, 6)  # one channel -> grey
    assert own_data.to_uint8(np.ones((2, 5, 4, 4), np.uint8)).shape == (2, 5, 4, 3)  # alpha dropped
    for bad, words in [(np.zeros((2, 5)), "expected images shaped"), (np.zeros((0, 4, 4)), "empty"),
                       (-np.ones((1, 2, 2)), "negative"), (np.full((1, 2, 2), np.nan), "NaN")]:  # fmt: skip
        with pytest.raises(ValueError, match=words):
            own_data.to_uint8(bad)
    assert own_data.to_uint8(np.zeros((1, 2, 2))).max() == 0  # black images stay black
    with pytest.raises(ValueError, match="max_value must be positive"):
        own_data.to_uint8(np.ones((1, 2, 2)), max_value=0)
    with pytest.raises(TypeError, match="own_data.to_uint8"):
        models.to_lite_input(np.zeros((1, 4, 4), np.float32), 8)  # the hint points here
    with pytest.raises(TypeError, match="own_data.to_uint8"):
        features.pixels(np.zeros((1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="no images"):
        features.pixels(np.zeros((0, 4, 4), np.uint8))


def test_own_images_go_through_feature_extraction_and_fine_tuning(tmp_path):
    x, y, _ = own_data.image_folder(write_folder(tmp_path / "pets"), size=32)
    torch.manual_seed(0)
    backbone = features.load_backbone("lite0", pretrained=False)
    f = features.extract_features(backbone, x, ["block1"], size=32, progress=False)["block1"]
    assert f.shape == (6, 24) and np.isfinite(f).all()
    with pytest.raises(ValueError, match="no images"):
        features.extract_features(backbone, x[:0], ["block1"], size=32, progress=False)
    model, hist, _ = finetune.train_strategy("head only", (x, y), None, size=32, epochs=1, batch_size=3,
                                             progress=False)  # fmt: skip
    assert model.classifier.out_features == 2 and len(hist["train_loss"]) == 1  # two classes, not lesson 02's ten
    with pytest.raises(ValueError, match="as many images as labels"):
        finetune.train_strategy("head only", (x, y[:2]), None, size=32, epochs=1, progress=False)


def test_text_dataset_from_csv_dataframe_and_list(tmp_path):
    rows = [(f"text number {i}", "good" if i % 2 else "bad") for i in range(40)]
    csv = tmp_path / "reviews.csv"
    pd.DataFrame(rows, columns=["review", "verdict"]).to_csv(csv, index=False)
    ds = own_data.text_dataset(csv, text="review", label="verdict")
    assert set(ds) == {"train", "validation", "test"} and [len(ds[k]) for k in ("train", "validation", "test")] == [
        28,
        4,
        8,
    ]
    assert ds["train"].features["label"].names == ["bad", "good"]
    assert sorted(np.bincount(ds["test"]["label"])) == [4, 4]  # stratified
    again = own_data.text_dataset(pd.read_csv(csv), text="review", label="verdict")
    assert again["test"]["text"] == ds["test"]["text"]  # seeded: the same split
    ints = own_data.text_dataset([(t, int(v == "good")) for t, v in rows], test_fraction=0)
    assert set(ints) == {"train", "validation"} and ints["train"].features["label"].names == ["0", "1"]
    named = own_data.text_dataset(rows, label_names=["good", "bad"], test_fraction=0)
    assert named["train"].features["label"].names == ["good", "bad"]


def test_text_dataset_mistakes_get_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"no column\(s\) \['label'\]; the columns are \['review'"):
        own_data.text_dataset(pd.DataFrame({"review": ["a", "b"], "stars": [1, 2]}), text="review")
    with pytest.raises(ValueError, match="1 of 3 rows have no text or no label"):
        own_data.text_dataset([("a", 1), ("", 0), ("c", 1)])
    with pytest.raises(ValueError, match="at least two"):
        own_data.text_dataset([("a", 1), ("b", 1)])
    with pytest.raises(ValueError, match="too few for a test split"):
        own_data.text_dataset([("a", 1), ("b", 0), ("c", 1)])
    with pytest.raises(TypeError, match="list of \\(text, label\\) pairs"):
        own_data.text_dataset(["just text"])
    with pytest.raises(ValueError, match="not in label_names"):
        own_data.text_dataset([("a", "x"), ("b", "y")], label_names=["x", "z"])
    with pytest.raises(FileNotFoundError):
        own_data.text_dataset(tmp_path / "none.csv")


def test_as_splits_accepts_plain_forms_and_refuses_wrong_ones(capsys):
    from datasets import Dataset, DatasetDict

    plain = Dataset.from_dict({"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]})
    out = text_data.as_splits(plain)
    assert set(out) == {"train", "validation"} and (len(out["train"]), len(out["validation"])) == (18, 2)
    assert out["train"].features["label"].names == ["0", "1"]
    said = capsys.readouterr().out
    assert "cast to classes" in said and "2 of the training examples (seed 0) are the validation set" in said
    with pytest.raises(ValueError, match="rename 'labels' to 'label'"):
        text_data.as_splits(Dataset.from_dict({"text": ["a"], "labels": [0]}))
    with pytest.raises(ValueError, match="'validation' split is empty"):
        text_data.as_splits(DatasetDict({"train": plain, "validation": plain.select([])}))
    with pytest.raises(TypeError, match="own_data.text_dataset"):
        text_data.as_splits([("a", 0)])


def test_own_texts_through_baselines_fine_tune_and_label_checks(monkeypatch):
    from datasets import Dataset
    from tiny_models import tiny_bert

    rows = [(f"great film {i}" if i % 2 else f"awful film {i}", ["neg", "pos"][i % 2]) for i in range(24)]
    ds = own_data.text_dataset(rows, test_fraction=0.25)
    clf = text_baselines.tfidf_baseline(ds["train"]["text"], ds["train"]["label"])
    assert (clf.predict(ds["test"]["text"]) == np.array(ds["test"]["label"])).mean() == 1.0  # separable by one word
    model = tiny_bert()  # 2 labels
    three = Dataset.from_dict({"input_ids": [[1, 2], [1, 3], [2, 2]], "label": [0, 1, 2]})
    with pytest.raises(ValueError, match=r"training labels \[0, 1, 2\] do not fit the model's 2 classes"):
        text_models.make_trainer(model, None, three, None, text_models.recipe(smoke=True))
    with pytest.raises(ValueError, match="training data is empty"):
        text_models.make_trainer(model, None, three.select([]), None, text_models.recipe(smoke=True))


def test_fine_tune_takes_a_plain_dataset_with_named_classes():
    from datasets import Dataset

    texts = [f"{w} film number {i}" for i in range(12) for w in ("great", "awful", "odd")]
    plain = Dataset.from_dict({"text": texts, "label": [t.split()[0] for t in texts]})  # string labels, no validation
    tok, trainer = text_models.fine_tune(plain, text_models.recipe(smoke=True, train_size=16, eval_size=8),
                                         progress=False)  # fmt: skip
    assert trainer.model.config.id2label == {0: "awful", 1: "great", 2: "odd"}
    probs = text_models.predict_proba(trainer.model, tok, ["great film"])
    assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1)


def test_readme_own_data_snippet_runs(tmp_path, monkeypatch):
    """The README's "Use your own data" code, run as written on a small folder of images and a small CSV."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Use your own data", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    write_folder(tmp_path / "my_photos", n=2)
    rows = [(f"{w} film {i}", w) for i in range(15) for w in ("good", "bad")]
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(tmp_path / "reviews.csv", index=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TLCOURSE_SMOKE", "1")  # the lesson-03 recipe's smoke size: seconds, same code path
    space = {}
    exec(compile(code, "README.md", "exec"), space)
    assert space["feats"].shape == (4, 192) and space["names"] == ["cats", "dogs"]
    assert space["model"].classifier.out_features == 2 and len(space["history"]["train_loss"]) == 3
    assert set(space["data"]) == {"train", "validation", "test"} and space["trainer"].model.config.num_labels == 2
    assert space["trainer"].model.config.id2label == {0: "bad", 1: "good"}  # the CSV's names, not negative/positive
