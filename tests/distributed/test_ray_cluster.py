"""A sweep on a two-node Ray cluster (`ray start` head + worker on this host) that loses a node.

The fake trainer's trials (tests/sweep/fake_experiment.py) run through
`python -m attn_jax.sweep run --executor ray --ray-address <head>`, two at a
time, one per 1-CPU node. A trial placed on the worker node pauses after
checkpointing step 3 (`fake.pause_env`: only that node's processes carry the
variable) and says so through a FIFO; the test then kills the whole worker
node (SIGKILL to its raylet, agents and the trial's worker process), as a lost
machine. The trial must be retried on the head, resume from its checkpoint,
and the sweep must end with every trial recorded once, the records finished
before the kill byte-identical, and the same results as the inline executor.
The cluster is stopped in a finally, and nothing of it may be left running.
"""

import importlib.util
import json
import os
import re
import select
import subprocess
import sys
import time

import pytest
from dist_helpers import REPO, descendants
from ray_cluster import LocalCluster

from attn_jax.sweep import run_sweep, store

pytestmark = pytest.mark.slow

FAKE_EXPERIMENT = os.path.join(REPO, "tests/sweep/fake_experiment.py")
FAKE_TRAINER = "attn_jax.sweep.testing:fake_train"
MARK = "ATTN_JAX_TEST_RAY_WORKER"  # set in the worker node's environment only
PAUSE_STEP = 3
SAME = (
    "run_id",
    "status",
    "final_train_loss",
    "best_eval_loss",
    "params_total",
    "tokens_seen",
    "train_flops",
    "config",
)  # what every executor must reproduce


def _write_spec(path, fifo) -> str:
    fake = {
        "fake.step_seconds": 0.3,
        "fake.pause_at_step": PAUSE_STEP,
        "fake.notify_fifo": str(fifo),
        "fake.pause_env": MARK,
    }
    path.write_text(
        "from attn_jax.sweep import Sweep, designs\n\n"
        "def get_sweep():\n"
        f"    return Sweep('lose_a_node', {FAKE_EXPERIMENT + ':smoke'!r}, "
        f"designs.grid(['xs', 's', 'm', 'l'], [160], overrides={fake!r}))\n"
    )  # 4 trials x 10 steps x 0.3 s
    return str(path)


def _wait_for_pause(fifo_fd, driver, log) -> None:
    for _ in range(240):  # each wait ends early on the event
        readable, _, _ = select.select([fifo_fd], [], [], 1.0)
        if readable:
            assert os.read(fifo_fd, 64).startswith(b"paused")
            return
        if driver.poll() is not None:
            pytest.fail(f"the sweep ended before a trial paused on the worker:\n{log.read_text()}")
    pytest.fail(f"no trial paused on the worker node:\n{log.read_text()}")


def _wait_for_records(out, n, driver, log) -> None:
    deadline = time.monotonic() + 240
    while len(store.read_results(str(out))) < n:
        if driver.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"fewer than {n} records while a trial was paused:\n{log.read_text()}")
        time.sleep(0.1)


def test_sweep_on_two_node_ray_cluster_survives_losing_the_worker(tmp_path):
    if importlib.util.find_spec("ray") is None:
        pytest.fail("This test needs Ray: .venv/bin/pip install -e '.[test,ray]' (make test-all).")
    fifo = tmp_path / "paused.fifo"
    os.mkfifo(fifo)
    spec = _write_spec(tmp_path / "spec.py", fifo)
    inline = {
        r["run_id"]: r
        for r in run_sweep(spec, str(tmp_path / "inline"), trainer=FAKE_TRAINER, progress=False)
    }
    out, log = tmp_path / "out", tmp_path / "sweep.log"
    # O_RDWR: the read end never sees EOF, and the trial's open for writing never blocks.
    fifo_fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    cluster = driver = None
    try:
        cluster = LocalCluster(tmp_path, cpus=1, worker_env={MARK: "1"})
        cmd = [
            sys.executable,
            "-m",
            "attn_jax.sweep",
            "run",
            spec,
            "--out",
            str(out),
            "--executor",
            "ray",
            "--address",
            cluster.address,
            "--workers",
            "2",
            "--trainer",
            FAKE_TRAINER,
        ]
        with open(log, "wb") as f:
            driver = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=cluster.env,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_pause(fifo_fd, driver, log)
        # The paused trial is the one whose lock is held by a process of the worker node.
        on_worker = set(descendants(cluster.worker.proc.pid))
        lost = [r for r in inline if store.running_pid(str(out), r) in on_worker]
        # Meanwhile the head works through the others: kill once two are recorded, so
        # that there are finished records for the kill to leave alone.
        _wait_for_records(out, 2, driver, log)
        before = (out / "results.jsonl").read_bytes()
        cluster.worker.kill()  # the whole node, at once
        driver.wait(timeout=300)
    finally:
        os.close(fifo_fd)
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
        left = cluster.stop() if cluster is not None else []
    assert left == [], f"Ray processes left running: {left}"
    text = log.read_text()
    assert driver.returncode == 0, text

    after = (out / "results.jsonl").read_bytes()
    assert after.startswith(before)  # finished records untouched
    records = store.read_results(str(out))
    assert sorted(r["run_id"] for r in records) == sorted(inline)  # each exactly once
    assert {r["run_id"]: {k: r[k] for k in SAME} for r in records} == {
        k: {f: v[f] for f in SAME} for k, v in inline.items()
    }
    done_before = [json.loads(line)["run_id"] for line in before.splitlines() if line.strip()]
    assert len(lost) == 1, text  # one CPU on the worker: one trial there, paused
    (run_id,) = lost
    (record,) = [r for r in records if r["run_id"] == run_id]
    assert record["attempt"] == 2, text  # retried once, on the only node left: the head
    assert re.search(rf"crashed\s+{run_id}", text), text
    with open(os.path.join(store.trial_dir(str(out), run_id), "starts.log")) as f:
        starts = [int(x) for x in f.read().split()]
    assert starts == [0, PAUSE_STEP]  # resumed from its checkpoint, not from scratch
    others = [r for r in records if r["run_id"] != run_id]
    assert all(r["attempt"] == 1 for r in others)  # nothing else ran twice
    print(f"lost with the worker node: {run_id}; recorded before the kill: {done_before}")
