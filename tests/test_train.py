import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import train
from tlcourse.config import seed_everything


def _toy(n=256):
    g = seed_everything(0)
    x = torch.randn(n, 4, generator=g)  # [N,4]
    y = (x[:, 0] + x[:, 1] > 0).long()  # [N]
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=g)


def test_fit_learns_and_returns_history():
    model = nn.Linear(4, 2)
    loader = _toy()
    hist = train.fit(model, loader, loader, epochs=5, lr=0.1, progress=False)
    assert set(hist) == {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
    assert all(len(v) == 5 for v in hist.values())
    assert hist["train_loss"][-1] < hist["train_loss"][0] and hist["val_acc"][-1] > 0.9


def test_fit_options_and_errors():
    model = nn.Linear(4, 2)
    seen = []
    hist = train.fit(
        model, _toy(), epochs=2, max_steps_per_epoch=2, on_epoch_end=lambda e, m: seen.append(e), progress=False
    )
    assert seen == [0, 1] and hist["val_acc"] == []
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train.fit(model, _toy(), epochs=1, progress=False)


def test_evaluate_and_predict():
    model = nn.Linear(4, 2)
    logits, labels = train.predict(model, _toy(64))
    assert logits.shape == (64, 2) and labels.shape == (64,)
    m = train.evaluate(model, _toy(64))
    assert set(m) == {"loss", "acc"} and 0 <= m["acc"] <= 1
    with pytest.raises(ValueError, match="empty"):
        train.predict(model, [])


def test_device_defaults(monkeypatch):
    from tlcourse import config

    asked = []
    monkeypatch.setattr(config, "get_device", lambda: asked.append(1) or config.torch.device("cpu"))
    train.fit(nn.Linear(4, 2), _toy(64), epochs=1, progress=False)
    assert asked == [1]  # fit asks config.get_device(): Colab's GPU when present
    assert train._model_device(nn.Linear(4, 2)) == torch.device("cpu")
    assert train._model_device(nn.ReLU()) == torch.device("cpu")


def test_reestimate_batchnorm_uses_the_given_inputs_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    x = torch.randn(64, 3) * 2 + 5
    before = [p.detach().clone() for p in model.parameters()]
    loader = DataLoader(TensorDataset(x, torch.zeros(64)), batch_size=16)
    train.reestimate_batchnorm(model, loader)  # (x, y) batches; labels ignored
    with torch.no_grad():
        h = model[0](x)
    bn = model[1]
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)
    assert not model.training and bn.momentum == 0.1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    train.reestimate_batchnorm(model, [x[:32], x[32:]])  # plain tensors work too
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)
    with pytest.raises(ValueError, match="no BatchNorm"):
        train.reestimate_batchnorm(nn.Linear(3, 3), [x])
    with pytest.raises(ValueError, match="no batches"):
        train.reestimate_batchnorm(model, [])


def test_fit_with_an_empty_loader_raises():
    empty = DataLoader(TensorDataset(torch.randn(0, 4), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="training loader is empty"):
        train.fit(nn.Linear(4, 2), empty, progress=False)


def test_fit_says_when_labels_do_not_fit_the_head():
    x, y = torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=r"labels \[0, 1, 2\] in the first batch, but the model has 2 classes"):
        train.fit(nn.Linear(4, 2), DataLoader(TensorDataset(x, y), batch_size=8), progress=False)
