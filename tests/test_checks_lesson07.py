"""Lesson-07 exercise checks: right answers pass; wrong answers, wrong types and stubs get a verdict, never a traceback."""

import math

import pytest
from verdicts import assert_every_verdict

from tlcourse.checks import lesson07


def batch_plan(global_batch, processes, n_samples):
    return global_batch // processes, math.ceil(n_samples / global_batch)


def scaled_lr(lr, base_batch, new_batch, rule="linear"):
    ratio = new_batch / base_batch
    return lr * (ratio if rule == "linear" else ratio**0.5)


def torchrun_command(nodes, gpus_per_node, node_rank, master_addr, master_port, args):
    return ["--nnodes", str(nodes), "--nproc_per_node", str(gpus_per_node), "--node_rank", str(node_rank),
            "--master_addr", master_addr, "--master_port", str(master_port), "-m", "tlcourse.run", *args]  # fmt: skip


def c10d(nodes, gpus_per_node, node_rank, master_addr, master_port, args, rank=False):
    """The dynamic-rendezvous form (node ranks assigned by the rendezvous; --node_rank optional)."""
    return ["--nnodes", str(nodes), "--nproc_per_node", str(gpus_per_node), *(["--node_rank", str(node_rank)] * rank),
            "--rdzv_backend", "c10d", "--rdzv_endpoint", f"{master_addr}:{master_port}", "--rdzv_id", "job7",
            "-m", "tlcourse.run", *args]  # fmt: skip


CASES = {
    "plan": (lesson07.check_batch_plan, batch_plan,
             [lambda b, p, n: (b, math.ceil(n / b)),  # no split
              lambda b, p, n: (b // p, math.ceil(n / (b * p))),  # accelerate's default, not split_batches
              lambda b, p, n: (b // p, n // b),  # drops the last batch
              lambda b, p, n: b // p, lambda b, p, n: (b / p, math.ceil(n / b)),
              lambda b, p, n: (b // p, math.ceil(n / (b // p)))]),  # steps counted per process
    "lr": (lesson07.check_scaled_lr, scaled_lr,
           [lambda lr, b, n, rule="linear": lr * n / b,  # always linear
            lambda lr, b, n, rule="linear": lr * (b / n if rule == "linear" else (b / n) ** 0.5),  # upside down
            lambda lr, b, n, rule="linear": lr, lambda lr, b, n, rule="linear": str(lr),
            lambda lr, b, n, rule="linear": lr * (n // b if rule == "linear" else (n // b) ** 0.5)]),  # integer ratio
    "torchrun": (lesson07.check_torchrun_command, torchrun_command,
                 [lambda nodes, g, r, a, p, args: ["--nnodes", str(nodes), "--nproc_per_node", str(nodes * g),
                                                   "--node_rank", str(r), "--master_addr", a, "--master_port", str(p),
                                                   "-m", "tlcourse.run", *args],  # the world size per node
                  lambda nodes, g, r, a, p, args: torchrun_command(nodes, g, 0, a, p, args),  # every node rank 0
                  lambda nodes, g, r, a, p, args: torchrun_command(nodes, g, r, a, p, args)[:-len(args)] + ["x"],
                  lambda nodes, g, r, a, p, args: " ".join(torchrun_command(nodes, g, r, a, p, args)),
                  lambda nodes, g, r, a, p, args: ["--nnodes", nodes],
                  lambda nodes, g, r, a, p, args: torchrun_command(nodes, g, r, a, p, args)[:6] + ["-m", "tlcourse.run", *args],  # no master
                  lambda nodes, g, r, a, p, args: [*torchrun_command(nodes, g, r, a, p, args)[:-len(args) - 2],
                                                   "python", "-m", "tlcourse.run", *args],  # the word python
                  lambda nodes, g, r, a, p, args: c10d(nodes, g, r, a, p + 1, args)]),  # the wrong endpoint
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_right_wrong_stub_and_crash(name):
    assert_every_verdict(*CASES[name])


@pytest.mark.parametrize(
    ("name", "wrong", "words"),
    [("plan", 0, "GLOBAL batch"), ("plan", 1, "accelerate's default"), ("plan", 2, "round the number of steps up"),
     ("lr", 0, "that is the linear rule"), ("lr", 1, "upside down"), ("torchrun", 0, "ONE node"),
     ("torchrun", 1, "its own --node_rank"), ("plan", 4, "use // (integer division)"),
     ("plan", 5, "ONE global batch"), ("lr", 4, "use true division"), ("torchrun", 5, "add --master_addr/--master_port"),
     ("torchrun", 6, "torchrun starts Python itself"), ("torchrun", 7, "--rdzv_endpoint addr:port")],
)  # fmt: skip
def test_typical_wrong_answers_get_their_own_hint(name, wrong, words, capsys):
    check, _, wrongs = CASES[name]
    assert check(wrongs[wrong]) is False
    out = capsys.readouterr().out
    assert "Hint:" in out and words in out, out


def test_checks_report_on_the_lesson_numbers(capsys):
    assert lesson07.check_batch_plan(batch_plan, n_train=1000, global_batch=32) is True
    assert (
        "32 steps per epoch on 1 process (32 images a step) and 32 steps on 2 (16 per process)"
        in capsys.readouterr().out
    )
    assert lesson07.check_scaled_lr(scaled_lr) is True
    assert "sqrt 0.00085" in capsys.readouterr().out
    assert lesson07.check_torchrun_command(torchrun_command) is True
    assert "a world of 8 processes: a global batch of 32 gives 4 images per process" in capsys.readouterr().out
    assert lesson07.check_torchrun_command(lambda *a: ["torchrun", *torchrun_command(*a)]) is True  # the word itself


def test_the_c10d_rendezvous_form_passes_with_or_without_node_rank(capsys):
    assert lesson07.check_torchrun_command(c10d) is True
    assert lesson07.check_torchrun_command(lambda *a: c10d(*a, rank=True)) is True
    assert capsys.readouterr().out.count("✅") == 2
    wrong_rank = lambda n, g, r, a, p, args: c10d(n, g, (r + 1) % n, a, p, args, rank=True)  # noqa: E731
    assert lesson07.check_torchrun_command(wrong_rank) is False
    out = capsys.readouterr().out
    assert "its own --node_rank" in out and "could not run" not in out, out


def test_the_lr_message_names_the_rule_for_adamw(capsys):
    assert lesson07.check_scaled_lr(scaled_lr) is True
    out = capsys.readouterr().out
    assert "sqrt 0.00085, the learning-rate part of the rule Malladi et al. (2022) derive for Adam" in out
    assert "linear 0.0024, SGD's rule" in out


def test_torchrun_forms_torchrun_accepts_pass_and_standalone_across_nodes_fails(capsys):
    def static_endpoint(n, g, r, a, p, args):
        return ["--nnodes", str(n), "--nproc_per_node", str(g), "--node_rank", str(r), "--rdzv_endpoint", f"{a}:{p}",
                "-m", "tlcourse.run", *args]  # fmt: skip

    def fixed_range(n, g, r, a, p, args):
        return ["--nnodes", f"{n}:{n}", *torchrun_command(n, g, r, a, p, args)[2:]]

    assert lesson07.check_torchrun_command(static_endpoint) is True  # static rendezvous, node 0 at the endpoint
    assert lesson07.check_torchrun_command(fixed_range) is True  # --nnodes N:N is N machines
    capsys.readouterr()
    assert lesson07.check_torchrun_command(lambda *a: ["--standalone", *torchrun_command(*a)]) is False
    assert "rendezvouses on localhost" in capsys.readouterr().out
