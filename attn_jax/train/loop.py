"""train_and_evaluate(config, workdir): the training loop of every model family.

Writes, under `workdir`: config.json (the resolved config), metrics.jsonl and
TensorBoard events (tb/), checkpoints/ (orbax), and summary.json, the run
record, last and atomically. A config that does not fit the run already in the
workdir stops before anything is written (record.prepare_workdir; train.restart
moves the old run to previous-<n>/). Status: done, diverged (NaN or loss above
train.max_loss), failed (an exception; the record is written and the error
re-raised) or preempted (SIGTERM, train.time_limit_s or train.stop_after_steps:
a checkpoint is saved and rerunning the same command resumes).

The hot loop never syncs the host on the step it just dispatched: step t's
metrics are fetched after step t+1 is queued, under
`jax.transfer_guard("disallow")` so an accidental implicit transfer raises.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import nnx

from attn_jax import families, validate
from attn_jax.train import branch as branch_lib
from attn_jax.train import checkpoint as ckpt_lib
from attn_jax.train import mesh as mesh_lib
from attn_jax.train import metrics as metrics_lib
from attn_jax.train import optim
from attn_jax.train import record as record_lib
from attn_jax.train import step as step_lib
from attn_jax.train import time_budget as time_lib
from attn_jax.train.preemption import Preemption
from attn_jax.train.state import create_train_state


def _write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
    if jax.process_index() == 0:
        record_lib.write_json_atomic(os.path.join(workdir, "config.json"), config.to_dict())


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains `config`'s model in `workdir`, resuming from its latest good checkpoint.

    Args:
      config: a locked experiment config (experiments/*.py; fields in docs/CONTRACTS.md).
      workdir: the run directory; reusing it resumes the run.

    Returns:
      The run record, also written to workdir/summary.json.
    """
    validate.check_config(config)  # registry choices, before any data or tokenizer work
    start = time.time()
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    mesh_lib.maybe_initialize_distributed(bool(config.train.get("distributed", False)))
    # Before config.json is overwritten: a config that does not fit the run already
    # in the workdir stops here (or, with train.restart, moves that run aside).
    record_lib.prepare_workdir(config, workdir)
    _write_config(config, workdir)
    run = _Run(config, workdir, start)
    try:
        return run.train()
    except Exception as err:
        logging.exception("Run in %s failed", workdir)
        run.finish("failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        run.close()


class _Run:
    """One process's part of a training run (state kept on self for the record)."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str, start: float):
        self.config, self.workdir, self.start = config, workdir, start
        self.load_start = os.getloadavg()
        self.tc = config.train
        self.step = 0
        # The family's unit ("tokens" | "examples") and its planned count per step:
        # budgets become steps, and FLOPs/MFU are counted, through these. `units_seen`
        # (in loop_state, so it is checkpointed) sums the units that carried loss.
        self.unit = families.unit_of(config)
        self.units_per_step = families.units_per_step(config)
        self.last_train: dict[str, float] = {}
        self.eval_metrics: dict[str, float] = {}
        self.loop_state: dict[str, Any] = {
            "evals_at_budget": [],
            "best_eval_loss": None,
            "units_seen": 0.0,
        }
        self.units_at_step0 = None  # units seen through the first (compiling) step
        self.sizes: dict[str, Any] = {}
        # t0/step0: after the first (compiling) step; paused: eval and checkpoint
        # seconds, left out of tokens/s and MFU; loop0: when the loop started.
        self.timing = {"t0": None, "step0": 0, "paused": 0.0, "loop0": None, "loop1": None}
        self.peak = (math.nan, "not measured")
        self.planner: time_lib.TimePlanner | None = None  # train.time_budget_s > 0
        self.writer = self.bar = self.checkpointer = None
        self.finished = False

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        config, tc = self.config, self.tc
        fns = self.family = families.get_family(config)
        self.steps_total = optim.total_steps(tc, self.unit, self.units_per_step)
        self.mesh = mesh_lib.make_mesh(
            mesh_lib.select_devices(int(tc.get("num_devices", 0) or 0)),
            fsdp=int(tc.get("mesh_fsdp", 1)),
        )
        devices = list(self.mesh.devices.flat)
        n_batch = len(devices)
        if tc.batch_size % n_batch or tc.batch_size % jax.process_count():
            raise ValueError(
                f"train.batch_size={tc.batch_size} must be divisible by the {n_batch} devices "
                "of the mesh; change train.batch_size."
            )
        self.train_iter, self.eval_batches = fns.data(
            batch_size=int(tc.batch_size),  # global; each host gets its rows
            seed=int(config.seed),
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )
        # The schedule's numbers (steps, lr, warmup) are arguments of the compiled
        # step: trials of one shape share one program (and its compilation cache entry).
        self.optimizer = optim.ScheduledOptimizer(tc)
        schedule_args = self.optimizer.args(self.steps_total)
        tx, _ = self.optimizer.build(schedule_args)
        graphdef, self.state, shardings = create_train_state(
            fns.model, tx, int(config.seed), self.mesh
        )
        self.graphdef = graphdef
        self.sizes = fns.sizes(self.state.params)
        self.steps = step_lib.CompiledSteps(
            step_lib.make_scheduled_train_step(
                graphdef, self.optimizer, fns.loss, dropout=fns.uses_dropout
            ),
            step_lib.make_eval_step(graphdef, fns.eval_sums),
            shardings,
            self.mesh,
            train_args=schedule_args,
        )
        self.checkpointer = ckpt_lib.Checkpointer(
            os.path.join(self.workdir, "checkpoints"),
            keep=int(tc.keep_checkpoints),
            async_save=bool(tc.get("async_checkpoint", True)),
            keep_steps=branch_lib.keep_steps(tc),
        )
        restored = self.checkpointer.restore_latest(self.state)
        if restored is None:  # a cooldown branch starts from its parent's checkpoint
            restored = branch_lib.restore_parent(tc, self.workdir, self.state)
        if restored is not None:
            self.state, extra = restored
            extra = extra or {}
            if extra.get("data") is not None:
                self.train_iter.set_state(extra["data"])
            loop = dict(extra.get("loop") or {})
            self.loop_state.update(loop)
            self.step = int(jax.device_get(self.state.step))
            if "units_seen" not in loop:  # a checkpoint from before units were counted
                self.loop_state["units_seen"] = float(self.step * self.units_per_step)
            self.step = int(jax.device_get(self.state.step))
            logging.info("Resumed at step %d", self.step)
        self._setup_time_budget()
        self.devices_desc = record_lib.describe_devices(devices)
        if tc.get("report_mfu", True):
            dtype = record_lib.compute_dtype_name(self.config) or "float32"
            self.peak = metrics_lib.peak_flops(devices, dtype)
        self.writer = metrics_lib.MetricsWriter(
            self.workdir, tensorboard=bool(tc.get("tensorboard", True))
        )
        self.bar = metrics_lib.ProgressBar(
            self.steps_total, initial=self.step, enabled=bool(tc.get("progress_bar", True))
        )

    def _setup_time_budget(self) -> None:
        """A time-budgeted run's planner; a resumed one keeps its checkpointed plan."""
        budget_s = float(self.tc.get("time_budget_s", 0) or 0)
        if budget_s <= 0:
            return
        unit_budgets = sorted(int(b) for b in (self.tc.get(f"eval_at_{self.unit}") or ()))

        def budgets_left(total: int) -> int:
            planned = total * self.units_per_step
            return sum(self.step * self.units_per_step < b <= planned for b in unit_budgets)

        self.planner = time_lib.TimePlanner(
            budget_s, int(self.tc.eval_every), budgets_left, self.loop_state.get("time_plans")
        )
        # Until the first plan: a schedule too long to end (warmup, then the peak lr).
        self._retarget(self.planner.planned_steps or time_lib.UNPLANNED_STEPS)

    def _retarget(self, total: int) -> None:
        """Makes `total` the run's step count: new schedule numbers for the same program."""
        self.steps_total = int(total)
        self.steps.set_train_args(self.optimizer.args(self.steps_total))
        if self.bar is not None:
            self.bar.set_total(self.steps_total)

    def _time_eval(self) -> float:
        """Seconds of one full evaluation, from two batches (compile excluded)."""
        batches = list(self.eval_batches())
        seconds = []
        for batch in batches[:2]:
            t0 = time.time()
            out = self.steps.eval(
                self.state, mesh_lib.device_put_batch(batch, self.steps.batch_sharding)
            )
            jax.block_until_ready(out)
            seconds.append(time.time() - t0)
        return seconds[-1] * len(batches)

    def _plan(self) -> None:
        """Plans (or re-plans) the step count from the measured step and eval times."""
        planner = self.planner
        if planner.eval_s is None:
            paused = time.time()
            planner.eval_s = self._time_eval()
            self.timing["paused"] += time.time() - paused
            planner.exclude(time.time() - paused)
        total = planner.plan(self.step, time_lib.elapsed(self.start))
        self.loop_state["time_plans"] = planner.plans
        logging.info("Time budget: plan %d -> %d steps", len(planner.plans), total)
        if total != self.steps_total:
            self._retarget(total)
            planner.mark = None  # the next step compiles: time from the one after

    # ------------------------------------------------------------------ loop
    def train(self) -> dict[str, Any]:
        self.setup()
        tc = self.tc
        budgets = sorted(int(b) for b in (tc.get(f"eval_at_{self.unit}") or ()))
        done_budgets = {
            int(e.get("budget", e.get("tokens_budget", -1)))
            for e in self.loop_state["evals_at_budget"]
        }
        stop_after = int(tc.get("stop_after_steps", 0) or 0)
        first_step = self.step
        time_limit = float(tc.get("time_limit_s", 0) or 0)
        log_every, eval_every = max(int(tc.log_every), 1), int(tc.eval_every)
        ckpt_every = int(tc.checkpoint_every)
        keep_steps = set(branch_lib.keep_steps(tc))
        pending = None  # (step, metrics on device) fetched one step late
        window: list[dict] = []
        status = None
        self.timing["loop0"] = time.time()
        with Preemption() as preemption:
            while self.step < self.steps_total:
                batch = mesh_lib.device_put_batch(next(self.train_iter), self.steps.batch_sharding)
                dispatched = time.time()
                with jax.transfer_guard("disallow"):
                    self.state, metrics = self.steps.train(self.state, batch)
                self.step += 1
                if pending is not None and not self._consume(pending, window, log_every):
                    status = "diverged"
                    break
                pending = (self.step, metrics)
                if self.timing["t0"] is None:
                    # Throughput excludes the first step (compilation).
                    jax.block_until_ready(metrics)
                    self.timing.update(t0=time.time(), step0=self.step)
                if self.planner is not None:
                    self._time_budget_step(metrics, dispatched)

                planned = self.step * self.units_per_step
                due = [b for b in budgets if b <= planned and b not in done_budgets]
                eval_due = bool(due) or (eval_every > 0 and self.step % eval_every == 0)
                save_due = (ckpt_every > 0 and self.step % ckpt_every == 0) or (
                    self.step in keep_steps
                )
                if eval_due or save_due:
                    # This step's loss is checked before its state is saved or evaluated:
                    # a diverged (NaN) state must never become a checkpoint.
                    pending, ok = None, self._consume(pending, window, log_every)
                    if not ok:
                        status = "diverged"
                        break
                paused = time.time()
                if eval_due:
                    self._evaluate(due)
                    done_budgets.update(due)
                if save_due:
                    self._save()
                self.timing["paused"] += time.time() - paused
                if self.step < self.steps_total and (
                    preemption.requested(self.step)
                    or (stop_after and self.step - first_step >= stop_after)
                    or preemption.past_time_limit(self.step, self.start, time_limit, log_every)
                ):
                    status = "preempted"
                    break
            if pending is not None and status != "diverged":
                if not self._consume(pending, window, log_every, flush=True):
                    status = "diverged"
            elif window and status != "diverged":  # consumed early at a save or eval
                self._log_window(self.last_train["step"], window)
        self.timing["loop1"] = time.time()
        if status == "diverged":
            return self.finish("diverged")
        if status == "preempted":
            self._save()
            return self.finish("preempted")
        if not self.eval_metrics or self.eval_metrics.get("step") != self.step:
            self._evaluate([b for b in budgets if b not in done_budgets])
        self._decode_eval()
        self._save()
        return self.finish("done")

    def _time_budget_step(self, metrics, dispatched: float) -> None:
        """Starts the planner's timing window after a compile; plans when it is due."""
        planner = self.planner
        if planner.mark is None and len(planner.plans) < 2:
            jax.block_until_ready(metrics)  # this step compiled (the first, or after a plan)
            if planner.plans:
                planner.compile_s = time.time() - dispatched
            planner.start_window(self.step)
        elif planner.due(self.step):
            self._plan()

    def _consume(self, pending, window: list, log_every: int, flush: bool = False) -> bool:
        """Fetches a finished step's metrics; logs; returns False if the loss diverged."""
        step, metrics = pending
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        count = values.get("count", 0.0)
        if math.isfinite(count):  # a poisoned (NaN) batch counts no units
            self.loop_state["units_seen"] += count
        if step == self.timing["step0"]:
            self.units_at_step0 = self.loop_state["units_seen"]
        window.append(values)
        self.last_train = {"step": step, **values}
        loss = values["loss"]
        diverged = not math.isfinite(loss) or loss > float(self.tc.max_loss)
        if step % log_every == 0 or flush or diverged:
            self._log_window(step, window)
        if diverged:
            logging.warning("Loss %.4g at step %d: stopping the run as diverged.", loss, step)
        return not diverged

    def _log_window(self, step: int, window: list) -> None:
        """Writes the mean of the steps since the last row as step `step`'s train row."""
        row = {k: float(np.mean([w[k] for w in window])) for k in window[-1] if k != "count"}
        row.update(self._throughput(step))
        self.writer.write(step, "train", row)
        self.bar.update(step, self._postfix(row))
        window.clear()

    def _throughput(self, step: int) -> dict[str, float]:
        """<unit>_per_second (units that carried loss, first step excluded), <unit>_seen, mfu."""
        t0, step0 = self.timing["t0"], self.timing["step0"]
        out = {f"{self.unit}_seen": int(round(self.loop_state["units_seen"]))}
        if t0 is None or step <= step0 or self.units_at_step0 is None:
            return out
        elapsed = max((self.timing["loop1"] or time.time()) - t0 - self.timing["paused"], 1e-9)
        out[f"{self.unit}_per_second"] = (
            self.loop_state["units_seen"] - self.units_at_step0
        ) / elapsed
        fpu = self.sizes.get("flops_per_unit")
        if fpu and math.isfinite(self.peak[0]):
            # analytic FLOPs of the steps run (planned units: padding is computed too)
            out["mfu"] = fpu * (step - step0) * self.units_per_step / elapsed / self.peak[0]
        return out

    def _train_seconds(self) -> float | None:
        """Wall seconds of this process' training loop (first compile included, evals not)."""
        loop0 = self.timing["loop0"]
        if loop0 is None:
            return None
        return (self.timing["loop1"] or time.time()) - loop0 - self.timing["paused"]

    @staticmethod
    def _postfix(row: dict) -> dict[str, str]:
        out = {"loss": f"{row['loss']:.4f}"}
        for unit, short in (("tokens", "tok/s"), ("examples", "ex/s")):
            if f"{unit}_per_second" in row:
                out[short] = f"{row[f'{unit}_per_second']:.0f}"
        if "mfu" in row:
            out["mfu"] = f"{100 * row['mfu']:.1f}%"
        return out

    def _evaluate(self, budgets: list[int]) -> None:
        totals = None
        for batch in self.eval_batches():
            out = self.steps.eval(
                self.state, mesh_lib.device_put_batch(batch, self.steps.batch_sharding)
            )
            totals = out if totals is None else jax.tree.map(lambda a, b: a + b, totals, out)
        if totals is None:
            raise ValueError("The eval set is empty; check config.data (split, eval_batches).")
        result = dict(
            self.family.eval_finalize({k: float(v) for k, v in jax.device_get(totals).items()})
        )
        result[f"eval_{self.unit}"] = result.pop("count", None)
        result[f"{self.unit}_seen"] = int(round(self.loop_state["units_seen"]))
        self.eval_metrics = {"step": self.step, **result}
        self.writer.write(self.step, "eval", result)
        loss = result.get("loss")
        best = self.loop_state["best_eval_loss"]
        if loss is not None and math.isfinite(loss) and (best is None or loss < best):
            self.loop_state["best_eval_loss"] = loss
        fpu = self.sizes.get("flops_per_unit") or math.nan
        planned = self.step * self.units_per_step
        for budget in budgets:
            self.loop_state["evals_at_budget"].append(
                {
                    self.unit: planned,  # as planned (= seen for the LM), the budget's unit
                    f"{self.unit}_budget": budget,
                    "budget": budget,
                    "flops": fpu * planned,
                    "step": self.step,
                    "eval_loss": loss,
                    # schedule-final: at the end of a decayed schedule (else a mid-run eval)
                    "final": self.step == self.steps_total and optim.is_schedule_final(self.tc),
                }
            )

    def _decode_eval(self) -> None:
        """The family's decoding-based metrics (BLEU, exact match) at the end of a run."""
        if self.family.decode_eval is None:
            return
        model = nnx.merge(self.graphdef, self.state.params, self.state.model_state)
        result = {k: float(v) for k, v in self.family.decode_eval(model, True).items()}
        self.eval_metrics.update(result)
        self.writer.write(self.step, "eval", result)

    def _save(self) -> None:
        extra = {"data": self.train_iter.get_state(), "loop": self.loop_state}
        self.checkpointer.save(self.step, self.state, extra)

    # ---------------------------------------------------------------- record
    def finish(self, status: str, error: str | None = None) -> dict[str, Any]:
        if self.finished:
            return self.record
        self.finished = True
        if self.checkpointer is not None:
            self.checkpointer.wait()
        unit, seen = self.unit, int(round(self.loop_state["units_seen"]))
        fpu = self.sizes.get("flops_per_unit")
        n_ne = self.sizes.get("params_non_embedding")
        speed = self._throughput(self.step)
        # analytic FLOPs of the steps run (planned units: computed padding included)
        planned = self.step * self.units_per_step
        evals = {k: v for k, v in self.eval_metrics.items() if k != "step"}
        per_unit = "token" if unit == "tokens" else "example"
        self.record = record_lib.make_record(
            self.config,
            devices=getattr(self, "devices_desc", None),
            params_total=self.sizes.get("params_total"),
            params_embedding=self.sizes.get("params_embedding"),
            params_non_embedding=n_ne,
            unit=unit,
            units_seen=seen,
            flops_per_unit=fpu,
            units_per_second=speed.get(f"{unit}_per_second"),
            **{
                f"{unit}_seen": seen,
                f"flops_per_{per_unit}": fpu,
                f"{unit}_per_second": speed.get(f"{unit}_per_second"),
            },
            train_flops=fpu * planned if fpu else None,
            train_flops_6nd=6 * n_ne * planned if n_ne else None,
            status=status,
            final_train_loss=self.last_train.get("loss"),
            eval=evals,
            best_eval_loss=self.loop_state["best_eval_loss"],
            wall_seconds=time.time() - self.start,
            mfu=speed.get("mfu"),
            mfu_peak={"flops_per_second": self.peak[0], "source": self.peak[1]},
            history=os.path.join(self.workdir, "metrics.jsonl"),
            evals_at_budget=self.loop_state["evals_at_budget"],
            steps=self.step,
            train_seconds=self._train_seconds(),
            steps_total=getattr(self, "steps_total", None),
            train_traces=getattr(getattr(self, "steps", None), "train_traces", None),
            machine=record_lib.machine(self.start, self.load_start),
            error=error,
            time_budget=(
                self.planner.summary(time_lib.elapsed(self.start)) if self.planner else None
            ),
            **branch_lib.record_fields(
                self.tc,
                self.workdir,
                final=status == "done" and self.step == getattr(self, "steps_total", -1),
            ),
        )
        record_lib.write_record(self.workdir, self.record)
        logging.info(
            "Run %s: %s",
            status,
            json.dumps({k: self.record[k] for k in ("status", "steps", "best_eval_loss")}),
        )
        return self.record

    def close(self) -> None:
        for thing in (self.bar, self.writer, self.checkpointer):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()
