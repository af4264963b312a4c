"""Tables over a sweep directory: `status` (progress, ETA) and `results` (records).

Both read only out/sweep.json, out/results.jsonl and the trials' lock and
metrics files, so they work while a sweep runs, from another shell.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from attn_jax.sweep import store, worker

RESULT_COLUMNS = (
    "params_non_embedding",
    "tokens_seen",
    "train_flops",
    "final_train_loss",
    "best_eval_loss",
    "wall_seconds",
)


def load_manifest(out: str) -> dict[str, Any]:
    manifest = store.read_json(os.path.join(out, store.MANIFEST))
    if manifest is None:
        raise FileNotFoundError(
            f"{out} is not a sweep directory (no {store.MANIFEST}); "
            "start one with `python -m attn_jax.sweep run SPEC --out DIR`."
        )
    return manifest


def _last_step(workdir: str) -> int | None:
    """The last logged step in workdir/metrics.jsonl, reading only its tail."""
    path = os.path.join(workdir, "metrics.jsonl")
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().splitlines()
    except OSError:
        return None
    for raw in reversed(lines):
        try:
            step = json.loads(raw).get("step")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            continue
        if isinstance(step, int):
            return step
    return None


def status_rows(out: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per trial (status, attempts, losses, progress) and a summary with an ETA."""
    manifest = load_manifest(out)
    latest = store.latest_results(out)
    rows = []
    for t in manifest["trials"]:
        run_id, record = t["run_id"], latest.get(t["run_id"])
        workdir = store.trial_dir(out, run_id)
        row = {"index": t["index"], "run_id": run_id, "label": t["label"], "progress": ""}
        row["attempts"] = worker.attempts(out, run_id)
        if record is not None:
            row["status"] = record.get("status", "done")
            row["loss"] = record.get("final_train_loss")
            row["eval"] = record.get("best_eval_loss")
            row["wall"] = record.get("wall_seconds")
        else:
            pid = store.running_pid(out, run_id)
            started = row["attempts"] > 0 or os.path.exists(os.path.join(workdir, "checkpoints"))
            row["status"] = "running" if pid else ("partial" if started else "pending")
            if pid:  # time since it took the lock
                try:
                    row["wall"] = time.time() - os.path.getmtime(os.path.join(workdir, "lock"))
                except OSError:
                    pass
            step, planned = _last_step(workdir), t.get("planned_steps")
            if step is not None:
                row["progress"] = f"{step}/{planned}" if planned else f"step {step}"
        row["planned_flops"] = t.get("planned_flops")
        row["fraction"] = _fraction(row, t)
        rows.append(row)
    return rows, _summary(rows)


def _fraction(row: Mapping[str, Any], trial: Mapping[str, Any]) -> float:
    if row["status"] in store.TERMINAL:
        return 1.0
    step, planned = row["progress"].partition("/")[0], trial.get("planned_steps")
    if planned and step.isdigit():
        return min(1.0, int(step) / planned)
    return 0.0


def _summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    # Seconds per planned FLOP (or per trial) from finished trials and the done
    # fraction of running ones, times what is left, over the trials in flight.
    timed = [
        r
        for r in rows
        if r.get("wall") and (r["status"] == "done" or (r["status"] == "running" and r["fraction"]))
    ]
    eta = None
    if timed:
        weights = (
            [r["planned_flops"] for r in rows] if all(r["planned_flops"] for r in rows) else None
        )
        weight = lambda r: r["planned_flops"] if weights else 1.0
        rate = sum(r["wall"] for r in timed) / sum(weight(r) * r["fraction"] for r in timed)
        left = sum(
            weight(r) * (1.0 - r["fraction"]) for r in rows if r["status"] not in store.TERMINAL
        )
        eta = rate * left / max(1, counts.get("running", 0))
    return {"total": len(rows), "counts": counts, "eta_seconds": eta}


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def format_status(out: str) -> str:
    rows, summary = status_rows(out)
    columns = ("index", "run_id", "label", "status", "attempts", "progress", "loss", "eval", "wall")
    order = ("done", "diverged", "failed", "running", "partial", "pending")
    ranked = sorted(summary["counts"].items(), key=lambda kv: (order + (kv[0],)).index(kv[0]))
    counts = ", ".join(f"{n} {s}" for s, n in ranked)
    return (
        format_table(rows, columns)
        + f"\n\n{summary['total']} trials: {counts}; ETA {format_seconds(summary['eta_seconds'])}"
    )


def result_rows(out: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The latest record of each trial as flat rows (spec order), and their columns."""
    latest = store.latest_results(out)
    try:
        order = [t["run_id"] for t in load_manifest(out)["trials"]]
    except FileNotFoundError:
        order = []
    order += [run_id for run_id in latest if run_id not in order]
    tag_columns: list[str] = []
    eval_columns: list[str] = []  # the final eval's own metrics (accuracy, exact_match, bleu)
    rows = []
    for run_id in order:
        record = latest.get(run_id)
        if record is None:
            continue
        tags = record.get("sweep", {}).get("tags", {})
        tag_columns += [k for k in tags if k not in tag_columns]
        row = {"run_id": run_id, "status": record.get("status")}
        row.update(
            {k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in tags.items()}
        )
        row.update({c: record.get(c) for c in RESULT_COLUMNS})
        for key, value in (record.get("eval") or {}).items():
            if key.endswith("_seen") or key.startswith("eval_") or not _is_number(value):
                continue  # counts, not metrics
            column = f"eval.{key}"
            eval_columns += [] if column in eval_columns else [column]
            row[column] = value
        rows.append(row)
    return rows, ["run_id", "status", *tag_columns, *RESULT_COLUMNS, *eval_columns]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_results(out: str, fmt: str = "table") -> str:
    """The records as "table", "csv" or "jsonl" (the full records)."""
    if fmt == "jsonl":
        latest = store.latest_results(out)
        return "".join(json.dumps(r, sort_keys=True) + "\n" for r in latest.values())
    rows, columns = result_rows(out)
    if fmt == "table":
        return format_table(rows, columns)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    raise ValueError(f"Unknown results format {fmt!r}; valid: table, csv, jsonl.")
