"""Run records -> arrays for fitting. The only way data enters attn_jax.scaling.

Reads a sweep's results.jsonl, a directory of runs (each with summary.json), one
summary.json, or a CSV (any columns naming N, D or C, and loss; e.g. the Chinchilla data
of Besiroglu et al. 2024). Only records with status == "done" are used.

Conventions, both stated in every report and switchable:
- params: "non_embedding" (Kaplan et al. 2020) or "total" (Hoffmann et al. 2022).
- flops: "6nd" (C = 6 N D with the N chosen above) or "analytic" (the record's analytic
  train_flops, which counts attention; evals_at_budget flops are taken as analytic too).
A run with `evals_at_budget` gives one point per budget (several points per run, for
IsoFLOP fits); `run` keeps which run each point came from, for the bootstrap.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import pathlib

import numpy as np

PARAMS = {"non_embedding": "params_non_embedding", "total": "params_total"}
FLOPS = ("6nd", "analytic")
_CSV_COLUMNS = {
    "N": (
        "n",
        "params",
        "model size",
        "model_size",
        "parameters",
        "params_non_embedding",
        "params_total",
    ),
    "D": ("d", "tokens", "tokens_seen", "training tokens"),
    "C": ("c", "flops", "training flop", "training_flop", "train_flops", "compute"),
    "L": ("loss", "l", "eval_loss", "best_eval_loss"),
    "run": ("run", "run_id"),
}


@dataclasses.dataclass
class ScalingData:
    """Points to fit, one per (run, budget).

    Attributes:
      N, D, C, L: parameters, tokens, FLOPs and loss per point [P].
      run: run index per point [P] (bootstrap resamples runs).
      run_ids: names of the runs, indexed by `run`.
      curves: per-run learning curves [{"run_id", "N", "D", "C", "loss"}], for Approach 1
        and the learning-curve plot (from metrics.jsonl, else evals_at_budget).
      params_kind, flops_kind: the conventions used.
      k_flops: FLOPs per parameter-token (6 for 6ND; the data's median C/(N D) if analytic).
      source: where the data came from.
    """

    N: np.ndarray
    D: np.ndarray
    C: np.ndarray
    L: np.ndarray
    run: np.ndarray
    run_ids: list[str]
    curves: list[dict]
    params_kind: str
    flops_kind: str
    k_flops: float
    source: str

    def subset(self, keep) -> ScalingData:
        keep = np.asarray(keep)
        pick = lambda x: x[keep]
        return dataclasses.replace(
            self, N=pick(self.N), D=pick(self.D), C=pick(self.C), L=pick(self.L), run=pick(self.run)
        )


def _check(params: str, flops: str):
    if params not in PARAMS:
        raise ValueError(f"unknown params convention {params!r}; valid: {sorted(PARAMS)}")
    if flops not in FLOPS:
        raise ValueError(f"unknown flops convention {flops!r}; valid: {list(FLOPS)}")


def from_arrays(
    N, L, *, D=None, C=None, run=None, k_flops=6.0, source="arrays", **kw
) -> ScalingData:
    """ScalingData from arrays; the missing one of D, C comes from C = k N D."""
    N, L = np.asarray(N, np.float64), np.asarray(L, np.float64)
    flops_kind = "given" if C is not None else "6nd"
    if D is None and C is None:
        raise ValueError("need D (tokens) or C (FLOPs) besides N and loss")
    D = np.asarray(C, np.float64) / (k_flops * N) if D is None else np.asarray(D, np.float64)
    C = k_flops * N * D if C is None else np.asarray(C, np.float64)
    run = np.arange(N.shape[0]) if run is None else np.asarray(run)
    uniq, run_idx = np.unique(run, return_inverse=True)
    defaults = dict(curves=[], params_kind="given", flops_kind=flops_kind)
    return ScalingData(
        N,
        D,
        C,
        L,
        run_idx,
        [str(u) for u in uniq],
        **{**defaults, **kw},
        k_flops=k_flops,
        source=source,
    )


def load_csv(path, *, drop_highest: int = 0) -> ScalingData:
    """Reads a CSV with N and loss and D or C (column names matched case-insensitively)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows")
    lower = {c.strip().lower(): c for c in rows[0]}
    cols = {k: next((lower[a] for a in al if a in lower), None) for k, al in _CSV_COLUMNS.items()}
    if cols["N"] is None or cols["L"] is None or (cols["D"] is None and cols["C"] is None):
        raise ValueError(
            f"{path}: need columns for N ({_CSV_COLUMNS['N']}), loss ({_CSV_COLUMNS['L']}) and "
            f"D ({_CSV_COLUMNS['D']}) or C ({_CSV_COLUMNS['C']}); found {list(rows[0])}"
        )
    get = lambda k: None if cols[k] is None else np.array([float(r[cols[k]]) for r in rows])
    run = None if cols["run"] is None else np.array([r[cols["run"]] for r in rows])
    data = from_arrays(get("N"), get("L"), D=get("D"), C=get("C"), run=run, source=str(path))
    if drop_highest:
        data = data.subset(
            np.sort(np.argsort(data.L, kind="stable")[: data.L.shape[0] - drop_highest])
        )
    return data


def read_records(path) -> tuple[list[dict], pathlib.Path]:
    """Run records from results.jsonl, a summary.json, or a directory holding either."""
    path = pathlib.Path(path)
    if path.is_dir():
        if (path / "results.jsonl").exists():
            return read_records(path / "results.jsonl")
        summaries = sorted(path.glob("*/summary.json")) or sorted(path.glob("summary.json"))
        if not summaries:
            raise ValueError(f"{path} has no results.jsonl and no */summary.json run records")
        return [json.loads(p.read_text()) | {"_dir": str(p.parent)} for p in summaries], path
    if path.suffix == ".jsonl":
        lines = [x for x in path.read_text().splitlines() if x.strip()]
        return [json.loads(x) for x in lines], path.parent
    return [json.loads(path.read_text()) | {"_dir": str(path.parent)}], path.parent


def _final_loss(rec) -> float | None:
    if rec.get("best_eval_loss") is not None:
        return float(rec["best_eval_loss"])
    ev = rec.get("eval") or {}
    for key in ("loss", "eval_loss", "eval/loss"):
        if ev.get(key) is not None:
            return float(ev[key])
    return None


def read_history(path) -> dict[str, np.ndarray] | None:
    """Eval points of a metrics.jsonl: {"tokens": [...], "loss": [...]} or None."""
    path = pathlib.Path(path)
    if not path.exists():
        return None
    tokens, loss = [], []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by preemption
        t = row.get("tokens", row.get("tokens_seen"))
        v = next((row[k] for k in ("eval_loss", "eval/loss", "eval.loss") if k in row), None)
        if v is None and row.get("kind") == "eval":  # attn_jax.train's metrics.jsonl
            v = row.get("loss")
        if t is not None and v is not None:
            tokens.append(float(t))
            loss.append(float(v))
    return {"tokens": np.array(tokens), "loss": np.array(loss)} if len(tokens) >= 2 else None


def load_records(path, *, params="non_embedding", flops="6nd") -> ScalingData:
    """Reads finished runs' records into points (one per budget eval, else one per run).

    Args:
      path: results.jsonl, summary.json, or a directory with results.jsonl / */summary.json.
      params: "non_embedding" or "total".
      flops: "6nd" or "analytic".
    """
    _check(params, flops)
    recs, base = read_records(path)
    done = [r for r in recs if r.get("status") == "done"]
    if not done:
        raise ValueError(f"{path}: none of {len(recs)} run records has status 'done'")
    N, D, C, L, run, ids, curves = [], [], [], [], [], [], []
    for i, rec in enumerate(done):
        n = float(rec[PARAMS[params]])
        fpt = rec.get("flops_per_token") or (
            rec.get("train_flops", 0) / max(rec.get("tokens_seen", 1), 1)
        )
        budget = [b for b in rec.get("evals_at_budget") or [] if b.get("eval_loss") is not None]
        pts = [(float(b["tokens"]), b.get("flops"), float(b["eval_loss"])) for b in budget]
        final = _final_loss(rec)
        if (
            final is not None
            and rec.get("tokens_seen")
            and (not pts or rec["tokens_seen"] > 1.01 * max(p[0] for p in pts))
        ):
            pts.append((float(rec["tokens_seen"]), rec.get("train_flops"), final))
        for d, c, loss in pts:
            c_an = float(c) if c is not None else fpt * d
            N.append(n)
            D.append(d)
            C.append(6.0 * n * d if flops == "6nd" else c_an)
            L.append(loss)
            run.append(i)
        ids.append(str(rec.get("run_id", i)))
        hist = None
        if rec.get("history"):
            hp = pathlib.Path(rec["history"])
            hist = read_history(
                hp if hp.is_absolute() else pathlib.Path(rec.get("_dir", base)) / hp
            )
        if hist is None and len(pts) >= 2:
            hist = {"tokens": np.array([p[0] for p in pts]), "loss": np.array([p[2] for p in pts])}
        if hist is not None:
            k = 6.0 * n if flops == "6nd" else fpt
            curves.append(
                {
                    "run_id": ids[-1],
                    "N": n,
                    "D": hist["tokens"],
                    "C": k * hist["tokens"],
                    "loss": hist["loss"],
                }
            )
    N, D, C = np.array(N), np.array(D), np.array(C)
    k_flops = 6.0 if flops == "6nd" else float(np.median(C / (N * D)))
    return ScalingData(
        N, D, C, np.array(L), np.array(run), ids, curves, params, flops, k_flops, str(path)
    )


def load(path, *, params="non_embedding", flops="6nd", drop_highest: int = 0) -> ScalingData:
    """Loads a CSV (by suffix) or run records (anything else)."""
    if str(path).endswith(".csv"):
        return load_csv(path, drop_highest=drop_highest)
    data = load_records(path, params=params, flops=flops)
    if drop_highest:
        data = data.subset(
            np.sort(np.argsort(data.L, kind="stable")[: data.L.shape[0] - drop_highest])
        )
    return data
