"""Catastrophic forgetting, measured: how far fine-tuning moved a backbone from its ImageNet original.

Measured on source-like images (the scikit-image photos and random crops of them) by `imagenet_drift`:
- linear CKA between the original's and the fine-tuned model's features, stage by stage (1 = same representation);
- the fine-tuned backbone with the ORIGINAL ImageNet classifier re-attached, against the original: KL divergence,
  top-5 overlap and top-1 agreement (on all images, and on those the original is confident about).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from tlcourse import features, models


def linear_cka(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Linear CKA between feature matrices x [N,D1] and y [N,D2] of the same N examples (Kornblith et al. 2019)."""
    cka = _cka_or_nan(x, y)
    if math.isnan(cka):
        raise ValueError("a feature matrix is constant: CKA is undefined")
    return cka


def _cka_or_nan(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Linear CKA, or nan when a matrix is the same vector for every example (nothing varies: CKA is undefined)."""
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y, dtype=torch.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"expected two matrices [N,D1], [N,D2] with the same N, got {list(x.shape)}, {list(y.shape)}")
    x, y = x - x.mean(0), y - y.mean(0)  # centre every feature
    cross = (y.T @ x).norm() ** 2  # ||Y^T X||_F^2
    denom = (x.T @ x).norm() * (y.T @ y).norm()
    return float("nan") if denom == 0 else float(cross / denom)


def photo_crops(photos: dict[str, np.ndarray], crops_per_photo: int = 6, seed: int = 0) -> list[np.ndarray]:
    """Each photo whole plus `crops_per_photo` random square crops of it (half to full side): uint8 RGB images."""
    rng = np.random.default_rng(seed)
    out = []
    for img in photos.values():
        h, w = img.shape[:2]
        out.append(img)
        for _ in range(crops_per_photo):
            side = int(min(h, w) * rng.uniform(0.5, 1.0))
            top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            out.append(img[top : top + side, left : left + side])
    return out


def photo_batch(images: list[np.ndarray], size: int = 224) -> torch.Tensor:
    """A list of RGB uint8 images of any sizes -> one normalised batch [N,3,size,size]."""
    return torch.cat([models.to_lite_input(np.asarray(img)[None], size) for img in images])


@torch.no_grad()
def stage_features(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Globally average-pooled output of every stage of an EfficientNet for inputs x: {stage: [N,C]} (eval mode)."""
    names = features.stage_names(model)
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    try:
        chunks = [features.pooled_stages(model, x[s : s + batch_size].to(device), names)
                  for s in range(0, len(x), batch_size)]  # fmt: skip
    finally:
        model.train(was_training)
    return {n: torch.cat([c[n].cpu() for c in chunks]) for n in names}  # [N,C]


@torch.no_grad()
def imagenet_drift(original: nn.Module, tuned: nn.Module, x: torch.Tensor,
                   reference: dict[str, torch.Tensor] | None = None, confident: float = 0.5) -> dict:  # fmt: skip
    """How far a tuned backbone moved from the original, from one forward pass of each over source images x.

    Returns {"cka": {stage: linear CKA}, "kl": mean KL(original || tuned + original ImageNet head),
    "top1_kept": fraction of top-1 classes kept, "top1_kept_confident": the same on the images where the original's
    top-1 probability is ≥ `confident`, "n_confident", "top5_overlap": mean share of the original's top 5 kept}.
    `reference` may hold `stage_features(original, x)`, computed once for many tuned models. A stage whose features
    are the same for every input (it collapsed, e.g. after a far too large learning rate) has CKA nan: undefined.
    """
    if original.classifier.out_features != 1000:
        raise ValueError(
            "`original` must keep its ImageNet head: load it with models.load_efficientnet(num_classes=None)"
        )
    a = stage_features(original, x) if reference is None else reference
    b = stage_features(tuned, x)
    head = copy.deepcopy(original.classifier).cpu().eval()
    p, q = head(a["head"]).log_softmax(1), head(b["head"]).log_softmax(1)  # [N,1000] original head on both backbones
    keep = p.exp().max(1).values >= confident  # [N] images the original is sure about
    same = p.argmax(1) == q.argmax(1)  # [N]
    top5 = (p.topk(5).indices[:, :, None] == q.topk(5).indices[:, None, :]).any(2).float().mean(1)  # [N]
    return {"cka": {n: _cka_or_nan(a[n], b[n]) for n in a}, "kl": float((p.exp() * (p - q)).sum(1).mean()),
            "top1_kept": float(same.float().mean()), "n_confident": int(keep.sum()),
            "top1_kept_confident": float(same[keep].float().mean()) if keep.any() else float("nan"),
            "top5_overlap": float(top5.mean())}  # fmt: skip
