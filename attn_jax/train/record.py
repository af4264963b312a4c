"""The run record (summary.json), the contract between training, sweeps and analysis;
and the workdir it lives in (`prepare_workdir`: does a config fit the run there?).

Field names are stable (shared/DESIGN.md, "The run record"). The record is
written last and atomically (temp file + os.replace), so a reader never sees a
half-written one.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import logging
import math
import os
import subprocess
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from attn_jax import configs
from attn_jax.jsonio import write_json_atomic
from attn_jax.train.checkpoint import free_path

STATUSES = ("done", "diverged", "failed", "preempted")

FIELDS = (
    "run_id",
    "experiment",
    "family",
    "config",
    "seed",
    "code_version",
    "jax_version",
    "devices",
    "compute_dtype",  # what model.dtype resolved to on this backend ("auto" -> ...)
    "params_total",
    "params_embedding",
    "params_non_embedding",
    # the family's unit ("tokens" | "examples"), units that carried loss, FLOPs per
    # planned unit, units/s; tokens families also carry the tokens_* names below
    "unit",
    "units_seen",
    "flops_per_unit",
    "units_per_second",
    "tokens_seen",
    "flops_per_token",
    "train_flops",
    "train_flops_6nd",
    "status",
    "final_train_loss",
    "eval",
    "best_eval_loss",
    "wall_seconds",
    "tokens_per_second",
    "mfu",
    "mfu_peak",
    "history",
    "evals_at_budget",
    # schedule name; whether the final eval ends a decayed schedule; a branch's parent
    "schedule",
    "schedule_final",
    "parent_run_id",
    "init_from_step",
    # where and when: cpu, cores, started/finished (UTC), load average at both ends
    "machine",
)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def machine(start: float, load_start: tuple | None) -> dict[str, Any]:
    """The record's `machine`: what ran it, when, and how loaded the machine was."""
    utc = lambda t: datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="seconds")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "started_utc": utc(start),
        "finished_utc": utc(time.time()),
        "load_avg_start": list(load_start) if load_start else None,
        "load_avg_end": list(os.getloadavg()),
    }


def code_version() -> str:
    """`git describe` of the source tree (with -dirty), or the package version."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        import attn_jax

        return attn_jax.__version__


def describe_devices(devices: list) -> str:
    kinds = sorted({d.device_kind for d in devices})
    return f"{len(devices)}x {'/'.join(kinds)} ({devices[0].platform}, {jax.process_count()} proc)"


def _clean(value: Any) -> Any:
    # JSON has no NaN/Infinity: a diverged run's NaN loss is recorded as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def compute_dtype_name(config: ml_collections.ConfigDict) -> str | None:
    """What the config's model.dtype resolves to on this backend, or None without one."""
    name = configs.flatten(config).get("model.dtype")
    if name is None:
        return None
    from attn_jax.models.lm import compute_dtype

    return jnp.dtype(compute_dtype(name)).name


def make_record(config: ml_collections.ConfigDict, **fields: Any) -> dict[str, Any]:
    """Fills identity fields from `config`, the rest from `fields`; all FIELDS present."""
    if fields.get("status") not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {fields.get('status')!r}.")
    record = {
        "run_id": configs.config_hash(config),
        "experiment": config.get("experiment", ""),
        "family": config.get("family", ""),
        "config": configs.flatten(config),
        "seed": int(config.get("seed", 0)),
        "code_version": code_version(),
        "jax_version": jax.__version__,
        "compute_dtype": compute_dtype_name(config),
    }
    record.update(fields)
    for name in FIELDS:
        record.setdefault(name, None)
    return _clean(record)


def write_record(workdir: str, record: dict) -> str:
    """Writes workdir/summary.json atomically (process 0 only); returns its path."""
    path = os.path.join(workdir, "summary.json")
    if jax.process_index() == 0:
        write_json_atomic(path, record)
    return path


# ---------------------------------------------------------------- the workdir
# Config fields that may differ between runs in one workdir: how far the run goes,
# how often it logs, evaluates and saves, what it evaluates on, where and on how
# many devices it runs. Every other field (model.*, optimizer and schedule,
# data.* that shape the train batches, seed, family, a branch's parent) changes
# what the checkpoints mean. fnmatch patterns over flattened names.
RESUMABLE_FIELDS = (
    "train.steps",
    "train.tokens",
    "train.log_every",
    "train.eval_every",
    "train.eval_at_tokens",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.keep_steps",
    "train.async_checkpoint",
    "train.time_limit_s",
    "train.stop_after_steps",
    "train.max_loss",
    "train.progress_bar",
    "train.tensorboard",
    "train.report_mfu",
    "train.distributed",
    "train.mesh_fsdp",
    "train.num_devices",
    "train.restart",
    "data.data_dir",
    "data.eval_split",
    "data.eval_batches",
)

# What a run writes into its workdir; train.restart moves these to previous-<n>/.
RUN_FILES = (
    "config.json",
    "metrics.jsonl",
    "summary.json",
    "tb",
    "checkpoints",
    "checkpoints_corrupt",
)


class _Absent:
    """Stands for a field one of two configs does not have."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


class WorkdirConfigError(ValueError):
    """The config does not fit the run already in the workdir."""


def config_changes(
    saved: dict, config: ml_collections.ConfigDict | dict
) -> tuple[list[tuple[str, Any, Any]], list[tuple[str, Any, Any]]]:
    """Compares a workdir's saved config.json with `config`, field by field.

    The rule: a field in RESUMABLE_FIELDS (budget, logging, eval, checkpoint
    cadence, devices) may change on resume; any other differing field blocks,
    since the checkpoints were trained under its old value. (A new budget
    extends the run: a decaying schedule follows the new length from the
    resumed step on; for a cooldown from a checkpoint use a branch,
    train.init_from, in a new workdir.) A field present on
    one side only is a code change, not the user's: it is noted, not blocking
    (a new field must default to the old behaviour; a shape change still stops
    the restore, see checkpoint.CheckpointMismatchError).

    Returns:
      (blocking, resumable): lists of (field, old, new), sorted by field; old or
      new is ABSENT for a field on one side only.
    """
    old = configs.flatten(saved)
    # Round trip through JSON so tuples, ints and floats compare as config.json holds them.
    new = json.loads(json.dumps(configs.flatten(config), default=str))
    blocking, resumable = [], []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, ABSENT), new.get(name, ABSENT)
        if before == after:
            continue
        one_sided = before is ABSENT or after is ABSENT
        allowed = one_sided or any(fnmatch.fnmatchcase(name, p) for p in RESUMABLE_FIELDS)
        (resumable if allowed else blocking).append((name, before, after))
    return blocking, resumable


def _read_saved_config(workdir: str) -> dict | None:
    path = os.path.join(workdir, "config.json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise WorkdirConfigError(
            f"{path} is not valid JSON ({err}); it records the config this workdir's run "
            "was trained with. Restore it, use a new --workdir, or pass "
            "--config.train.restart=True to move the old run aside and start from scratch."
        ) from err


def _format(changes: list[tuple[str, Any, Any]]) -> str:
    return "\n".join(f"  {name}: {old!r} -> {new!r}" for name, old, new in changes)


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> str | None:
    """Checks `config` against the run already in `workdir`, before anything is written.

    The saved config.json is read before the loop overwrites it. A difference
    in a field that changes what the checkpoints mean (`config_changes`) raises
    WorkdirConfigError naming each field, old -> new, and how to proceed. With
    `train.restart=True` the old run's files (RUN_FILES) are moved, never
    deleted, to workdir/previous-<n>/ (with restart.json: when and why) and the
    run starts from scratch, unless the saved config is this very config with
    restart already set: that is the restarted run, rerun after a preemption,
    and it resumes.

    Returns:
      The previous-<n> folder the old run was moved to, or None.
    """
    saved = _read_saved_config(workdir)
    blocking, resumable = ([], []) if saved is None else config_changes(saved, config)
    restart = bool(config.train.get("restart", False))
    resuming_restart = bool((saved or {}).get("train", {}).get("restart")) and not blocking
    if restart and not resuming_restart:
        return _archive_run(workdir, blocking + resumable)
    if blocking:
        raise WorkdirConfigError(
            f"The config differs from the one the run in {workdir} was trained with "
            f"(its config.json) in fields its checkpoints depend on:\n{_format(blocking)}\n"
            "Use a new --workdir for this config, rerun with the old values to resume, or "
            "pass --config.train.restart=True to move the old run's files to "
            f"{workdir}/previous-<n>/ and train from scratch."
        )
    if resumable:
        logging.warning("Resuming %s with changed settings:\n%s", workdir, _format(resumable))
    return None


def _archive_run(workdir: str, changes: list[tuple[str, Any, Any]]) -> str | None:
    """Moves RUN_FILES into workdir/previous-<n>/ (smallest free n >= 1); None if none."""
    present = [name for name in RUN_FILES if os.path.lexists(os.path.join(workdir, name))]
    if not present:
        return None
    dst = free_path(workdir, "previous")
    if jax.process_index() == 0:
        os.makedirs(dst)
        for name in present:
            os.rename(os.path.join(workdir, name), os.path.join(dst, name))
        note = {
            "moved_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "reason": "train.restart=True",
            "files": present,
            "config_changes": [{"field": f, "old": repr(o), "new": repr(v)} for f, o, v in changes],
        }
        write_json_atomic(os.path.join(dst, "restart.json"), note)
    if jax.process_count() > 1:  # nobody opens checkpoints/ before process 0 moved it
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("attn_jax.record.archive_run")
    logging.warning("train.restart: moved the previous run in %s to %s", workdir, dst)
    return dst
