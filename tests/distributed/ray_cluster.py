"""A two-node Ray cluster on this machine for tests: a head and a worker, both `ray start`.

Each node is one `ray start --block` in its own session with its own --temp-dir
(Ray 2.60 takes one per node) and its own free ports, so it shares nothing with
any other Ray on the host, and `ray stop` (which stops every Ray process of the
user) is never needed: a node is stopped, or lost, by signalling the processes
under its `ray start`, found through /proc. Each node has `cpus` CPUs. Not
loopback: for a cluster of more than one node Ray replaces 127.0.0.1 with the
host's own address (ray._private.services.resolve_ip_for_localhost), so both
nodes listen on this host's interface, on ports nothing else uses.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from dist_helpers import descendants

from attn_jax.launch import free_port

RAY = os.path.join(os.path.dirname(sys.executable), "ray")
READY = "Ray runtime started."
START_TIMEOUT_S = 120


def _ports() -> list[str]:
    names = (
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
        "--node-manager-port",
        "--object-manager-port",
    )
    return [arg for name in names for arg in (name, str(free_port()))]


def processes_mentioning(text: str) -> list[int]:
    """Live processes (not zombies) whose command line contains `text`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(name))
    return found


class Node:
    """One `ray start --block` and its log."""

    def __init__(self, args, log, env):
        self.log = log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                [RAY, "start", "--block", *args],
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.tree: set[int] = set()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ray node did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def address(self) -> str:
        """The head's GCS address from its log ("ray start --address='host:port'")."""
        text = self.log.read_text()
        return text.split("ray start --address='", 1)[1].split("'", 1)[0]

    def kill(self, signum=signal.SIGKILL) -> None:
        """Signals every process of the node (raylet, agents, its trials' workers)."""
        self.tree |= set(descendants(self.proc.pid))
        for pid in sorted(self.tree):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


class LocalCluster:
    """A head and a worker node on this host; `stop()` leaves no process of either."""

    def __init__(self, tmp_path, cpus: int = 1, worker_env: dict | None = None):
        # Ray's socket paths must stay under 108 bytes: its temp dirs under a short
        # root in /tmp; the nodes' logs in tmp_path, for a post-mortem.
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.logs = tmp_path
        self.port = free_port()
        self.address = None  # host:port, as the head reports it
        base = dict(os.environ)
        for key in ("RAY_ADDRESS", "XLA_FLAGS"):
            base.pop(key, None)
        # Explicit, for every node and driver: with RAY_AUTH_MODE unset, `ray start
        # --head` turns token auth on when ~/.ray/auth_token exists (a local ray.init()
        # writes one) but a joining `ray start --address` does not, and is refused.
        base["RAY_AUTH_MODE"] = "disabled"
        self.env = base  # for drivers: the sweep CLI
        common = ["--num-cpus", str(cpus), "--disable-usage-stats"]
        self.head = Node(
            [
                "--head",
                "--port",
                str(self.port),
                "--include-dashboard=false",
                "--dashboard-port",
                str(free_port()),
                "--ray-client-server-port",
                str(free_port()),
                "--temp-dir",
                str(self.root / "head"),
                *common,
                *_ports(),
            ],
            self.logs / "ray-head.log",
            base,
        )
        self.worker = None
        try:
            self.head.wait_ready()
            self.address = self.head.address()
            self.worker = Node(
                [
                    "--address",
                    self.address,
                    "--temp-dir",
                    str(self.root / "worker"),
                    *common,
                    *_ports(),
                ],
                self.logs / "ray-worker.log",
                dict(base, **(worker_env or {})),
            )
            self.worker.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> list[int]:
        """Stops both nodes; returns the pids of any of their processes still alive (none).

        SIGTERM to each `ray start --block`, which stops its node's processes and
        reaps them; whatever is left after 20 s is SIGKILLed.
        """
        nodes = [n for n in (self.worker, self.head) if n is not None]
        for node in nodes:
            node.tree |= set(descendants(node.proc.pid))
            if node.proc.poll() is None:
                node.proc.terminate()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(n.proc.poll() is None for n in nodes):
            time.sleep(0.2)
        for node in nodes:
            node.kill(signal.SIGKILL)
            node.proc.wait()
        deadline = time.monotonic() + 10  # SIGKILLed orphans: reaped by init meanwhile
        while (left := processes_mentioning(str(self.root))) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self.root, ignore_errors=True)
        return left
