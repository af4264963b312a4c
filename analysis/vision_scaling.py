"""Fit the saturating law to a vision sweep's test error and draw it.

  python analysis/vision_scaling.py results/vit_scaling [--out DIR] [--bootstrap 200]

Reads the sweep's results.jsonl (or a folder of */summary.json), keeps the runs
that end their own decayed schedule (`schedule_final`: the WSD branches, not
their stable parents), and takes per run: its size, non-embedding parameters
N, images seen D, training compute C = flops_per_example x D (analytic, from
scratch: a branch counts its parent's steps) and test error E = 1 -
eval.accuracy. Then `attn_jax.scaling.saturating.fit_frontier` fits
E = a (C + d)^-b + c (Zhai et al. 2022) on the compute frontier, with bootstrap
intervals and a held-out check on the largest-compute frontier point.

Writes <out>/fit.json (points, frontier, law, intervals, held-out check) and
<out>/vision_scaling.png and .svg: error vs compute (every run, by size, the
frontier and the fitted law with its band) and error vs images seen per size.
Prints the law and the held-out check.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

try:
    from attn_jax.scaling import records, saturating
except ModuleNotFoundError:  # run as a script from a checkout: put the repo root on the path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from attn_jax.scaling import records, saturating


def points(path) -> dict[str, np.ndarray]:
    """The schedule-final runs of a sweep as arrays: size, N, D, C, E (sorted by C)."""
    recs, _ = records.read_records(path)
    rows = []
    for r in recs:
        acc = (r.get("eval") or {}).get("accuracy")
        if r.get("status") != "done" or not r.get("schedule_final") or acc is None:
            continue
        tags = (r.get("sweep") or {}).get("tags") or {}
        size = tags.get("size") or str(r.get("config", {}).get("model.d_model", "?"))
        D = float(r["units_seen"])
        rows.append((size, float(r["params_non_embedding"]), D, r["flops_per_unit"] * D, 1 - acc))
    if not rows:
        raise SystemExit(f"{path}: no finished schedule-final runs with eval.accuracy.")
    rows.sort(key=lambda x: x[3])
    cols = list(zip(*rows, strict=True))
    out = {"size": np.array(cols[0])}
    for name, col in zip("NDCE", cols[1:], strict=True):
        out[name] = np.array(col, np.float64)
    return out


def plot(pts, fit, out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_c, ax_d) = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = sorted(set(pts["size"]), key=lambda s: pts["N"][pts["size"] == s][0])
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    for size, color in zip(sizes, colors, strict=True):
        m = pts["size"] == size
        label = f"{size} (N={pts['N'][m][0] / 1e3:.0f}k)"
        ax_c.plot(pts["C"][m], pts["E"][m], "o-", color=color, ms=4, lw=1, label=label)
        ax_d.plot(pts["D"][m], pts["E"][m], "o-", color=color, ms=4, lw=1, label=label)
    f = fit.frontier_idx
    ax_c.plot(pts["C"][f], pts["E"][f], "s", mfc="none", mec="k", ms=9, label="frontier")
    grid = np.geomspace(pts["C"].min(), pts["C"].max() * 4, 100)
    p = fit.params
    ax_c.plot(
        grid,
        fit.predict(grid),
        "k--",
        lw=1.2,
        label=f"E = {p['a']:.3g} (C + {p['d']:.2g})^-{p['b']:.3f} + {p['c']:.3f}",
    )
    ax_c.axhline(p["c"], color="0.6", lw=0.8, ls=":")
    for ax, xlabel in ((ax_c, "training compute C (FLOPs)"), (ax_d, "images seen D")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test error (1 - top-1)")
        ax.grid(True, which="both", alpha=0.3)
    ax_c.legend(fontsize=7, loc="upper right")
    ax_c.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_d.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    budgets = np.unique(pts["D"])
    ax_d.set_xticks(budgets, [f"{d / 1e3:.1f}k" for d in budgets])
    for ax in (ax_c, ax_d):
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2f"))
        ax.set_yticks([0.1, 0.15, 0.2, 0.3, 0.4, 0.5])
    ax_c.set_title("Error vs compute; saturating law on the frontier", fontsize=9)
    ax_d.set_title("Error vs images seen, per size", fontsize=9)
    fig.tight_layout()
    from attn_jax.interp.plots import save_figure

    return save_figure(fig, str(out / "vision_scaling"))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("path", help="sweep folder (results.jsonl) or a folder of runs")
    ap.add_argument("--out", default=None, help="output folder (default: <path>/fit)")
    ap.add_argument("--bootstrap", type=int, default=200, help="resamples (0: none)")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    path = pathlib.Path(args.path)
    out = pathlib.Path(args.out) if args.out else (path if path.is_dir() else path.parent) / "fit"
    out.mkdir(parents=True, exist_ok=True)
    pts = points(path)
    try:
        fit = saturating.fit_frontier(pts["C"], pts["E"], n_bootstrap=args.bootstrap)
    except ValueError as e:
        raise SystemExit(f"{path}: {e}") from None
    result = {
        "law": "E = a (C + d)^-b + c (Zhai et al. 2022), on the compute frontier",
        "params": fit.params,
        "intervals": fit.intervals,
        "held_out": fit.held_out,
        "fit_rss": fit.fit.rss,
        "at_bounds": fit.fit.at_bounds,
        "points": [
            {"size": s, "N": n, "D": d, "C": c, "error": e, "frontier": bool(i in fit.frontier_idx)}
            for i, (s, n, d, c, e) in enumerate(
                zip(pts["size"].tolist(), pts["N"], pts["D"], pts["C"], pts["E"], strict=True)
            )
        ],
    }
    if not args.no_plots:
        result["figures"] = plot(pts, fit, out)
    (out / "fit.json").write_text(json.dumps(result, indent=1, default=float))
    p = fit.params
    print(f"{len(pts['E'])} runs, {len(fit.frontier_idx)} on the compute frontier")
    print(f"E = {p['a']:.4g} (C + {p['d']:.3g})^-{p['b']:.4f} + {p['c']:.4f}")
    if fit.fit.at_bounds:
        print(f"  at a bound (not identified by these points): {', '.join(fit.fit.at_bounds)}")
    for k in ("b", "c", "E_at_max_C"):
        if k in fit.intervals:
            iv = fit.intervals[k]
            print(f"  {k}: 95% bootstrap interval [{iv['lo']:.4f}, {iv['hi']:.4f}]")
    if fit.held_out:
        h = fit.held_out
        print(
            f"Held out the largest-compute frontier point (C = {h['C']:.3g}): predicted error "
            f"{h['predicted']:.4f}, observed {h['observed']:.4f} ({100 * h['rel_error']:.1f}% off)"
        )
    print(
        f"fit: {out / 'fit.json'}"
        + (f"  figures: {', '.join(result['figures'])}" if not args.no_plots else "")
    )
    return result


if __name__ == "__main__":
    main()
