"""What BatchNorm layers do while a pretrained network is fine-tuned: pinned, batch statistics, or re-estimated.

    batchnorm.pin_batchnorm(model)                  # every BatchNorm keeps its ImageNet statistics (eval mode)
    batchnorm.set_batchnorm(model, "target", x)     # re-estimate on the training images, then pin (AdaBN)

With a few hundred small images, batch statistics of 32 of them would overwrite the running statistics the weights
were trained with; lesson 02 measures each choice (`BN_MODES`). Pinning is a forward pre-hook, so it survives fit()'s
model.train(); the layers' scale and shift still train if they require gradients.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from tlcourse import features


def _pin_eval(module: nn.Module, _inputs) -> None:
    module.eval()  # a frozen BatchNorm keeps normalising with its ImageNet running statistics


def pin_layer(bn: nn.Module) -> None:
    """Keep one BatchNorm layer in eval mode whatever mode its model is put in (what `finetune.freeze` does)."""
    if not hasattr(bn, "_tl_pin"):
        bn._tl_pin = bn.register_forward_pre_hook(_pin_eval)


def unpin_layer(bn: nn.Module, training: bool) -> None:
    """Undo `pin_layer`: the layer follows its model's train()/eval() again, starting in mode `training`."""
    if hasattr(bn, "_tl_pin"):
        bn._tl_pin.remove()
        del bn._tl_pin
        bn.train(training)


def _all_batchnorm_eval(model: nn.Module, _inputs) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def pin_batchnorm(model: nn.Module, pinned: bool = True) -> None:
    """Keep every BatchNorm layer of `model` in eval mode (pinned=True), even when fit() calls model.train().

    The layers then normalise with their ImageNet running statistics and never update them; their scale and shift
    still train if they require gradients. pinned=False undoes it (a randomly initialised network needs batch statistics).
    """
    if pinned and not hasattr(model, "_tl_bn_pin"):
        model._tl_bn_pin = model.register_forward_pre_hook(_all_batchnorm_eval)
    elif not pinned and hasattr(model, "_tl_bn_pin"):
        model._tl_bn_pin.remove()
        del model._tl_bn_pin
        model.train(model.training)  # BatchNorm layers follow the model's mode again


BN_MODES = {
    "pinned": "ImageNet running statistics, never updated (eval mode throughout)",
    "train": "batch statistics while training, running statistics updated (PyTorch's default; fastai's train_bn)",
    "target": "statistics re-estimated on the training images once before training, then pinned (AdaBN)",
}


def set_batchnorm(model: nn.Module, mode: str | None, images: np.ndarray | None = None, size: int = 64) -> None:
    """What the BatchNorm layers of trainable stages do while training: one of BN_MODES, or None (leave the recipe's).

    "target" needs the training `images` (uint8 [N,H,W]). Stages a recipe froze keep their statistics in every mode.
    """
    if mode is None:
        return
    if mode not in BN_MODES:
        raise ValueError(f"unknown BatchNorm mode {mode!r}; choose from {list(BN_MODES)} (or None for the recipe's)")
    pin_batchnorm(model, False)
    if mode == "train":
        return
    if mode == "target":
        if images is None:
            raise ValueError('bn="target" needs the training images to estimate the statistics on')
        free = [
            m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and not hasattr(m, "_tl_pin")
        ]
        if free:
            features.reestimate_batchnorm(model, np.asarray(images), size, layers=free)  # frozen stages keep theirs
    pin_batchnorm(model)
