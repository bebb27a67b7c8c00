"""Saving and loading a fine-tuned image model: safetensors, written atomically, damaged files answered in one line.

    path = checkpoints.save_model(model, "models/best.safetensors")
    model = checkpoints.load_model(path, num_classes=10)       # a fresh EfficientNet-Lite with those weights

(Text models are saved as transformers folders by `text_models.save_model`.)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from tlcourse import config, models
from tlcourse.files import atomic_file


def save_model(model: nn.Module, path: str | Path) -> Path:
    """Save a model's state dict as safetensors, atomically (temp file + rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_file(path) as tmp:
        save_file(state, tmp)
    return path


def load_model(path: str | Path, num_classes: int = 10, variant: str = "lite0",
               device: torch.device | str | None = None) -> nn.Module:  # fmt: skip
    """A fresh EfficientNet-Lite with the weights of a `save_model` file (strict; eval mode), on `device` (default
    `config.get_device()`). A damaged or foreign file is answered in one line with what to do."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}; run the cell that calls checkpoints.save_model first")
    model = models.load_efficientnet(variant, pretrained=False, num_classes=num_classes)
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except Exception as e:  # a bad safetensors header, or weights of another model/number of classes
        first = " ".join(str(e).split())[:200]
        raise RuntimeError(f"the saved model at {path} does not load into EfficientNet-{variant} with {num_classes} "
                           f"classes ({type(e).__name__}: {first}); if it is damaged, delete it and run the cell that "
                           "calls checkpoints.save_model again") from e  # fmt: skip
    return model.eval().to(config.get_device() if device is None else torch.device(device))
