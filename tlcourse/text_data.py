"""Text data from the asset cache as Hugging Face `datasets` objects with fixed, seeded splits.

Every dataset has a `text` column (str) and a `label` column (0 = negative, 1 = positive).
"""

from __future__ import annotations

import html
import json
import zipfile

import numpy as np
import pandas as pd

from tlcourse import assets

LABELS = ["negative", "positive"]
UCI_SOURCES = ["amazon", "imdb", "yelp"]


def _to_dataset(df: pd.DataFrame):
    from datasets import ClassLabel, Dataset, Features, Value

    cols = {"text": Value("string"), "label": ClassLabel(names=LABELS)}
    extra = {c: Value("string") for c in df.columns if c not in cols}
    return Dataset.from_pandas(df.reset_index(drop=True), features=Features({**cols, **extra}), preserve_index=False)


def rotten_tomatoes_frame() -> pd.DataFrame:
    """Critic snippets as a DataFrame (text, label, movie): plot summaries and duplicate texts dropped."""
    df = pd.read_csv(assets.path("rotten_tomatoes") / "rotten_tomatoes_corpus_full.csv.bz2")
    df = df[df["category"].isin(["fresh", "rotten"])].drop_duplicates("text")
    out = pd.DataFrame(
        {"text": df["text"].str.strip(), "label": (df["category"] == "fresh").astype(int), "movie": df["movie_name"]}
    )
    return out[out["text"].str.len() > 0].reset_index(drop=True)


def rotten_tomatoes(val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0):
    """DatasetDict(train, validation, test) of RT snippets split by movie, so test movies are never seen in training."""
    from datasets import DatasetDict

    df = rotten_tomatoes_frame()
    movies = np.array(sorted(df["movie"].unique()))
    np.random.default_rng(seed).shuffle(movies)
    n_test, n_val = int(len(movies) * test_fraction), int(len(movies) * val_fraction)
    parts = {"test": movies[:n_test], "validation": movies[n_test : n_test + n_val], "train": movies[n_test + n_val :]}
    return DatasetDict({k: _to_dataset(df[df["movie"].isin(set(v))]) for k, v in parts.items()})


def drug_reviews(binary: bool = True):
    """DatasetDict(train, test) of drugs.com patient reviews; binary drops neutral (train 546, test 343)."""
    from datasets import DatasetDict

    out = {}
    with zipfile.ZipFile(assets.path("drug_reviews") / "drugsCom.zip") as z:
        for split, member in [("train", "drugsComTrain.tsv"), ("test", "drugsComTest.tsv")]:
            df = pd.read_csv(z.open(member), sep="\t")
            if binary:
                df = df[df["rating"] != "neutral"]
            else:
                raise NotImplementedError("only the binary (positive/negative) version is used in the course")
            text = df["review"].map(lambda s: html.unescape(str(s)).strip().strip('"').strip())
            frame = pd.DataFrame({"text": text, "label": (df["rating"] == "positive").astype(int)})
            frame["condition"] = df["condition"].fillna("").astype(str).values
            out[split] = _to_dataset(frame)
    return DatasetDict(out)


def uci_sentences(source: str):
    """UCI Sentiment Labelled Sentences from one source ('amazon', 'imdb' or 'yelp'): 1,000 balanced sentences."""
    if source not in UCI_SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {UCI_SOURCES}")
    rows = json.loads((assets.path("uci_sentences") / f"{source}.json").read_text(encoding="utf-8"))
    rows = [r for r in rows if r.get("class") is not None and r.get("text", "").strip()]
    return _to_dataset(
        pd.DataFrame({"text": [r["text"].strip() for r in rows], "label": [int(r["class"]) for r in rows]})
    )


def as_splits(data, seed: int = 0, val_fraction: float = 0.1):
    """A DatasetDict with train and validation splits, `text` and a ClassLabel `label`, from what a learner has.

    Accepts a DatasetDict or a plain Dataset (e.g. `Dataset.from_dict` or `own_data.text_dataset`); a label column of
    plain ints or strings is cast to ClassLabel, and without a validation split a seeded, stratified `val_fraction` of
    train is carved off (both said in one printed line). Anything else is answered in one line naming what was expected.
    """
    from datasets import ClassLabel, Dataset, DatasetDict

    if isinstance(data, Dataset):
        data = DatasetDict({"train": data})
    if not isinstance(data, DatasetDict):
        raise TypeError(f"expected a datasets Dataset or DatasetDict, got {type(data).__name__}; "
                        "for a CSV, DataFrame or list of (text, label) use tlcourse.own_data.text_dataset")  # fmt: skip
    if "train" not in data:
        raise ValueError(f"no 'train' split; the splits are {list(data)}")
    cols = data["train"].column_names
    if "text" not in cols or "label" not in cols:
        raise ValueError(f"expected columns 'text' and 'label', got {cols}"
                         + ("; rename 'labels' to 'label'" if "labels" in cols else ""))  # fmt: skip
    for name, split in data.items():
        if len(split) == 0:
            raise ValueError(f"the {name!r} split is empty")
    if not isinstance(data["train"].features["label"], ClassLabel):
        data = data.class_encode_column("label")
        print(f"label column cast to classes {data['train'].features['label'].names}")
    if "validation" not in data:
        parts = data["train"].train_test_split(test_size=val_fraction, seed=seed, stratify_by_column="label")
        data = DatasetDict({**data, "train": parts["train"], "validation": parts["test"]})
        print(
            f"no validation split: {len(parts['test'])} of the training examples (seed {seed}) are the validation set"
        )
    return data
