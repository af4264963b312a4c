"""Runs a training command as N processes of one jax.distributed run.

On one machine (CPU processes over loopback, gloo collectives):

    python -m attn_jax.launch --processes 2 -- --config experiments/lm.py:smoke --workdir runs/mp

starts `python -m attn_jax.main <args after -->` N times with the coordinator
on a free 127.0.0.1 port, JAX_NUM_PROCESSES and JAX_PROCESS_ID set, and
`--devices_per_process` CPU devices each. Process 0 prints as usual; the others'
lines are prefixed "[process i]". SIGTERM or Ctrl-C to the launcher is passed to
every process, which all stop at the same step, save and record "preempted";
a process that exits with an error takes the others down (SIGTERM, then
SIGKILL after `--grace_s`), since they would wait for it in their next collective.

On a cluster (SLURM, Open MPI, a Cloud TPU pod), run the same entry point once
per host, without --processes, e.g. `srun python -m attn_jax.launch -- --config ...`:
it replaces itself with the command and asks it to call
`jax.distributed.initialize()`, which reads the coordinator, process count and
id from the environment (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
JAX_PROCESS_ID when those are set).

This module imports no JAX.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

# Read by attn_jax.train.mesh.maybe_initialize_distributed (tests check they agree).
INIT_TIMEOUT_ENV = "ATTN_JAX_INIT_TIMEOUT_S"
DISTRIBUTED_ENV = "ATTN_JAX_DISTRIBUTED"
_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS's pick; free until someone takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def process_env(
    process_id: int,
    num_processes: int,
    coordinator: str,
    *,
    devices_per_process: int = 1,
    init_timeout_s: float | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one local process: coordinator, ids, CPU platform and devices.

    Args:
      process_id: this process, 0 .. num_processes - 1 (0 hosts the coordinator).
      num_processes: processes in the run.
      coordinator: "host:port" of process 0's coordinator service.
      devices_per_process: CPU devices each process gets
        (--xla_force_host_platform_device_count; any such flag in `base` is replaced).
      init_timeout_s: seconds to wait for the coordinator and the other processes.
      base: the environment to start from (default: this process's).
    """
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} must be in [0, {num_processes}).")
    if devices_per_process < 1:
        raise ValueError(f"devices_per_process={devices_per_process} must be at least 1.")
    env = dict(os.environ if base is None else base)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(_DEVICE_FLAG)]
    env.update(
        JAX_COORDINATOR_ADDRESS=coordinator,
        JAX_NUM_PROCESSES=str(num_processes),
        JAX_PROCESS_ID=str(process_id),
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=" ".join([*flags, f"{_DEVICE_FLAG}={devices_per_process}"]),
    )
    if init_timeout_s is not None:
        env[INIT_TIMEOUT_ENV] = str(float(init_timeout_s))
    return env


def _prefix_lines(stream, prefix: str) -> None:
    for line in iter(stream.readline, b""):
        sys.stderr.buffer.write(prefix.encode() + line)
        sys.stderr.buffer.flush()
    stream.close()


def _child_setup() -> None:
    """In the child before exec: SIGTERM when the launcher dies (Linux), so none is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def _exit_code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc  # killed by signal s: 128 + s, as a shell reports it


class LocalRun:
    """N child processes of one run, their output, and their shared fate."""

    def __init__(self, commands: Sequence[Sequence[str]], envs, grace_s: float = 10.0):
        self.grace_s = float(grace_s)
        self.procs: list[subprocess.Popen] = []
        self.threads: list[threading.Thread] = []
        self.signalled = 0
        for i, (cmd, env) in enumerate(zip(commands, envs, strict=True)):
            # Own process groups: a terminal's Ctrl-C reaches the launcher only, which
            # turns it into one SIGTERM per process (a preemption every process agrees on).
            popen = dict(env=env, process_group=0, preexec_fn=_child_setup)
            if i == 0:  # process 0 speaks for the run: its output is passed through
                proc = subprocess.Popen(list(cmd), **popen)
            else:
                proc = subprocess.Popen(
                    list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen
                )
                thread = threading.Thread(
                    target=_prefix_lines, args=(proc.stdout, f"[process {i}] "), daemon=True
                )
                thread.start()
                self.threads.append(thread)
            self.procs.append(proc)

    def signal_all(self, signum: int) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def on_signal(self, signum, frame) -> None:
        del frame
        self.signalled += 1
        # The first SIGTERM/SIGINT asks every process to stop at one step and save;
        # a second one kills them.
        self.signal_all(signal.SIGTERM if self.signalled == 1 else signal.SIGKILL)
        del signum

    def wait(self, poll_s: float = 0.2) -> int:
        """Waits for every process; returns 0 or the first failure's exit code."""
        failed = None
        while any(p.poll() is None for p in self.procs):
            if failed is None:
                bad = [p for p in self.procs if p.poll() not in (None, 0)]
                if bad:
                    failed = bad[0]
                    print(
                        f"attn_jax.launch: process {self.procs.index(failed)} exited with "
                        f"{_exit_code(failed.returncode)}; stopping the others.",
                        file=sys.stderr,
                    )
                    self.signal_all(signal.SIGTERM)
                    deadline = time.monotonic() + self.grace_s
            elif time.monotonic() > deadline:
                self.signal_all(signal.SIGKILL)
            time.sleep(poll_s)
        for thread in self.threads:
            thread.join(timeout=5)
        codes = [_exit_code(p.returncode) for p in self.procs]
        if failed is not None:
            return _exit_code(failed.returncode)
        return next((c for c in codes if c), 0)

    def kill(self) -> None:
        self.signal_all(signal.SIGKILL)
        for proc in self.procs:
            proc.wait()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m attn_jax.launch",
        description=__doc__.split("\n")[0],
        epilog="Everything after -- goes to the module, e.g. --config ... --workdir ...",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="start this many processes on this machine (0: one process of a cluster job)",
    )
    parser.add_argument("--devices_per_process", type=int, default=1, help="CPU devices each")
    parser.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
    parser.add_argument(
        "--init_timeout_s",
        type=float,
        default=None,
        help="seconds to wait for the coordinator and the other processes (default 300)",
    )
    parser.add_argument(
        "--grace_s", type=float, default=10.0, help="after one process fails: SIGKILL delay"
    )
    parser.add_argument("--module", default="attn_jax.main", help="python -m this module")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    ours, rest = argv[:split], argv[split + 1 :]
    args = _parser().parse_args(ours)
    command = [sys.executable, "-m", args.module, *rest]
    if args.processes < 0:
        raise SystemExit(f"--processes={args.processes} must be 0 (a cluster job) or more.")
    if args.processes == 0:
        # A cluster: this is one of its processes; jax.distributed.initialize() reads
        # the rest from SLURM, Open MPI, the TPU metadata or JAX_COORDINATOR_ADDRESS.
        env = dict(os.environ, **{DISTRIBUTED_ENV: "1"})
        if args.init_timeout_s is not None:
            env[INIT_TIMEOUT_ENV] = str(float(args.init_timeout_s))
        sys.stdout.flush()
        os.execvpe(command[0], command, env)
    coordinator = f"127.0.0.1:{args.port or free_port()}"
    envs = [
        process_env(
            i,
            args.processes,
            coordinator,
            devices_per_process=args.devices_per_process,
            init_timeout_s=args.init_timeout_s,
        )
        for i in range(args.processes)
    ]
    print(
        f"attn_jax.launch: {args.processes} processes x {args.devices_per_process} CPU "
        f"device(s), coordinator {coordinator}",
        file=sys.stderr,
    )
    run = LocalRun([command] * args.processes, envs, grace_s=args.grace_s)
    previous = {s: signal.signal(s, run.on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return run.wait()
    finally:
        run.kill()
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
