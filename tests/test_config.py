import torch

from tlcourse import config


def test_pick_follows_smoke_switch(monkeypatch):
    monkeypatch.setenv("TLCOURSE_SMOKE", "1")
    assert config.is_smoke() and config.mode() == "smoke" and config.pick(100, 5) == 5
    monkeypatch.setenv("TLCOURSE_SMOKE", "0")
    assert not config.is_smoke() and config.mode() == "full" and config.pick(100, 5) == 100
    monkeypatch.delenv("TLCOURSE_SMOKE")
    assert config.pick("full", "smoke") == "full"


def test_seed_everything_is_reproducible():
    g1 = config.seed_everything(3)
    a = torch.randn(4), torch.randint(0, 10, (3,), generator=g1)
    g2 = config.seed_everything(3)
    b = torch.randn(4), torch.randint(0, 10, (3,), generator=g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    assert config.get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.get_device() == torch.device("cpu")


def test_data_and_results_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path / "d"))
    assert config.data_dir() == tmp_path / "d"
    monkeypatch.delenv("TLCOURSE_DATA")
    assert config.data_dir() == config.repo_root() / "data" / "cache"
    monkeypatch.setenv("TLCOURSE_RESULTS", str(tmp_path / "r"))
    monkeypatch.setenv("TLCOURSE_SMOKE", "1")
    assert config.results_dir() == tmp_path / "r" / "smoke"
    monkeypatch.setenv("TLCOURSE_SMOKE", "0")
    assert config.results_dir() == tmp_path / "r"
