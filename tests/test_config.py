import pytest
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


@pytest.fixture
def no_forcing(monkeypatch):
    monkeypatch.delenv(config.PRECISION_ENV, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    return monkeypatch


def test_precision_on_this_machine_follows_its_cpu_flags(no_forcing, capsys):
    p = config.precision("cpu")
    native = bool(config._cpu_flags() & {"avx512_bf16", "amx_bf16"})
    assert (p.dtype is torch.bfloat16) == native and p.reason
    with capsys.disabled():
        print(f"\nprecision policy on this machine's CPU -> {p}")


@pytest.mark.parametrize(
    ("flags", "isa", "expected", "why"),
    [
        ({"avx2", "fma"}, "", None, "no native bf16"),  # e.g. an AMD EPYC/Ryzen or Intel laptop with AVX2 only
        ({"avx512f", "avx512bw"}, "", None, "no native bf16"),  # AVX-512 without BF16: emulated
        ({"avx512_bf16"}, "", torch.bfloat16, "native bf16 (avx512_bf16)"),
        ({"amx_bf16", "avx512_bf16"}, "", torch.bfloat16, "amx_bf16 and avx512_bf16"),
        ({"amx_bf16"}, "AVX2", None, "ONEDNN_MAX_CPU_ISA=AVX2"),
        ({"amx_bf16"}, "AVX512_CORE_AMX", torch.bfloat16, "native"),
        (set(), "", None, "no native bf16"),  # no /proc/cpuinfo (macOS, Windows)
    ],
)
def test_cpu_policy_picks_bf16_only_where_native(no_forcing, flags, isa, expected, why):
    no_forcing.setattr(config, "_cpu_flags", lambda: flags)
    if isa:
        no_forcing.setenv("ONEDNN_MAX_CPU_ISA", isa)
    p = config.precision("cpu")
    assert p.dtype is expected and why in p.reason and p.name == ("bf16" if expected else "fp32")


@pytest.mark.parametrize(
    ("capability", "expected"), [((7, 5), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)]
)
def test_cuda_policy_by_compute_capability(no_forcing, capability, expected):
    no_forcing.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    p = config.precision("cuda")  # a T4 is 7.5: fp16; Ampere and newer: bf16
    assert p.dtype is expected and f"{capability[0]}.{capability[1]}" in p.reason


def test_precision_can_be_forced_and_bad_values_get_one_line(no_forcing):
    no_forcing.setenv(config.PRECISION_ENV, "fp32")
    assert config.precision("cpu").dtype is None and "forced" in config.precision("cpu").reason
    no_forcing.setenv(config.PRECISION_ENV, "bf16")
    assert config.precision("cpu").dtype is torch.bfloat16
    no_forcing.setenv(config.PRECISION_ENV, "fp16")
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        config.precision("cpu")
    no_forcing.setenv(config.PRECISION_ENV, "half")
    with pytest.raises(ValueError, match="use fp32, bf16 or fp16"):
        config.precision("cpu")


def test_recipe_and_step_timer_follow_the_policy(no_forcing):
    from tlcourse import text_models

    rec = text_models.recipe(smoke=True)
    assert rec.bf16 is None  # the policy decides
    no_forcing.setattr(config, "_cpu_flags", lambda: {"avx2"})
    assert text_models.half_precision(rec) == (False, False) or torch.cuda.is_available()
    no_forcing.setattr(config, "_cpu_flags", lambda: {"amx_bf16"})
    assert text_models.half_precision(rec) == (True, False) or torch.cuda.is_available()
    assert text_models.half_precision(text_models.recipe(smoke=True, bf16=False)) == (False, False)
