"""train.time_budget_s: the planner's arithmetic, and a run whose schedule ends at its plan."""

import json
import math
import os
import time

import pytest
from train_helpers import smoke_config

from attn_jax.train import budget, time_budget
from attn_jax.train.loop import train_and_evaluate


def test_plan_steps_arithmetic():
    # 600 s budget, 100 s gone, 50 steps done at 0.5 s each, one 10 s eval, 2 s tail:
    # (600 - 100 - 10 - 2) / 0.5 = 976 more steps.
    assert budget.plan_steps(600, 100, 50, 0.5, eval_s=10, tail_s=2, margin=0.0) == 1026
    # The margin holds back 2% of the budget: 12 s = 24 steps fewer.
    assert budget.plan_steps(600, 100, 50, 0.5, eval_s=10, tail_s=2, margin=0.02) == 1002
    # Three evaluations still to run cost three times one.
    assert budget.plan_steps(600, 100, 50, 0.5, evals_left=3, eval_s=10, margin=0.0) == 50 + 940
    # A budget already spent still ends with one more step.
    assert budget.plan_steps(60, 100, 50, 0.5) == 51
    with pytest.raises(ValueError, match="time_budget_s"):
        budget.plan_steps(0, 0, 0, 1.0)
    with pytest.raises(ValueError, match="step time"):
        budget.plan_steps(10, 0, 0, 0.0)


def test_planner_counts_the_evaluations_inside_the_run(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time_budget.time, "time", lambda: clock[0])
    planner = time_budget.TimePlanner(100.0, eval_every=100, budgets_left=lambda total: 0)
    planner.start_window(step=1)
    clock[0] += 2.0  # 20 steps in 2 s: not yet MIN_SECONDS
    assert not planner.due(21)
    clock[0] += 2.0
    assert planner.due(41)  # 40 steps in 4 s = 0.1 s per step
    planner.eval_s = 1.0
    total = planner.plan(41, elapsed_s=10.0)
    # (100 * 0.98 - 10 - tail 2 - E evals * 1 s) / 0.1 s, with E = 1 + total // 100
    evals = 1 + total // 100
    expected = 41 + int((100 * (1 - time_budget.MARGIN) - 10 - 2 - evals) // 0.1)
    assert total == expected
    assert evals == planner.plans[0]["evals_planned"]
    # The re-plan is due at a quarter of the first plan, and there is only one.
    assert not planner.due(int(0.25 * total) - 1)
    assert planner.due(int(0.25 * total))
    planner.plan(int(0.25 * total), elapsed_s=30.0)
    assert not planner.due(total - 1)


def test_one_budget_at_a_time():
    config = smoke_config({"train.time_budget_s": 30.0, "train.tokens": 10_000})
    with pytest.raises(ValueError, match="not both"):
        budget.total_steps(config.train)


def test_time_budgeted_run_ends_its_schedule_at_the_planned_step(tmp_path, monkeypatch):
    start = time.time()
    # The test process has been up for a while: count this run's seconds only.
    monkeypatch.setattr(time_budget, "elapsed", lambda fallback: time.time() - start)
    config = smoke_config(
        {
            "train.time_budget_s": 20.0,  # room for both plans after a slow start (compile under load)
            "train.steps": 8,  # ignored under a time budget
            "train.log_every": 1,
            "train.checkpoint_every": 0,
            "train.warmup_steps": 5,
        }
    )
    record = train_and_evaluate(config, str(tmp_path / "run"))
    plans = record["time_budget"]["plans"]
    assert record["status"] == "done"
    assert len(plans) == 2
    assert record["steps"] == plans[-1]["steps"] > 8
    assert record["steps_total"] == record["steps"]
    # A plan changes the schedule's numbers (jit arguments), not the program.
    assert record["train_traces"] == 1
    with open(os.path.join(record["history"])) as f:
        rows = [r for r in map(json.loads, f) if r["kind"] == "train"]
    # The cosine schedule reaches its floor at the planned last step, not at train.steps.
    floor = config.train.lr * config.train.min_lr_ratio
    assert rows[-1]["step"] == record["steps"]
    assert math.isclose(rows[-1]["lr"], floor, rel_tol=1e-3, abs_tol=1e-7)
    assert rows[7]["lr"] > 10 * floor  # at train.steps the schedule had not ended
