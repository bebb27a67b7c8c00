import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from tlcourse import batchnorm, checkpoints, finetune, forgetting, lpft, train
from tlcourse.config import seed_everything


class TinyNet(nn.Module):
    """The shape of a timm EfficientNet (stem, 7 stages, top, classifier), a few hundred parameters."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv_stem, self.bn1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
                                      for _ in range(7)])  # fmt: skip
        self.conv_head, self.bn2 = nn.Conv2d(4, 8, 1), nn.BatchNorm2d(8)
        self.classifier = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.bn2(self.conv_head(self.blocks(self.bn1(self.conv_stem(x)))))  # [B,8,H,W]
        return self.classifier(x.mean((2, 3)))  # [B,C]


def _loader(n=64, seed=0):
    g = seed_everything(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)  # [N,3,8,8]
    y = (x[:, 0].mean((1, 2)) > 0).long()  # [N]
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True, generator=g)


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_stages_and_errors():
    model = TinyNet()
    parts = finetune.stages(model)
    assert list(parts) == ["stem", *[f"block{i}" for i in range(7)], "head", "classifier"]
    assert sum(len(finetune.stage_params(model, n)) for n in parts) == len(list(model.parameters()))
    with pytest.raises(TypeError, match="EfficientNet"):
        finetune.stages(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown stage"):
        finetune.freeze_stages(model, ["block9"])
    with pytest.raises(ValueError, match="unknown stage"):
        finetune.stage_params(model, "nope")


def test_parameter_groups_have_the_stated_lrs():
    r = finetune.head_only(TinyNet(), lr=0.01)
    assert [(g["name"], g["lr"]) for g in r.groups] == [("classifier", 0.01)]
    model = TinyNet()
    r = finetune.full(model, lr=0.002, head_lr=0.02)
    assert [(g["name"], g["lr"]) for g in r.groups] == [("pretrained", 0.002), ("classifier", 0.02)]
    assert sum(len(g["params"]) for g in r.groups) == len(list(model.parameters()))
    assert r.groups[1]["params"] == list(model.classifier.parameters())
    assert finetune.scratch(TinyNet(), lr=0.05).groups[0]["lr"] == 0.05
    r = finetune.discriminative(TinyNet())
    assert {g["name"]: g["lr"] for g in r.groups} == finetune.DISCRIMINATIVE_LRS
    lrs = [g["lr"] for g in r.groups]
    assert lrs == sorted(lrs) and lrs[0] < lrs[-1]  # lower for early stages
    opt = r.optimizer()
    assert [g["lr"] for g in opt.param_groups] == lrs  # AdamW keeps the real values, no multipliers
    rows = r.table()
    assert (
        rows[0][0] == "stem" and rows[-1][1] == finetune.DISCRIMINATIVE_LRS["classifier"] and all(t for *_, t in rows)
    )
    with pytest.raises(ValueError, match="one learning rate per stage"):
        finetune.discriminative(TinyNet(), {"stem": 1e-3})
    assert set(finetune.RECIPES) == {"head only", "full", "discriminative LRs", "progressive unfreezing",
                                     "random init"}  # fmt: skip


def test_frozen_params_get_no_gradient_and_do_not_change():
    model = TinyNet()
    recipe = finetune.head_only(model, lr=0.05)
    assert train.count_parameters(model)[0] == sum(p.numel() for p in model.classifier.parameters())
    before = _snapshot(model)
    train.fit(model, _loader(), epochs=2, optimizer=recipe.optimizer(), progress=False)
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith("classifier"):
            assert not torch.equal(v, after[k]), k  # the head learned
        else:
            assert torch.equal(v, after[k]), k  # weights AND BatchNorm running statistics untouched
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("classifier"))
    assert not model.bn1.training  # pinned to eval although fit() called model.train()
    finetune.unfreeze_stages(model, ["stem"])
    model.train()
    assert model.bn1.training and all(p.requires_grad for p in model.conv_stem.parameters())


def test_pinned_batchnorm_keeps_running_statistics():
    model = TinyNet()
    finetune.full(model)  # everything trains, BatchNorm pinned to eval mode
    before = _snapshot(model)
    train.fit(model, _loader(), epochs=1, optimizer=finetune.full(model).optimizer(), progress=False)
    after = model.state_dict()
    assert not torch.equal(before["conv_stem.weight"], after["conv_stem.weight"])  # weights learned...
    assert not torch.equal(before["bn1.weight"], after["bn1.weight"])  # ...BatchNorm scale too
    stats = [k for k in before if "running" in k or "num_batches" in k]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)  # ...but not the running statistics
    model.train()
    finetune.scratch(model)  # unpins: a random network learns its statistics from the batches
    model(torch.randn(4, 3, 8, 8))
    assert model.bn1.training and not torch.equal(before["bn1.running_mean"], model.bn1.running_mean)
    batchnorm.pin_batchnorm(model)
    batchnorm.pin_batchnorm(model)  # twice is the same as once
    batchnorm.pin_batchnorm(model, False)
    assert model.bn1.training and not hasattr(model, "_tl_bn_pin")


def test_warmup_cosine_factors():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [p], "lr": 0.1}, {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.01}])
    sched = finetune.warmup_cosine(opt, total_steps=20, warmup=0.1)  # 2 warm-up steps
    seen = []
    for _ in range(20):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert seen[0] == [0, 0] and seen[1] == pytest.approx([0.05, 0.005]) and seen[2] == pytest.approx([0.1, 0.01])
    assert all(a[0] >= b[0] for a, b in zip(seen[2:], seen[3:], strict=False)) and seen[-1][0] < 0.002  # cosine to ~0
    assert all(lr[1] == pytest.approx(lr[0] / 10) for lr in seen)  # one factor for every group: ratios kept


def _accuracy(model, x, y) -> float:
    return train.evaluate(model, finetune.image_loader(x, y, 32, batch_size=200))["acc"]


def test_train_strategy_final_test_score():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), np.arange(30) % 10
    model, hist, _ = finetune.train_strategy("head only", (x[:10], y[:10]), (x[10:14], y[10:14]), size=32, epochs=2,
                                             batch_size=8, test_data=(x[14:], y[14:]), progress=False)  # fmt: skip
    assert len(hist["val_acc"]) == 2 and isinstance(hist["test_acc"], float) and isinstance(hist["test_loss"], float)
    assert hist["test_acc"] == _accuracy(model, x[14:], y[14:])


def test_train_strategy_smoke():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10
    model, hist, recipe = finetune.train_strategy(
        "full", (x, y), (x[:10], y[:10]), size=32, epochs=1, batch_size=8, max_steps_per_epoch=2, progress=False
    )  # fmt: skip  (step 1 of the warm-up has lr 0)
    assert len(hist["val_acc"]) == 1 and recipe.name == "full" and not model.training
    assert "test_acc" not in hist  # no test_data: no final score
    from tlcourse import models

    fresh = models.load_efficientnet("lite0", num_classes=10)
    assert torch.equal(model.bn1.running_mean, fresh.bn1.running_mean)  # ImageNet statistics kept
    assert not torch.equal(model.conv_stem.weight, fresh.conv_stem.weight)
    assert model.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="unknown strategy"):
        finetune.train_strategy("nope", (x, y), (x, y))
    with pytest.raises(ValueError, match="DISCRIMINATIVE_LRS"):
        finetune.train_strategy("discriminative LRs", (x, y), (x, y), lr=0.1)


def test_progressive_unfreezing_schedule():
    model = TinyNet()
    recipe = finetune.progressive(model)
    assert train.count_parameters(model)[0] == sum(p.numel() for p in model.classifier.parameters())
    seen = []

    def hook(epoch, m):
        recipe.on_epoch_end(epoch, m)
        seen.append({n for n in finetune.stages(m) if all(p.requires_grad for p in finetune.stage_params(m, n))})

    before = _snapshot(model)
    train.fit(model, _loader(), epochs=2, optimizer=recipe.optimizer(), on_epoch_end=hook, progress=False)
    sched = finetune.PROGRESSIVE_SCHEDULE
    assert seen[0] == set(sched[0]) | set(sched[1]) and seen[1] == seen[0] | set(sched[2])
    assert len(recipe.log) == 2 and "unfroze" in recipe.log[0]
    after = model.state_dict()
    assert torch.equal(before["conv_stem.weight"], after["conv_stem.weight"])  # still frozen after 2 epochs
    assert not torch.equal(before["conv_head.weight"], after["conv_head.weight"])  # thawed after epoch 1, trained
    with pytest.raises(ValueError, match="every stage exactly once"):
        finetune.progressive(TinyNet(), schedule={0: ["classifier"]})


def test_image_loader_shapes_and_augmentation():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), np.arange(10)
    xb, yb = next(iter(finetune.image_loader(x, y, size=32, batch_size=4)))
    assert xb.shape == (4, 3, 32, 32) and xb.dtype == torch.float32 and yb.tolist() == [0, 1, 2, 3]
    assert xb.is_contiguous(memory_format=torch.channels_last)
    plain = next(iter(finetune.image_loader(x, y, 32, batch_size=10)))[0]
    aug1 = next(iter(finetune.image_loader(x, y, 32, batch_size=10, augment=True, seed=1)))[0]
    aug2 = next(iter(finetune.image_loader(x, y, 32, batch_size=10, augment=True, seed=1)))[0]
    assert torch.equal(aug1, aug2) and not torch.equal(aug1, plain)  # seeded, and it changes the images
    with pytest.raises(TypeError, match="uint8"):
        finetune.image_loader(x.astype(np.float32), y, 32)


def test_linear_cka_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=g)  # [N,D]
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))  # orthogonal [D,D]
    assert forgetting.linear_cka(x, x) == pytest.approx(1.0)
    assert forgetting.linear_cka(x, x @ q) == pytest.approx(1.0)
    assert forgetting.linear_cka(x, 3.5 * x) == pytest.approx(1.0)
    assert forgetting.linear_cka(x.numpy(), (x @ q).numpy() * 2) == pytest.approx(1.0)  # numpy works too
    other = torch.randn(50, 6, generator=g)
    assert 0 <= forgetting.linear_cka(x, other) < 0.5
    assert forgetting.linear_cka(x, other) == pytest.approx(forgetting.linear_cka(other, x))
    with pytest.raises(ValueError, match="same N"):
        forgetting.linear_cka(x, x[:10])
    with pytest.raises(ValueError, match="constant"):
        forgetting.linear_cka(torch.ones(5, 2), x[:5])


def test_stage_features_and_imagenet_drift_on_a_tiny_net():
    seed_everything(0)
    original = TinyNet(num_classes=1000).eval()
    with torch.no_grad():
        original.classifier.bias.zero_()  # let the features, not the biases, decide the top-1
    x = torch.randn(40, 3, 8, 8)  # [N,3,H,W]
    feats = forgetting.stage_features(original, x)
    assert list(feats) == ["stem", *[f"block{i}" for i in range(7)], "head"] and feats["head"].shape == (40, 8)
    tuned = TinyNet(num_classes=10)
    tuned.load_state_dict({k: v for k, v in original.state_dict().items() if not k.startswith("classifier")},
                          strict=False)  # fmt: skip
    same = forgetting.imagenet_drift(original, tuned, x)
    assert all(v == pytest.approx(1.0) for v in same["cka"].values())
    assert same["top1_kept"] == 1.0  # same backbone + original head: nothing lost
    with torch.no_grad():
        for p in tuned.blocks[6].parameters():
            p.add_(3 * torch.randn_like(p))
    moved = forgetting.imagenet_drift(original, tuned, x, reference=feats)  # precomputed reference features
    assert moved["cka"]["block5"] == pytest.approx(1.0) and moved["cka"]["block6"] < 0.99
    collapsed = copy.deepcopy(tuned)
    with torch.no_grad():
        collapsed.blocks[6][0].weight.zero_()  # block6 now outputs one vector for every input
    dead = forgetting.imagenet_drift(original, collapsed, x, reference=feats)["cka"]
    assert math.isnan(dead["block6"]) and math.isnan(dead["head"]) and dead["block5"] == pytest.approx(1.0)
    assert moved["top1_kept"] < 1.0
    again = forgetting.imagenet_drift(original, tuned, x)  # without the reference: the same answer
    assert again["cka"] == moved["cka"]
    assert {k: v for k, v in again.items() if k != "cka"} == pytest.approx(
        {k: v for k, v in moved.items() if k != "cka"}, nan_ok=True
    )
    assert tuned.classifier.out_features == 10  # the tuned model itself is left alone
    with pytest.raises(ValueError, match="ImageNet head"):
        forgetting.imagenet_drift(TinyNet(10), tuned, x)
    rng = np.random.default_rng(0)
    photos = {
        "a": rng.integers(0, 256, (40, 60, 3), dtype=np.uint8),
        "b": rng.integers(0, 256, (30, 30, 3), dtype=np.uint8),
    }
    crops = forgetting.photo_crops(photos, crops_per_photo=3)
    assert len(crops) == 8 and crops[0].shape == (40, 60, 3) and crops[1].shape[0] == crops[1].shape[1]
    assert forgetting.photo_batch(crops, size=16).shape == (8, 3, 16, 16)


def test_save_and_reload_give_identical_outputs(tmp_path):
    from tlcourse import models

    seed_everything(0)
    model = models.load_efficientnet("lite0", pretrained=False, num_classes=10)
    with torch.no_grad():
        model.bn2.running_mean.add_(0.5)  # buffers must round-trip too
    model = model.to(memory_format=torch.channels_last)  # as train_strategy leaves it
    path = checkpoints.save_model(model, tmp_path / "sub" / "model.safetensors")
    assert path.is_file() and not list(path.parent.glob(".*.tmp"))
    again = checkpoints.load_model(path, num_classes=10)
    x = torch.randn(2, 3, 32, 32)  # [B,3,H,W]
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    with pytest.raises(FileNotFoundError, match="save_model"):
        checkpoints.load_model(tmp_path / "missing.safetensors")
    with pytest.raises(RuntimeError, match="with 3 classes .*size mismatch.*delete it and run the cell"):
        checkpoints.load_model(path, num_classes=3)  # weights of another head
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")  # a damaged safetensors header
    with pytest.raises(RuntimeError, match="does not load .*SafetensorError"):
        checkpoints.load_model(path)


def test_unfreeze_top_check(capsys):  # exercises 2.1 and 2.3: tests/test_checks_lesson02.py
    from tlcourse.checks import lesson02 as fc

    def stub(*args):
        raise NotImplementedError

    def good_top(model, k):
        names = list(finetune.stages(model))
        finetune.freeze_stages(model, names)
        finetune.unfreeze_stages(model, names[len(names) - 1 - k :])

    def grad_only_top(model, k):  # right flags, but BatchNorm not pinned
        names = list(finetune.stages(model))
        for i, n in enumerate(names):
            for p in finetune.stage_params(model, n):
                p.requires_grad_(i >= len(names) - 1 - k)

    cases = [
        (fc.check_unfreeze_top, good_top, True, "✅"),
        (fc.check_unfreeze_top, grad_only_top, False, "pinned"),
        (fc.check_unfreeze_top, lambda m, k: None, False, "should be frozen"),
        (fc.check_unfreeze_top, stub, False, "⏳"),
    ]
    for check, fn, ok, text in cases:
        assert check(fn) is ok, (check.__name__, text)
        out = capsys.readouterr().out
        assert text in out and out.count("\n") == 1, out


def _tiny_probe(model, n=40, seed=0):
    from tlcourse import features

    g = seed_everything(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)  # [N,3,8,8]
    y = np.arange(n) % 3
    stages = ("block3", "block4", "block5")
    f = features.stack_stages(features.pooled_stages(model.eval(), x, stages), stages)  # [N,12]
    return x, y, f, features.logistic_probe(f, y, C=1.0)


def test_probe_network_reproduces_the_probe_at_step_0():
    model = TinyNet()
    x, y, f, probe = _tiny_probe(model)
    net = lpft.ProbeNetwork(model, probe).eval()
    with torch.no_grad():
        logits = net(x[:8]).numpy()  # [8,3]
    np.testing.assert_allclose(logits, probe.decision_function(f[:8]), atol=1e-4)
    with pytest.raises(ValueError, match="probe stages"):
        lpft.ProbeNetwork(model, probe, ("head",))


def test_lp_ft_groups_and_frozen_top():
    model = TinyNet()
    _, _, _, probe = _tiny_probe(model)
    net = lpft.ProbeNetwork(model, probe)
    r = lpft.lp_ft(net, head_lr=1e-5)
    used = ["stem", *[f"block{i}" for i in range(6)]]
    assert [(g["name"], g["lr"]) for g in r.groups] == [*((n, finetune.DISCRIMINATIVE_LRS[n]) for n in used),
                                                         ("probe", 1e-5)]  # fmt: skip
    assert r.groups[-1]["params"] == list(net.linear.parameters())
    assert not any(p.requires_grad for n in ("block6", "head", "classifier") for p in finetune.stage_params(model, n))
    net.train()
    before = model.bn1.running_mean.clone()
    net(torch.randn(4, 3, 8, 8))
    assert torch.equal(model.bn1.running_mean, before)  # BatchNorm statistics pinned


def test_train_lp_ft_smoke():
    from tlcourse import features, models

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10
    stages = ("block3", "block4", "block5")
    backbone = features.load_backbone()
    f = features.stack_stages(features.extract_features(backbone, x, stages, size=32, progress=False), stages)
    probe = features.logistic_probe(f, y)
    net, hist, recipe = lpft.train_lp_ft(probe, (x, y), (x[:10], y[:10]), size=32, epochs=1, batch_size=8,
                                             max_steps_per_epoch=2, test_data=(x[10:], y[10:]),
                                             progress=False)  # fmt: skip
    assert len(hist["val_acc"]) == 1 and recipe.name == "LP-FT (lesson-01 probe)" and not net.training
    assert hist["test_acc"] == _accuracy(net, x[10:], y[10:])  # scored once, after training, on the test images
    fresh = models.load_efficientnet("lite0", num_classes=10)
    assert torch.equal(net.backbone.bn1.running_mean, fresh.bn1.running_mean)  # ImageNet statistics kept
    assert not torch.equal(net.backbone.conv_stem.weight, fresh.conv_stem.weight)
    assert torch.equal(net.backbone.blocks[6][0].conv_pw.weight, fresh.blocks[6][0].conv_pw.weight)  # never run


def test_batchnorm_modes():
    x = np.random.default_rng(0).integers(0, 256, (24, 28, 28), dtype=np.uint8)
    model = models_lite()
    finetune.full(model)  # pins BatchNorm
    batchnorm.set_batchnorm(model, None)  # None: the recipe's choice stays
    model.train()
    model(torch.zeros(2, 3, 32, 32))
    assert not model.bn1.training
    batchnorm.set_batchnorm(model, "train")
    model.train()
    model(torch.zeros(2, 3, 32, 32))
    assert model.bn1.training  # batch statistics while training
    stored = model.blocks[3][0].bn1.running_mean.clone()
    batchnorm.set_batchnorm(model, "target", x, size=32)
    assert not torch.equal(model.blocks[3][0].bn1.running_mean, stored)  # re-estimated on the images
    model.train()
    model(torch.zeros(2, 3, 32, 32))
    assert not model.bn1.training  # then pinned
    frozen = models_lite()
    finetune.head_only(frozen)  # every stage frozen: its BatchNorm keeps ImageNet statistics in every mode
    before = frozen.bn1.running_mean.clone()
    batchnorm.set_batchnorm(frozen, "target", x, size=32)
    assert torch.equal(frozen.bn1.running_mean, before)
    with pytest.raises(ValueError, match="unknown BatchNorm mode"):
        batchnorm.set_batchnorm(model, "frozen")
    with pytest.raises(ValueError, match="needs the training images"):
        batchnorm.set_batchnorm(model, "target")


def models_lite():
    from tlcourse import models

    return models.load_efficientnet("lite0", num_classes=10)


def test_train_strategy_without_validation_keeps_test_predictions():
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 256, (24, 28, 28), dtype=np.uint8), np.arange(24) % 10
    model, hist, _ = finetune.train_strategy("head only", (x[:10], y[:10]), None, size=32, epochs=1, batch_size=8,
                                             test_data=(x[10:], y[10:]), bn="train", progress=False)  # fmt: skip
    assert hist["val_acc"] == [] and "val_acc_start" not in hist
    assert hist["test_pred"].shape == (14,) and hist["test_acc"] == pytest.approx((hist["test_pred"] == y[10:]).mean())
    _, hist, _ = finetune.train_strategy("head only", (x[:10], y[:10]), (x[10:], y[10:]), size=32, epochs=1,
                                         batch_size=8, progress=False)  # fmt: skip
    assert 0.0 <= hist["val_acc_start"] <= 1.0  # the score before any training: epoch 0 of the curves


def test_imagenet_drift_is_zero_for_the_same_network_and_grows_with_change():
    from tlcourse import models

    original = models.load_efficientnet("lite0")
    x = forgetting.photo_batch([np.full((40, 40, 3), v, np.uint8) for v in (30, 90, 160, 220)], size=32)
    same = forgetting.imagenet_drift(original, copy.deepcopy(original), x)
    assert same["kl"] == pytest.approx(0.0, abs=1e-6) and same["top1_kept"] == 1.0 and same["top5_overlap"] == 1.0
    assert all(v == pytest.approx(1.0, abs=1e-5) for v in same["cka"].values())
    moved = copy.deepcopy(original)
    with torch.no_grad():
        moved.conv_head.weight.add_(torch.randn_like(moved.conv_head.weight))
    drift = forgetting.imagenet_drift(original, moved, x, reference=forgetting.stage_features(original, x))
    assert drift["kl"] > 0.01 and drift["cka"]["stem"] == pytest.approx(1.0, abs=1e-5)
    assert drift["n_confident"] <= len(x) and 0.0 <= drift["top5_overlap"] <= 1.0
    with pytest.raises(ValueError, match="ImageNet head"):
        forgetting.imagenet_drift(models.load_efficientnet("lite0", num_classes=10), moved, x)
