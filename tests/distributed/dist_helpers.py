"""Shared bits of the multi-process tests: start, watch and always kill JAX processes.

Every process a test starts runs in its own session (so one killpg takes it and
anything it started), writes to a log file under the test's tmp_path, and has a
hard deadline: a hung collective fails the test instead of hanging the suite.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from attn_jax import launch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SMOKE = os.path.join(REPO, "experiments/lm.py:smoke")
# Quiet and deterministic: no bar, TensorBoard, CPU peak, or mid-run evals.
QUIET = (
    "--config.train.progress_bar=False",
    "--config.train.tensorboard=False",
    "--config.train.report_mfu=False",
    "--config.train.log_every=1",
    "--config.train.eval_every=0",
)
HARD_TIMEOUT_S = 240  # any one run; the smoke model trains in seconds


def main_args(workdir, *overrides) -> list[str]:
    """`attn_jax.main` arguments: the LM smoke config, QUIET, then `overrides`."""
    return ["--config", SMOKE, "--workdir", str(workdir), *QUIET, *overrides]


def single_env(devices: int) -> dict[str, str]:
    """One plain process with `devices` CPU devices (no coordinator in its environment)."""
    env = launch.process_env(0, 1, "unused:0", devices_per_process=devices)
    for key in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        env.pop(key)
    return env


def start(cmd, env, log) -> subprocess.Popen:
    """Starts `cmd` in its own session, stdout and stderr to the file `log`."""
    with open(log, "wb") as f:
        return subprocess.Popen(
            list(cmd), env=env, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_processes(n, args, tmp_path, tag="run", devices_per_process=1, timeout_s=None):
    """n `attn_jax.main` processes of one jax.distributed run on a free loopback port."""
    address = f"127.0.0.1:{launch.free_port()}"
    procs = []
    for i in range(n):
        env = launch.process_env(
            i, n, address, devices_per_process=devices_per_process, init_timeout_s=timeout_s
        )
        cmd = [sys.executable, "-m", "attn_jax.main", *args]
        procs.append(start(cmd, env, tmp_path / f"{tag}.p{i}.log"))
    return procs


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc; Linux)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def kill(procs) -> None:
    """SIGKILLs each process, its group and everything below it (the finally of every test).

    The launcher starts its processes in process groups of their own: they are
    found as descendants.
    """
    for proc in procs:
        if proc.poll() is None:
            below = descendants(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            for pid in below:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait()


def wait_all(procs, logs, timeout_s=HARD_TIMEOUT_S) -> list[int]:
    """Return codes of every process; kills them all and fails with their logs at the deadline."""
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired as err:
            kill(procs)
            message = f"processes still running after {timeout_s} s:\n{read(logs)}"
            raise AssertionError(message) from err
    return [p.returncode for p in procs]


def wait_until(predicate, procs, logs, what, timeout_s=HARD_TIMEOUT_S) -> None:
    """Polls `predicate` until true; fails if a process ended first or at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if any(p.poll() is not None for p in procs):
            raise AssertionError(f"a process ended before {what}:\n{read(logs)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout_s} s:\n{read(logs)}")
        time.sleep(0.05)


def read(logs) -> str:
    return "\n".join(f"--- {p}\n{p.read_text()[-4000:]}" for p in logs if p.exists())


def metrics(workdir, kind="train") -> list[dict]:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r["kind"] == kind]


def losses(workdir) -> dict[int, float]:
    """Train loss per step, the last row of each step (a resumed run rewrites some)."""
    return {r["step"]: r["loss"] for r in metrics(workdir)}


def summary(workdir) -> dict:
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)


def printed_record(log) -> dict:
    """The JSON attn_jax.main prints at the end (the last {...} block of a log)."""
    text = log.read_text()
    start_at = text.rindex("\n{\n") + 1
    return json.loads(text[start_at : text.index("\n}", start_at) + 2])


def checkpoint_steps(workdir) -> list[int]:
    """Finished checkpoint steps (orbax renames a step's temporary folder when complete)."""
    path = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(path):
        return []
    return sorted(int(name) for name in os.listdir(path) if name.isdigit())
