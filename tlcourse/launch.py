"""Lesson commands in fresh processes: one, or N through `accelerate launch` / `torchrun`, and their results.

    cmd = launch.command("finetune", ["--smoke"], processes=2)      # the argv; launch.shell(cmd) is how to type it
    report = launch.launch("finetune", ["--smoke"], processes=2, threads_per_process=1)   # run it; its results JSON

`accelerate launch --cpu --num_processes N` starts ONE process in accelerate 1.x (several CPU processes go through MPI
there, `--mpirun_hostfile`): `python -m tlcourse.run`, started that way, sees the request on its launcher's command
line and starts the N processes itself with torch's launcher (what `torchrun` is), so the command means what it says.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHERS = ("accelerate", "torchrun")


def command(experiment: str, options: list[str] = (), processes: int = 1, launcher: str = "accelerate",
            port: int | None = None) -> list[str]:  # fmt: skip
    """The argv of `python -m tlcourse.run experiment options` on `processes` CPU processes (launcher for N > 1);
    `port`: where process 0 listens (default: the launcher's, 29500)."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; choose one of {list(LAUNCHERS)}")
    run = ["-m", "tlcourse.run", experiment, *options]
    if processes == 1:
        return [sys.executable, *run]
    if launcher == "accelerate":
        at = [] if port is None else ["--main_process_port", str(port)]
        return [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            str(processes),
            "--cpu",
            *at,
            *run,
        ]
    at = [] if port is None else ["--master_port", str(port)]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), *at, *run]


def free_port() -> int:
    """A TCP port nobody listens on now (so two runs at once do not meet on the launchers' default port)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shell(cmd: list[str]) -> str:
    """How to type `cmd` in a terminal: `python`, `accelerate launch`, `torchrun` instead of this interpreter's paths."""
    words = ["python" if w == sys.executable else w for w in cmd]
    text = shlex.join(words)
    return text.replace("python -m accelerate.commands.launch", "accelerate launch").replace(
        "python -m torch.distributed.run", "torchrun"
    )


def launch(experiment: str, options: list[str] = (), processes: int = 1, threads_per_process: int | None = None,
           launcher: str = "accelerate", cpu: bool = False, timeout: float | None = None) -> dict:  # fmt: skip
    """Run the command in fresh processes and return its results file (a dict), plus "command" (as typed),
    "launch_seconds" (wall time of the whole command: start-up included) and "stdout".

    threads_per_process sets OMP_NUM_THREADS (None: the launcher's choice); cpu=True hides any GPU from the command
    (CUDA_VISIBLE_DEVICES=""), so one process and N processes compare on the same CPUs. A failure raises RuntimeError
    with the command's last error line.
    """
    out = Path(tempfile.mkdtemp(prefix="tlcourse-launch-")) / "result.json"
    port = free_port() if processes > 1 else None
    cmd = command(experiment, [*options, "--out", str(out), "--no-progress"], processes, launcher, port)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    if threads_per_process is not None:
        env["OMP_NUM_THREADS"] = str(threads_per_process)
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    seconds = time.perf_counter() - start
    if res.returncode != 0 or not out.is_file():
        log = out.parent / "output.txt"  # everything the command printed, kept for the reader
        log.write_text(f"$ {shlex.join(cmd)}\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}")
        raise RuntimeError(f"{shell(command(experiment, options, processes, launcher))} failed: "
                           f"{_cause(res.stderr, res.returncode)} (its whole output: {log})")  # fmt: skip
    report = json.loads(out.read_text())
    out.unlink()
    out.parent.rmdir()
    return {**report, "command": shell(command(experiment, options, processes, launcher)),
            "launch_seconds": seconds, "stdout": res.stdout}  # fmt: skip


def _cause(stderr: str, code: int) -> str:
    """The line of a failed command's stderr that says why: the first exception line that is not a launcher merely
    reporting that its child failed (accelerate's CalledProcessError, torchrun's ChildFailedError), else the last."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    relayed = ("CalledProcessError", "ChildFailedError", "torch.distributed.elastic")
    errors = [ln for ln in lines if ("Error" in ln or "error:" in ln) and not any(r in ln for r in relayed)
              and not ln.startswith(("File ", "Traceback", "raise "))]  # fmt: skip
    return errors[0] if errors else lines[-1] if lines else f"exit code {code}"


def asked_cpu_processes(parent: list[str] | None = None, env: dict | None = None) -> int | None:
    """N when `accelerate launch --cpu --num_processes N` (N > 1, one machine) started this as its only process.

    accelerate 1.x starts several CPU processes only through MPI (--mpirun_hostfile); without it, its launcher runs
    one process (and sets MASTER_ADDR). The launcher's command line (`parent`, default: the parent process's, from
    Linux /proc) says how many were asked for.
    """
    env = os.environ if env is None else env
    if "WORLD_SIZE" in env or "LOCAL_RANK" in env or "MASTER_ADDR" not in env:
        return None
    if env.get("ACCELERATE_USE_CPU", "").lower() not in {"1", "true", "yes"}:
        return None
    if parent is None:
        try:
            parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            return None
    mine = next((i for i, a in enumerate(parent) if a == "tlcourse.run" or a.endswith("tlcourse/run.py")), len(parent))
    if not any("accelerate" in a for a in parent[:mine]):
        return None
    opts = dict(a.split("=", 1) if "=" in a else (a, parent[i + 1] if i + 1 < mine else "")
                for i, a in enumerate(parent[:mine]) if a.startswith("--"))  # fmt: skip
    n = opts.get("--num_processes", opts.get("--num-processes", "1"))
    machines = opts.get("--num_machines", opts.get("--num-machines", "1"))
    return int(n) if n.isdigit() and int(n) > 1 and machines in ("", "1") else None


def relaunch_cpu(n: int, module: str, argv: list[str]) -> int:
    """Start `python -m module argv` as N CPU processes with torch's own launcher (what `torchrun` is); its exit code."""
    import subprocess
    import sys

    print(f"accelerate launch --cpu started 1 process (several CPU processes need MPI there); starting {n} with "
          "torch.distributed.run, gloo backend", flush=True)  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--master_addr",
           os.environ["MASTER_ADDR"], "--master_port", os.environ.get("MASTER_PORT", "29500"), "-m", module, *argv]  # fmt: skip
    return subprocess.call(cmd, env={**os.environ, "ACCELERATE_USE_CPU": "true"})
