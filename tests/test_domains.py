"""Tests for tlcourse.domains: MNIST-M-style build, UCI upscaling, tensors, the small CNN and feature extraction."""

import numpy as np
import pytest
import torch

from tlcourse import domains


def _digits(n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((n, 28, 28)) > 0.8).astype(np.uint8) * 255  # [n,28,28]


def _photos() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [
        rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8),
        rng.integers(0, 256, size=(30, 30, 3), dtype=np.uint8),
    ]


def test_mnist_m_is_deterministic_for_a_seed_and_follows_the_recipe():
    d, p = _digits(), _photos()
    a, b, c = domains.mnist_m(d, p, seed=3), domains.mnist_m(d, p, seed=3), domains.mnist_m(d, p, seed=4)
    assert a.shape == (6, 28, 28, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # where the digit is 0 the pixel is the photo patch; where it is 255 it is the inverted patch
    on, off = d[0] == 255, d[0] == 0
    assert on.any() and off.any()
    inv = 255 - a[0][on].astype(int)
    bg = a[0][off].astype(int)
    assert inv.min() >= 0 and bg.max() <= 255
    assert np.array_equal(domains.mnist_m(d[:1], {"x": p[1]}, seed=0).shape, (1, 28, 28, 3))


def test_mnist_m_blend_is_abs_difference():
    digit = np.zeros((1, 28, 28), np.uint8)
    digit[0, 10:18, 10:18] = 200
    photo = np.full((28, 28, 3), 50, np.uint8)
    out = domains.mnist_m(digit, [photo], seed=0)
    assert (out[0, 12, 12] == 150).all() and (out[0, 0, 0] == 50).all()


def test_mnist_m_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        domains.mnist_m(np.zeros((2, 28, 28), np.float32), _photos())
    with pytest.raises(ValueError, match="no background"):
        domains.mnist_m(_digits(), [])
    with pytest.raises(ValueError, match="RGB"):
        domains.mnist_m(_digits(), [np.zeros((10, 10, 3), np.uint8)])


def test_upscale_uci_range_and_shape():
    x = np.zeros((3, 8, 8), np.uint8)
    x[:, 2:6, 3:5] = 16
    up = domains.upscale_uci(x)
    assert up.shape == (3, 28, 28) and up.dtype == np.uint8
    assert up.max() == 255 and up.min() == 0
    with pytest.raises(ValueError, match="N,H,W"):
        domains.upscale_uci(np.zeros((8, 8), np.uint8))


def test_to_tensor_grey_and_rgb():
    grey = domains.to_tensor(np.full((2, 28, 28), 255, np.uint8))
    rgb = domains.to_tensor(np.zeros((2, 28, 28, 3), np.uint8))
    assert grey.shape == rgb.shape == (2, 3, 28, 28)
    assert grey.max() == 1.0 and rgb.max() == 0.0
    with pytest.raises(TypeError, match="uint8"):
        domains.to_tensor(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match="shape"):
        domains.to_tensor(np.zeros((2, 28, 28, 4), np.uint8))


def test_standardize_uses_reference_statistics():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(20, 3, 8, 8, generator=gen) * 5 + 2
    z = domains.standardize(x)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    half = domains.standardize(x[:5], reference=x)
    assert torch.allclose(half, z[:5], atol=1e-5)
    with pytest.raises(ValueError, match="matching C"):
        domains.standardize(x, reference=torch.rand(4, 1, 8, 8))


def test_digit_cnn_and_encode():
    torch.manual_seed(0)
    net = domains.digit_cnn(num_classes=10)
    x = torch.rand(5, 3, 28, 28)
    assert net(x).shape == (5, 10)
    feats = domains.encode(net.encoder, x, batch_size=2)
    assert feats.shape == (5, domains.FEATURE_DIM)
    assert torch.allclose(feats, net.encoder.eval()(x), atol=1e-5)
    assert not net.training or not net.encoder.training
