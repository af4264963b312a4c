"""The run record (summary.json): the contract between training, sweeps and analysis.

Field names are stable (shared/DESIGN.md, "The run record"). The record is
written last and atomically (temp file + os.replace), so a reader never sees a
half-written one.
"""

from __future__ import annotations

import math
import os
import subprocess
from typing import Any

import jax
import ml_collections

from attn_jax import configs
from attn_jax.jsonio import write_json_atomic

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
    "params_total",
    "params_embedding",
    "params_non_embedding",
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
)


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
