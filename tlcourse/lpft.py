"""LP-FT (linear probe, then fine-tune; Kumar et al. 2022): lesson 01's fitted stacked probe becomes the network's head.

    net, history, recipe = lpft.train_lp_ft(probe, (x, y), val_data)   # the same training as finetune.train_strategy

`ProbeNetwork` is the backbone up to the deepest probed stage with the probe (scaler + logistic regression) as one
trainable network; before any training its logits equal the probe's `decision_function`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tlcourse import features, models
from tlcourse.batchnorm import pin_batchnorm, set_batchnorm
from tlcourse.finetune import (
    DISCRIMINATIVE_LRS,
    LABEL_SMOOTHING,
    WARMUP,
    Recipe,
    _train,
    freeze_stages,
    stage_params,
    stages,
    unfreeze_stages,
)

LP_FT_HEAD_LR = 1e-4  # the probe's linear layer starts trained, so it moves slowly (1/30 of finetune.HEAD_LR)


class ProbeNetwork(nn.Module):
    """Lesson 01's stacked probe as one trainable network, for LP-FT (linear probe, then fine-tune; Kumar et al. 2022).

    The backbone runs up to the deepest probed stage; each probed stage is global-average-pooled by
    `features.pooled_stages` (with gradients), the vectors are concatenated, scaled by the probe's fitted
    StandardScaler (a fixed `features.Standardize`) and fed to a linear layer holding the fitted logistic regression's
    coefficients and intercepts. Before any training its logits equal the probe's `decision_function`.
    """

    def __init__(self, backbone: nn.Module, probe, stages: tuple[str, ...] = ("block3", "block4", "block5")):
        super().__init__()
        names = features.stage_names(backbone)
        if not stages or any(s not in names[1:-1] for s in stages):
            raise ValueError(f"probe stages must be blocks, from {names[1:-1]}; got {list(stages)}")
        scaler, logreg = probe[0], probe[-1]  # features.logistic_probe: StandardScaler, LogisticRegression
        self.backbone, self.stages = backbone, list(stages)
        self.depth = max(names.index(s) for s in stages)  # stages after this one are never run
        self.standardize = features.Standardize(torch.as_tensor(scaler.mean_, dtype=torch.float32),
                                                torch.as_tensor(scaler.scale_, dtype=torch.float32))  # fmt: skip
        self.linear = nn.Linear(logreg.coef_.shape[1], logreg.coef_.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(logreg.coef_))  # [classes, D]
            self.linear.bias.copy_(torch.as_tensor(logreg.intercept_))  # [classes]
        self.to(next(backbone.parameters()).device)  # the probe's parts join the backbone's device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = features.pooled_stages(self.backbone, x, self.stages, grad=True)  # {stage: [B,C_s]}
        z = torch.cat([pooled[s] for s in self.stages], dim=1)  # [B,D] the probe's features
        return self.linear(self.standardize(z))  # [B,classes]


def lp_ft(net: ProbeNetwork, lrs: dict[str, float] | None = None, head_lr: float = LP_FT_HEAD_LR) -> Recipe:
    """LP-FT: every stage under the probe at its discriminative rate, the probe's trained linear layer at `head_lr`.

    Stages above the deepest probed one are never run, so they stay frozen and out of the optimizer.
    """
    lrs = dict(DISCRIMINATIVE_LRS if lrs is None else lrs)
    names = list(stages(net.backbone))
    used = names[: net.depth + 1]  # stem .. deepest probed stage
    freeze_stages(net.backbone, names)
    unfreeze_stages(net.backbone, used)
    pin_batchnorm(net)
    groups = [{"name": n, "params": stage_params(net.backbone, n), "lr": lrs[n]} for n in used]
    return Recipe("LP-FT (lesson-01 probe)", [*groups, {"name": "probe", "params": list(net.linear.parameters()),
                                                         "lr": head_lr}])  # fmt: skip


def train_lp_ft(probe, train_data: tuple[np.ndarray, np.ndarray], val_data: tuple[np.ndarray, np.ndarray] | None, *,
                stages: tuple[str, ...] = ("block3", "block4", "block5"), size: int = 64, epochs: int = 5,
                batch_size: int = 32, augment: bool = True, warmup: float = WARMUP,
                label_smoothing: float = LABEL_SMOOTHING, seed: int = 0, max_steps_per_epoch: int | None = None,
                test_data: tuple[np.ndarray, np.ndarray] | None = None, bn: str | None = None,
                progress: bool = True) -> tuple[ProbeNetwork, dict, Recipe]:  # fmt: skip
    """LP-FT from a fitted lesson-01 probe on `stages` (features.logistic_probe): ImageNet Lite0 + the probe as
    `ProbeNetwork`, recipe `lp_ft`, then the same training as `train_strategy`; (network, history, recipe)."""
    torch.manual_seed(seed)
    net = ProbeNetwork(models.load_efficientnet("lite0", num_classes=10), probe, stages)
    recipe = lp_ft(net)
    set_batchnorm(net, bn, train_data[0], size)
    history = _train(net, recipe, train_data, val_data, size, epochs, batch_size, augment, warmup, label_smoothing,
                     seed, max_steps_per_epoch, test_data, progress)  # fmt: skip
    return net.eval(), history, recipe
