"""The pretrained sources lesson 06 chooses among, behind one interface: features and ImageNet logits of uint8 images.

    src = load_source("mobilenet_v2")                       # .backbone: [B,3,S,S] -> [B,1280], .imagenet_head
    out = outputs(src, images, size=112)                    # {"features": [N,1280], "logits": [N,1000]}
    out = cached_outputs("lite1", "textile", images, 112)   # extracted once, then read from data/cache/features
    hist = fine_tune("lite0", (x_train, y_train), (x_test, y_test), size=112, epochs=6)

Every source takes the same input tensor, `models.to_lite_input` (uint8 -> [B,3,S,S], (x − 127) / 128). MobileNetV2
was trained on torchvision's normalisation (ImageNet mean and std), so its first layer converts to it: each network
sees exactly the kind of input it was trained on, and loaders, caches and fine-tuning are shared. All five give
1,280 pooled features from their last convolution (global average pooling), so the feature width is the same for all.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tlcourse import assets, config, finetune, models
from tlcourse.config import data_dir
from tlcourse.files import atomic_file
from tlcourse.train import fit, predict

SOURCES = {  # name -> (title, native input size of its ImageNet training)
    "lite0": ("EfficientNet-Lite0", 224),
    "lite1": ("EfficientNet-Lite1", 240),
    "lite2": ("EfficientNet-Lite2", 260),
    "mobilenet_v2": ("MobileNetV2", 224),
    "random": ("EfficientNet-Lite0, random init", 224),  # the floor: the architecture without ImageNet training
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's normalisation
OUTPUTS_VERSION = 1  # bump when `outputs` changes what it computes: old cache files are then ignored


class LiteToImageNet(nn.Module):
    """Turn EfficientNet-Lite inputs ((x − 127) / 128 of 0..255 pixels) into torchvision's ImageNet normalisation."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels01 = (x * 128.0 + 127.0) / 255.0  # [B,3,H,W] back to 0..1
        return (pixels01 - self.mean) / self.std  # [B,3,H,W]


@dataclass
class Source:
    """A pretrained network split in two: backbone (inputs -> pooled features) and its ImageNet classifier."""

    name: str
    title: str
    native_size: int
    backbone: nn.Module  # [B,3,S,S] (models.to_lite_input) -> [B,1280]
    imagenet_head: nn.Linear  # [B,1280] -> [B,1000] ImageNet logits

    def n_params(self) -> int:
        """Parameters of the backbone and the ImageNet head together."""
        return sum(p.numel() for m in (self.backbone, self.imagenet_head) for p in m.parameters())


def load_source(name: str, seed: int = 0, device: torch.device | str | None = None) -> Source:
    """One of SOURCES, in eval mode on `device` (default `config.get_device()`); "random" is a seeded random init.

    A random init keeps BatchNorm's initial statistics (mean 0, variance 1, so those layers pass activations through),
    as lesson 01's stored-statistics control did; its ImageNet head is random too, so LEEP and NCE see noise.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; choose from {list(SOURCES)}")
    title, native = SOURCES[name]
    torch.manual_seed(seed)
    if name == "mobilenet_v2":
        from torchvision.models import mobilenet_v2

        net = mobilenet_v2()
        state = torch.load(assets.path("mobilenet_v2") / "mobilenet_v2-b0353104.pth", map_location="cpu",
                           weights_only=True)  # fmt: skip
        net.load_state_dict(state, strict=True)
        backbone = nn.Sequential(LiteToImageNet(), net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        head = net.classifier[1]  # classifier = Dropout, Linear(1280, 1000)
    else:
        net = models.load_efficientnet("lite0" if name == "random" else name, pretrained=name != "random")
        head = copy.deepcopy(net.classifier)
        net.reset_classifier(0)  # the network now returns its pooled 1,280 features
        backbone = net
    device = config.get_device() if device is None else torch.device(device)
    for p in (*backbone.parameters(), *head.parameters()):
        p.requires_grad_(False)
    return Source(name, title, native, backbone.eval().to(device), head.eval().to(device))


@functools.lru_cache(maxsize=8)
def _frozen(name: str, seed: int) -> Source:
    """load_source, loaded once per process for extraction (frozen: nothing ever changes its weights)."""
    return load_source(name, seed)


@torch.no_grad()
def outputs(source: Source, images: np.ndarray, size: int, batch_size: int = 64,
            progress: bool = True) -> dict[str, np.ndarray]:  # fmt: skip
    """{"features": float32 [N,1280], "logits": float32 [N,1000]} of uint8 images [N,H,W] or [N,H,W,3] at size px.

    Frozen and in eval mode: BatchNorm normalises with the running statistics of the source's own training.
    """
    from tqdm.auto import tqdm

    if len(images) == 0:
        raise ValueError("no images given: nothing to extract")
    device = next(source.backbone.parameters()).device
    feats, logits = [], []
    for start in tqdm(range(0, len(images), batch_size), desc=f"{source.name} {size}px", disable=not progress,
                      leave=False):  # fmt: skip
        x = models.to_lite_input(images[start : start + batch_size], size).to(device)  # [B,3,size,size]
        f = source.backbone(x)  # [B,1280]
        feats.append(f.float().cpu().numpy())
        logits.append(source.imagenet_head(f).float().cpu().numpy())  # [B,1000]
    return {"features": np.concatenate(feats), "logits": np.concatenate(logits)}


def output_key(source: str, dataset: str, images: np.ndarray, size: int, seed: int = 0) -> dict:
    """Everything that changes a source's outputs on a dataset, the images' own bytes included (hashed)."""
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
    return {"source": source, "seed": seed if source == "random" else None, "dataset": dataset,
            "images": digest, "n": len(images), "size": int(size), "version": OUTPUTS_VERSION}  # fmt: skip


def _cache_file(key: dict) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return f"{key['dataset']}-{key['source']}-outputs-{key['size']}px-{digest}.safetensors"


def cached_outputs(source: str, dataset: str, images: np.ndarray, size: int, seed: int = 0,
                   progress: bool = True) -> tuple[dict[str, np.ndarray], float, bool]:  # fmt: skip
    """(`outputs` of source on images, seconds the extraction took, whether it was read from the cache).

    One safetensors file per (source, dataset, images, size) under data/cache/features; the key is stored inside it
    and compared on load, so changed images or settings are extracted again instead of served stale. The seconds of
    the extraction are stored with it, so a cost table reads the same whether or not this run extracted.
    """
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    key = output_key(source, dataset, images, size, seed)
    path = data_dir() / "features" / _cache_file(key)
    if path.is_file():
        try:
            with safe_open(str(path), framework="np") as f:
                meta = f.metadata()
            if meta.get("key") == json.dumps(key, sort_keys=True):
                return load_file(str(path)), float(meta["seconds"]), True
        except Exception:  # a corrupt or foreign file is recomputed, never trusted
            pass
    start = time.perf_counter()
    out = outputs(_frozen(source, seed), images, size, progress=progress)
    seconds = time.perf_counter() - start
    with atomic_file(path) as tmp:
        save_file(out, tmp, metadata={"key": json.dumps(key, sort_keys=True), "seconds": f"{seconds:.3f}"})
    return out, seconds, False


def fine_tune(source: str, train_data: tuple[np.ndarray, np.ndarray], *, size: int = 112, epochs: int = 6,
              lr: float = finetune.FULL_LR, batch_size: int = 16, seed: int = 0,
              progress: bool = True) -> tuple[nn.Module, dict]:  # fmt: skip
    """Fine-tune every layer of a source with a new linear head, as lesson 02's "full" recipe: AdamW at `lr` for the
    body and finetune.HEAD_LR for the head, warm-up then cosine decay, label smoothing, 2-pixel shifts and flips,
    BatchNorm pinned to the source's own statistics. Returns (model in eval mode, fit()'s history).
    """
    if source == "random":
        raise ValueError("fine-tuning the random init needs another recipe (lesson 02's 'random init'); pick a "
                         "pretrained source")  # fmt: skip
    src = load_source(source, seed)
    torch.manual_seed(seed)  # the same fresh head for every source
    n_classes = int(np.max(train_data[1])) + 1
    model = nn.Sequential(src.backbone, nn.Linear(1280, n_classes))
    for p in model.parameters():
        p.requires_grad_(True)
    finetune.pin_batchnorm(model)
    model = model.to(config.get_device(), memory_format=torch.channels_last)
    loader = finetune.image_loader(*train_data, size, batch_size, shuffle=True, augment=True, seed=seed)
    optimizer = torch.optim.AdamW([{"params": model[0].parameters(), "lr": lr},
                                   {"params": model[1].parameters(), "lr": finetune.HEAD_LR}], weight_decay=0.01)  # fmt: skip
    loss_fn = functools.partial(nn.functional.cross_entropy, label_smoothing=finetune.LABEL_SMOOTHING)
    history = fit(model, loader, epochs=epochs, optimizer=optimizer, loss_fn=loss_fn, progress=progress,
                  scheduler=finetune.warmup_cosine(optimizer, epochs * len(loader)), desc=f"fine-tune {source}")  # fmt: skip
    return model.eval(), history


def predict_images(model: nn.Module, images: np.ndarray, size: int = 112) -> np.ndarray:
    """Predicted labels [N] of a fine-tuned model on uint8 images, run where the model lives."""
    labels = np.zeros(len(images), dtype=np.int64)  # unused: the loader wants (x, y) pairs
    logits, _ = predict(model, finetune.image_loader(images, labels, size, batch_size=200))
    return logits.argmax(1).numpy()
