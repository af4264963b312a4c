"""Run records -> arrays for fitting. The only way data enters attn_jax.scaling.

Reads a sweep's results.jsonl, a directory of runs (each with summary.json), one
summary.json, or a CSV (any columns naming N, D or C, and loss; e.g. the Chinchilla data
of Besiroglu et al. 2024). Only records with status == "done" are used.

Conventions, both stated in every report and switchable:
- params: "non_embedding" (Kaplan et al. 2020) or "total" (Hoffmann et al. 2022).
- flops: "6nd" (C = 6 N D with the N chosen above) or "analytic" (the record's analytic
  train_flops, which counts attention; evals_at_budget flops are taken as analytic too).
Which points mean what the law means: a point is *schedule-final* (`ScalingData.final`)
when its loss is read at the end of its own learning-rate schedule: a run's last eval,
when the record says `schedule_final` (a cosine run, or a WSD cooldown branch,
attn_jax.sweep.designs.wsd_branches; records without the field are taken as final). An eval
in the middle of a longer schedule (`evals_at_budget` entries before the end, or marked
`"final": false`), or the end of a stable-phase WSD run, is mid-run: it overstates the loss
of a model trained for that many tokens (Hoffmann et al. 2022, sec. 3.1, fig. A1).
`load_records` returns schedule-final points only, one per run, unless `include_midrun`;
`curves` always carry every eval, for Approach 1 and the learning-curve plot. The final
point's loss is the final eval's, never `best_eval_loss` (a minimum over all evals).
`run` keeps which run each point came from, for the bootstrap.
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
      curves: per-run learning curves [{"run_id", "N", "D", "C", "loss"}, plus
        "parent_run_id" for a branch], every eval, for Approach 1 and the learning-curve
        plot (from metrics.jsonl, else evals_at_budget).
      params_kind, flops_kind: the conventions used.
      k_flops: FLOPs per parameter-token (6 for 6ND; the data's median C/(N D) if analytic).
      source: where the data came from.
      final: bool per point [P]: the loss at the end of its own learning-rate schedule
        (False: a mid-run eval). Approaches 2 and 3 refuse False points unless asked.
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
    final: np.ndarray = None  # set in __post_init__ to all True when not given

    def __post_init__(self):
        if self.final is None:
            self.final = np.ones(np.shape(self.N), bool)
        self.final = np.asarray(self.final, bool)

    def subset(self, keep) -> ScalingData:
        keep = np.asarray(keep)
        pick = lambda x: x[keep]
        return dataclasses.replace(
            self,
            N=pick(self.N),
            D=pick(self.D),
            C=pick(self.C),
            L=pick(self.L),
            run=pick(self.run),
            final=pick(self.final),
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
    """Reads a CSV with N and loss and D or C (column names matched case-insensitively).

    Points are schedule-final unless a column `final` says otherwise (true/false, 1/0).
    """
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
    if "final" in lower:
        data.final = np.array(
            [r[lower["final"]].strip().lower() in ("1", "true", "yes") for r in rows]
        )
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
    """The run's last eval loss (not best_eval_loss: a minimum over evals is no end point)."""
    ev = rec.get("eval") or {}
    for key in ("loss", "eval_loss", "eval/loss"):
        if ev.get(key) is not None:
            return float(ev[key])
    return None


def _units(entry) -> float | None:
    """The units (tokens or examples) of a record or an evals_at_budget entry."""
    for key in ("units_seen", "tokens_seen", "examples_seen", "tokens", "examples"):
        if entry.get(key) is not None:
            return float(entry[key])
    return None


def run_points(rec) -> list[tuple[float, float | None, float, bool]]:
    """(units, analytic flops or None, loss, schedule-final) of one run record.

    Units are tokens for token families, examples for example families (the record's
    `unit`): D of the laws.

    The last point is the run's final eval, schedule-final when the record says
    `schedule_final` (absent: True). The others are `evals_at_budget` entries before
    the end (mid-run); a branch leaves out its parent's, which it inherited.
    """
    end = _units(rec) or 0.0
    start_step = rec.get("init_from_step") if rec.get("parent_run_id") else None
    pts = []
    for b in rec.get("evals_at_budget") or []:
        if b.get("eval_loss") is None or _units(b) is None:
            continue
        if start_step is not None and b.get("step") is not None and b["step"] <= start_step:
            continue  # the parent's eval, in the parent's record
        if end and _units(b) >= 0.99 * end and _final_loss(rec) is not None:
            continue  # the final eval itself: the point below
        pts.append((_units(b), b.get("flops"), float(b["eval_loss"]), False))
    loss = _final_loss(rec)
    if loss is not None and end:
        final = rec.get("schedule_final")
        pts.append((end, rec.get("train_flops"), loss, True if final is None else bool(final)))
    return pts


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
        t = next((row[k] for k in ("tokens", "tokens_seen", "examples_seen") if k in row), None)
        v = next((row[k] for k in ("eval_loss", "eval/loss", "eval.loss") if k in row), None)
        if v is None and row.get("kind") == "eval":  # attn_jax.train's metrics.jsonl
            v = row.get("loss")
        if t is not None and v is not None:
            tokens.append(float(t))
            loss.append(float(v))
    return {"tokens": np.array(tokens), "loss": np.array(loss)} if len(tokens) >= 2 else None


def _history_paths(rec, base, run_id) -> list[pathlib.Path]:
    """Where a record's metrics.jsonl may be: the path it names, else beside the record.

    A record names its history by the absolute path it was written at; a sweep
    directory that was moved or committed (results/demo) keeps the layout
    <sweep>/trials/<run_id>/metrics.jsonl, which is tried next.
    """
    here = pathlib.Path(rec.get("_dir", base))
    paths = []
    if rec.get("history"):
        hp = pathlib.Path(rec["history"])
        paths.append(hp if hp.is_absolute() else here / hp)
        paths.append(here / "trials" / str(run_id) / hp.name)
        paths.append(here / hp.name)
    return paths


def _curve(rec, base, pts, run_id, n, k) -> dict | None:
    """The run's learning curve: metrics.jsonl evals, else its records' evals."""
    hist = None
    for path in _history_paths(rec, base, run_id):
        hist = read_history(path)
        if hist is not None:
            break
    if hist is None:
        # Every eval, a branch's inherited ones from its parent's stable phase too: the
        # curve of the same run trained from scratch.
        evals = {
            _units(e): float(e["eval_loss"])
            for e in rec.get("evals_at_budget") or []
            if e.get("eval_loss") is not None and _units(e) is not None
        }
        evals.update({p[0]: p[2] for p in pts})
        if len(evals) >= 2:
            tokens = np.array(sorted(evals))
            hist = {"tokens": tokens, "loss": np.array([evals[t] for t in tokens])}
    if hist is None:
        return None
    curve = {"run_id": run_id, "N": n, "D": hist["tokens"], "C": k * hist["tokens"]}
    curve["loss"] = hist["loss"]
    if rec.get("parent_run_id"):
        curve["parent_run_id"] = str(rec["parent_run_id"])
    return curve


def load_records(
    path, *, params="non_embedding", flops="6nd", include_midrun: bool = False
) -> ScalingData:
    """Reads finished runs' records into points: each run's schedule-final end point.

    Args:
      path: results.jsonl, summary.json, or a directory with results.jsonl / */summary.json.
      params: "non_embedding" or "total".
      flops: "6nd" or "analytic".
      include_midrun: also the mid-run evals (evals_at_budget before a run's end, and the
        end of a stable-phase WSD run), with final=False. Approaches 2 and 3 refuse them
        unless asked; Approach 1 uses `curves`, which always carry every eval.
    """
    recs, base = read_records(path)
    return from_records(recs, base, params=params, flops=flops, include_midrun=include_midrun)


def from_records(
    recs, base=".", *, params="non_embedding", flops="6nd", include_midrun: bool = False
) -> ScalingData:
    """`load_records` on records already read (e.g. one group of a sweep's records).

    Args:
      recs: run records (dicts of the results.jsonl schema); only status "done" are used.
      base: the folder they came from (where their metrics.jsonl files are looked for).
      params, flops, include_midrun: as `load_records`.
    """
    _check(params, flops)
    path = base
    done = [r for r in recs if r.get("status") == "done"]
    if not done:
        raise ValueError(f"{path}: none of {len(recs)} run records has status 'done'")
    N, D, C, L, run, final, ids, curves = [], [], [], [], [], [], [], []
    for i, rec in enumerate(done):
        n = float(rec[PARAMS[params]])
        fpt = (
            rec.get("flops_per_unit")
            or rec.get("flops_per_token")
            or (rec.get("train_flops", 0) / max(_units(rec) or 1, 1))
        )
        pts = run_points(rec)
        for d, c, loss, is_final in pts:
            if not (is_final or include_midrun):
                continue
            c_an = float(c) if c is not None else fpt * d
            N.append(n)
            D.append(d)
            C.append(6.0 * n * d if flops == "6nd" else c_an)
            L.append(loss)
            run.append(i)
            final.append(is_final)
        ids.append(str(rec.get("run_id", i)))
        curve = _curve(rec, base, pts, ids[-1], n, 6.0 * n if flops == "6nd" else fpt)
        if curve is not None:
            curves.append(curve)
    if not N:
        raise ValueError(
            f"{path}: no schedule-final points among {len(done)} finished runs (every run "
            "ends mid-schedule, e.g. stable-phase WSD runs without their cooldown branches); "
            "pass include_midrun=True to read the mid-run evals."
        )
    N, D, C = np.array(N), np.array(D), np.array(C)
    k_flops = 6.0 if flops == "6nd" else float(np.median(C / (N * D)))
    return ScalingData(
        N,
        D,
        C,
        np.array(L),
        np.array(run),
        ids,
        curves,
        params,
        flops,
        k_flops,
        str(path),
        final=np.array(final, bool),
    )


def load(
    path, *, params="non_embedding", flops="6nd", drop_highest: int = 0, include_midrun=False
) -> ScalingData:
    """Loads a CSV (by suffix) or run records (anything else); see `load_records`."""
    if str(path).endswith(".csv"):
        return load_csv(path, drop_highest=drop_highest)
    data = load_records(path, params=params, flops=flops, include_midrun=include_midrun)
    if drop_highest:
        data = data.subset(
            np.sort(np.argsort(data.L, kind="stable")[: data.L.shape[0] - drop_highest])
        )
    return data
