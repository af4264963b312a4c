"""One full analysis of a sweep: fits, uncertainty, figures, fit.json and report.md.

`analyze` is what `analysis/fit.py` calls. It fits Approach 3 (the parametric law),
bootstraps it over runs, validates it by leaving the largest size out, and adds Approach 2
(IsoFLOP parabolas), Approach 1 (lower envelope of the learning curves) and a
single-variable law of the best loss per budget, each with bootstrap intervals where the
data allow and a stated reason where they do not. The three approaches' allocation
exponents a (N* ∝ C^a) are put side by side (`fit.json["exponents"]`), and report.md
(`markdown`) says in plain words what the diagnostics found.

Approaches 2 and 3 fit schedule-final points only (`ScalingData.final`); data with mid-run
points are refused unless `allow_midrun=True`. Approach 1 reads the learning curves, every
eval included, as published. Data without the `final` field (CSVs, records written before
it existed) count as schedule-final.
"""

from __future__ import annotations

import inspect
import json
import math
import pathlib

import numpy as np

from attn_jax.scaling import approach3, approaches, bootstrap, diagnostics, frontier, records, wls

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")
# Huber delta of the sweep fits: 0.01 on log loss, about 1.345 sigma (Huber's 95%-efficiency
# constant) for the 0.5-1% seed noise of small LM runs. With the published 1e-3 the fit is
# in effect least absolute deviations, and its bootstrap intervals over-cover: 98-99% at
# nominal 95% on the demo's design, 95-96% with 0.01 (tests/scaling/test_scaling_coverage.py).
HUBER_DELTA = 0.01


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


def load_data(path, *, params, flops, drop_highest=0, allow_midrun=False):
    """records.load, with mid-run points only when asked (and refused by the fits else)."""
    kw = dict(params=params, flops=flops, drop_highest=drop_highest)
    if allow_midrun and "include_midrun" in inspect.signature(records.load).parameters:
        kw["include_midrun"] = True
    data = records.load(path, **kw)
    diagnostics.require_final(getattr(data, "final", None), allow_midrun, f"analyze({path})")
    return data


def _boot_summary(boot) -> dict:
    return {
        "resample": "runs, with replacement",
        "n_resamples": boot.n_resamples,
        "n_failed": boot.n_failed,
        "level": boot.level,
        "summary": boot.summary(),
    }


def _approach3(data, budgets, *, top_k, n_bootstrap, seed, level, allow_midrun, delta):
    """Approach 3 and its bootstrap: (fit, fit.json section, bootstrap section, boot params)."""
    final = getattr(data, "final", None)
    fit = approach3.fit_approach3(
        data.N, data.D, data.L, top_k=top_k, final=final, allow_midrun=allow_midrun, delta=delta
    )
    section = {
        "law": "L = E + A / N^alpha + B / D^beta",
        "estimator": f"Huber(delta={delta:g}) on log loss, LSE parameterization, L-BFGS-B",
        "params": fit.params,
        "objective": fit.value,
        "derived": frontier.derived(fit.params, budgets, data.k_flops),
        "diagnostics": fit.diagnostics.to_dict(),
    }
    if not (n_bootstrap and len(data.run_ids) >= 3):
        return fit, section, None, []
    boot = bootstrap.bootstrap_approach3(
        data.N, data.D, data.L, data.run, n_resamples=n_bootstrap, seed=seed, level=level,
        init=fit.params, budgets=budgets, k_flops=data.k_flops, delta=delta,
    )  # fmt: skip
    s = boot.samples
    boot_params = [{n: s[n][i] for n in PARAM_NAMES} for i in range(len(s["E"]))]
    return fit, section, _boot_summary(boot), boot_params


def _approach2(data, *, n_bootstrap, seed, level, allow_midrun):
    """Approach 2 with a bootstrap of (a, b) over runs: (fit or None, fit.json section)."""
    final = getattr(data, "final", None)
    kw = dict(final=final, allow_midrun=allow_midrun)
    a2, err = _try(approaches.approach2, data.N, data.D, data.L, data.C, **kw)
    if a2 is None:
        return None, {"error": err}
    section = a2.to_dict()
    if n_bootstrap and len(data.run_ids) >= 3:
        labels, _ = approaches.group_budgets(data.C)

        def fit_fn(w):
            f = approaches.approach2(data.N, data.D, data.L, data.C, labels=labels, weights=w, **kw)
            return {"a": f.a, "b": f.b}

        section["bootstrap"] = _boot_summary(
            bootstrap.bootstrap(fit_fn, data.run, n_bootstrap, seed, level)
        )
    return a2, section


def _approach1(data, *, n_bootstrap, seed, level):
    """Approach 1 on the learning curves, bootstrapped over runs."""
    a1, err = _try(approaches.approach1, data.curves, k=data.k_flops)
    if a1 is None:
        return None, {"error": err or "no training curves"}
    section = {**a1.to_dict(), "input": "learning curves, every eval (mid-run included)"}
    if n_bootstrap and len(data.curves) >= 3:
        boot, err = _try(
            bootstrap.bootstrap_approach1,
            data.curves, n_resamples=n_bootstrap, seed=seed, level=level, k=data.k_flops,
        )  # fmt: skip
        section["bootstrap"] = _boot_summary(boot) if boot else {"error": err}
    return a1, section


def _single_variable(data, *, n_bootstrap, seed, level) -> dict:
    """L = E + A C^-alpha on the best loss at each FLOP budget (the empirical frontier).

    No single-variable law in N is fitted: a sweep's best loss per size is limited by its
    data, not its size, unless every size was trained to convergence (Kaplan et al. 2020).
    """
    labels, budgets = approaches.group_budgets(data.C)
    if budgets.shape[0] < 4:
        return {"loss_vs_C": {"error": f"{budgets.shape[0]} budgets; a 3-parameter law needs >= 4"}}

    def fit_fn(w):
        keep = [g for g in range(budgets.shape[0]) if (w[labels == g] > 0).any()]
        if len(keep) < 4:
            raise ValueError("fewer than 4 budgets in this resample")
        best = [data.L[(labels == g) & (w > 0)].min() for g in keep]
        return wls.fit_wls("power_offset", np.array(best), x=budgets[keep])

    fit, err = _try(fit_fn, np.ones_like(data.L))
    if fit is None:
        return {"loss_vs_C": {"error": err}}
    section = fit.to_dict()
    if n_bootstrap and len(data.run_ids) >= 3:
        boot = bootstrap.bootstrap(lambda w: fit_fn(w).params, data.run, n_bootstrap, seed, level)
        section["bootstrap"] = _boot_summary(boot)
    return {"loss_vs_C": section}


def _exponent(section, boot_summary, name="a") -> dict:
    if "error" in section:
        return {"error": section["error"]}
    value = section[name] if name in section else section["derived"][name]
    b = (boot_summary or {}).get("summary", {}).get(name)
    out = {"a": value, "lo": None, "hi": None, "se": None}
    if b is not None:
        out.update(lo=b["lo"], hi=b["hi"], se=b["se"])
    return out


def exponents(result: dict) -> dict:
    """The allocation exponent a of each approach with its interval, and their agreement.

    `agree` is True when every approach's estimate lies inside every other's interval,
    and None when fewer than two approaches give an interval (nothing to compare).
    """
    rows = {
        "approach1": _exponent(result["approach1"], result["approach1"].get("bootstrap")),
        "approach2": _exponent(result["approach2"], result["approach2"].get("bootstrap")),
        "approach3": _exponent(result["approach3"], result.get("bootstrap")),
    }
    ok = {k: v for k, v in rows.items() if "error" not in v and v["lo"] is not None}
    disagree = [
        (i, j) for i in ok for j in ok if i != j and not ok[j]["lo"] <= ok[i]["a"] <= ok[j]["hi"]
    ]
    rows["agree"] = not disagree if len(ok) >= 2 else None
    rows["disagreements"] = [
        f"{i} a = {ok[i]['a']:.3f} outside {j}'s interval" for i, j in disagree
    ]
    return rows


def _header(data) -> dict:
    final = getattr(data, "final", None)
    return {
        "source": data.source,
        "conventions": {
            "params": data.params_kind,
            "flops": data.flops_kind,
            "flops_per_param_token": data.k_flops,
        },
        "n_points": int(data.N.shape[0]),
        "n_midrun_points": 0 if final is None else int((~np.asarray(final, bool)).sum()),
        "n_runs": len(data.run_ids),
    }


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
    allow_midrun: bool = False,
    huber_delta: float = HUBER_DELTA,
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
      allow_midrun: also fit mid-run evals with Approaches 2 and 3 (refused by default).
      huber_delta: Approach 3's Huber delta on log loss (1e-3 reproduces Besiroglu et al.).

    Returns:
      The fit.json content as a dict.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_data(
        path, params=params, flops=flops, drop_highest=drop_highest, allow_midrun=allow_midrun
    )
    if data.N.shape[0] < 5:
        raise ValueError(f"{path}: {data.N.shape[0]} points; Approach 3 fits 5 parameters")
    budgets = tuple(budgets) or (float(data.C.max()), float(10 * data.C.max()))
    boot_kw = dict(n_bootstrap=n_bootstrap, seed=seed, level=level)
    fit, a3, boot3, boot_params = _approach3(
        data, budgets, top_k=top_k, allow_midrun=allow_midrun, delta=huber_delta, **boot_kw
    )
    result = {**_header(data), "approach3": a3, **({"bootstrap": boot3} if boot3 else {})}
    llo, err = _try(
        bootstrap.leave_largest_out, data.N, data.D, data.L, top_k=top_k, delta=huber_delta
    )
    result["leave_largest_out"] = llo or {"error": err}
    a2, result["approach2"] = _approach2(data, allow_midrun=allow_midrun, **boot_kw)
    a1, result["approach1"] = _approach1(data, **boot_kw)
    result["single_variable"] = _single_variable(data, **boot_kw)
    result["exponents"] = exponents(result)
    if plots:
        from attn_jax.scaling import plots as plots_lib  # matplotlib only when plotting

        figs = plots_lib.Figures(out, dpi=dpi)
        plots_lib.plot_all(
            figs, data, fit.params, boot_params=boot_params, a2=a2, a1=a1, level=level
        )
        result["figures"] = figs.written
    result = _jsonable(result)
    (out / "fit.json").write_text(json.dumps(result, indent=2))
    (out / "report.md").write_text(markdown(result, fit.diagnostics.lines()))
    return result


def _fmt(v, spec=".4g"):
    return "n/a" if v is None else format(v, spec)


def _interval(b, spec=".3g"):
    return "" if b is None else f"[{_fmt(b['lo'], spec)}, {_fmt(b['hi'], spec)}]"


APPROACHES = (
    ("approach1", "1: lower envelope of the learning curves (every eval)"),
    ("approach2", "2: IsoFLOP parabolas, minimum per budget"),
    ("approach3", "3: the parametric law fitted to every run"),
)


def _plain_words(r: dict) -> list[str]:
    """What the diagnostics say, one sentence each."""
    d = r["approach3"]["diagnostics"]
    out = []
    ident = [w for w in d["warnings"] if "not identifiable" in w]
    if ident:
        out += [f"**The data do not pin the law.** {w[0].upper()}{w[1:]}" for w in ident]
    else:
        out.append(
            f"The data pin the law: N spans {d['decades_N']:.1f} and D {d['decades_D']:.1f} "
            f"decades, corr(alpha, beta) = {_fmt(d['corr_alpha_beta'], '+.2f')}, no exponent "
            "at a bound, every local standard error small."
        )
    out += [f"Warning: {w}" for w in d["warnings"] if "not identifiable" not in w]
    ex = r["exponents"]
    if ex["agree"]:
        out.append("The three approaches agree: each a lies inside the others' intervals.")
    elif ex["agree"] is False:
        out.append("The approaches disagree: " + "; ".join(ex["disagreements"]) + ".")
    refused = r["approach2"].get("refused", {})
    if refused:
        out.append(
            f"Approach 2 refused {len(refused)} budget(s): "
            + "; ".join(f"C = {c}: {why}" for c, why in refused.items())
            + "."
        )
    if r.get("n_midrun_points"):
        out.append(f"{r['n_midrun_points']} mid-run points were fitted (asked for).")
    return out


def markdown(r: dict, diag_lines) -> str:
    """report.md: the page a person reads first (details are in fit.json)."""
    a3, conv = r["approach3"], r["conventions"]
    p, dv = a3["params"], a3["derived"]
    boot = r.get("bootstrap", {}).get("summary", {})
    pct = f"{100 * r.get('bootstrap', {}).get('level', 0.95):.0f}%"
    lines = [
        "# Scaling-law fit",
        "",
        f"`{r['source']}`: {r['n_points']} points from {r['n_runs']} runs; parameters "
        f"{conv['params']}, compute {conv['flops']} ({_fmt(conv['flops_per_param_token'])} "
        "FLOPs per parameter-token).",
        "",
        "## The law",
        "",
        f"L(N, D) = {_fmt(p['E'])} + {_fmt(p['A'])} / N^{_fmt(p['alpha'], '.3f')} + "
        f"{_fmt(p['B'])} / D^{_fmt(p['beta'], '.3f')}  (Approach 3: {a3['estimator']}).",
        "",
        f"| | E | A | B | alpha | beta |\n|---|---|---|---|---|---|\n| {pct} interval | "
        + " | ".join(_interval(boot.get(n)) for n in PARAM_NAMES)
        + " |",
        "",
        "## The allocation exponent a (N* ∝ C^a), three ways",
        "",
        f"| approach | a | {pct} interval |",
        "|---|---|---|",
    ]
    for key, title in APPROACHES:
        e = r["exponents"][key]
        if "error" in e:
            lines.append(f"| {title} | n/a | {e['error'][:160]} |")
        else:
            lines.append(f"| {title} | {e['a']:.3f} | {_interval(e, '.3f') or 'none'} |")
    tpp = {k: v for k, v in dv.items() if k.startswith("tokens_per_param@")}
    lines += [
        "",
        "Compute-optimal tokens per parameter (Approach 3): "
        + ", ".join(f"{v:.3g} at C = {k.split('@')[1]}" for k, v in tpp.items())
        + ".",
        "",
        "## Prediction check",
        "",
    ]
    llo = r["leave_largest_out"]
    if "error" in llo:
        lines.append(f"Not run: {llo['error']}")
    else:
        lines.append(
            f"Fitted without the largest size (N = {_fmt(llo['N_held_out'], '.3g')}, "
            f"{llo['n_held_out']} points), the law predicts its loss within "
            f"{100 * llo['mean_abs_rel_error']:.2f}% on average "
            f"({100 * llo['max_abs_rel_error']:.2f}% at worst)."
        )
    lines += ["", "## What the diagnostics say", "", *[f"- {x}" for x in _plain_words(r)]]
    figs = [f for f in r.get("figures", []) if f.endswith(".png")]
    if figs:
        lines += [
            "",
            "## Figures",
            "",
            *[f"- [{pathlib.Path(f).stem}]({pathlib.Path(f).name})" for f in figs],
        ]
    sv = r["single_variable"]["loss_vs_C"]
    lines += ["", "## Details", "", "Approach 3 optimizer:", "", *[f"- {x}" for x in diag_lines]]
    if "error" not in sv:
        q = sv["params"]
        lines.append(
            f"- best loss per budget: L = {_fmt(q['E'])} + {_fmt(q['A'])} C^-{_fmt(q['alpha'])}"
        )
    return "\n".join(lines) + "\n"
