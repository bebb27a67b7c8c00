"""Exercise checks of lesson 07 (scaling up): each calls the learner's function, compares with a reference, prints a
verdict."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from tlcourse.checks.base import call, expect, expect_type, run_check


def _plan(global_batch: int, processes: int, n_samples: int) -> tuple[int, int]:
    return global_batch // processes, math.ceil(n_samples / global_batch)


def check_batch_plan(fn: Callable, n_train: int | None = None, global_batch: int = 32) -> bool:
    """Exercise 7.1: fn(global_batch, processes, n_samples) -> (images per process per step, steps per epoch) when the
    loader's batch is the global batch, split over the processes (split_batches, as tlcourse's fit does)."""

    def body():
        for batch, procs, n in [(32, 2, 1000), (32, 1, 1000), (64, 4, 640), (48, 8, 100), (32, 2, 33), (16, 16, 5)]:
            got = call(fn, batch, procs, n)
            what = f"batch_plan({batch}, {procs}, {n})"
            expect(isinstance(got, tuple | list) and len(got) == 2, f"{what} returned {got!r}",
                   "return a pair: (images per process per step, steps per epoch)")  # fmt: skip
            for i in (0, 1):
                expect(not isinstance(got[i], float), f"{what}[{i}] is {got[i]!r}, a float",
                       "use // (integer division) and round up with -(-a // b): a batch holds whole images, and a "
                       "step is a whole step")  # fmt: skip
                expect_type(got[i], int, f"{what}[{i}]")
            want = _plan(batch, procs, n)
            if tuple(got) == want:
                continue
            if got[0] == batch and procs > 1:
                hint = "the loader's batch is the GLOBAL batch: each of the processes gets an equal slice of it"
            elif got[1] == math.ceil(n / (batch * procs)) and procs > 1:
                hint = ("that is accelerate's default (every process draws a whole batch); with split_batches each "
                        "step uses one global batch, so the steps per epoch do not depend on the processes")  # fmt: skip
            elif got[1] == math.ceil(n / (batch // procs)) and procs > 1:
                hint = ("that counts the steps of one process's slice as if it went through all the images alone: "
                        "the processes take their slices of ONE global batch at the same step, so a step consumes "
                        "the global batch")  # fmt: skip
            elif got[1] == n // batch:
                hint = "the last, shorter batch is a step too: round the number of steps up"
            else:
                hint = "per process: global batch ÷ processes; steps: the samples ÷ global batch, rounded up"
            expect(False, f"{what} returned {tuple(got)}, expected {want}", hint)
        if n_train is None:
            return None
        one, two = _plan(global_batch, 1, n_train), _plan(global_batch, 2, n_train)
        steps = lambda k: f"{k} step{'s' if k != 1 else ''}"  # noqa: E731
        return (f"this lesson's {n_train:,} training images, global batch {global_batch}: {steps(one[1])} per epoch on "
                f"1 process ({one[0]} images a step) and {steps(two[1])} on 2 ({two[0]} per process): the same steps, "
                "so the same learning-rate schedule.")  # fmt: skip

    return run_check("Exercise 7.1 (the batch plan)", body)


def _scaled(lr: float, base: int, new: int, rule: str) -> float:
    return lr * (new / base if rule == "linear" else math.sqrt(new / base))


def check_scaled_lr(fn: Callable) -> bool:
    """Exercise 7.2: fn(lr, base_batch, new_batch, rule) -> the learning rate for the new global batch: "linear"
    (lr × new / base: Goyal et al., 2017, for SGD with momentum, with a gradual warm-up) or "sqrt" (lr × √(new / base):
    Krizhevsky, 2014, argued it for SGD, though his experiments scaled linearly; Malladi et al., 2022, derive it for Adam
    and RMSProp, together with rescaled β₁, β₂ and ε)."""

    def body():
        cases = [(0.1, 256, 1024, "linear"), (3e-4, 32, 256, "linear"), (3e-4, 32, 256, "sqrt"),
                 (1e-3, 64, 16, "sqrt"), (5e-5, 16, 16, "linear"), (2e-3, 128, 32, "linear")]  # fmt: skip
        for lr, base, new, rule in cases:
            got = call(fn, lr, base, new, rule)
            what = f"scaled_lr({lr:g}, {base}, {new}, {rule!r})"
            expect_type(got, float, what)
            want = _scaled(lr, base, new, rule)
            if math.isclose(got, want, rel_tol=1e-9):
                continue
            other = "sqrt" if rule == "linear" else "linear"
            if got == 0 and new < base:
                hint = "new // base rounds a ratio below 1 down to 0: use true division, new / base"
            elif math.isclose(got, _scaled(lr, base, new, other), rel_tol=1e-9):
                hint = f"that is the {other} rule; this case asks for {rule!r}"
            elif math.isclose(got, _scaled(lr, new, base, rule), rel_tol=1e-9):
                hint = "upside down: a larger batch gets a larger rate (new ÷ base, not base ÷ new)"
            else:
                hint = "linear: lr × new / base; sqrt: lr × (new / base) ** 0.5"
            expect(False, f"{what} returned {got:.3g}, expected {want:.3g}", hint)
        full = 3e-4  # lesson 02's full fine-tuning rate (AdamW), at batch 32
        return (f"lesson 02's AdamW rate {full:g} at batch 32, on 8 GPUs × 32: sqrt {call(fn, full, 32, 256, 'sqrt'):.2g}, "
                "the learning-rate part of the rule Malladi et al. (2022) derive for Adam, which also rescales β₁, β₂ "
                f"and ε; linear {call(fn, full, 32, 256, 'linear'):.2g}, SGD's rule (Goyal et al., 2017). Starting "
                "points with a warm-up, to be checked on validation, not results.")  # fmt: skip

    return run_check("Exercise 7.2 (a learning rate for a bigger batch)", body)


def _torchrun_args(argv: list[str]):
    from torch.distributed.run import get_args_parser

    return get_args_parser().parse_args(argv)


def check_torchrun_command(fn: Callable, global_batch: int = 32) -> bool:
    """Exercise 7.3: fn(nodes, gpus_per_node, node_rank, master_addr, master_port, args) -> the argv (after the word
    `torchrun`) that starts `python -m tlcourse.run <args>` on node `node_rank` of a multi-node job; read back with
    torchrun's own argument parser. Node 0's address as --master_addr/--master_port (with --node_rank), or as a c10d
    rendezvous, --rdzv_backend c10d --rdzv_endpoint addr:port (--node_rank optional there)."""

    def body():
        for nodes, gpus, rank, addr, port, args in [(2, 4, 1, "10.0.0.1", 29500, ["finetune", "--seeds", "0"]),
                                                    (4, 8, 0, "node-01", 6000, ["lora"]),
                                                    (1, 2, 0, "127.0.0.1", 29400, ["sentiment", "--smoke"])]:  # fmt: skip
            got = call(fn, nodes, gpus, rank, addr, port, list(args))
            what = f"torchrun_command({nodes}, {gpus}, {rank}, {addr!r}, {port}, {args})"
            expect(isinstance(got, list) and all(isinstance(a, str) for a in got), f"{what} returned {got!r}",
                   "return a list of strings, one per word of the command line (str(...) the numbers)")  # fmt: skip
            if got and got[0] == "torchrun":
                got = got[1:]
            try:
                a = _torchrun_args(got)
            except SystemExit:
                expect(False, f"torchrun cannot parse {got}", "options first (--nnodes ...), then -m tlcourse.run")
            expect(Path(a.training_script).name not in ("python", "python3"),
                   f"{what}: torchrun would run the program {a.training_script!r}",
                   "torchrun starts Python itself: leave out the word python and end with -m tlcourse.run ...")  # fmt: skip
            expect(str(a.nnodes) in (str(nodes), f"{nodes}:{nodes}"), f"{what}: --nnodes is {a.nnodes}, expected {nodes}",
                   "--nnodes is the number of machines")  # fmt: skip
            expect(not a.standalone or nodes == 1, f"{what}: --standalone on {nodes} machines",
                   "--standalone is for one machine: it rendezvouses on localhost, so the nodes would never meet")  # fmt: skip
            hint = (
                "--nproc_per_node counts the processes on ONE node (one per GPU); torchrun multiplies by --nnodes"
                if str(a.nproc_per_node) == str(nodes * gpus)
                else "one process per GPU of the node"
            )
            expect(str(a.nproc_per_node) == str(gpus), f"{what}: --nproc_per_node is {a.nproc_per_node}", hint)
            flags = {w.split("=")[0].replace("-", "_") for w in got if w.startswith("--")}
            rank_hint = "every node runs the same command except its own --node_rank (0 … nodes − 1)"
            if a.standalone:  # one machine (checked above): torchrun picks its own local rendezvous
                pass
            elif a.rdzv_backend == "c10d":  # dynamic rendezvous: node ranks are assigned, --node_rank is optional
                expect(a.rdzv_endpoint == f"{addr}:{port}", f"{what}: --rdzv_endpoint is {a.rdzv_endpoint!r}",
                       f"--rdzv_endpoint addr:port, where node 0 listens ({addr}:{port} here), the same on every node")  # fmt: skip
                expect("__node_rank" not in flags or a.node_rank == rank,
                       f"{what}: --node_rank is {a.node_rank}, expected {rank}", rank_hint)  # fmt: skip
            else:
                expect(a.rdzv_backend == "static", f"{what}: --rdzv_backend {a.rdzv_backend}",
                       "a rendezvous backend across machines: c10d with --rdzv_endpoint addr:port, or none at all "
                       "with --master_addr/--master_port")  # fmt: skip
                expect(a.node_rank == rank, f"{what}: --node_rank is {a.node_rank}, expected {rank}", rank_hint)
                at_endpoint = bool(a.rdzv_endpoint)  # static rendezvous at an endpoint: node 0's address from it
                if at_endpoint:
                    expect(a.rdzv_endpoint == f"{addr}:{port}", f"{what}: --rdzv_endpoint is {a.rdzv_endpoint!r}",
                           f"--rdzv_endpoint addr:port, where node 0 listens ({addr}:{port} here)")  # fmt: skip
                expect(at_endpoint or ("__master_addr" in flags and a.master_port is not None),
                       f"{what}: no --master_addr/--master_port (torchrun would wait at 127.0.0.1)",
                       "add --master_addr/--master_port (or --rdzv_backend c10d --rdzv_endpoint addr:port)")  # fmt: skip
                expect(at_endpoint or (a.master_addr, int(a.master_port)) == (addr, port),
                       f"{what}: master {a.master_addr}:{a.master_port}",
                       "--master_addr / --master_port: where node 0 listens, the same on every node")  # fmt: skip
            expect(a.module and a.training_script == "tlcourse.run" and a.training_script_args == list(args),
                   f"{what}: runs {a.training_script} {a.training_script_args} (module: {a.module})",
                   "end with -m tlcourse.run followed by the experiment's own arguments")  # fmt: skip
        world = 2 * 4
        split = f"{global_batch // world} images per process" if global_batch % world == 0 else "an uneven split"
        return (f"2 nodes × 4 GPUs is a world of {world} processes: a global batch of {global_batch} gives {split}; "
                "a bigger model or batch is what keeps each GPU busy.")  # fmt: skip

    return run_check("Exercise 7.3 (a multi-node command)", body)
