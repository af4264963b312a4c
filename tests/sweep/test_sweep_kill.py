"""A sweep killed with SIGKILL mid-trial and rerun: every trial exactly once, nothing lost.

The sweep CLI runs in a subprocess with the fake trainer, one worker, trials
in spec order (the fake has no FLOP counts to sort by): xs, s, m. Trial s
pauses on its first start after checkpointing step 3 and says so through a
FIFO (`fake.pause_at_step`): the test kills on that event, so exactly one
trial (xs) is recorded and one (s) is mid-way, on
every machine, however loaded. Then it reruns and checks.
"""

import os
import select
import signal
import subprocess
import sys

import pytest
from sweep_helpers import FAKE_TRAINER, REPO, write_spec

from attn_jax.sweep import store

PAUSE_STEP = 3


def _spec(fifo):
    pause = {"fake.pause_at_step": PAUSE_STEP, "fake.notify_fifo": str(fifo)}
    return (
        "Sweep('killme', EXPERIMENT, designs.grid(['xs', 's', 'm'], [160], "
        f"overrides=lambda size: {pause!r} if size == 's' else {{}}))"
    )  # 3 trials x 10 steps


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


def _wait_for_pause(fifo_fd, proc, log):
    """Blocks until the paused trial writes to the FIFO (or the sweep ends: a failure)."""
    for _ in range(300):  # each wait ends early on the event; 300 s in all at most
        readable, _, _ = select.select([fifo_fd], [], [], 1.0)
        if readable:
            assert os.read(fifo_fd, 64).startswith(b"paused")
            return
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before the trial paused:\n{log.read_text()}")
    proc.kill()
    pytest.fail("the trial never paused")


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_sigkill_mid_trial_then_rerun(tmp_path, executor):
    fifo = tmp_path / "paused.fifo"
    os.mkfifo(fifo)
    # O_RDWR: the read end never sees EOF, and the trial's open for writing never blocks.
    fifo_fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    spec = write_spec(tmp_path / "spec.py", _spec(fifo))
    out = tmp_path / "out"
    log = tmp_path / "log.txt"
    # A new session, so the kill takes the whole tree, as a lost machine would.
    proc = _cli(spec, out, executor, log, start_new_session=True)
    try:
        _wait_for_pause(fifo_fd, proc, log)
    finally:
        os.close(fifo_fd)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = (out / "results.jsonl").read_bytes()
    finished = before.count(b"\n")
    (first,) = store.read_results(str(out))
    assert finished == 1
    assert first["sweep"]["tags"]["size"] == "xs"
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
        assert starts == [0, PAUSE_STEP]
    assert [r["sweep"]["tags"]["size"] for r in records] == ["xs", "s", "m"]
