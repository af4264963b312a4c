"""attn_jax.launch on this machine: N processes of one jax.distributed run (fast checks).

Two processes x 1 CPU device join over loopback (gloo collectives), assemble
one global batch from their process-local rows and sum it; a process that dies
takes the other down; one that cannot reach the coordinator fails in bounded
time naming the address. The training runs are in test_multiprocess_train.py.
"""

import json
import os
import subprocess
import sys

from dist_helpers import HERE, REPO, main_args, single_env

from attn_jax import launch
from attn_jax.train import mesh as mesh_lib

PROBE = [sys.executable, "-m", "attn_jax.launch", "--processes", "2", "--module", "probe_sum"]


def _launch(extra=(), timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [*PROBE, *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_process_env_sets_coordinator_ids_and_devices():
    base = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --xla_foo=1", "KEEP": "1"}
    env = launch.process_env(1, 3, "127.0.0.1:1234", devices_per_process=2, base=base)
    assert env["JAX_COORDINATOR_ADDRESS"] == "127.0.0.1:1234"
    assert (env["JAX_NUM_PROCESSES"], env["JAX_PROCESS_ID"]) == ("3", "1")
    assert env["XLA_FLAGS"].split() == ["--xla_foo=1", "--xla_force_host_platform_device_count=2"]
    assert env["KEEP"] == "1"
    assert env["JAX_PLATFORMS"] == "cpu"
    # The launcher writes the variables that train.mesh reads.
    assert launch.INIT_TIMEOUT_ENV == mesh_lib.INIT_TIMEOUT_ENV
    assert launch.DISTRIBUTED_ENV == mesh_lib.DISTRIBUTED_ENV


def test_two_processes_form_one_mesh_and_sum_a_global_batch():
    proc = _launch()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = [
        json.loads(line.split("PROBE ", 1)[1])
        for line in (proc.stdout + proc.stderr).splitlines()
        if "PROBE " in line
    ]
    assert sorted(r["process"] for r in reports) == [0, 1]
    # Process 1's lines come back through the launcher, prefixed.
    assert any(line.startswith("[process 1] PROBE ") for line in proc.stderr.splitlines())
    for r in reports:
        assert (r["processes"], r["devices"], r["local_devices"]) == (2, 2, 1)
        assert r["global_shape"] == [4, 3]
        assert r["sum"] == 2 * 3 * 1 + 2 * 3 * 2  # both processes' rows, on every process


def test_a_dead_process_takes_the_others_down():
    # Process 0 would wait 300 s for process 1 in jax.distributed.initialize; the
    # launcher stops it after the 2 s grace instead (else subprocess.run times out)
    # and exits with process 1's status.
    extra = ["--grace_s", "2", "--init_timeout_s", "300", "--", "--fail_process", "1"]
    proc = _launch(extra, timeout=90)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "process 1 exited with 3; stopping the others" in proc.stderr


def test_unreachable_coordinator_fails_in_bounded_time_naming_the_address(tmp_path):
    address = f"127.0.0.1:{launch.free_port()}"  # nobody listens there
    env = launch.process_env(1, 2, address, init_timeout_s=2, base=single_env(1))
    proc = subprocess.run(
        [sys.executable, "-m", "attn_jax.main", *main_args(tmp_path / "run")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert f"could not reach the JAX coordinator at {address} within 2 s" in proc.stderr
    assert "CoordinatorUnreachableError" in proc.stderr


def test_cluster_mode_outside_a_cluster_says_how_to_launch():
    # Without --processes the launcher is one process of a cluster job; here there is none.
    env = single_env(1)
    env["PYTHONPATH"] = HERE
    proc = subprocess.run(
        [sys.executable, "-m", "attn_jax.launch", "--module", "probe_sum"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "found no cluster to join" in proc.stderr
    assert "python -m attn_jax.launch --processes N" in proc.stderr
