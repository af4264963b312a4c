"""WSD cooldown branches in the sweep: the design, the runner's parent -> branch
order, a failed parent's branches, and `sweep plan` showing who branches off whom."""

import dataclasses
import os

import pytest
from sweep_helpers import FAKE_EXPERIMENT, FAKE_TRAINER

from attn_jax.sweep import Sweep, SweepSpecError, cli, designs, resolve, run_sweep, store
from attn_jax.train import optim

TPS = 16  # the fake experiment's batch_size 2 x seq_len 8


def branch_sweep(sizes=("xs", "s"), budgets=(160, 320, 640), overrides=None):
    trials = designs.wsd_branches(
        list(sizes), list(budgets), tokens_per_step=TPS, decay_fraction=0.2, overrides=overrides
    )
    return Sweep(name="wsd", experiment=f"{FAKE_EXPERIMENT}:smoke", trials=trials)


def _starts(out, run_id):
    with open(os.path.join(store.trial_dir(str(out), run_id), "starts.log")) as f:
        return [int(x) for x in f.read().split()]


def test_design_branches_start_where_the_schedule_cools_down():
    trials = designs.wsd_branches(["s"], [160, 320, 650], tokens_per_step=TPS, decay_fraction=0.2)
    parent, *branches = trials
    assert parent.parent is None
    assert parent.tags["role"] == "stable"
    assert [b.parent for b in branches] == [parent] * 3
    steps = [10, 20, 41]  # 650 tokens round up to 41 steps
    assert [b.overrides["train.tokens"] for b in branches] == [s * TPS for s in steps]
    # The branch step is the schedule's own cooldown start (optim.wsd_decay_start).
    assert [b.branch_step for b in branches] == [optim.wsd_decay_start(s, 0.2) for s in steps]
    assert [b.branch_step for b in branches] == [8, 16, 33]
    assert parent.overrides["train.keep_steps"] == (8, 16, 33)
    assert parent.overrides["train.tokens"] == 33 * TPS  # the stable run stops at the last one
    assert parent.overrides["train.decay_fraction"] == 0.0
    assert {b.overrides["train.decay_fraction"] for b in branches} == {0.2}
    assert {t.overrides["train.schedule"] for t in trials} == {"wsd"}
    # The designs and the schedule share one rounding rule (attn_jax.train.budget).
    assert designs.wsd_decay_start is optim.wsd_decay_start


def test_isoflop_tokens_give_every_size_every_flop_budget():
    params = {"xs": 1e3, "s": 4e3}.get
    tokens = designs.isoflop_tokens([6e6, 2.4e7], params, tokens_per_step=TPS)
    assert tokens("xs") == [992, 4000]  # 6e6 / (6 * 1e3) = 1000 tokens: 62 whole steps of 16
    assert tokens("s") == [256, 992]


def test_too_short_budget_and_orphan_branch_are_spec_errors():
    with pytest.raises(SweepSpecError, match="too short to branch"):
        designs.wsd_branches(["s"], [16], tokens_per_step=TPS)
    (_, branch) = designs.wsd_branches(["s"], [160], tokens_per_step=TPS)
    sweep = Sweep(name="x", experiment=f"{FAKE_EXPERIMENT}:smoke", trials=[branch])
    with pytest.raises(SweepSpecError, match="parent"):
        resolve(sweep)


def test_resolve_puts_the_parent_run_id_into_the_branch_config():
    trials = resolve(branch_sweep(sizes=("s",)))
    parent, *branches = trials
    assert parent.parent_run_id is None
    for b in branches:
        assert b.parent_run_id == parent.run_id == b.config.train.init_from
        assert b.config.train.init_from_step == b.trial.branch_step


def test_branches_run_after_their_parent_once_each(tmp_path):
    records = run_sweep(branch_sweep(), str(tmp_path), trainer=FAKE_TRAINER, progress=False)
    assert len(records) == 8
    assert {r["status"] for r in records} == {"done"}
    order = [r["run_id"] for r in store.read_results(str(tmp_path))]
    by_id = {r["run_id"]: r for r in records}
    parents = [r for r in records if r["sweep"]["tags"]["role"] == "stable"]
    assert [r["schedule_final"] for r in parents] == [False, False]
    for r in records:
        if r["sweep"]["tags"]["role"] == "branch":
            parent = by_id[r["parent_run_id"]]
            assert parent["sweep"]["tags"]["size"] == r["sweep"]["tags"]["size"]
            assert order.index(parent["run_id"]) < order.index(r["run_id"])
            assert _starts(tmp_path, r["run_id"]) == [r["init_from_step"]]  # not from 0
            assert r["schedule_final"] is True
    again = run_sweep(branch_sweep(), str(tmp_path), trainer=FAKE_TRAINER, progress=False)
    assert again == records  # a rerun runs nothing


def test_local_executor_runs_parents_side_by_side(tmp_path):
    records = run_sweep(
        branch_sweep(budgets=(160, 320)),
        str(tmp_path),
        trainer=FAKE_TRAINER,
        progress=False,
        executor="local",
        workers=2,
    )
    assert len(records) == 6
    assert {r["status"] for r in records} == {"done"}
    assert {r["attempt"] for r in records} == {1}


def test_failed_parent_fails_its_branches_with_a_note(tmp_path):
    crash = lambda size: {"fake.crash_attempts": 5} if size == "s" else {}  # noqa: E731
    sweep = branch_sweep(overrides=crash)
    records = run_sweep(sweep, str(tmp_path), trainer=FAKE_TRAINER, progress=False, max_attempts=1)
    failed = [r for r in records if r["status"] == "failed"]
    assert {r["sweep"]["tags"]["size"] for r in failed} == {"s"}
    assert len(failed) == 4
    (parent,) = [r for r in failed if r["sweep"]["tags"]["role"] == "stable"]
    for r in failed:
        if r is not parent:
            assert parent["run_id"] in r["error"]
            assert "--retry-failed" in r["error"]
            assert not os.path.exists(
                os.path.join(store.trial_dir(str(tmp_path), r["run_id"]), "starts.log")
            )
    assert {r["status"] for r in records if r["sweep"]["tags"]["size"] == "xs"} == {"done"}


def test_branches_before_a_parents_divergence_still_run(tmp_path):
    """A stable run that diverges at step 20 has saved its branch steps 8 and 16 (never
    a NaN state): those branches run from them; the one from step 32 cannot."""
    sweep = branch_sweep()
    trials, parent = [], None
    for t in sweep.trials:  # size s's parent alone diverges, at step 20
        if t.tags["size"] == "s" and t.parent is None:
            parent = t = dataclasses.replace(
                t, overrides={**t.overrides, "fake.diverge_at_step": 20}
            )
        elif t.tags["size"] == "s":
            t = dataclasses.replace(t, parent=parent)
        trials.append(t)
    sweep = dataclasses.replace(sweep, trials=trials)
    records = run_sweep(sweep, str(tmp_path), trainer=FAKE_TRAINER, progress=False)
    s = {
        r["sweep"]["tags"].get("branch_step"): r
        for r in records
        if r["sweep"]["tags"]["size"] == "s"
    }
    assert s[None]["status"] == "diverged"
    assert s[None]["steps"] == 20
    assert s[8]["status"] == s[16]["status"] == "done"
    assert _starts(tmp_path, s[8]["run_id"]) == [8]
    assert _starts(tmp_path, s[16]["run_id"]) == [16]
    assert s[32]["status"] == "failed"
    assert "ended at or before step 32" in s[32]["error"]
    # Resumed with --retry-failed the same holds: the runner reads the parent's record.
    again = run_sweep(sweep, str(tmp_path), trainer=FAKE_TRAINER, progress=False, retry_failed=True)
    assert sorted(r["status"] for r in again if r["sweep"]["tags"]["size"] == "s") == sorted(
        r["status"] for r in s.values()
    )


def test_plan_lists_branches_with_their_parents(tmp_path, capsys):
    spec = tmp_path / "spec.py"
    spec.write_text(
        "from attn_jax.sweep import Sweep, designs\n"
        "def get_sweep():\n"
        f"    return Sweep('wsd', {FAKE_EXPERIMENT + ':smoke'!r}, designs.wsd_branches(\n"
        "        ['s'], [160, 320], tokens_per_step=16))\n"
    )
    assert cli.main(["plan", str(spec)]) == 0
    text = capsys.readouterr().out
    parent, *_ = resolve(branch_sweep(sizes=("s",), budgets=(160, 320)))
    assert "parent" in text.splitlines()[0]
    assert f"{parent.run_id}@8" in text
    assert f"{parent.run_id}@16" in text
    assert "3 trials (2 branches of 1 runs)" in text
