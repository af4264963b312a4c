"""One full analysis of a sweep: fits, uncertainty, figures, fit.json and a markdown report.

`analyze` is what `analysis/fit.py` calls. It fits Approach 3 (the headline), bootstraps it
over runs, validates it by leaving the largest size out, and adds Approach 2 (IsoFLOP),
Approach 1 (lower envelope, where there are training curves) and single-variable power
laws with offset, each where the data allow and with a stated reason where they do not.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from attn_jax.scaling import approach3, approaches, bootstrap, frontier, records, wls


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.integer | np.bool_):
        return x.item()
    if isinstance(x, float | np.floating):
        return None if not math.isfinite(float(x)) else float(x)
    return x


def _try(fn, *args, **kw):
    try:
        return fn(*args, **kw), None
    except ValueError as e:
        return None, str(e)


def _single_variable(data) -> dict:
    """L = E + A C^-alpha on the best loss at each FLOP budget (the empirical frontier).

    No single-variable law in N is fitted: a sweep's best loss per size is limited by its
    data, not its size, unless every size was trained to convergence (Kaplan et al. 2020).
    """
    labels, budgets = approaches.group_budgets(data.C)
    best_C = np.array([data.L[labels == g].min() for g in range(budgets.shape[0])])
    if budgets.shape[0] < 4:
        return {"loss_vs_C": {"error": f"{budgets.shape[0]} budgets; a 3-parameter law needs >= 4"}}
    fit, err = _try(wls.fit_wls, "power_offset", best_C, x=budgets)
    return {"loss_vs_C": fit.to_dict() if fit else {"error": err}}


def analyze(
    path,
    out_dir,
    *,
    params: str = "non_embedding",
    flops: str = "6nd",
    n_bootstrap: int = 200,
    seed: int = 0,
    top_k: int = 16,
    drop_highest: int = 0,
    budgets=(),
    level: float = 0.95,
    plots: bool = True,
    dpi: int = 300,
) -> dict:
    """Fits, bootstraps and plots the runs at `path`; writes fit.json and report.md.

    Args:
      path: results.jsonl, a sweep or run directory, summary.json, or a CSV.
      out_dir: where fit.json, report.md and the figures go.
      params: "non_embedding" or "total" parameter counts.
      flops: "6nd" or "analytic" compute.
      n_bootstrap: bootstrap resamples over runs (0 = none).
      seed: bootstrap seed.
      top_k: Approach-3 grid starts optimized (None = all 4500).
      drop_highest: drop this many highest-loss points (5 for the Chinchilla CSV).
      budgets: FLOP budgets for derived quantities (default: largest C seen, and 10x it).
      level: interval coverage.
      plots: write figures.
      dpi: PNG resolution.

    Returns:
      The fit.json content as a dict.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = records.load(path, params=params, flops=flops, drop_highest=drop_highest)
    if data.N.shape[0] < 5:
        raise ValueError(f"{path}: {data.N.shape[0]} points; Approach 3 fits 5 parameters")
    budgets = tuple(budgets) or (float(data.C.max()), float(10 * data.C.max()))
    fit = approach3.fit_approach3(data.N, data.D, data.L, top_k=top_k)
    result = {
        "source": data.source,
        "conventions": {
            "params": data.params_kind,
            "flops": data.flops_kind,
            "flops_per_param_token": data.k_flops,
        },
        "n_points": int(data.N.shape[0]),
        "n_runs": len(data.run_ids),
        "approach3": {
            "law": "L = E + A / N^alpha + B / D^beta",
            "estimator": "Huber(delta=1e-3) on log loss, LSE parameterization, L-BFGS-B, summed",
            "params": fit.params,
            "objective": fit.value,
            "derived": frontier.derived(fit.params, budgets, data.k_flops),
            "diagnostics": fit.diagnostics.to_dict(),
        },
    }
    boot_params = []
    if n_bootstrap and len(data.run_ids) >= 3:
        boot = bootstrap.bootstrap_approach3(
            data.N, data.D, data.L, data.run, n_resamples=n_bootstrap, seed=seed, level=level,
            init=fit.params, budgets=budgets, k_flops=data.k_flops,
        )  # fmt: skip
        s = boot.samples
        boot_params = [
            {n: s[n][i] for n in ("E", "A", "B", "alpha", "beta")} for i in range(len(s["E"]))
        ]
        result["bootstrap"] = {
            "resample": "runs, with replacement",
            "n_resamples": n_bootstrap,
            "n_failed": boot.n_failed,
            "level": level,
            "summary": boot.summary(),
        }
    llo, err = _try(bootstrap.leave_largest_out, data.N, data.D, data.L, top_k=top_k)
    result["leave_largest_out"] = llo or {"error": err}
    a2, err = _try(approaches.approach2, data.N, data.D, data.L, data.C)
    result["approach2"] = a2.to_dict() if a2 else {"error": err}
    if a2 is not None and n_bootstrap and len(data.run_ids) >= 3:
        labels, _ = approaches.group_budgets(data.C)

        def a2_fn(w):
            f = approaches.approach2(data.N, data.D, data.L, data.C, labels=labels, weights=w)
            return {"a": f.a, "b": f.b}

        b2 = bootstrap.bootstrap(a2_fn, data.run, n_bootstrap, seed, level)
        result["approach2"]["bootstrap"] = {"n_failed": b2.n_failed, "summary": b2.summary()}
    a1, err = _try(approaches.approach1, data.curves, k=data.k_flops)
    result["approach1"] = a1.to_dict() if a1 else {"error": err or "no training curves"}
    result["single_variable"] = _single_variable(data)
    if plots:
        from attn_jax.scaling import plots as plots_lib  # matplotlib only when plotting

        figs = plots_lib.Figures(out, dpi=dpi)
        plots_lib.plot_all(figs, data, fit.params, boot_params=boot_params, a2=a2, level=level)
        result["figures"] = figs.written
    result = _jsonable(result)
    (out / "fit.json").write_text(json.dumps(result, indent=2))
    (out / "report.md").write_text(markdown(result, fit.diagnostics.lines()))
    return result


def _fmt(v):
    return "n/a" if v is None else f"{v:.4g}"


def markdown(r: dict, diag_lines) -> str:
    """The markdown report of a fit.json dict."""
    a3 = r["approach3"]
    d = a3["derived"]
    conv = r["conventions"]
    boot = r.get("bootstrap", {}).get("summary", {})
    lvl = r.get("bootstrap", {}).get("level", 0.95)
    lines = [
        "# Scaling-law fit",
        "",
        f"Data: `{r['source']}`: {r['n_points']} points from {r['n_runs']} runs. "
        f"Parameters: {conv['params']}; compute: {conv['flops']} "
        f"({_fmt(conv['flops_per_param_token'])} FLOPs per parameter-token).",
        "",
        "## Approach 3 (Hoffmann et al. 2022; Besiroglu et al. 2024)",
        "",
        f"{a3['law']}, fitted by {a3['estimator']}.",
        "",
        f"| quantity | estimate | bootstrap SE | {100 * lvl:.0f}% interval |",
        "|---|---|---|---|",
    ]
    for name, v in d.items():
        b = boot.get(name)
        se, ci = ("", "") if b is None else (_fmt(b["se"]), f"[{_fmt(b['lo'])}, {_fmt(b['hi'])}]")
        lines.append(f"| {name} | {_fmt(v)} | {se} | {ci} |")
    lines += [
        "",
        f"Compute-optimal frontier: N*(C) = G (C/k)^a, D*(C) = G^-1 (C/k)^b with "
        f"a = beta/(alpha+beta) = {_fmt(d['a'])}, b = alpha/(alpha+beta) = {_fmt(d['b'])}.",
        "",
        "### Diagnostics",
        "",
        *[f"- {x}" for x in diag_lines],
        "",
        "## Leave the largest size out",
        "",
    ]
    llo = r["leave_largest_out"]
    if "error" in llo:
        lines.append(f"Not run: {llo['error']}")
    else:
        lines.append(
            f"Fitted without N = {_fmt(llo['N_held_out'])} ({llo['n_held_out']} points): mean "
            f"|relative error| {100 * llo['mean_abs_rel_error']:.2f}%, max "
            f"{100 * llo['max_abs_rel_error']:.2f}%, RMSE of log loss {_fmt(llo['rmse_log_loss'])}."
        )
    for key, title in (
        ("approach2", "Approach 2 (IsoFLOP parabolas)"),
        ("approach1", "Approach 1 (lower envelope)"),
    ):
        ap = r[key]
        lines += ["", f"## {title}", ""]
        if "error" in ap:
            lines.append(f"Not available: {ap['error']}")
            continue
        boot = ap.get("bootstrap", {}).get("summary", {})
        se = {k: f" (bootstrap SE {_fmt(v['se'])})" for k, v in boot.items()}
        lines.append(
            f"N* ∝ C^{_fmt(ap['a'])}{se.get('a', '')}, D* ∝ C^{_fmt(ap['b'])}{se.get('b', '')}, "
            f"from {len(ap['budgets'])} compute values."
        )
        for c, why in ap.get("refused", {}).items():
            lines.append(f"- refused budget C = {c}: {why}")
    lines += ["", "## Best loss per budget: L = E + A C^-alpha (WLS on log loss)", ""]
    for key, f in r["single_variable"].items():
        if "error" in f:
            lines.append(f"- {key}: {f['error']}")
        else:
            p = f["params"]
            lines.append(
                f"- {key}: E = {_fmt(p['E'])}, A = {_fmt(p['A'])}, alpha = {_fmt(p['alpha'])}"
            )
    if r.get("figures"):
        lines += ["", "## Figures", ""]
        lines += [
            f"![{pathlib.Path(f).stem}]({pathlib.Path(f).name})"
            for f in r["figures"]
            if f.endswith(".png")
        ]
    return "\n".join(lines) + "\n"
