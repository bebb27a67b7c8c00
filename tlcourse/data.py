"""Image data from the asset cache as numpy arrays, with fixed, seeded subsets.

Images are uint8 arrays ([N,H,W] grey or [H,W,3] RGB), labels int64 — plain objects that any library accepts.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from tlcourse import assets

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
PHOTO_NAMES = [
    "coffee",
    "chelsea",
    "astronaut",
    "rocket",
    "hubble_deep_field",
    "ihc",
    "retina",
    "brick",
    "grass",
    "gravel",
]


def _read_idx(path: Path) -> np.ndarray:
    """Read an idx (MNIST-format) .gz file into a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8 or raw[:2] != b"\x00\x00":
        raise assets.AssetError(
            f"{path.name} is not an idx file; run: python -m tlcourse.assets fetch --force fashion_mnist"
        )
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()  # writable


def fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images [N,28,28] uint8 and labels [N] int64; split is 'train' (60k) or 'test' (10k)."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    root = assets.path("fashion_mnist")
    x = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    y = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y


def mnist5000() -> tuple[np.ndarray, np.ndarray]:
    """5,000 MNIST digits (500 per class): images [5000,28,28] uint8, labels [5000] int64."""
    table = np.loadtxt(assets.path("mnist5000") / "mnist_5k.csv.gz", delimiter=",", dtype=np.float32)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(np.int64)


def uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """UCI optical digits: images [1797,8,8] uint8 in 0..16, labels [1797] int64."""
    table = np.loadtxt(assets.path("uci_digits") / "digits.csv.gz", delimiter=",", dtype=np.float32)
    return table[:, :-1].reshape(-1, 8, 8).astype(np.uint8), table[:, -1].astype(np.int64)


def photos(names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The scikit-image sample photos as RGB uint8 arrays [H,W,3], keyed by name."""
    from PIL import Image

    root = assets.path("photos")
    files = {p.stem: p for p in root.iterdir() if p.suffix in {".png", ".jpg"}}
    out = {}
    for name in names or PHOTO_NAMES:
        if name not in files:
            raise ValueError(f"unknown photo {name!r}; choose from {PHOTO_NAMES}")
        out[name] = np.asarray(Image.open(files[name]).convert("RGB"))
    return out


def per_class_indices(labels: np.ndarray, n_per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of `n_per_class` examples of every class, chosen with a fixed seed (sorted)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if n_per_class > len(idx):
            raise ValueError(f"class {c} has only {len(idx)} examples, asked for {n_per_class}")
        picked.append(rng.choice(idx, size=n_per_class, replace=False))
    return np.sort(np.concatenate(picked))


def train_val_split(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random split of range(n) into train and validation index arrays."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def tensor_dataset(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> TensorDataset:
    """A TensorDataset of float inputs and int64 labels (e.g. for cached features)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    if len(x) != len(y):
        raise ValueError(f"inputs and labels differ in length: {len(x)} vs {len(y)}")
    return TensorDataset(x, y)


def labelled(x, y, what: str = "training", min_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as arrays after the checks a classifier needs, each failure in one line: as many labels as examples,
    at least one example, and (min_classes) at least two classes to tell apart."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"{what}: {len(x)} examples but {len(y)} labels; pass one label per example")
    if len(x) == 0:
        raise ValueError(f"{what}: no examples")
    if min_classes and len(np.unique(y)) < min_classes:
        raise ValueError(
            f"{what}: every label is {y[0].item()!r}; a classifier needs examples of at least {min_classes} classes"
        )
    return x, y


def texts_list(texts, what: str = "texts") -> list[str]:
    """A list of strings, or a one-line error: a bare string, a missing (None/NaN) entry or a non-string entry."""
    if isinstance(texts, str):
        raise TypeError(f"{what} should be a list of strings; wrap a single sentence as [text]")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{what}: {len(bad)} of {len(texts)} entries are not strings (first: index {bad[0]}, "
                        f"{texts[bad[0]]!r}); drop or fill the missing ones")  # fmt: skip
    return texts
