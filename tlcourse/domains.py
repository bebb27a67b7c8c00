"""Digit domains for lesson 04: MNIST (source), an MNIST-M-style target, upscaled UCI digits, and a small CPU CNN.

The MNIST-M recipe (Ganin & Lempitsky, 2015): for every digit take a random patch of a colour photo and blend
them with |patch - digit|, so strokes show as inverted colour over a textured background. Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def mnist_m(digits: np.ndarray, backgrounds: dict[str, np.ndarray] | list[np.ndarray], seed: int = 0) -> np.ndarray:
    """MNIST-M-style images [N,28,28,3] uint8: |random photo patch - digit| per pixel and channel, seeded."""
    digits = np.asarray(digits)
    if digits.ndim != 3 or digits.dtype != np.uint8:
        raise ValueError(f"digits must be uint8 [N,H,W], got {digits.dtype} {digits.shape}")
    photos = list(backgrounds.values()) if isinstance(backgrounds, dict) else list(backgrounds)
    if not photos:
        raise ValueError("no background photos given; pass tlcourse.data.photos()")
    n, h, w = digits.shape
    for p in photos:
        if p.ndim != 3 or p.shape[2] != 3 or p.shape[0] < h or p.shape[1] < w:
            raise ValueError(f"every background must be RGB [H,W,3] at least {h}x{w}, got {p.shape}")
    rng = np.random.default_rng(seed)
    which = rng.integers(len(photos), size=n)  # [N] photo per digit
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        photo = photos[which[i]]
        top = rng.integers(photo.shape[0] - h + 1)
        left = rng.integers(photo.shape[1] - w + 1)
        patch = photo[top : top + h, left : left + w].astype(np.int16)  # [h,w,3]
        out[i] = np.abs(patch - digits[i][..., None].astype(np.int16)).astype(np.uint8)  # [h,w,3]
    return out


def upscale_uci(images: np.ndarray, size: int = 28) -> np.ndarray:
    """UCI 8x8 digits (0..16) -> uint8 [N,size,size] in 0..255, bilinear upscaling (the whole frame, as in UCI)."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be [N,H,W], got shape {images.shape}")
    x = torch.as_tensor(images, dtype=torch.float32)[:, None] * (255.0 / 16.0)  # [N,1,8,8]
    x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)  # [N,1,size,size]
    return x[:, 0].clamp(0, 255).round().to(torch.uint8).numpy()


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images [N,H,W] (grey, repeated to RGB) or [N,H,W,3] -> float tensor [N,3,H,W] in 0..1."""
    x = torch.as_tensor(np.asarray(images))
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}")
    if x.ndim == 3:
        x = x[..., None].expand(*x.shape, 3)  # [N,H,W,3]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected [N,H,W] or [N,H,W,3] images, got shape {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div(255.0).contiguous()  # [N,3,H,W]


class SplitNet(nn.Module):
    """A classifier in two named parts, encoder -> head, so DANN can read the features in between."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B,C] for inputs x."""
        return self.head(self.encoder(x))  # [B,C]


def digit_cnn(num_classes: int = 10) -> SplitNet:
    """Small CPU-friendly CNN for 3x28x28 digits (the DANN paper's MNIST net + BatchNorm): 768-d conv features."""
    encoder = nn.Sequential(
        nn.Conv2d(3, 32, 5),  # [B,32,24,24]
        nn.BatchNorm2d(32),
        nn.MaxPool2d(2),  # [B,32,12,12]
        nn.ReLU(),
        nn.Conv2d(32, 48, 5),  # [B,48,8,8]
        nn.BatchNorm2d(48),
        nn.Dropout2d(0.1),
        nn.MaxPool2d(2),  # [B,48,4,4]
        nn.ReLU(),
        nn.Flatten(),  # [B,768]
    )
    head = nn.Sequential(nn.Linear(768, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, num_classes))
    return SplitNet(encoder, head)


FEATURE_DIM = 768  # digit_cnn's encoder output size


def standardize(x: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """Per-channel standardisation of images [N,3,H,W] with the mean/std of `reference` (default: x itself).

    Each domain is standardised with its own statistics (no labels needed): a cheap first step against shift.
    """
    ref = x if reference is None else reference
    if x.ndim != 4 or ref.ndim != 4 or x.shape[1] != ref.shape[1]:
        raise ValueError(f"expected images [N,C,H,W] with matching C, got {tuple(x.shape)} and {tuple(ref.shape)}")
    mean = ref.mean(dim=(0, 2, 3), keepdim=True)  # [1,C,1,1]
    std = ref.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-6)  # [1,C,1,1]
    return (x - mean) / std  # [N,C,H,W]


@torch.no_grad()
def encode(encoder: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Features [N,F] of inputs x [N,...] from an encoder in eval mode, batch by batch."""
    encoder.eval()
    device = next(encoder.parameters()).device
    return torch.cat([encoder(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
