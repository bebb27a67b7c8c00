"""Pretrained models from the local asset cache: ImageNet EfficientNet-Lite (timm) and MiniLM (transformers).

Nothing here touches a model hub: weights come from `tlcourse.assets`, verified by sha256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from tlcourse import assets

EFFICIENTNET = {  # variant -> (timm architecture, asset name, weight file, native input size)
    "lite0": ("tf_efficientnet_lite0", "efficientnet_lite0", "efficientnet-lite0.pth", 224),
    "lite1": ("tf_efficientnet_lite1", "efficientnet_lite1", "efficientnet-lite1.pth", 240),
    "lite2": ("tf_efficientnet_lite2", "efficientnet_lite2", "efficientnet-lite2.pth", 260),
}
# The TF Lite checkpoints expect RGB in 0..255 mapped by (x - 127) / 128; on 0..1 tensors that is:
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


def rename_lite_keys(state: dict[str, torch.Tensor], timm_keys: list[str]) -> dict[str, torch.Tensor]:
    """Map the converted checkpoint's `_blocks.i._expand_conv...` names onto timm's `blocks.S.K.conv_pw...` names."""
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    # timm's blocks in order: "blocks.S.K" prefixes, in the order they first appear in its state dict
    block_names = list(dict.fromkeys(".".join(k.split(".")[:3]) for k in timm_keys if k.startswith("blocks.")))
    expanded = {b for b in block_names if f"{b}.conv_pw.weight" in timm_keys and f"{b}.conv_pwl.weight" in timm_keys}
    with_exp = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                "_project_conv": "conv_pwl", "_bn2": "bn3"}  # fmt: skip
    without = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            block = block_names[int(parts[1])]
            table = with_exp if block in expanded else without
            out[".".join([block, table[parts[2]], *parts[3:]])] = value
        else:
            out[".".join([top[parts[0]], *parts[1:]])] = value
    return out


def load_efficientnet(variant: str = "lite0", pretrained: bool = True, num_classes: int | None = None) -> nn.Module:
    """A timm EfficientNet-Lite with ImageNet weights loaded strictly from the cache (eval mode).

    num_classes=None keeps the 1000-way ImageNet head; an int replaces it with a fresh head of that size.
    """
    import timm

    if variant not in EFFICIENTNET:
        raise ValueError(f"unknown EfficientNet variant {variant!r}; choose one of {list(EFFICIENTNET)}")
    arch, asset, fname, _ = EFFICIENTNET[variant]
    model = timm.create_model(arch, pretrained=False)
    if pretrained:
        state = torch.load(assets.path(asset) / fname, map_location="cpu", weights_only=True)
        model.load_state_dict(rename_lite_keys(state, list(model.state_dict())), strict=True)
    if num_classes is not None:
        model.reset_classifier(num_classes)
    return model.eval()


def lite_transform(size: int = 224, train: bool = False):
    """torchvision transform for PIL/uint8 images: resize, (augment), to tensor, EfficientNet-Lite normalisation."""
    from torchvision import transforms as T

    aug = [T.RandomResizedCrop(size, scale=(0.7, 1.0)), T.RandomHorizontalFlip()] if train else [
        T.Resize(size), T.CenterCrop(size)]  # fmt: skip
    return T.Compose([T.ToPILImage(), *aug, T.ToTensor(), T.Normalize(LITE_MEAN, LITE_STD)])


def to_lite_input(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images [N,H,W] (grey) or [N,H,W,3] (RGB) -> float tensor [N,3,size,size] normalised for EfficientNet-Lite."""
    x = torch.as_tensor(np.array(images, copy=True))  # a writable copy: inputs may be read-only buffers
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images in 0..255, got {x.dtype}; tlcourse.own_data.to_uint8(x) scales them "
                        "by their own range (1 for 0..1 data, else the data's maximum)")  # fmt: skip
    if x.ndim == 3:  # grey [N,H,W] -> [N,H,W,3]
        x = x.unsqueeze(-1).expand(*x.shape, 3)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images shaped [N,H,W] or [N,H,W,3], got {list(x.shape)}")
    if len(x) == 0:
        raise ValueError("no images: the batch is empty")
    x = x.permute(0, 3, 1, 2).float()  # [N,3,H,W], 0..255
    x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x - 127.0) / 128.0  # [N,3,size,size]


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names, offline (from torchvision's weight metadata, no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


@torch.no_grad()
def topk(model: nn.Module, images: np.ndarray, k: int = 5, size: int = 224) -> list[list[tuple[str, float]]]:
    """ImageNet top-k (class name, probability) for each uint8 RGB image (a list of [H,W,3] arrays)."""
    names = imagenet_classes()
    model.eval()
    device = next(model.parameters()).device
    out = []
    for img in images:
        probs = model(to_lite_input(np.asarray(img)[None], size).to(device)).softmax(-1)[0].cpu()  # [1000]
        p, i = probs.topk(k)
        out.append([(names[j], float(q)) for q, j in zip(p.tolist(), i.tolist(), strict=True)])
    return out


def minilm_path() -> Path:
    """Local folder with the MiniLM config, safetensors weights and tokenizer (verified)."""
    return assets.path("minilm")


def load_minilm(num_labels: int | None = None, name: str | None = None):
    """(tokenizer, model) for MiniLM from the local cache; num_labels adds a fresh classification head.

    `name` may be a Hugging Face hub id (e.g. "bert-base-uncased") for learners online, or a local folder; the default
    never touches the hub (local files only, no network retries). A name that is neither cached nor downloadable
    raises `hub.ModelUnavailable` within seconds, in one line (see `tlcourse.hub`).
    """
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from tlcourse import hub

    local = name is None
    src, kwargs = (str(minilm_path()), {"local_files_only": True}) if local else hub.text_source(name)
    tok = AutoTokenizer.from_pretrained(src, **kwargs)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected: we say so in the lesson
    try:
        if num_labels is None:
            model = AutoModel.from_pretrained(src, **kwargs)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=num_labels, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    return tok, model
