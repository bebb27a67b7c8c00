"""Tests for tlcourse.dann: gradient reversal, λ schedule, discriminator, DANN training on a toy shift, proxy A-distance."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import dann, domains, train


def test_grad_reverse_is_identity_forward_and_scales_gradient_by_minus_lambda():
    x = torch.randn(5, 3, requires_grad=True)
    out = dann.grad_reverse(x, 0.7)
    assert torch.equal(out, x)
    w = torch.randn(5, 3)
    (out * w).sum().backward()
    assert torch.allclose(x.grad, -0.7 * w)


def test_gradient_reversal_module_takes_lambda_per_call():
    layer = dann.GradientReversal()
    for lam in (0.0, 1.0, 2.5):
        x = torch.ones(4, requires_grad=True)
        y = layer(x, lam)
        assert torch.equal(y, x)
        y.sum().backward()
        assert torch.allclose(x.grad, torch.full((4,), -lam))


def test_dann_lambda_schedule_values():
    assert dann.dann_lambda(0.0) == 0.0
    assert dann.dann_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert dann.dann_lambda(1.0) == pytest.approx(0.99991, abs=1e-5)
    assert dann.dann_lambda(1.0, max_lambda=0.3) == pytest.approx(0.3 * 0.99991, abs=1e-5)
    values = [dann.dann_lambda(p / 10) for p in range(11)]
    assert values == sorted(values)  # monotone rising
    assert dann.dann_lambda(0.3) == dann.dann_lambda(0.3)  # pure: no hidden counter
    with pytest.raises(ValueError, match="progress"):
        dann.dann_lambda(1.5)


def test_domain_discriminator_shapes_and_reversed_gradient():
    torch.manual_seed(0)
    disc = dann.DomainDiscriminator(6, hidden=8)
    feats = torch.randn(10, 6, requires_grad=True)
    assert disc(feats, 1.0).shape == (10, 2)
    loss = nn.functional.cross_entropy(disc(feats, 1.0), torch.zeros(10, dtype=torch.long))
    (g_rev,) = torch.autograd.grad(loss, feats)
    loss0 = nn.functional.cross_entropy(disc.net(feats), torch.zeros(10, dtype=torch.long))
    (g_plain,) = torch.autograd.grad(loss0, feats)
    assert torch.allclose(g_rev, -g_plain, atol=1e-6)


def _toy(n: int = 200, seed: int = 0):
    """Two domains: feature 0 carries the class in both, feature 1 only flags the domain (-1 source, +1 target)."""
    g = torch.Generator().manual_seed(seed)

    def make(domain: int):
        y = torch.randint(0, 2, (n,), generator=g)
        x = torch.randn(n, 4, generator=g) * 0.5  # [n,4]
        x[:, 0] += 2.0 * y - 1.0
        x[:, 1] = (2.0 * domain - 1.0) + 0.1 * torch.randn(n, generator=g)
        return TensorDataset(x, y)

    return make(0), make(1)


def _net():
    torch.manual_seed(0)
    return domains.SplitNet(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 2))


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and avoid thread contention on a shared machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_dann_removes_the_domain_flag_feature_on_a_toy_shift(one_thread):
    source, target = _toy()
    src_loader = DataLoader(source, batch_size=100, shuffle=True, generator=torch.Generator().manual_seed(0))
    tgt_loader = DataLoader(target, batch_size=100, shuffle=True, generator=torch.Generator().manual_seed(1))
    plain = _net()
    train.fit(plain, src_loader, epochs=40, lr=1e-2, progress=False)
    model = _net()
    h = dann.train_dann(model, dann.DomainDiscriminator(8, hidden=16), src_loader, tgt_loader, epochs=40, lr=1e-2,
                        eval_loader=DataLoader(target, batch_size=200), progress=False)  # fmt: skip
    flag_plain = plain.encoder[0].weight[:, 1].norm().item()  # how much the encoder reads the domain flag
    flag_dann = model.encoder[0].weight[:, 1].norm().item()
    assert flag_dann < 0.5 * flag_plain, (flag_dann, flag_plain)
    assert h["target_acc"][-1] > 0.9  # the class feature is still used
    assert set(h) == {"class_loss", "domain_loss", "domain_acc", "lambda", "target_acc", "seconds"}
    assert len(h["domain_acc"]) == 40 and all(0 <= a <= 1 for a in h["domain_acc"])
    assert h["lambda"] == sorted(h["lambda"])


def test_train_dann_needs_encoder_and_head():
    source, target = _toy(20)
    with pytest.raises(TypeError, match="encoder"):
        dann.train_dann(nn.Linear(4, 2), dann.DomainDiscriminator(2), DataLoader(source), DataLoader(target), epochs=1)


def test_proxy_a_distance_separable_vs_identical():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 5))
    far = dann.proxy_a_distance(a, rng.normal(size=(200, 5)) + 3.0)
    same = dann.proxy_a_distance(a, rng.normal(size=(200, 5)))
    assert far > 1.8
    assert same < 0.5
    with pytest.raises(ValueError, match="same F"):
        dann.proxy_a_distance(a, a[:, :3])


def test_encode_domains_normalises_each_domain_with_its_own_batch_statistics():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False)).train()
    xs, xt = torch.randn(8, 3), torch.randn(6, 3) + 5.0  # the target is shifted
    both = dann.encode_domains(encoder, xs, xt, separate=True)  # [14,4]
    assert both.shape == (14, 4)
    assert torch.allclose(both[:8].mean(0), torch.zeros(4), atol=1e-5)  # each domain centred on its own
    assert torch.allclose(both[8:].mean(0), torch.zeros(4), atol=1e-5)
    mixed = dann.encode_domains(encoder, xs, xt, separate=False)  # one batch: the shift survives
    assert (mixed[8:].mean(0) - mixed[:8].mean(0)).abs().max() > 0.5
    plain = nn.Linear(3, 4)  # no BatchNorm: both ways agree, source rows first
    assert torch.allclose(dann.encode_domains(plain, xs, xt), plain(torch.cat([xs, xt])), atol=1e-6)


class _Recorder(nn.Module):
    """Encoder that records the batch sizes it is called with."""

    def __init__(self):
        super().__init__()
        self.lin, self.sizes = nn.Linear(4, 8), []

    def forward(self, x):
        self.sizes.append(len(x))
        return self.lin(x)


@pytest.mark.parametrize(("separate", "sizes"), [(True, [5, 5]), (False, [10])])
def test_train_dann_separate_batches_calls_the_encoder_per_domain(one_thread, separate, sizes):
    source, target = _toy(5)
    model = domains.SplitNet(_Recorder(), nn.Linear(8, 2))
    dann.train_dann(model, dann.DomainDiscriminator(8), DataLoader(source, batch_size=5), DataLoader(target, batch_size=5),
                    epochs=1, separate_batches=separate, progress=False)  # fmt: skip
    assert model.encoder.sizes == sizes


def test_annealed_schedule_matches_train_dann_learning_rates():
    model = nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    sched = dann.annealed_schedule(opt, total_steps=10)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.01 * dann.dann_lr_factor(t / 10) for t in range(10)])
    with pytest.raises(ValueError, match="total_steps"):
        dann.annealed_schedule(opt, 0)


def test_train_dann_with_lambda_zero_sends_no_domain_gradient_to_the_encoder(one_thread):
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    src = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)

    def encoder_after(lam, shift):
        torch.manual_seed(0)
        model, disc = domains.SplitNet(nn.Linear(4, 8), nn.Linear(8, 2)), dann.DomainDiscriminator(8)
        before = disc.net[0].weight.detach().clone()
        tgt = DataLoader(TensorDataset(x + shift, torch.zeros(32, dtype=torch.long)), batch_size=8)
        dann.train_dann(model, disc, src, tgt, epochs=2, max_lambda=lam, progress=False)
        assert not torch.equal(disc.net[0].weight, before)  # the discriminator learns either way
        return model.encoder.weight.detach()

    # λ = 0: the target data cannot move the encoder (no BatchNorm here), whatever it is; λ = 1: it does
    assert torch.equal(encoder_after(0.0, 3.0), encoder_after(0.0, -7.0))
    assert not torch.allclose(encoder_after(1.0, 3.0), encoder_after(1.0, -7.0))


def test_train_dann_with_an_empty_loader_raises_at_once():
    model, disc = domains.SplitNet(nn.Linear(4, 8), nn.Linear(8, 2)), dann.DomainDiscriminator(8)
    x = torch.randn(8, 4)
    full = DataLoader(TensorDataset(x, torch.zeros(8, dtype=torch.long)), batch_size=4)
    empty = DataLoader(TensorDataset(x[:0], torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="target loader is empty"):
        dann.train_dann(model, disc, full, empty, epochs=1, progress=False)
    with pytest.raises(ValueError, match="source loader is empty"):
        dann.train_dann(model, disc, empty, full, epochs=1, progress=False)
