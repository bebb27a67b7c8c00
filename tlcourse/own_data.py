"""Your own data into the lessons' functions: images from a folder or arrays, texts from a CSV, DataFrame or list.

    x, y, names = own_data.image_folder("my_photos/")            # my_photos/<class>/<image>: uint8 [N,S,S,3]
    x = own_data.to_uint8(array)                                  # any grey/RGB array, uint8 or float -> uint8
    feats = features.extract_features(features.load_backbone(), x, ["block5"])
    data = own_data.text_dataset("reviews.csv", text="review", label="stars")  # DatasetDict train/validation/test
    tok, trainer = text_models.fine_tune(data)

The lessons' image functions take uint8 arrays [N,H,W] (grey) or [N,H,W,3] (RGB) in 0..255; the text functions take
Hugging Face datasets with a `text` column and a `label` ClassLabel column. These loaders produce exactly that, and
say in one line what is wrong with input they cannot use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def to_uint8(images, max_value: float | None = None) -> np.ndarray:
    """Images as the lessons want them: uint8 [N,H,W] (grey) or [N,H,W,3] (RGB), 0..255.

    Accepts [N,H,W], [N,H,W,1|3|4] or channels-first [N,1|3,H,W] (read as such when W > 4); uint8 is kept, any other dtype is scaled by
    `max_value` (default: 1.0 when every value lies in 0..1, else the data's own maximum), so 0..16 digit images become
    0..255 instead of wrapping. A fourth (alpha) channel is dropped; one channel becomes grey.
    """
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] > 4:
        x = np.moveaxis(x, 1, -1)  # [N,C,H,W] -> [N,H,W,C]
    if x.ndim == 4 and x.shape[-1] == 4:
        x = x[..., :3]  # RGBA -> RGB
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]  # one channel -> grey [N,H,W]
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 3):
        raise ValueError(
            f"expected images shaped [N,H,W], [N,H,W,C] or [N,C,H,W] with C = 1, 3 or 4, got {list(x.shape)}"
        )
    if len(x) == 0:
        raise ValueError("no images: the array is empty")
    if x.dtype == np.uint8:
        return x
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"expected numeric images, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError("the images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0:
        raise ValueError(f"the images have negative values (min {lo:.3g}): shift them to start at 0 first")
    scale = max_value if max_value is not None else (1.0 if hi <= 1.0 else hi)
    if scale <= 0:
        raise ValueError(f"max_value must be positive, got {scale}")
    return np.clip(np.round(x / scale * 255.0), 0, 255).astype(np.uint8)


def _square(path: Path, size: int) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0))  # [S,S,3]
    except OSError as e:
        raise ValueError(f"{path} is not a readable image ({e}); remove it or convert it to PNG/JPEG") from e


def image_folder(root: str | Path, size: int = 224, classes: Sequence[str] | None = None,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """Images from `root/<class name>/<image file>`: (uint8 [N,size,size,3], int64 labels [N], class names).

    Each image is converted to RGB and squeezed to size×size (what the lessons' networks get anyway); class k is the
    k-th sub-folder in sorted order, or in the order of `classes`. Hidden files and other extensions are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}: expected {root}/<class name>/<image files>")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = list(classes) if classes is not None else folders
    missing = [c for c in names if c not in folders]
    if missing:
        raise ValueError(f"class folders {missing} not in {root}; it has {folders}")
    if len(names) < 2:
        raise ValueError(f"{root} has {len(names)} class folder(s) {names}: a classifier needs at least two")
    ext = {e.lower() for e in extensions}
    files = {c: sorted(f for f in (root / c).iterdir() if f.suffix.lower() in ext and not f.name.startswith("."))
             for c in names}  # fmt: skip
    empty = [c for c, fs in files.items() if not fs]
    if empty:
        raise ValueError(f"class folders {empty} in {root} hold no images with extensions {sorted(ext)}")
    images = [_square(f, size) for c in names for f in files[c]]
    labels = np.concatenate([np.full(len(files[c]), k, np.int64) for k, c in enumerate(names)])
    return np.stack(images), labels, names


def text_frame(data, text: str = "text", label: str = "label"):
    """A DataFrame (text, label) from a CSV/TSV path, a DataFrame, or a list of (text, label) pairs; rows with no text
    or no label are refused with their count, so nothing is dropped silently."""
    import pandas as pd

    if isinstance(data, str | Path):
        path = Path(data)
        if not path.is_file():
            raise FileNotFoundError(f"no file {path}")
        df = pd.read_csv(path, sep="\t" if path.suffix.lower() in {".tsv", ".tab"} else ",")
    elif isinstance(data, pd.DataFrame):
        df = data
    else:
        rows = list(data)
        if not all(isinstance(r, list | tuple) and len(r) == 2 for r in rows):
            raise TypeError("expected a CSV path, a DataFrame or a list of (text, label) pairs")
        df = pd.DataFrame(rows, columns=[text, label])
    missing = [c for c in (text, label) if c not in df.columns]
    if missing:
        raise ValueError(f"no column(s) {missing}; the columns are {list(df.columns)}: pass text= and label=")
    out = pd.DataFrame({"text": df[text], "label": df[label]}).reset_index(drop=True)
    bad = out["label"].isna() | out["text"].isna() | (out["text"].astype(str).str.strip() == "")
    if bad.any():
        raise ValueError(f"{int(bad.sum())} of {len(out)} rows have no text or no label (first: row {int(bad.idxmax())}); "
                         "drop or fill them first")  # fmt: skip
    if len(out) == 0:
        raise ValueError("no rows: the data is empty")
    out["text"] = out["text"].astype(str)
    return out


def text_dataset(data, text: str = "text", label: str = "label", val_fraction: float = 0.1,
                 test_fraction: float = 0.2, seed: int = 0, label_names: Sequence[str] | None = None):  # fmt: skip
    """A DatasetDict(train, validation, test) with `text` and a ClassLabel `label`, from what `text_frame` reads.

    Labels may be strings (classes in sorted order, or in the order of `label_names`) or integers 0..C−1. The split is
    seeded and stratified by label; test_fraction=0 leaves no test split.
    """
    import pandas as pd
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
    from sklearn.model_selection import train_test_split

    df = text_frame(data, text, label)
    values = sorted(df["label"].unique().tolist(), key=str)
    if label_names is None:
        if all(isinstance(v, int | np.integer) for v in values):
            if values[0] < 0:
                raise ValueError(f"integer labels must be 0..C−1, got {values[:8]}")
            label_names = [str(i) for i in range(int(values[-1]) + 1)]
            codes = df["label"].astype(int)
        else:
            label_names = [str(v) for v in values]
            codes = df["label"].astype(str).map({n: i for i, n in enumerate(label_names)})
    else:
        unknown = sorted(set(df["label"].astype(str)) - set(map(str, label_names)))
        if unknown:
            raise ValueError(f"labels {unknown[:8]} are not in label_names {list(label_names)}")
        codes = df["label"].astype(str).map({str(n): i for i, n in enumerate(label_names)})
    if df["label"].nunique() < 2:
        raise ValueError(f"only one label value ({values}): a classifier needs at least two")
    df = pd.DataFrame({"text": df["text"], "label": np.asarray(codes, np.int64)})
    idx = np.arange(len(df))
    parts, rest = {}, idx
    for name, frac in (("test", test_fraction), ("validation", val_fraction)):
        if frac > 0:
            share = frac / (len(rest) / len(idx))  # a fraction of the whole data, not of what is left
            try:
                rest, parts[name] = train_test_split(rest, test_size=share, random_state=seed,
                                                     stratify=df["label"].iloc[rest])  # fmt: skip
            except ValueError as e:  # too few rows (per class) for the fractions asked
                arg = "val_fraction" if name == "validation" else "test_fraction"
                raise ValueError(f"{len(df)} rows, {df['label'].value_counts().min()} in the rarest class, are too few "
                                 f"for a {name} split of {frac:.0%}: give more rows or set {arg}=0") from e  # fmt: skip
    parts["train"] = rest
    feats = Features({"text": Value("string"), "label": ClassLabel(names=[str(n) for n in label_names])})
    return DatasetDict({k: Dataset.from_pandas(df.iloc[np.sort(parts[k])].reset_index(drop=True), features=feats,
                                               preserve_index=False) for k in ("train", "validation", "test") if k in parts})  # fmt: skip
