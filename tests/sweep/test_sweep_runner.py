"""The runner with the fake trainer: skip, resume, retry, record failures, executors agree."""

import json
import os
import subprocess
import sys

import pytest
from sweep_helpers import FAKE_EXPERIMENT, FAKE_TRAINER, REPO, deterministic, fake_sweep

from attn_jax.sweep import Sweep, Trial, report, resolve, run_sweep, store


def _run(sweep, out, **kw):
    kw.setdefault("trainer", FAKE_TRAINER)
    kw.setdefault("progress", False)
    return run_sweep(sweep, str(out), **kw)


def _starts(out, run_id):
    with open(os.path.join(store.trial_dir(str(out), run_id), "starts.log")) as f:
        return [int(x) for x in f.read().split()]


def test_runs_every_trial_once_and_rerun_skips(tmp_path):
    sweep = fake_sweep()
    records = _run(sweep, tmp_path)
    assert [r["status"] for r in records] == ["done"] * 6
    assert [r["sweep"]["tags"]["size"] for r in records] == ["xs", "xs", "s", "s", "m", "m"]
    before = (tmp_path / "results.jsonl").read_bytes()
    again = _run(sweep, tmp_path)
    assert again == records
    assert (tmp_path / "results.jsonl").read_bytes() == before
    assert all(_starts(tmp_path, r["run_id"]) == [0] for r in records)
    # Loss falls with size at each budget (the fake law), as the demo's must.
    for tokens in (32, 64):
        losses = [r["final_train_loss"] for r in records if r["sweep"]["tags"]["tokens"] == tokens]
        assert losses == sorted(losses, reverse=True)


def test_partial_trial_resumes_from_its_checkpoint(tmp_path):
    sweep = fake_sweep(("s",), (64,))  # 4 steps
    (t,) = _run(sweep, tmp_path / "ref")
    workdir = store.trial_dir(str(tmp_path / "out"), t["run_id"])
    store.write_json_atomic(os.path.join(workdir, "checkpoints", "state.json"), {"step": 3})
    (r,) = _run(sweep, tmp_path / "out")
    assert _starts(tmp_path / "out", r["run_id"]) == [3]
    assert r["final_train_loss"] == t["final_train_loss"]


def test_finished_summary_without_record_is_recorded_not_retrained(tmp_path):
    sweep = fake_sweep(("s",), (32,))
    (r,) = _run(sweep, tmp_path)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    (tmp_path / "results.jsonl").write_text("")  # as if killed right after summary.json
    (again,) = _run(sweep, tmp_path)
    assert _starts(tmp_path, r["run_id"]) == [0]
    assert again["final_train_loss"] == r["final_train_loss"]
    assert len(lines) == 1


def test_crash_is_retried_then_recorded_as_failed_and_the_sweep_goes_on(tmp_path):
    exp = f"{FAKE_EXPERIMENT}:smoke"
    sweep = Sweep(
        "crashy",
        exp,
        [
            Trial("size=xs", {"fake.crash_attempts": 1}, tags={"case": "flaky"}),
            Trial("size=s", {"fake.crash_attempts": 9}, tags={"case": "broken"}),
            Trial("size=m", {"fake.diverge": True}, tags={"case": "diverges"}),
            Trial("size=l", tags={"case": "fine"}),
        ],
    )
    records = _run(sweep, tmp_path, max_attempts=2)
    by_case = {r["sweep"]["tags"]["case"]: r for r in records}
    assert by_case["flaky"]["status"] == "done"
    assert by_case["flaky"]["attempt"] == 2
    assert by_case["broken"]["status"] == "failed"
    assert by_case["broken"]["attempt"] == 2
    assert "fake crash on start 2" in by_case["broken"]["error"]
    assert by_case["diverges"]["status"] == "diverged"
    assert by_case["diverges"]["final_train_loss"] is None
    assert by_case["fine"]["status"] == "done"
    assert len(store.read_results(str(tmp_path))) == 4

    # A rerun leaves recorded failures alone; --retry-failed gives them new attempts.
    assert _run(sweep, tmp_path) == records
    retried = _run(sweep, tmp_path, retry_failed=True)
    assert len(store.read_results(str(tmp_path))) == 5
    assert [r["status"] for r in retried] == ["done", "failed", "diverged", "done"]
    # status and results tables read the directory alone.
    text = report.format_status(str(tmp_path))
    assert "2 done, 1 diverged, 1 failed" in text
    csv_text = report.format_results(str(tmp_path), "csv")
    assert csv_text.splitlines()[0].startswith("run_id,status,case,")
    assert len(csv_text.splitlines()) == 5


def test_status_shows_pending_and_partial(tmp_path):
    sweep = fake_sweep(("xs", "s"), (32,))
    _run(Sweep("one", sweep.experiment, sweep.trials[:1]), tmp_path)
    from attn_jax.sweep.runner import write_manifest

    trials = resolve(sweep)
    write_manifest(str(tmp_path), sweep, trials)
    rows, summary = report.status_rows(str(tmp_path))
    assert [r["status"] for r in rows] == ["done", "pending"]
    os.makedirs(os.path.join(store.trial_dir(str(tmp_path), trials[1].run_id), "checkpoints"))
    rows, summary = report.status_rows(str(tmp_path))
    assert [r["status"] for r in rows] == ["done", "partial"]
    assert summary["eta_seconds"] is not None


@pytest.mark.parametrize("executor", ["local"])
def test_executors_agree_with_inline(tmp_path, executor):
    sweep = fake_sweep(("xs", "m"), (32,), overrides={"fake.step_seconds": 0.0})
    inline = _run(sweep, tmp_path / "inline")
    other = _run(sweep, tmp_path / executor, executor=executor, workers=2)
    assert deterministic(other) == deterministic(inline)
    assert json.dumps(deterministic(other)) == json.dumps(deterministic(inline))


def test_a_trial_held_by_a_live_process_is_not_run_twice(tmp_path):
    sweep = fake_sweep(("xs", "s"), (32,))
    held = resolve(sweep)[1].run_id
    code = (
        "import sys; from attn_jax.sweep import store\n"
        "assert store.TrialLock(sys.argv[1]).acquire()\n"
        "print('locked', flush=True); sys.stdin.read()\n"
    )
    lock = os.path.join(store.trial_dir(str(tmp_path), held), "lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", code, lock], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO
    )
    try:
        assert holder.stdout.readline() == b"locked\n"
        records = _run(sweep, tmp_path, wait=False)
        assert [r["run_id"] for r in records] == [resolve(sweep)[0].run_id]
        assert report.status_rows(str(tmp_path))[0][1]["status"] == "running"
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
        holder.stdout.close()
    records = _run(sweep, tmp_path)  # its owner is gone: the lock is stale, taken over
    assert [r["sweep"]["tags"]["size"] for r in records] == ["xs", "s"]
    assert len(store.read_results(str(tmp_path))) == 2


def test_a_worker_process_that_dies_is_retried_then_recorded(tmp_path):
    exp = f"{FAKE_EXPERIMENT}:smoke"
    sweep = Sweep("dies", exp, [Trial("size=xs", {"fake.hard_exit": True}), Trial("size=s")])
    records = _run(sweep, tmp_path, executor="local", workers=1, max_attempts=2)
    assert [r["status"] for r in records] == ["failed", "done"]
    assert "BrokenProcessPool" in records[0]["error"]
    assert records[0]["attempt"] == 2


def test_results_table_shows_each_final_eval_metric(tmp_path):
    out = str(tmp_path)
    evals = [
        {"loss": 0.1, "exact_match": 0.97, "eval_tokens": 500, "tokens_seen": 9},
        {"loss": 0.2, "bleu": 8.9, "decoded": 2006, "note": "text"},
    ]
    for i, ev in enumerate(evals):
        store.append_result(out, {"run_id": f"r{i}", "status": "done", "eval": ev})
    rows, columns = report.result_rows(out)
    metrics = [c for c in columns if c.startswith("eval.")]
    assert sorted(metrics) == ["eval.bleu", "eval.decoded", "eval.exact_match", "eval.loss"]
    assert rows[0]["eval.exact_match"] == 0.97
    assert "eval.bleu" not in rows[0]  # the table writes a blank for a run without it
    assert rows[1]["eval.bleu"] == 8.9
    assert "eval.exact_match" in report.format_results(out, "table")
