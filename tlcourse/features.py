"""Frozen-backbone features: pooled per-stage EfficientNet-Lite features, cached on disk, and linear probes on them.

    feats = cached_features("fashion_mnist", "test", stages=("block5",), size=64)   # {"block5": [10000,192]}
    acc = probe_accuracy(train_x, train_y, test_x, test_y)                         # scaled logistic regression

The cache lives under `config.data_dir() / "features"`; a file's name is a hash of everything that changes the
features (model, weights, stage, input size, dataset, split, index subset, code version), and the full key is stored
inside the file and compared on load, so a changed key never serves stale features.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from tlcourse import config, data, models
from tlcourse.config import data_dir
from tlcourse.files import atomic_file
from tlcourse.train import fit
from tlcourse.train import reestimate_batchnorm as reestimate_from_batches

FEATURES_VERSION = 1  # bump when the extraction code changes what it computes: old cache files are then ignored
DATASETS: dict[str, Callable[[str], tuple[np.ndarray, np.ndarray]]] = {"fashion_mnist": data.fashion_mnist}


def stage_names(model: nn.Module) -> list[str]:
    """Stages of a timm EfficientNet, shallow to deep: 'stem', 'block0'..'blockN', 'head'."""
    return ["stem", *(f"block{i}" for i in range(len(model.blocks))), "head"]


def pooled_stages(model: nn.Module, x: torch.Tensor, stages: Sequence[str],
                  grad: bool = False) -> dict[str, torch.Tensor]:  # fmt: skip
    """Global-average-pooled activations {stage: [B,C]} of a timm EfficientNet for input x [B,3,H,W].

    The forward pass stops after the deepest stage asked for, so shallow features are cheaper. No gradients unless
    grad=True (and gradients are enabled by the caller): LP-FT trains the backbone through these features.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a batch [B,3,H,W] of normalised RGB images, got {list(x.shape)}; "
                         "models.to_lite_input(uint8 images, size) makes one from grey or RGB images")  # fmt: skip
    names = stage_names(model)
    unknown = [s for s in stages if s not in names]
    if unknown or not stages:
        raise ValueError(f"unknown stages {unknown or list(stages)}; choose from {names}")
    last = max(names.index(s) for s in stages)
    out = {}
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        h = model.bn1(model.conv_stem(x))  # [B,32,H/2,W/2]
        layers = [*model.blocks, nn.Sequential(model.conv_head, model.bn2)]
        for i, name in enumerate(names[: last + 1]):
            if i > 0:
                h = layers[i - 1](h)  # [B,C_i,H_i,W_i]
            if name in stages:
                out[name] = h.mean(dim=(2, 3))  # [B,C_i]
    return out


def load_backbone(variant: str = "lite0", pretrained: bool = True, seed: int = 0,
                  device: torch.device | str | None = None) -> nn.Module:  # fmt: skip
    """A frozen EfficientNet-Lite in eval mode: ImageNet weights, or a seeded random init when pretrained=False.

    It lives on `device` (default `config.get_device()`: a GPU when there is one), and every helper here moves its
    inputs there. A random init keeps BatchNorm's default statistics (mean 0, var 1: the layers are then the identity);
    `reestimate_batchnorm` replaces them by statistics of real images.
    """
    torch.manual_seed(seed)  # fixes the random init (ignored by the ImageNet weights)
    model = models.load_efficientnet(variant, pretrained=pretrained).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(config.get_device() if device is None else torch.device(device))


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, images: np.ndarray, size: int = 64, batch_size: int = 64,
                         layers: Sequence[nn.Module] | None = None) -> nn.Module:  # fmt: skip
    """Replace every BatchNorm layer's running mean/var by the statistics of `images` (uint8 [N,H,W(,3)]).

    A cumulative average over the batches (momentum=None), with no gradients and no weight change; the model is left
    in eval mode. On a random init it replaces the stored statistics (mean 0, variance 1: the identity); on a
    pretrained network it swaps the source's statistics for the target's (AdaBN).
    `layers` limits it to some BatchNorm layers (default: all); forward hooks that force eval mode must be off.
    """
    if len(images) == 0:
        raise ValueError("no images given: pass the (training) images whose statistics the BatchNorm layers should use")
    device = next(model.parameters()).device
    batches = (
        models.to_lite_input(images[i : i + batch_size], size).to(device) for i in range(0, len(images), batch_size)
    )
    return reestimate_from_batches(model, batches, layers=layers)  # batches of [B,3,size,size]


def extract_features(model: nn.Module, images: np.ndarray, stages: Sequence[str], size: int = 64,
                     batch_size: int = 64, progress: bool = True, desc: str = "features") -> dict[str, np.ndarray]:  # fmt: skip
    """Pooled features {stage: float32 [N,C]} of uint8 images [N,H,W] or [N,H,W,3], in batches (no cache).

    Each batch runs where the model's weights live (a GPU when the model is on one); the features come back to the CPU.
    """
    from tqdm.auto import tqdm

    if len(images) == 0:
        raise ValueError("no images given: nothing to extract features from")
    model.eval()
    device = next(model.parameters()).device
    chunks: dict[str, list[np.ndarray]] = {s: [] for s in stages}
    for start in tqdm(range(0, len(images), batch_size), desc=desc, disable=not progress, leave=False):
        x = models.to_lite_input(images[start : start + batch_size], size).to(device)  # [B,3,size,size]
        for s, f in pooled_stages(model, x, stages).items():
            chunks[s].append(f.float().cpu().numpy())  # [B,C]
    return {s: np.concatenate(c) for s, c in chunks.items()}


BN_IMAGES = 2000  # reestimate_bn=True: BatchNorm statistics are estimated on this many training images


def feature_key(dataset: str, split: str, indices: np.ndarray | None, variant: str, pretrained: bool, seed: int,
                stage: str, size: int, reestimate_bn: bool = False) -> dict:  # fmt: skip
    """Everything that changes one cached feature matrix, as a JSON-able dict."""
    weights = "imagenet" if pretrained else f"random-init-seed{seed}"
    weights += f"-bn{BN_IMAGES}" if reestimate_bn else ""
    subset = "all" if indices is None else hashlib.sha256(np.asarray(indices, np.int64).tobytes()).hexdigest()[:16]
    n = None if indices is None else len(indices)
    return {"dataset": dataset, "split": split, "subset": subset, "n": n, "model": f"tf_efficientnet_{variant}",
            "weights": weights, "stage": stage, "size": int(size), "pool": "mean", "version": FEATURES_VERSION}  # fmt: skip


def cache_path(key: dict, cache_dir: Path | None = None) -> Path:
    """The cache file of one feature key: readable prefix + hash of the whole key."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    name = f"{key['dataset']}-{key['split']}-{key['weights']}-{key['stage']}-{key['size']}px-{digest}.safetensors"
    return Path(cache_dir or data_dir() / "features") / name


def _load(path: Path, key: dict) -> np.ndarray | None:
    """The cached matrix if the file exists and was written for exactly this key, else None."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if f.metadata().get("key") != json.dumps(key, sort_keys=True):
                return None
            return f.get_tensor("features").numpy()
    except Exception:  # a corrupt or foreign file is recomputed, never trusted
        return None


def _save(path: Path, key: dict, features: np.ndarray) -> None:
    """Write one feature matrix atomically (temp file in the same folder, then rename)."""
    from safetensors.torch import save_file

    with atomic_file(path) as tmp:
        save_file({"features": torch.from_numpy(np.ascontiguousarray(features))}, tmp,
                  metadata={"key": json.dumps(key, sort_keys=True)})  # fmt: skip


def cached_features(dataset: str = "fashion_mnist", split: str = "train", indices: np.ndarray | None = None, *,
                    stages: Sequence[str] = ("block5",), size: int = 64, variant: str = "lite0",
                    pretrained: bool = True, seed: int = 0, reestimate_bn: bool = False, batch_size: int = 64,
                    cache_dir: Path | None = None, progress: bool = True) -> dict[str, np.ndarray]:  # fmt: skip
    """Pooled features {stage: [N,C]} of a dataset split (or the rows `indices` of it), extracted once and cached.

    Missing stages are computed together in one pass of the frozen backbone; stages already cached are read from disk.
    reestimate_bn=True first replaces the BatchNorm statistics by those of `BN_IMAGES` training images (a random
    init's stored ones are mean 0, variance 1, so its BatchNorm layers are then the identity).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {list(DATASETS)}")
    stages = list(dict.fromkeys(stages))
    keys = {s: feature_key(dataset, split, indices, variant, pretrained, seed, s, size, reestimate_bn) for s in stages}
    out = {s: _load(cache_path(k, cache_dir), k) for s, k in keys.items()}
    missing = [s for s, f in out.items() if f is None]
    if missing:
        images, _ = DATASETS[dataset](split)
        if indices is not None:
            images = images[np.asarray(indices)]
        model = load_backbone(variant, pretrained, seed)
        if reestimate_bn:
            train_images, train_labels = DATASETS[dataset]("train")
            n_per_class = BN_IMAGES // len(np.unique(train_labels))
            reestimate_batchnorm(model, train_images[data.per_class_indices(train_labels, n_per_class, seed)], size)
        weights = "ImageNet" if pretrained else "random-init"
        fresh = extract_features(model, images, missing, size, batch_size, progress, f"{weights} {split} {size}px")
        for s, f in fresh.items():
            _save(cache_path(keys[s], cache_dir), keys[s], f)
            out[s] = f
    return {s: out[s] for s in stages}


def stack_stages(feats: dict[str, np.ndarray], stages: Sequence[str]) -> np.ndarray:
    """Concatenate the pooled features of several stages {stage: [N,C_s]} -> [N, sum of C_s], in the order given."""
    missing = [s for s in stages if s not in feats]
    if missing or not stages:
        raise ValueError(f"stages {missing or list(stages)} not in the features; available: {list(feats)}")
    return np.concatenate([np.asarray(feats[s], np.float32) for s in stages], axis=1)  # [N, sum C_s]


def pixels(images: np.ndarray) -> np.ndarray:
    """Raw-pixel features: uint8 images [N,H,W,...] -> float32 [N,H*W*...] in 0..1."""
    images = np.asarray(images)
    if len(images) == 0:
        raise ValueError("no images given: nothing to turn into pixel features")
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 images in 0..255, got {images.dtype}; tlcourse.own_data.to_uint8(x) scales "
                        "them by their own range")  # fmt: skip
    return images.astype(np.float32).reshape(len(images), -1) / 255.0


def logistic_probe(train_x: np.ndarray, train_y: np.ndarray, C: float = 0.1, max_iter: int = 500):
    """A fitted scikit-learn pipeline: StandardScaler then multinomial LogisticRegression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_x, train_y = data.labelled(train_x, train_y)
    if train_x.ndim != 2:
        raise ValueError(f"features should be a 2-D array [N,D], got shape {list(train_x.shape)}")
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter)).fit(train_x, train_y)


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                   C: float = 0.1) -> float:  # fmt: skip
    """Test accuracy of a scaled logistic-regression probe trained on (train_x, train_y)."""
    test_x, test_y = data.labelled(test_x, test_y, "test", min_classes=0)
    return float(logistic_probe(train_x, train_y, C).score(test_x, test_y))


def probe_predictions(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, C: float = 0.1) -> np.ndarray:
    """Predicted labels [N_test] of a scaled logistic-regression probe trained on (train_x, train_y)."""
    return logistic_probe(train_x, train_y, C).predict(test_x)


def probe_curve(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, shots: Sequence[int],
                seeds: Sequence[int], C: float = 0.1, full: bool = True) -> dict[int | str, np.ndarray]:  # fmt: skip
    """Test predictions of the scaled probe at n labels per class, one row per seed (a different labelled subset):
    {n: int [len(seeds), N_test]}, and "full": [1, N_test] trained on all of train_x. Pair rows across inputs by seed."""
    out: dict[int | str, np.ndarray] = {}
    for n in shots:
        rows = [data.per_class_indices(train_y, n, seed) for seed in seeds]
        out[n] = np.stack([probe_predictions(train_x[i], train_y[i], test_x, C) for i in rows])  # [seeds, N_test]
    if full:
        out["full"] = probe_predictions(train_x, train_y, test_x, C)[None]  # [1, N_test]
    return out


def choose_C(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
             grid: Sequence[float] = (0.01, 0.03, 0.1, 0.3)) -> tuple[float, dict[float, float]]:  # fmt: skip
    """The regularisation strength C of the scaled logistic probe with the best held-out (validation) accuracy.

    Returns (best C, {C: validation accuracy}); ties go to the smaller C (stronger regularisation).
    Never pass the test set here: that would tune the probe on the numbers you report.
    """
    if not grid:
        raise ValueError("grid is empty; give at least one C, e.g. (0.01, 0.03, 0.1, 0.3)")
    scores = {float(c): probe_accuracy(train_x, train_y, val_x, val_y, C=float(c)) for c in sorted(grid)}
    return max(scores, key=lambda c: (scores[c], -c)), scores


class Standardize(nn.Module):
    """Fixed feature scaling (x - mean) / std, stored as buffers so it travels with the head."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)  # [D]
        self.register_buffer("std", std.clamp_min(1e-6))  # [D]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std  # [B,D]


def train_linear_head(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray | None = None,
                      val_y: np.ndarray | None = None, *, epochs: int = 30, lr: float = 1e-2,
                      weight_decay: float = 1e-3, batch_size: int = 64, seed: int = 0,
                      progress: bool = True) -> tuple[nn.Module, dict]:  # fmt: skip
    """Train Standardize + nn.Linear on cached features with the shared loop; return (head, history)."""
    torch.manual_seed(seed)
    x = torch.as_tensor(train_x, dtype=torch.float32)  # [N,D]
    n_classes = int(np.max(train_y)) + 1
    head = nn.Sequential(Standardize(x.mean(0), x.std(0)), nn.Linear(x.shape[1], n_classes))
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(data.tensor_dataset(train_x, train_y), batch_size=batch_size, shuffle=True, generator=gen)
    val = None if val_x is None else DataLoader(data.tensor_dataset(val_x, val_y), batch_size=1024)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    history = fit(head, train, val, epochs=epochs, optimizer=opt, progress=progress, desc="linear head")
    return head.eval(), history


class FrozenBackboneClassifier(nn.Module):
    """The usual way: a frozen backbone re-run on every batch, pooled at one stage (or several, concatenated),
    then a trainable linear head."""

    def __init__(self, backbone: nn.Module, stage: str | Sequence[str], n_classes: int):
        super().__init__()
        self.backbone = backbone
        self.stages = [stage] if isinstance(stage, str) else list(stage)
        device = next(backbone.parameters()).device
        probe = torch.zeros(1, 3, 32, 32, device=device)  # one tiny image, only to read the feature width
        dim = sum(f.shape[1] for f in pooled_stages(backbone, probe, self.stages).values())
        self.head = nn.Linear(dim, n_classes, device=device)

    def train(self, mode: bool = True) -> FrozenBackboneClassifier:
        super().train(mode)
        self.backbone.eval()  # frozen means frozen: BatchNorm statistics never move
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = pooled_stages(self.backbone, x, self.stages)  # {stage: [B,C_s]}
        return self.head(torch.cat([feats[s] for s in self.stages], dim=1))  # [B,classes]


def data_efficiency(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                    shots: Sequence[int], seeds: Sequence[int], score: Callable | None = None,
                    full: bool = True) -> dict[int | str, list[float]]:  # fmt: skip
    """Test accuracy at n labelled examples per class, one value per seed: {n: [acc...], "full": [acc]}.

    `score(train_x, train_y, test_x, test_y) -> accuracy` defaults to the scaled logistic probe.
    """
    score = score or probe_accuracy
    out: dict[int | str, list[float]] = {}
    for n in shots:
        out[n] = [float(score(train_x[i], train_y[i], test_x, test_y))
                  for i in (data.per_class_indices(train_y, n, seed) for seed in seeds)]  # fmt: skip
    if full:
        out["full"] = [float(score(train_x, train_y, test_x, test_y))]
    return out
