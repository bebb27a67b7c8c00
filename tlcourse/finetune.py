"""Fine-tuning recipes for a timm EfficientNet: stages, freezing, optimizer parameter groups, and safe checkpoints.

Each recipe is a short, explicit function returning a `Recipe`: optimizer parameter groups with their real (peak)
learning rates (no hidden multipliers) and, for progressive unfreezing, the schedule that `fit(..., on_epoch_end=...)`
applies. Every recipe on a pretrained network keeps BatchNorm in eval mode (`pin_batchnorm`): with a few hundred small
grey images, batch statistics of 32 images would overwrite the ImageNet running statistics the weights were trained with.
`train_strategy` adds what every run shares: AdamW, a short linear warm-up then a cosine decay of every group's rate
(`warmup_cosine`: transformers' schedule), label smoothing and light augmentation.
LP-FT starts instead from lesson 01's fitted probe (`tlcourse.lpft`); trained models are saved with `tlcourse.checkpoints`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import config, features, hub, models
from tlcourse.batchnorm import pin_batchnorm, pin_layer, set_batchnorm, unpin_layer
from tlcourse.train import count_parameters, evaluate, fit, predict

# peak learning rates used by the lesson's recipes, written out in full (AdamW)
HEAD_LR = 3e-3  # the fresh, randomly initialised linear classifier
FULL_LR = 3e-4  # one rate for every pretrained layer (full fine-tuning)
SCRATCH_LR = 3e-3  # a randomly initialised network needs a large rate
WARMUP = 0.1  # fraction of the training steps spent ramping every rate up from 0 (then cosine decay to 0)
LABEL_SMOOTHING = 0.1  # targets 0.91 for the true class, 0.01 for the others: discourages over-confident fits
DISCRIMINATIVE_LRS = {  # ×0.7 per stage from the head down: generic edges/textures move least (rule of exercise 2.1)
    "stem": 5.8e-5,
    "block0": 8.2e-5,
    "block1": 1.2e-4,
    "block2": 1.7e-4,
    "block3": 2.4e-4,
    "block4": 3.4e-4,
    "block5": 4.9e-4,
    "block6": 7.0e-4,
    "head": 1.0e-3,
    "classifier": 3e-3,  # the fresh classifier, at HEAD_LR
}
PROGRESSIVE_SCHEDULE = {  # epoch -> stages unfrozen at the start of that epoch (the classifier trains from epoch 0)
    0: ["classifier"],
    1: ["head", "block6", "block5", "block4"],
    2: ["block3", "block2", "block1", "block0", "stem"],
}


def stages(model: nn.Module) -> dict[str, list[nn.Module]]:
    """The EfficientNet's parts, input to output: stem, block0..block6 (model.blocks), head (conv_head+bn2), classifier."""
    for attr in ("conv_stem", "bn1", "blocks", "conv_head", "bn2", "classifier"):
        if not hasattr(model, attr):
            raise TypeError(f"expected a timm EfficientNet (models.load_efficientnet); it has no .{attr}")
    parts = [[model.conv_stem, model.bn1], *([block] for block in model.blocks), [model.conv_head, model.bn2]]
    out = dict(zip(features.stage_names(model), parts, strict=True))  # the names lesson 01 uses
    out["classifier"] = [model.classifier]
    return out


def stage_params(model: nn.Module, name: str) -> list[nn.Parameter]:
    """All parameters of one named stage (see `stages`)."""
    parts = stages(model)
    if name not in parts:
        raise ValueError(f"unknown stage {name!r}; choose from {list(parts)}")
    return [p for m in parts[name] for p in m.parameters()]


def freeze(modules: list[nn.Module]) -> None:
    """Freeze modules: no gradients, and their BatchNorm layers stay in eval mode even when fit() calls model.train()."""
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                pin_layer(m)


def unfreeze(modules: list[nn.Module]) -> None:
    """Undo `freeze`: parameters get gradients again and BatchNorm layers follow model.train()/eval() again."""
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(True)
        for m in module.modules():
            unpin_layer(m, module.training)


def _named_stages(model: nn.Module, names: list[str]) -> list[nn.Module]:
    parts = stages(model)
    unknown = [n for n in names if n not in parts]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; choose from {list(parts)}")
    return [parts[n] for n in names]


def freeze_stages(model: nn.Module, names: list[str]) -> None:
    """Freeze the named stages of an EfficientNet (see `stages`)."""
    for part in _named_stages(model, names):
        freeze(part)


def unfreeze_stages(model: nn.Module, names: list[str]) -> None:
    """Unfreeze the named stages of an EfficientNet (see `stages`)."""
    for part in _named_stages(model, names):
        unfreeze(part)


@dataclass
class Recipe:
    """A fine-tuning strategy: optimizer parameter groups (each with a real `lr`) and an optional per-epoch hook."""

    name: str
    groups: list[dict]
    on_epoch_end: Callable[[int, nn.Module], None] | None = None
    log: list[str] = field(default_factory=list)

    def optimizer(self, weight_decay: float = 0.01) -> torch.optim.AdamW:
        """AdamW over this recipe's parameter groups."""
        return torch.optim.AdamW(self.groups, weight_decay=weight_decay)

    def table(self) -> list[tuple[str, float, int, bool]]:
        """(group, lr, #params, trainable now) per group, for printing."""
        return [(g["name"], g["lr"], sum(p.numel() for p in g["params"]), any(p.requires_grad for p in g["params"]))
                for g in self.groups]  # fmt: skip


def head_only(model: nn.Module, lr: float = HEAD_LR) -> Recipe:
    """Freeze everything but the new classifier; train it alone (feature extraction, trained end to end)."""
    names = list(stages(model))
    freeze_stages(model, names[:-1])
    unfreeze_stages(model, ["classifier"])
    pin_batchnorm(model)
    return Recipe("head only", [{"name": "classifier", "params": stage_params(model, "classifier"), "lr": lr}])


def full(model: nn.Module, lr: float = FULL_LR, head_lr: float = HEAD_LR) -> Recipe:
    """Unfreeze everything: one rate for the whole pretrained network, the head's rate for the new classifier."""
    names = list(stages(model))
    unfreeze_stages(model, names)
    pin_batchnorm(model)
    backbone = [p for n in names[:-1] for p in stage_params(model, n)]
    return Recipe("full", [{"name": "pretrained", "params": backbone, "lr": lr},
                           {"name": "classifier", "params": stage_params(model, "classifier"), "lr": head_lr}])  # fmt: skip


def scratch(model: nn.Module, lr: float = SCRATCH_LR) -> Recipe:
    """Train a randomly initialised network (load it with pretrained=False): everything, one large learning rate.

    Its BatchNorm layers learn their statistics from the batches: random running statistics mean nothing.
    """
    unfreeze_stages(model, list(stages(model)))
    pin_batchnorm(model, False)
    return Recipe("random init", [{"name": "all", "params": list(model.parameters()), "lr": lr}])


def discriminative(model: nn.Module, lrs: dict[str, float] | None = None) -> Recipe:
    """Unfreeze everything; one parameter group per stage with its own learning rate (lower for early stages)."""
    lrs = dict(DISCRIMINATIVE_LRS if lrs is None else lrs)
    names = list(stages(model))
    if sorted(lrs) != sorted(names):
        raise ValueError(f"give one learning rate per stage: {names}")
    unfreeze_stages(model, names)
    pin_batchnorm(model)
    return Recipe("discriminative LRs", [{"name": n, "params": stage_params(model, n), "lr": lrs[n]} for n in names])


class ProgressiveUnfreezing:
    """on_epoch_end hook: after epoch e, unfreeze the stages that `schedule` lists for epoch e + 1."""

    def __init__(self, schedule: dict[int, list[str]], log: list[str] | None = None):
        self.schedule, self.log = schedule, log if log is not None else []

    def __call__(self, epoch: int, model: nn.Module) -> None:
        names = self.schedule.get(epoch + 1, [])
        if names:
            unfreeze_stages(model, names)
            self.log.append(
                f"after epoch {epoch + 1}: unfroze {', '.join(names)} ({count_parameters(model)[0]:,} trainable)"
            )


def progressive(model: nn.Module, lrs: dict[str, float] | None = None,
                schedule: dict[int, list[str]] | None = None) -> Recipe:  # fmt: skip
    """Discriminative learning rates, but stages start frozen and thaw from the top down as `schedule` says."""
    schedule = PROGRESSIVE_SCHEDULE if schedule is None else schedule
    recipe = discriminative(model, lrs)  # every stage is in the optimizer; frozen ones simply get no gradient
    names = list(stages(model))
    listed = [n for epoch in sorted(schedule) for n in schedule[epoch]]
    if sorted(listed) != sorted(names):
        raise ValueError(f"the schedule must list every stage exactly once: {names}")
    freeze_stages(model, [n for n in names if n not in schedule.get(0, [])])
    recipe.name, recipe.on_epoch_end = "progressive unfreezing", ProgressiveUnfreezing(schedule, recipe.log)
    return recipe


RECIPES = {"head only": head_only, "full": full, "discriminative LRs": discriminative,
           "progressive unfreezing": progressive, "random init": scratch}  # fmt: skip


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int,
                  warmup: float = WARMUP) -> torch.optim.lr_scheduler.LambdaLR:  # fmt: skip
    """The recipe's schedule: transformers' `get_cosine_schedule_with_warmup`, with the linear warm-up over the first
    `warmup` fraction of `total_steps`, then a cosine down to 0 at the last step. Every group's rate gets the same
    factor (their ratios are kept). Step it once per batch (fit does)."""
    from transformers import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(optimizer, max(1, round(warmup * total_steps)), total_steps)


def _shift_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translation by up to `pad` pixels and random horizontal flip of uint8 images [B,H,W] or [B,H,W,3]."""
    rgb = x.ndim == 4
    if rgb:
        x = x.permute(0, 3, 1, 2)  # [B,3,H,W]: pad and crop the last two dimensions
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    padded = nn.functional.pad(x, (pad, pad, pad, pad))  # [B,(3,)H+2p,W+2p], zero (black) border like the data
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b), generator=gen).tolist()
    out = torch.stack([padded[i, ..., dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])  # [B,(3,)H,W]
    flip = torch.rand(b, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    return out.permute(0, 2, 3, 1).contiguous() if rgb else out


def image_loader(images: np.ndarray, labels: np.ndarray, size: int, batch_size: int = 32, shuffle: bool = False,
                 augment: bool = False, seed: int = 0) -> DataLoader:  # fmt: skip
    """Batches (x [B,3,size,size], y [B]) from uint8 images [N,H,W] (grey) or [N,H,W,3] (RGB): resized per batch,
    optionally augmented.

    x is stored channels_last (the 3 channels of a pixel side by side), the layout CPU convolutions run fastest on.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        raise TypeError(f"expected uint8 images [N,H,W] or [N,H,W,3], got {images.dtype} {list(images.shape)}; "
                        "tlcourse.own_data.to_uint8 converts other arrays")  # fmt: skip
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    gen = torch.Generator().manual_seed(seed)

    def collate(batch):
        x = torch.stack([b[0] for b in batch])  # [B,H,W] or [B,H,W,3] uint8
        y = torch.stack([b[1] for b in batch])  # [B]
        if augment:
            x = _shift_flip(x, gen)
        x = models.to_lite_input(x.numpy(), size)  # [B,3,size,size]
        return x.contiguous(memory_format=torch.channels_last), y  # same values, channels_last layout

    ds = TensorDataset(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=gen)


def train_strategy(name: str, train_data: tuple[np.ndarray, np.ndarray], val_data: tuple[np.ndarray, np.ndarray] | None, *,
                   size: int = 64, epochs: int = 5, batch_size: int = 32, augment: bool = True, lr: float | None = None,
                   warmup: float = WARMUP, label_smoothing: float = LABEL_SMOOTHING, seed: int = 0,
                   max_steps_per_epoch: int | None = None, test_data: tuple[np.ndarray, np.ndarray] | None = None,
                   bn: str | None = None, num_classes: int | None = None, model_name: str = "lite0",
                   progress: bool = True) -> tuple[nn.Module, dict, Recipe]:  # fmt: skip
    """Load Lite0 (ImageNet, or random for "random init"), apply recipe `name`, train with fit(); (model, history, recipe).

    `train_data` is (uint8 images [N,H,W] or [N,H,W,3], labels 0..C−1), e.g. from `own_data.image_folder`; the new head
    has `num_classes` outputs (default: the largest training label + 1).

    `model_name`: the shipped "lite0" (lesson 02), or a bigger timm EfficientNet by name when online, e.g.
    "tf_efficientnet_lite4" (`hub.image_model`; offline and not cached: a one-line `hub.ModelUnavailable`).

    `val_data` (or None) is scored before training (history["val_acc_start"]) and after every epoch (the learning
    curves: history["val_loss"], ["val_acc"]); `test_data`, if given, once after the last epoch (history["test_loss"],
    ["test_acc"] floats, ["test_pred"] the predicted labels): a small validation set keeps the curves cheap, a large
    test set keeps the final comparison precise.

    Every strategy shares the rest of the recipe: AdamW (weight decay 0.01), `warmup_cosine` over all the steps,
    cross-entropy with `label_smoothing`, and (augment=True) random 2-pixel shifts and horizontal flips.
    `lr` overrides the rate of the pretrained layers for "full", and the single rate of "head only" and "random init"
    (e.g. to show a bad one). `bn` chooses what BatchNorm does (see `set_batchnorm`); None keeps the recipe's choice.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown strategy {name!r}; choose from {list(RECIPES)}")
    if lr is not None and name in ("discriminative LRs", "progressive unfreezing"):
        raise ValueError(f"{name!r} has one rate per stage: change finetune.DISCRIMINATIVE_LRS instead of lr=")
    torch.manual_seed(seed)  # the same fresh head (and the same random init) for every strategy
    if len(train_data[0]) == 0 or len(train_data[0]) != len(train_data[1]):
        raise ValueError(f"train_data needs as many images as labels, and some: got {len(train_data[0])} images, "
                         f"{len(train_data[1])} labels")  # fmt: skip
    num_classes = int(np.max(train_data[1])) + 1 if num_classes is None else num_classes
    model = hub.image_model(model_name, pretrained=name != "random init", num_classes=num_classes)
    recipe = RECIPES[name](model) if lr is None else RECIPES[name](model, lr)
    set_batchnorm(model, bn, train_data[0], size)
    history = _train(model, recipe, train_data, val_data, size, epochs, batch_size, augment, warmup, label_smoothing,
                     seed, max_steps_per_epoch, test_data, progress)  # fmt: skip
    return model.eval(), history, recipe


def _train(model: nn.Module, recipe: Recipe, train_data, val_data, size, epochs, batch_size, augment, warmup,
           label_smoothing, seed, max_steps_per_epoch, test_data, progress) -> dict:  # fmt: skip
    """The part every strategy shares: channels_last, loaders, AdamW, warm-up + cosine, label smoothing, fit(), and
    (test_data given) one final score on the test images."""
    # same weights; convolutions run faster in this layout. On config.get_device() (a GPU when there is one) from the
    # start, so the epoch-0 score and the test score run there too.
    model = model.to(config.get_device(), memory_format=torch.channels_last)
    train_loader = image_loader(*train_data, size, batch_size, shuffle=True, augment=augment, seed=seed)
    val_loader = None if val_data is None else image_loader(*val_data, size, batch_size=200)
    optimizer = recipe.optimizer()
    steps = len(train_loader) if max_steps_per_epoch is None else min(len(train_loader), max_steps_per_epoch)
    loss_fn = functools.partial(nn.functional.cross_entropy, label_smoothing=label_smoothing)
    start = None if val_loader is None else evaluate(model, val_loader, loss_fn=loss_fn)  # epoch 0: before training
    history = fit(model, train_loader, val_loader, epochs=epochs, optimizer=optimizer,
                  scheduler=warmup_cosine(optimizer, epochs * steps, warmup), loss_fn=loss_fn,
                  on_epoch_end=recipe.on_epoch_end, max_steps_per_epoch=max_steps_per_epoch, progress=progress,
                  desc=recipe.name)  # fmt: skip
    if start is not None:
        history["val_loss_start"], history["val_acc_start"] = start["loss"], start["acc"]
    if test_data is not None:
        logits, labels = predict(model, image_loader(*test_data, size, batch_size=200))
        history["test_loss"] = float(loss_fn(logits, labels))
        history["test_pred"] = logits.argmax(1).numpy()  # [N_test] for paired comparisons on the same test images
        history["test_acc"] = float((logits.argmax(1) == labels).float().mean())
    return history
