"""Training under accelerate, one process and two.

One process (a notebook): `train.fit` and `dann.train_dann` must give, bit for bit, what their plain loops gave before
they ran under accelerate — the loops are copied here as the reference (commit dd27f5b) and both are run on the same
lesson-02 data path (shuffled loader, augmentation drawn from the loader's generator, warm-up + cosine, label
smoothing, a truncated epoch, a hook that thaws a layer, dropout and BatchNorm in train mode): the histories are equal
and every weight is `torch.equal`. Also after a Trainer left a bf16 accelerate state behind in the same process.

Two processes (gloo on the CPU): see test_two_processes_* below (a real lesson-02 run through `python -m tlcourse.run`).
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest
import torch
from torch import nn

from tlcourse import dann, domains, finetune, train


# --- the reference loops: fit() and train_dann() as they were before accelerate (commit dd27f5b), unchanged ----------
def reference_fit(model, train_loader, val_loader=None, *, epochs=1, optimizer=None, scheduler=None,
                  loss_fn=nn.functional.cross_entropy, device="cpu", max_steps_per_epoch=None, on_epoch_end=None):  # fmt: skip
    device = torch.device(device)
    model.to(device)
    history = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")}
    steps = len(train_loader) if max_steps_per_epoch is None else min(len(train_loader), max_steps_per_epoch)
    for epoch in range(epochs):
        model.train()
        start, total, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        for step, batch in enumerate(train_loader):
            if step >= steps:
                break
            x, y = train._to(batch, device)
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += loss.item() * len(y)
        history["seconds"].append(time.perf_counter() - start)
        history["train_loss"].append(loss_sum / max(total, 1))
        history["train_acc"].append(correct / max(total, 1))
        if val_loader is not None:
            metrics = train.evaluate(model, val_loader, device, loss_fn)
            history["val_loss"].append(metrics["loss"])
            history["val_acc"].append(metrics["acc"])
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return history


def reference_dann(model, discriminator, source_loader, target_loader, *, epochs, optimizer, max_lambda=1.0,
                   anneal=True, separate_batches=True, device="cpu", eval_loader=None):  # fmt: skip
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    steps = len(source_loader)
    total_steps = max(epochs * steps, 1)
    history = {k: [] for k in ("class_loss", "domain_loss", "domain_acc", "lambda", "target_acc", "seconds")}
    from tqdm.auto import tqdm  # its wrapper calls iter() on the loader once more: part of the reference's draws

    targets = dann._forever(target_loader)
    for epoch in range(epochs):
        model.train()
        discriminator.train()
        start, sums, n = time.perf_counter(), np.zeros(3), 0
        lam = 0.0
        for step, (xs, ys) in enumerate(tqdm(source_loader, leave=False, disable=True)):
            xt = next(targets)[0]
            xs, ys, xt = xs.to(device), ys.to(device), xt.to(device)
            p = (epoch * steps + step) / total_steps
            lam = dann.dann_lambda(p, max_lambda=max_lambda)
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * (dann.dann_lr_factor(p) if anneal else 1.0)
            feats = dann.encode_domains(model.encoder, xs, xt, separate_batches)
            fs = feats[: len(xs)]
            class_loss = nn.functional.cross_entropy(model.head(fs), ys)
            dom_logits = discriminator(feats, lam)
            dom_y = torch.cat([torch.zeros(len(xs)), torch.ones(len(xt))]).long().to(device)
            domain_loss = nn.functional.cross_entropy(dom_logits, dom_y)
            optimizer.zero_grad(set_to_none=True)
            (class_loss + domain_loss).backward()
            optimizer.step()
            dom_acc = float((dom_logits.argmax(1) == dom_y).float().mean())
            sums += [class_loss.item(), domain_loss.item(), dom_acc]
            n += 1
        means = sums / max(n, 1)
        history["class_loss"].append(float(means[0]))
        history["domain_loss"].append(float(means[1]))
        history["domain_acc"].append(float(means[2]))
        history["lambda"].append(lam)
        history["seconds"].append(time.perf_counter() - start)
        if eval_loader is not None:
            history["target_acc"].append(train.evaluate(model, eval_loader, device)["acc"])
    return history


# --- one process: bit for bit ------------------------------------------------------------------------------------------
@pytest.fixture
def fresh_accelerate_state():
    """No accelerate state before or after the test (a test that leaves bf16 behind must not leak into others)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.3),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))  # fmt: skip


IMAGES = np.random.default_rng(0).integers(0, 256, (40, 12, 12), dtype=np.uint8)  # [N,H,W] like Fashion-MNIST
LABELS = np.arange(40) % 3


def _lesson02_run(fit_fn, **kw):
    """A lesson-02 style run of `fit_fn`: its history (without seconds) and the trained model's state."""
    model = _net()
    model[0].requires_grad_(False)  # thawed by the hook after epoch 1: the optimizer holds it from the start
    loader = finetune.image_loader(IMAGES, LABELS, size=16, batch_size=8, shuffle=True, augment=True, seed=3)
    val = finetune.image_loader(IMAGES[:12], LABELS[:12], size=16, batch_size=5)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    epochs, steps = 3, 4  # 4 of the loader's 5 batches per epoch: the next epoch starts from a half-used generator
    sched = finetune.warmup_cosine(opt, epochs * steps)
    loss_fn = functools.partial(nn.functional.cross_entropy, label_smoothing=0.1)
    torch.manual_seed(7)  # dropout's draws
    hist = fit_fn(model, loader, val, epochs=epochs, optimizer=opt, scheduler=sched, loss_fn=loss_fn,
                  max_steps_per_epoch=steps, on_epoch_end=lambda e, m: m[0].requires_grad_(e >= 0), **kw)  # fmt: skip
    hist.pop("seconds")
    return hist, model.state_dict(), opt.state_dict()["state"]


def _assert_same(a, b):
    (hist_a, weights_a, opt_a), (hist_b, weights_b, opt_b) = a, b
    assert hist_a == hist_b  # every float equal, not merely close
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a), "a weight differs"
    assert all(torch.equal(opt_a[i][k], opt_b[i][k]) for i in opt_a for k in opt_a[i]), "an optimizer state differs"


def test_fit_on_one_process_is_the_plain_loop_bit_for_bit(fresh_accelerate_state):
    new = _lesson02_run(functools.partial(train.fit, device="cpu", progress=False))
    old = _lesson02_run(reference_fit)
    _assert_same(new, old)
    assert new[0]["train_loss"][0] != new[0]["train_loss"][-1]  # it trained


def test_fit_after_a_trainer_left_bf16_behind_is_still_the_plain_loop(fresh_accelerate_state):
    from accelerate import Accelerator

    Accelerator(mixed_precision="bf16")  # what a bf16 Trainer (lessons 03-05) leaves in the process-wide state
    _assert_same(
        _lesson02_run(functools.partial(train.fit, device="cpu", progress=False)), _lesson02_run(reference_fit)
    )


def test_fit_takes_an_accelerator(fresh_accelerate_state):
    from tlcourse import distributed

    acc = distributed.accelerator()
    new = _lesson02_run(functools.partial(train.fit, device="cpu", progress=False, accelerator=acc))
    _assert_same(new, _lesson02_run(reference_fit))


def _dann_run(dann_fn, **kw):
    torch.manual_seed(0)
    model, disc = domains.digit_cnn(3), dann.DomainDiscriminator(domains.FEATURE_DIM, hidden=16)
    g = torch.Generator().manual_seed(1)
    xs, xt = torch.rand(24, 3, 28, 28, generator=g), torch.rand(20, 3, 28, 28, generator=g)  # [N,3,28,28]
    ys = torch.randint(0, 3, (24,), generator=g)
    src = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xs, ys), batch_size=8, shuffle=True,
                                      generator=torch.Generator().manual_seed(2))  # fmt: skip
    tgt = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xt, torch.zeros(20).long()), batch_size=6,
                                      shuffle=True, generator=torch.Generator().manual_seed(3))  # fmt: skip
    opt = torch.optim.AdamW(list(model.parameters()) + list(disc.parameters()), lr=1e-3)
    torch.manual_seed(5)  # Dropout2d's draws
    hist = dann_fn(model, disc, src, tgt, epochs=2, optimizer=opt, eval_loader=src, **kw)
    hist.pop("seconds")
    return (
        hist,
        {**model.state_dict(), **{f"d.{k}": v for k, v in disc.state_dict().items()}},
        opt.state_dict()["state"],
    )


def test_train_dann_on_one_process_is_the_plain_loop_bit_for_bit(fresh_accelerate_state):
    new = _dann_run(functools.partial(dann.train_dann, device="cpu", progress=False))
    _assert_same(new, _dann_run(reference_dann))


# --- two processes (gloo on the CPU): they train, agree, and match one process -------------------------------------
TINY = ["--small", "8", "--epochs", "2", "--batch-size", "16", "--size", "32", "--val-per-class", "2",
        "--test-per-class", "5", "--seeds", "0", "--strategies", "full", "progressive unfreezing", "random init"]  # fmt: skip
# Tolerance: the same global batch of 16 (8 per process, drawn and augmented by process 0 exactly as one process
# draws it), DDP averaging the two halves' gradients: the runs differ only in float rounding (summation order), so
# losses agree to 1e-5 (seen here: ~2e-7) and the predicted classes of the 50 test images are the same.
LOSS_TOL = 1e-5


def test_two_processes_train_agree_and_match_one_process():
    """Lesson 02 (Lite0 on Fashion-MNIST, 80 images, 2 epochs, augmentation on) through `torchrun --nproc_per_node 2`;
    progressive unfreezing thaws stages between epochs, so DDP must re-wrap the model (distributed.wraps_again).
    "random init" trains BatchNorm on batch statistics: each process normalises its own half batch, so it is not the
    one-process run, but the processes must still end equal (distributed.sync_buffers)."""
    from tlcourse import launch

    one = launch.launch("finetune", TINY, processes=1, threads_per_process=1, timeout=600)
    two = launch.launch("finetune", TINY, processes=2, threads_per_process=1, launcher="torchrun", timeout=600)
    assert (one["num_processes"], two["num_processes"]) == (1, 2)
    for a, b in zip(one["rows"], two["rows"], strict=True):
        assert b["train_loss"][-1] < b["train_loss"][0], "it trains"
        assert len(b["weights"]) == 2 and b["weights"][0] == b["weights"][1], "the processes hold bit-equal weights"
        if a["strategy"] == "random init":
            continue
        assert max(abs(x - y) for x, y in zip(a["train_loss"], b["train_loss"], strict=True)) < LOSS_TOL
        assert abs(a["test_loss"] - b["test_loss"]) < 10 * LOSS_TOL
        assert a["val_acc"] == b["val_acc"] and a["test_pred"] == b["test_pred"]


def test_two_processes_match_one_when_epochs_stop_early():
    """fit's max_steps_per_epoch stops an epoch early: one process has then drawn (and augmented) the batch it stopped
    at, and accelerate's dispatcher would read further ahead, moving the augmentation's generator for the next epoch.
    With the dispatcher limited to what one process draws (distributed.prepare_loader), epoch 2 trains on the same
    images: the same optimizer steps, the same draws, and losses equal up to float rounding."""
    from tlcourse import launch

    early = ["--small", "8", "--epochs", "2", "--batch-size", "16", "--size", "32", "--val-per-class", "2",
             "--test-per-class", "5", "--seeds", "0", "--strategies", "full", "--max-steps-per-epoch", "3"]  # fmt: skip
    one = launch.launch("finetune", early, processes=1, threads_per_process=1, timeout=600)["rows"][0]
    two = launch.launch("finetune", early, processes=2, threads_per_process=1, launcher="torchrun", timeout=600)[
        "rows"
    ][0]
    assert one["draws"] == two["draws"], "epoch 2 drew other images on 2 processes"
    assert max(abs(x - y) for x, y in zip(one["train_loss"], two["train_loss"], strict=True)) < LOSS_TOL
    assert one["test_pred"] == two["test_pred"]
