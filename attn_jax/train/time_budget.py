"""train.time_budget_s: the step count that ends a run, final evaluation included, on time.

A fixed step count is not a time budget: the same recipe took 197 s on one
machine of this project's kind and 474 s on another. With `train.time_budget_s`
> 0 the loop (attn_jax.train.loop) trains on a provisional schedule (warmup,
then the peak learning rate: `train.steps` is ignored), measures
its steady step time and one evaluation, and plans the total step count
(attn_jax.train.budget.plan_steps) so that the learning-rate schedule ends, and
the final evaluation finishes, by the deadline in process wall time (imports and
data building included). It re-plans once, at a quarter of the first plan, from
a longer measurement. Both plans happen within the first quarter of the run,
so with a warmup of that length or more the learning rate seen before a plan is
the same under every plan (linear warmup does not depend on the total); after
the re-plan the schedule continues from the same step with the new total.

A plan changes the schedule's numbers, which are arguments of the compiled train
step (attn_jax.train.optim.ScheduledOptimizer): nothing recompiles, and the
record's `train_traces` stays 1. The plans are in the
record's `time_budget` and in the checkpoint, so a resumed run keeps its plan.
"""

from __future__ import annotations

import math
import time
from typing import Any

from attn_jax.train import budget as budget_lib
from attn_jax.train import mesh as mesh_lib

# A plan needs this many timed steps and seconds after the first compiled step.
MIN_STEPS, MIN_SECONDS = 10, 3.0
REPLAN_AT = 0.25  # re-plan once this fraction of the first plan has run
MARGIN = 0.02  # of the budget, held back for step-time noise
TAIL_SECONDS = 2.0  # the last save, the record and exit
UNPLANNED_STEPS = 10**9  # the provisional schedule's length: warmup, then the peak lr


class TimePlanner:
    """Decides when to plan and how many steps; the loop applies the plan.

    Args:
      budget_s: train.time_budget_s.
      eval_every: train.eval_every (evaluations inside the run cost time too).
      budgets_left: callable(total_steps) -> evaluations at unit budgets still due
        before `total_steps` (train.eval_at_<unit>).
      plans: plans restored from a checkpoint (loop_state["time_plans"]).
    """

    def __init__(self, budget_s: float, eval_every: int, budgets_left, plans=None):
        if budget_s <= 0:
            raise ValueError(f"train.time_budget_s must be positive, got {budget_s}.")
        self.budget_s = float(budget_s)
        self.eval_every = int(eval_every)
        self.budgets_left = budgets_left
        self.plans: list[dict[str, Any]] = list(plans or [])
        # (step, time) where the timing window starts; its wall time counts the loop's
        # periodic saves and evals too (they recur), not the planner's own eval timing
        self.mark: tuple[int, float] | None = None
        self.eval_s: float | None = None
        self.compile_s = 0.0

    @property
    def planned_steps(self) -> int | None:
        return self.plans[-1]["steps"] if self.plans else None

    def start_window(self, step: int) -> None:
        """Starts timing after a compiled step (the first one, or the first after a plan)."""
        self.mark = (step, time.time())

    def exclude(self, seconds: float) -> None:
        """Leaves `seconds` (the planner's own eval timing) out of the window."""
        if self.mark is not None:
            self.mark = (self.mark[0], self.mark[1] + seconds)

    def due(self, step: int) -> bool:
        """Whether to plan at `step`.

        The first plan waits for a time window (a clock): with several processes
        process 0's answer is broadcast (each step until then), as a process
        deciding alone would time an evaluation, a collective, on its own. The
        re-plan's step follows from the first plan's numbers, the same on every
        process (`plan` returns process 0's).
        """
        if self.mark is None or len(self.plans) >= 2:
            return False
        step0, t0 = self.mark
        if len(self.plans) == 0:
            seconds = time.time() - t0
            return bool(
                mesh_lib.process0_value(step - step0 >= MIN_STEPS and seconds >= MIN_SECONDS)
            )
        first = self.plans[0]
        return step >= max(first["step"] + MIN_STEPS, int(REPLAN_AT * first["steps"]))

    def plan(self, step: int, elapsed_s: float) -> int:
        """The planned total steps from the window's step time; recorded in `plans`."""
        step0, t0 = self.mark
        step_s = max(time.time() - t0, 1e-9) / max(step - step0, 1)
        total = step + 1
        for _ in range(3):  # evaluations inside the run depend on the total: iterate
            evals = 1 + self.budgets_left(total)
            if self.eval_every > 0:
                evals += max(total // self.eval_every - step // self.eval_every, 0)
            total = budget_lib.plan_steps(
                self.budget_s,
                elapsed_s,
                step,
                step_s,
                evals_left=evals,
                eval_s=self.eval_s or 0.0,
                tail_s=TAIL_SECONDS + (self.compile_s if self.plans else 0.0),
                margin=MARGIN,
            )
        total = mesh_lib.process0_value(total)  # multi-process: every process runs process 0's
        self.plans.append(
            {
                "step": step,
                "step_seconds": step_s,
                "process_seconds": elapsed_s,
                "eval_seconds": self.eval_s,
                "evals_planned": evals,
                "steps": total,
            }
        )
        return total

    def summary(self, elapsed_s: float | None) -> dict[str, Any]:
        """The record's `time_budget` field."""
        return {
            "budget_s": self.budget_s,
            "plans": self.plans,
            "steps_planned": self.planned_steps,
            "process_seconds": elapsed_s,
            "within_budget": None if elapsed_s is None else bool(elapsed_s <= self.budget_s),
        }


def elapsed(fallback_start: float) -> float:
    """Process seconds so far (from /proc), else seconds since `fallback_start`."""
    seconds = budget_lib.process_elapsed_seconds()
    return (
        seconds if seconds is not None and math.isfinite(seconds) else time.time() - fallback_start
    )
