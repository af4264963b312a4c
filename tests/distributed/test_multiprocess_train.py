"""train_and_evaluate as N processes of one jax.distributed run, on this machine's CPU.

Each process has one CPU device and feeds its rows of the global batch; the
collectives are gloo over loopback. Promises checked: 2 processes x 1 device
train as 1 process x 2 devices do; metrics and the run record are written once
(process 0); both processes killed and relaunched resume to the uninterrupted
run's losses; SIGTERM to one process stops both at one step, which both save,
and the record says preempted. Slow: each run starts and compiles JAX twice.
"""

import os
import signal
import sys

import numpy as np
import pytest
from dist_helpers import (
    checkpoint_steps,
    kill,
    losses,
    main_args,
    metrics,
    printed_record,
    single_env,
    start,
    start_processes,
    summary,
    wait_all,
    wait_until,
)

from attn_jax import launch

pytestmark = pytest.mark.slow


def _logs(tmp_path, tag, n=2):
    return [tmp_path / f"{tag}.p{i}.log" for i in range(n)]


def _train_two_processes(tmp_path, tag, args):
    procs = start_processes(2, args, tmp_path, tag)
    try:
        codes = wait_all(procs, _logs(tmp_path, tag))
    finally:
        kill(procs)
    assert codes == [0, 0], codes
    return procs


def test_two_processes_train_as_one_process_with_two_devices(tmp_path):
    steps = ("--config.train.steps=3", "--config.train.checkpoint_every=0")
    # Through the launcher, as a user runs it.
    mp = tmp_path / "mp"
    log = tmp_path / "launch.log"
    cmd = [sys.executable, "-m", "attn_jax.launch", "--processes", "2", "--"]
    proc = start([*cmd, *main_args(mp, *steps)], dict(os.environ), log)
    try:
        proc.wait(timeout=240)
    finally:
        kill([proc])
    assert proc.returncode == 0, log.read_text()
    one = tmp_path / "one"
    ref = start(
        [sys.executable, "-m", "attn_jax.main", *main_args(one, *steps)],
        single_env(2),
        tmp_path / "one.log",
    )
    try:
        ref.wait(timeout=240)
    finally:
        kill([ref])
    assert ref.returncode == 0, (tmp_path / "one.log").read_text()

    got, want = summary(mp), summary(one)
    assert got["devices"] == "2x cpu (cpu, 2 proc)"  # really two processes
    assert want["devices"] == "2x cpu (cpu, 1 proc)"
    assert sorted(losses(mp)) == [1, 2, 3]
    np.testing.assert_allclose(
        [losses(mp)[s] for s in (1, 2, 3)], [losses(one)[s] for s in (1, 2, 3)], rtol=1e-5
    )
    np.testing.assert_allclose(got["best_eval_loss"], want["best_eval_loss"], rtol=1e-5)
    assert got["tokens_seen"] == want["tokens_seen"]
    # Written once, by process 0: one train row per step, one record.
    assert [r["step"] for r in metrics(mp)] == [1, 2, 3]
    assert got["status"] == "done"
    assert checkpoint_steps(mp) == [3]


def test_both_processes_killed_then_relaunched_resume_to_the_same_losses(tmp_path):
    # Long enough that the kill lands mid-run: a checkpoint every 10 steps, killed
    # (SIGKILL, both processes, as a lost machine) as soon as the first is complete.
    args = ("--config.train.steps=120", "--config.train.checkpoint_every=10")
    _train_two_processes(tmp_path, "ref", main_args(tmp_path / "ref", *args))

    run = tmp_path / "run"
    procs = start_processes(2, main_args(run, *args), tmp_path, "killed")
    try:
        wait_until(lambda: checkpoint_steps(run), procs, _logs(tmp_path, "killed"), "checkpoint")
    finally:
        kill(procs)
    assert not (run / "summary.json").exists(), "the run ended before it was killed"
    killed_at = max(r["step"] for r in metrics(run))
    saved = checkpoint_steps(run)[-1]
    _train_two_processes(tmp_path, "resumed", main_args(run, *args))

    rows = [r["step"] for r in metrics(run)]
    assert rows.count(saved + 1) == 2, "the relaunched run did not resume from its checkpoint"
    assert rows.count(1) == 1, "the relaunched run started over"
    want, got = losses(tmp_path / "ref"), losses(run)
    assert sorted(got) == list(range(1, 121))
    np.testing.assert_allclose(
        [got[s] for s in sorted(got)], [want[s] for s in sorted(want)], rtol=1e-5
    )
    record, ref = summary(run), summary(tmp_path / "ref")
    assert record["status"] == "done"
    assert record["steps"] == 120
    np.testing.assert_allclose(record["best_eval_loss"], ref["best_eval_loss"], rtol=1e-5)
    assert record["tokens_seen"] == ref["tokens_seen"]
    print(f"killed after step {killed_at}, resumed from checkpoint {saved}")


def test_sigterm_to_one_process_stops_both_at_one_step_and_saves(tmp_path):
    run = tmp_path / "run"
    args = main_args(run, "--config.train.steps=100000", "--config.train.checkpoint_every=0")
    logs = _logs(tmp_path, "run")
    procs = start_processes(2, args, tmp_path, "run")
    try:
        wait_until(lambda: len(metrics(run)) >= 3, procs, logs, "third train step")
        procs[1].send_signal(signal.SIGTERM)  # one process only: the preemption notice
        codes = wait_all(procs, logs)
    finally:
        kill(procs)
    assert codes == [0, 0], codes
    printed = [printed_record(log) for log in logs]
    assert [p["status"] for p in printed] == ["preempted", "preempted"]
    assert printed[0]["steps"] == printed[1]["steps"]  # the sync point: one step for both
    record = summary(run)
    assert record["status"] == "preempted"
    stopped = record["steps"]
    assert 3 <= stopped < 100000
    assert checkpoint_steps(run) == [stopped]  # saved there, by both (orbax, all processes)
    assert max(r["step"] for r in metrics(run)) == stopped


def test_sigterm_to_the_launcher_preempts_every_process(tmp_path):
    run = tmp_path / "run"
    log = tmp_path / "launch.log"
    args = main_args(run, "--config.train.steps=100000", "--config.train.checkpoint_every=0")
    cmd = [sys.executable, "-m", "attn_jax.launch", "--processes", "2", "--", *args]
    launcher = start(cmd, dict(os.environ), log)
    try:
        wait_until(lambda: len(metrics(run)) >= 3, [launcher], [log], "third train step")
        launcher.send_signal(signal.SIGTERM)  # what a scheduler sends the job
        (code,) = wait_all([launcher], [log])
    finally:
        kill([launcher])  # its session: the launcher and both processes
    assert code == 0, log.read_text()
    record = summary(run)
    assert record["status"] == "preempted"
    assert checkpoint_steps(run) == [record["steps"]]
    # Both processes printed the same stop step (process 1's lines are prefixed).
    steps = [
        line.split(":")[-1].strip(" ,")
        for line in log.read_text().splitlines()
        if line.strip().endswith(",") and '"steps":' in line
    ]
    assert steps == [str(record["steps"])] * 2, log.read_text()


def _start_skewed(n, args, tmp_path, tag, rate):
    """Like start_processes, through skewed_clock.py: process 1's loop clock runs `rate`x fast."""
    address = f"127.0.0.1:{launch.free_port()}"
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "skewed_clock.py")
    procs = []
    for i in range(n):
        env = launch.process_env(i, n, address, devices_per_process=1)
        env["ATTN_JAX_TEST_CLOCK_RATE"] = str(rate)
        procs.append(start([sys.executable, script, *args], env, tmp_path / f"{tag}.p{i}.log"))
    return procs


def _run_skewed(tmp_path, args, rate=20.0):
    logs = _logs(tmp_path, "skew")
    procs = _start_skewed(2, args, tmp_path, "skew", rate)
    try:
        codes = wait_all(procs, logs, timeout_s=150)
    finally:
        kill(procs)
    assert codes == [0, 0], codes
    return [printed_record(log) for log in logs]


def test_time_limit_is_read_on_process_0s_clock(tmp_path):
    """Process 1's clock runs 1000x fast: alone it would stop after its first step and
    leave process 0 waiting in the next collective. Both stop where process 0's clock
    says, 30 s into the run (the smoke model's first step, compile included, takes
    a few seconds)."""
    run = tmp_path / "run"
    args = main_args(
        run,
        "--config.train.steps=100000",
        "--config.train.checkpoint_every=0",
        "--config.train.time_limit_s=30",
    )
    printed = _run_skewed(tmp_path, args, rate=1000.0)
    assert [p["status"] for p in printed] == ["preempted", "preempted"]
    assert printed[0]["steps"] == printed[1]["steps"]
    assert printed[0]["steps"] > 1, "process 0's limit came before its first step ended"
    record = summary(run)
    assert record["status"] == "preempted"
    assert checkpoint_steps(run) == [record["steps"]]


def test_time_budget_runs_process_0s_plan(tmp_path):
    """With process 1's clock 20x fast its own plan would be about 20x shorter (and its
    first plan, which times an evaluation, would come at another step): both run
    process 0's plan to the end of the schedule."""
    run = tmp_path / "run"
    args = main_args(run, "--config.train.time_budget_s=30", "--config.train.checkpoint_every=0")
    printed = _run_skewed(tmp_path, args)
    assert [p["status"] for p in printed] == ["done", "done"]
    assert printed[0]["steps"] == printed[1]["steps"]
    record = summary(run)
    plans = record["time_budget"]["plans"]
    assert len(plans) == 2
    assert record["steps"] == plans[-1]["steps"] == record["time_budget"]["steps_planned"]
