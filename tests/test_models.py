import subprocess
import sys

import numpy as np
import pytest
import torch

from tlcourse import data, models


def test_efficientnet_loads_strictly_and_sees_espresso():
    model = models.load_efficientnet("lite0")
    assert sum(p.numel() for p in model.parameters()) == 4_652_008 and not model.training
    (label, p), *_ = models.topk(model, [data.photos(["coffee"])["coffee"]], k=3)[0]
    assert label == "espresso" and p > 0.8


def test_fresh_head_and_unknown_variant():
    model = models.load_efficientnet("lite0", pretrained=False, num_classes=10)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    with pytest.raises(ValueError, match="unknown EfficientNet variant 'b7'"):
        models.load_efficientnet("b7")


def test_rename_lite_keys_maps_blocks_in_order():
    state = {
        "_conv_stem.weight": 1,
        "_blocks.0._depthwise_conv.weight": 2,
        "_blocks.1._expand_conv.weight": 3,
        "_fc.bias": 4,
    }
    timm_keys = ["conv_stem.weight", "blocks.0.0.conv_dw.weight", "blocks.0.0.conv_pw.weight",
                 "blocks.1.0.conv_pw.weight", "blocks.1.0.conv_pwl.weight", "classifier.bias"]  # fmt: skip
    out = models.rename_lite_keys(state, timm_keys)
    assert out == {
        "conv_stem.weight": 1,
        "blocks.0.0.conv_dw.weight": 2,
        "blocks.1.0.conv_pw.weight": 3,
        "classifier.bias": 4,
    }


def test_to_lite_input_shapes_and_errors():
    grey = np.zeros((2, 28, 28), dtype=np.uint8)
    x = models.to_lite_input(grey, 32)
    assert x.shape == (2, 3, 32, 32) and torch.allclose(x, torch.full_like(x, -127 / 128))
    assert models.to_lite_input(np.full((1, 8, 8, 3), 255, np.uint8), 16).max() == pytest.approx(1.0)
    with pytest.raises(TypeError, match="expected uint8"):
        models.to_lite_input(grey.astype(np.float32), 32)
    with pytest.raises(ValueError, match=r"expected images shaped"):
        models.to_lite_input(np.zeros((2, 3, 8, 8, 1), np.uint8), 16)


def test_lite_transform_and_classes():
    t = models.lite_transform(32)
    out = t(np.zeros((28, 28, 3), dtype=np.uint8))
    assert out.shape == (3, 32, 32)
    names = models.imagenet_classes()
    assert len(names) == 1000 and names[967] == "espresso"


def test_minilm_loads_offline_without_touching_the_network():
    code = (
        "import socket\n"
        "def deny(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = deny; socket.create_connection = deny\n"
        "from tlcourse import models\n"
        "tok, m = models.load_minilm(num_labels=2)\n"
        "print(type(m).__name__, m.config.num_hidden_layers, m.config.hidden_size, tok('hi')['input_ids'])\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "HF_HUB_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "BertForSequenceClassification 6 384 [101, 7632, 102]"
    assert models.minilm_path().joinpath("model.safetensors").is_file()
