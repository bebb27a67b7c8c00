"""LoRA by hand: a low-rank update B @ A added beside a frozen nn.Linear, and helpers to wrap a whole model.

    y = W x + b + (alpha / r) * B (A dropout(x))      W: [out,in] frozen, A: [r,in] random, B: [out,r] zeros

B starts at zero, so a freshly wrapped model computes exactly what the base model computes; training moves only
A, B (and whatever head you leave trainable). merge() folds the update into W for inference at no extra cost.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable rank-r update scaled by alpha / r."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if not isinstance(r, int) or r < 1:
            raise ValueError(f"rank r must be a positive int, got {r!r}")
        self.base, self.r, self.scaling = base, r, alpha / r
        self.base.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))  # [r,in]
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))  # [out,r]: zero, so the update starts at 0
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # same init as nn.Linear (and peft)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """base(x) + scaling * x A^T B^T, for x [..., in] -> [..., out]."""
        update = self.dropout(x) @ self.lora_A.T @ self.lora_B.T  # [...,in] -> [...,r] -> [...,out]
        return self.base(x) + self.scaling * update

    def delta_weight(self) -> torch.Tensor:
        """The dense update scaling * B @ A, shaped like the base weight [out,in]."""
        return self.scaling * self.lora_B @ self.lora_A  # [out,r] @ [r,in] -> [out,in]

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain nn.Linear whose weight is W + scaling * B A: same outputs, no adapter left."""
        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        merged.to(self.base.weight.device, self.base.weight.dtype)
        merged.weight.copy_(self.base.weight + self.delta_weight())
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
        return merged

    def extra_repr(self) -> str:
        return f"r={self.r}, scaling={self.scaling:g}"


def _matches(name: str, patterns: list[str]) -> bool:
    """True when a module name ends with one of `patterns` as whole dotted parts, or matches it as a regex."""
    return any(name == p or name.endswith("." + p) or re.fullmatch(p, name) for p in patterns)


def _set_child(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def add_lora(
    model: nn.Module,
    targets: list[str] | tuple[str, ...] = ("query", "value"),
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    trainable: list[str] | tuple[str, ...] = ("classifier",),
) -> list[str]:
    """Freeze `model`, wrap every nn.Linear whose name matches `targets` in LoRALinear, unfreeze `trainable` modules.

    Names match by their last dotted parts ("query" matches "bert.encoder.layer.0.attention.self.query") or as a
    full regex. Returns the wrapped module names; raises ValueError when nothing matched.
    """
    targets, trainable = list(targets), list(trainable)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, targets)]
    if not names:
        linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        raise ValueError(f"no nn.Linear matched targets {targets}; linear layers look like {linear[:4]}")
    model.requires_grad_(False)
    for name in names:
        _set_child(model, name, LoRALinear(model.get_submodule(name), r=r, alpha=alpha, dropout=dropout))
    for name, module in model.named_modules():
        if trainable and _matches(name, trainable):
            module.requires_grad_(True)
    return names


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear in `model` (in place) by its merged nn.Linear; returns the model."""
    for name in [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]:
        _set_child(model, name, model.get_submodule(name).merge())
    return model


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the trainable tensors (LoRA A/B and the unfrozen head): all a task needs on top of the shared base."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
