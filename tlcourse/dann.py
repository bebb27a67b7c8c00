"""Domain-adversarial training (DANN, Ganin et al. 2016): gradient reversal, a domain discriminator, the λ schedule,
the two-batch training step, and the proxy A-distance.

The model is any module with `.encoder` (inputs -> features) and `.head` (features -> class logits), e.g.
`tlcourse.domains.digit_cnn()`. Source-only and target-supervised baselines use `tlcourse.train.fit`; only the DANN
step (a labelled source batch and an unlabelled target batch, two losses) lives here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn


class GradientReverse(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by -λ in the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = float(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """Apply the gradient reversal layer with coefficient λ to x."""
    return GradientReverse.apply(x, lam)


class GradientReversal(nn.Module):
    """Module wrapper of the gradient reversal layer; λ is passed at call time (no hidden state or counters)."""

    def forward(self, x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
        """x unchanged; its gradient is multiplied by -lam."""
        return grad_reverse(x, lam)


class DomainDiscriminator(nn.Module):
    """Small MLP that tells source (0) from target (1) features, behind a gradient reversal layer."""

    def __init__(self, in_features: int, hidden: int = 100):
        super().__init__()
        self.grl = GradientReversal()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, features: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
        """Domain logits [B,2] of features [B,F]; the encoder receives the reversed gradient scaled by lam."""
        return self.net(self.grl(features, lam))  # [B,2]


def dann_lambda(progress: float, gamma: float = 10.0, max_lambda: float = 1.0) -> float:
    """λ(p) = max_lambda * (2 / (1 + exp(-gamma p)) - 1): 0 at the start, rising to ~max_lambda; p in [0, 1]."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be in [0, 1], got {progress}")
    return max_lambda * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


def dann_lr_factor(progress: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """The DANN paper's learning-rate annealing 1 / (1 + alpha p)^beta, a pure function of progress p in [0, 1]."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be in [0, 1], got {progress}")
    return 1.0 / (1.0 + alpha * progress) ** beta


def annealed_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler with train_dann's annealing lr · dann_lr_factor(t / total_steps), for `train.fit`.

    Gives a source-only (or target-supervised) baseline exactly the learning-rate schedule DANN trains with, so a
    comparison with DANN differs in the adversarial loss and the target batches only.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be ≥ 1 (epochs × batches per epoch); got {total_steps}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: dann_lr_factor(min(t / total_steps, 1.0)))


def encode_domains(encoder: nn.Module, xs: torch.Tensor, xt: torch.Tensor, separate: bool = True) -> torch.Tensor:
    """Features [Bs+Bt,F] of a source batch xs and a target batch xt, source rows first.

    separate=True runs the encoder on each batch alone: in training mode its BatchNorm layers then normalise source
    and target with their own batch statistics. separate=False runs it once on the concatenated batch.
    """
    if separate:
        return torch.cat([encoder(xs), encoder(xt)])  # [Bs+Bt,F]
    return encoder(torch.cat([xs, xt]))  # [Bs+Bt,F]


def _forever(loader: Iterable, what: str = "target"):
    """Cycle through loader's batches without end; raise at once if a pass yields none (no silent endless loop)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError(f"the {what} loader is empty: DANN needs at least one batch of each domain")


class _DANNStep(nn.Module):
    """The model and the discriminator as one module, so one DDP wrapper averages both's gradients."""

    def __init__(self, model: nn.Module, discriminator: nn.Module, separate: bool):
        super().__init__()
        self.model, self.discriminator, self.separate = model, discriminator, separate

    def forward(self, xs: torch.Tensor, xt: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits of the source batch [Bs,C], domain logits of both batches [Bs+Bt,2])."""
        feats = encode_domains(self.model.encoder, xs, xt, self.separate)  # [Bs+Bt,F]
        class_logits = self.model.head(feats[: len(xs)])  # [Bs,C]
        return class_logits, self.discriminator(feats, lam)  # [Bs,C], [Bs+Bt,2]


def train_dann(
    model: nn.Module,
    discriminator: nn.Module,
    source_loader: Iterable,
    target_loader: Iterable,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    max_lambda: float = 1.0,
    anneal: bool = True,
    separate_batches: bool = True,
    device: torch.device | str | None = None,
    eval_loader: Iterable | None = None,
    progress: bool = True,
    desc: str = "dann",
    accelerator=None,
) -> dict[str, list[float]]:
    """Train model (.encoder, .head) with DANN; one epoch = one pass over source_loader, target batches cycled.

    optimizer defaults to AdamW(lr) over the model's and the discriminator's parameters. At step t of T, progress
    p = t / T sets λ = dann_lambda(p, max_lambda) and (if anneal) lr = base lr * dann_lr_factor(p).

    separate_batches=True passes the source batch and the target batch through the encoder one after the other, so
    every BatchNorm layer normalises each domain with that domain's own batch statistics (as most DANN code does);
    False passes one concatenated batch, whose mixed statistics leave the two domains' offsets in the features.
    Without BatchNorm in the encoder both give the same result.

    device defaults to `config.get_device()` (a GPU when there is one, as in Colab), as in `train.fit`; it runs
    under accelerate like `train.fit` (one process: the plain loop's numbers; several: global batches split, the
    gradients of model and discriminator averaged, the metrics summed over the processes; BatchNorm statistics are
    each process's own slice's, so several processes train close to, not exactly like, one).

    Returns per-epoch lists: class_loss, domain_loss, domain_acc (discriminator accuracy on both batches),
    lambda (λ at the epoch's end), target_acc (on eval_loader, if given), seconds.
    """
    from tqdm.auto import tqdm

    from tlcourse import distributed
    from tlcourse.train import evaluate

    if not hasattr(model, "encoder") or not hasattr(model, "head"):
        raise TypeError("model needs .encoder and .head parts (e.g. tlcourse.domains.digit_cnn())")
    acc = distributed.accelerator() if accelerator is None else accelerator
    device = distributed.training_device(acc, device)
    model.to(device)
    discriminator.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW(list(model.parameters()) + list(discriminator.parameters()), lr=lr)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    steps = len(source_loader)
    if steps == 0:
        raise ValueError("the source loader is empty: DANN needs at least one batch of each domain")
    total_steps = max(epochs * steps, 1)
    keys = ("class_loss", "domain_loss", "domain_acc", "lambda", "target_acc", "seconds")
    history: dict[str, list[float]] = {k: [] for k in keys}
    step_module = _DANNStep(model, discriminator, separate_batches)
    net, optimizer = acc.prepare(step_module, optimizer)  # one process: the module itself; several: one DDP wrapper
    sources = distributed.prepare_loader(acc, source_loader)
    targets = _forever(distributed.prepare_loader(acc, target_loader))
    for epoch in range(epochs):
        net.train()  # the model and the discriminator
        start, sums, n = time.perf_counter(), np.zeros(3), 0
        lam = 0.0
        for step, (xs, ys) in enumerate(tqdm(sources, desc=f"{desc} {epoch + 1}/{epochs}", leave=False,
                                             disable=not progress or not acc.is_local_main_process)):  # fmt: skip
            xt = next(targets)[0]
            xs, ys, xt = xs.to(device), ys.to(device), xt.to(device)
            p = (epoch * steps + step) / total_steps
            lam = dann_lambda(p, max_lambda=max_lambda)
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * (dann_lr_factor(p) if anneal else 1.0)
            with acc.accumulate(net):
                class_logits, dom_logits = net(xs, xt, lam)  # [Bs,C], [Bs+Bt,2]
                class_loss = nn.functional.cross_entropy(class_logits, ys)
                dom_y = torch.cat([torch.zeros(len(xs)), torch.ones(len(xt))]).long().to(device)  # [Bs+Bt]
                domain_loss = nn.functional.cross_entropy(dom_logits, dom_y)
                optimizer.zero_grad(set_to_none=True)
                acc.backward(class_loss + domain_loss)
                optimizer.step()
            dom_acc = float((dom_logits.argmax(1) == dom_y).float().mean())
            sums += [class_loss.item(), domain_loss.item(), dom_acc]
            n += 1
        if acc.num_processes > 1:  # the mean over every process's steps; the main process's BatchNorm statistics
            *total, n = distributed.sum_over_processes(acc, [*sums.tolist(), n], device)
            sums = np.array(total)
            distributed.sync_buffers(acc, step_module)
        means = sums / max(n, 1)
        history["class_loss"].append(float(means[0]))
        history["domain_loss"].append(float(means[1]))
        history["domain_acc"].append(float(means[2]))
        history["lambda"].append(lam)
        history["seconds"].append(time.perf_counter() - start)
        if eval_loader is not None:
            if acc.num_processes > 1:
                logits, labels = distributed.predict(acc, model, eval_loader, device)
                history["target_acc"].append(float((logits.argmax(1) == labels).float().mean()))
            else:
                history["target_acc"].append(evaluate(model, eval_loader, device)["acc"])
    return history


def proxy_a_distance(source: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, seed: int = 0) -> float:
    """Proxy A-distance 2(1 - 2ε), ε = held-out error of a linear classifier telling source from target features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xs, xt = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if xs.ndim != 2 or xt.ndim != 2 or xs.shape[1] != xt.shape[1]:
        raise ValueError(f"need two feature matrices [N,F] with the same F, got {xs.shape} and {xt.shape}")
    if min(len(xs), len(xt)) < 4:
        raise ValueError("need at least 4 examples per domain")
    x = np.concatenate([xs, xt])  # [Ns+Nt,F]
    y = np.concatenate([np.zeros(len(xs)), np.ones(len(xt))])  # [Ns+Nt]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, random_state=seed, stratify=y)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    err = 1.0 - clf.fit(x_tr, y_tr).score(x_te, y_te)
    return float(2.0 * (1.0 - 2.0 * err))
