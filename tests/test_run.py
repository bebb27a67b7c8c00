"""`python -m tlcourse.run`: the lesson experiments as commands — options from the notebooks' Configs, one-line errors,
a dry run, and the same command under `accelerate launch --num_processes 2 --cpu` (2 real processes, gloo).

The 2-process test runs lesson 02's smoke experiment (real Lite0 weights, real Fashion-MNIST) once on one process and
once through accelerate launch; it takes about half a minute here.
"""

from __future__ import annotations

from tlcourse import run


def _config(*argv):
    return run.make_config(run.parser().parse_args(list(argv)))


def test_help_lists_every_experiment():
    text = run.parser().format_help()
    assert all(name in text for name in run.EXPERIMENTS) and "accelerate launch" in text and "torchrun" in text


def test_options_are_the_notebooks_config_fields(monkeypatch):
    monkeypatch.delenv("TLCOURSE_SMOKE", raising=False)
    cfg = _config("finetune", "--strategies", "full", "head only", "--no-augment", "--seeds", "0", "1",
                  "--max-steps-per-epoch", "none", "--small", "20")  # fmt: skip
    assert (cfg.strategies, cfg.augment, cfg.seeds, cfg.max_steps_per_epoch, cfg.small) == (
        ("full", "head only"), False, (0, 1), None, 20)  # fmt: skip
    assert cfg.epochs == 3 and cfg.batch_size == 32  # lesson 02's full-mode defaults
    lora = _config("lora", "--lr", "full=2e-4", "--seeds", "0")
    assert lora.lr == {"full": 2e-4, "peft": 3e-3} and lora.seeds == (0,) and lora.train_size == 1500
    text = _config("sentiment", "--model-name", "roberta-base", "--bf16")
    assert text.model_name == "roberta-base" and text.bf16 is True and text.train_size is None
    monkeypatch.setenv("TLCOURSE_SMOKE", "1")
    assert _config("finetune").small == 3 and _config("sentiment").train_size == 64  # smoke defaults


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert run.main(["finetune", "--strategies", "fulll", "--dry-run", "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown strategy 'fulll'") and err.count("\n") == 1
    assert run.main(["lora", "--lr", "hand=1e-3", "--dry-run"]) == 2
    assert "--lr names the methods" in capsys.readouterr().err


def test_dry_run_checks_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TLCOURSE_SMOKE", "1")
    assert run.main(["sentiment", "--dry-run", "--out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "on 1 process" in out and "options and assets ok" in out and not (tmp_path / "r.json").exists()


LAUNCH = ["python", "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu", "-m", "tlcourse.run", "x"]


def test_the_accelerate_cpu_request_is_read_from_the_launchers_command_line():
    from tlcourse.launch import asked_cpu_processes

    env = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1"}
    assert asked_cpu_processes(LAUNCH, env) == 2
    assert asked_cpu_processes(["accelerate", "launch", "--num-processes=4", "--cpu", "-m", "tlcourse.run"], env) == 4
    assert asked_cpu_processes(LAUNCH, {**env, "WORLD_SIZE": "2"}) is None  # already one of N processes
    assert asked_cpu_processes(LAUNCH, {"MASTER_ADDR": "127.0.0.1"}) is None  # not a --cpu launch
    assert asked_cpu_processes([*LAUNCH[:3], "--cpu", "-m", "tlcourse.run"], env) is None  # one process asked for
    assert asked_cpu_processes([*LAUNCH[:5], "--num_machines", "2", *LAUNCH[5:]], env) is None  # multi-node: MPI
    assert asked_cpu_processes(["python", "-m", "tlcourse.run", "--num_processes", "2"], env) is None  # not accelerate


SMOKE = ["--smoke", "--strategies", "full", "progressive unfreezing"]


def test_accelerate_launch_two_cpu_processes_smoke_matches_one_process():
    from tlcourse import launch

    one = launch.launch("finetune", SMOKE, processes=1, threads_per_process=1, timeout=600)
    two = launch.launch("finetune", SMOKE, processes=2, threads_per_process=1, timeout=600)  # accelerate launch
    assert two["command"].startswith("accelerate launch --num_processes 2 --cpu -m tlcourse.run finetune --smoke")
    assert one["num_processes"] == 1 and two["num_processes"] == 2, two["stdout"]  # two real processes, not one
    assert "on 2 processes" in two["stdout"] and two["stdout"].count("results:") == 1  # only the main process writes
    for a, b in zip(one["rows"], two["rows"], strict=True):
        assert len(b["weights"]) == 2 and len(set(b["weights"])) == 1  # both processes hold bit-equal weights
        assert a["test_acc"] == b["test_acc"] and a["test_pred"] == b["test_pred"]
        assert abs(a["test_loss"] - b["test_loss"]) < 1e-5 and abs(a["train_loss"][0] - b["train_loss"][0]) < 1e-5
        assert a["draws"] == b["draws"] and b["optimizer_steps"] == a["optimizer_steps"] * 2  # same examples, steps


def test_launch_builds_the_commands_as_typed():
    from tlcourse import launch

    assert launch.shell(launch.command("lora", ["--seeds", "0"], 2, "torchrun")) == (
        "torchrun --nproc_per_node 2 -m tlcourse.run lora --seeds 0")  # fmt: skip
    assert launch.shell(launch.command("finetune", ["--strategies", "head only"])) == (
        "python -m tlcourse.run finetune --strategies 'head only'")  # fmt: skip


def test_record_draws_counts_the_optimizer_steps_and_hashes_what_they_trained_on():
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from tlcourse import distributed, train

    def run(max_steps=None, flip=False, seed=0):
        torch.manual_seed(0)
        x, y = torch.randn(40, 3), torch.arange(40) % 2
        loader = DataLoader(TensorDataset(x, 1 - y if flip else y), batch_size=8, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))  # fmt: skip
        with distributed.record_draws() as draws:
            train.fit(torch.nn.Linear(3, 2), loader, epochs=2, max_steps_per_epoch=max_steps, progress=False,
                      device="cpu")  # fmt: skip
        return draws.all_steps(), draws.digest()

    steps, digest = run()
    assert steps == [10] and len(digest) == 12 and run() == (steps, digest)  # 2 epochs × 5 batches; deterministic
    assert run(max_steps=2)[0] == [4]  # the batch fit pulls before it stops is not a step
    assert run(flip=True)[1] != digest and run(seed=1)[1] != digest  # other labels, another order
    assert distributed._DRAWS is None  # recording ends with the block


def test_a_failed_launch_names_its_cause_not_the_launchers_relay():
    from tlcourse.launch import _cause

    stderr = """Traceback (most recent call last):
  File "x.py", line 3, in <module>
RuntimeError: The server socket has failed to listen on any local network address. port: 29500
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
subprocess.CalledProcessError: Command '['python', '-m', 'tlcourse.run']' returned non-zero exit status 1.
"""
    assert _cause(stderr, 1).startswith("RuntimeError: The server socket has failed to listen")
    assert _cause("", 3) == "exit code 3" and _cause("just a line\n", 1) == "just a line"
