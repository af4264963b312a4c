"""A sweep killed with SIGKILL mid-trial and rerun: every trial exactly once, nothing lost.

The sweep CLI runs in a subprocess with the fake trainer (`fake.step_seconds`
makes each trial take a moment); the test waits until results.jsonl has a line
and the next trial has checkpointed a step, kills, reruns, and checks.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from sweep_helpers import FAKE_TRAINER, REPO, write_spec

from attn_jax.sweep import store

SPEC = (
    "Sweep('killme', EXPERIMENT, designs.grid(['xs', 's', 'm'], [160], "
    "overrides={'fake.step_seconds': 0.05}))"
)  # 3 trials x 10 steps x 0.05 s


def _cli(spec, out, executor, log, **popen):
    cmd = [
        sys.executable,
        "-m",
        "attn_jax.sweep",
        "run",
        spec,
        "--out",
        str(out),
        "--trainer",
        FAKE_TRAINER,
        "--executor",
        executor,
        "--workers",
        "1",
    ]
    with open(log, "w") as f:
        return subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, **popen)


def _wait_for(condition, proc, log, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before the kill:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the sweep to make progress")
        time.sleep(0.02)  # polling a file another process writes


def _mid_trial(out):
    """results.jsonl has >= 1 line and some unrecorded trial has checkpointed a step."""
    records = store.read_results(str(out))
    if not records:
        return False
    done = {r["run_id"] for r in records}
    trials = os.path.join(out, "trials")
    for run_id in os.listdir(trials):
        state = store.read_json(os.path.join(trials, run_id, "checkpoints", "state.json"), {})
        if run_id not in done and state.get("step", 0) >= 1:
            return True
    return False


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_sigkill_mid_trial_then_rerun(tmp_path, executor):
    spec = write_spec(tmp_path / "spec.py", SPEC)
    out = tmp_path / "out"
    # A new session, so the kill takes the whole tree, as a lost machine would.
    log = tmp_path / "log.txt"
    proc = _cli(spec, out, executor, log, start_new_session=True)
    _wait_for(lambda: _mid_trial(str(out)), proc, log)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = (out / "results.jsonl").read_bytes()
    finished = before.count(b"\n")
    assert 1 <= finished < 3
    with open(out / "results.jsonl", "ab") as f:
        f.write(b'{"run_id": "torn-by-the-kill", "sta')  # and a half-written line

    rerun = _cli(spec, out, executor, log)
    rerun.wait(timeout=180)
    log = log.read_text()
    assert rerun.returncode == 0, log
    after = (out / "results.jsonl").read_bytes()
    assert after.startswith(before)  # finished records untouched
    records = store.read_results(str(out))
    assert len(records) == 3
    assert len({r["run_id"] for r in records}) == 3
    assert all(r["status"] == "done" for r in records)
    # The killed trial resumed from its checkpoint rather than starting over.
    resumed = [r for r in records[finished:] if r["attempt"] == 2]
    assert resumed, log
    for r in resumed:
        with open(os.path.join(store.trial_dir(str(out), r["run_id"]), "starts.log")) as f:
            starts = [int(x) for x in f.read().split()]
        assert starts[0] == 0 and starts[1] >= 1
