"""Per-mechanism scaling laws from one sweep's run records, compared with intervals.

  python analysis/compare_mechanisms.py runs/mechanisms [--out DIR] [--bootstrap 200]
      [--reference softmax] [--tag mechanism]

Reads the sweep's results.jsonl (run records only: never checkpoints or models),
groups the finished runs by their sweep tag `mechanism` (sweeps/mechanisms.py),
and per mechanism fits Chinchilla's Approach 3 law L(N, D) = E + A / N^alpha +
B / D^beta to its schedule-final points (the WSD cooldown branches), with 95%
bootstrap intervals over runs and the leave-the-largest-size-out prediction
check (`attn_jax.scaling.compare`). Across mechanisms: the pairwise differences
of alpha, beta and a = beta / (alpha + beta) with intervals; each mechanism's
compute-optimal frontier under its own cost per token (the records' analytic
FLOPs, attention counted per kernel); and where a mechanism's frontier crosses
the reference's (the compute at which a cheaper token makes up for a higher
loss), with the share of bootstrap resample pairs that cross.

Writes <out>/compare.json (everything above), <out>/compare.md (the tables) and
<out>/mechanisms_compute.{png,svg} (loss vs compute per mechanism: the runs, the
observed lower envelope, the fitted frontier with its 95% band) and
<out>/mechanisms_exponents.{png,svg} (alpha, beta and a with intervals).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

try:
    from attn_jax.scaling import compare, records
except ModuleNotFoundError:  # run as a script from a checkout: put the repo root on the path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from attn_jax.scaling import compare, records


def fit_all(path, tag: str, n_resamples: int, seed: int = 0) -> dict[str, compare.GroupFit]:
    """GroupFit per value of `tag` among the records at `path`."""
    recs, base = records.read_records(path)
    groups = compare.group_records(recs, tag)
    if not groups:
        raise SystemExit(f"{path}: no run record has a sweep tag {tag!r}.")
    fits = {}
    for name, group in groups.items():
        try:
            data = records.from_records(group, base, flops="analytic")
            fits[name] = compare.fit_group(name, data, n_resamples=n_resamples, seed=seed)
        except ValueError as e:
            print(f"skipping {tag} {name!r}: {e}", file=sys.stderr)
    if not fits:
        raise SystemExit(f"{path}: no {tag} has enough finished runs to fit.")
    return fits


def _iv(summary: dict, name: str, fmt: str = ".3f") -> str:
    iv = summary["intervals"].get(name)
    return "" if iv is None else f"[{iv['lo']:{fmt}}, {iv['hi']:{fmt}}]"


def tables(fits: dict[str, compare.GroupFit], comparison: dict) -> str:
    """The markdown tables of compare.md."""
    ref = comparison["reference"]
    lines = [
        "| mechanism | points | E | A | B | alpha [95%] | beta [95%] | a [95%] "
        "| held-out size: mean / max error | FLOPs/token at largest N vs "
        f"{ref} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ref_fit = fits.get(ref)
    for name, f in fits.items():
        s = f.summary()
        p = s["params"]
        held = s["held_out"]
        held_txt = (
            f"{100 * held['mean_abs_rel_error']:.2f}% / {100 * held['max_abs_rel_error']:.2f}%"
            if held
            else "n/a"
        )
        if held and held.get("seed_rel_sd") is not None:
            seeds = held["n_held_out_points"] // held["n_held_out"]
            held_txt += f" ({seeds} seeds, sd {100 * held['seed_rel_sd']:.2f}%)"
        n_max = f.data.N.max()
        ratio = f.cost(n_max) / ref_fit.cost(n_max) if ref_fit is not None else float("nan")
        lines.append(
            f"| {name} | {s['n_points']} | {p['E']:.3f} | {p['A']:.3g} | {p['B']:.3g} "
            f"| {p['alpha']:.3f} {_iv(s, 'alpha')} | {p['beta']:.3f} {_iv(s, 'beta')} "
            f"| {s['a']:.3f} {_iv(s, 'a')} | {held_txt} | {ratio:.3f} |"
        )
    lines += [
        "",
        "Differences (first minus second mechanism), 95% intervals; * = excludes zero:",
        "",
        "| pair | E | alpha | beta | a |",
        "|---|---|---|---|---|",
    ]
    for pair, row in comparison["differences"].items():
        cells = [
            f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]{'*' if d['excludes_zero'] else ''}"
            for d in (row[n] for n in compare.DIFFERENCES)
        ]
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Frontier crossings against {ref} (compute where the fitted frontiers meet):",
        "",
        "| mechanism | crossings (FLOPs) | better at the largest compute run | "
        "resample pairs that cross | 95% interval of the first crossing |",
        "|---|---|---|---|---|",
    ]
    for name, c in comparison["crossover"].items():
        cr = (
            ", ".join(
                f"{x['C']:.2g} ({'better' if x['group_better_after'] else 'worse'} after)"
                for x in c["crossings"]
            )
            or "none in 1e9..1e24"
        )
        ci = c["C_interval"]
        ci_txt = f"[{ci[0]:.2g}, {ci[1]:.2g}]" if ci else "n/a"
        better = "yes" if c["better_at_observed_max_C"] else "no"
        lines.append(f"| {name} | {cr} | {better} | {100 * c['resample_share']:.0f}% | {ci_txt} |")
    return "\n".join(lines) + "\n"


def _save(fig, out: pathlib.Path, stem: str) -> list[str]:
    from attn_jax.interp.plots import save_figure

    return save_figure(fig, str(out / stem))


def plot(fits: dict[str, compare.GroupFit], out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(fits, plt.cm.tab10(np.arange(len(fits))), strict=True))
    fig, ax = plt.subplots(figsize=(7.5, 5))
    c_lo = min(f.data.C.min() for f in fits.values())
    c_hi = max(f.data.C.max() for f in fits.values())
    grid = np.geomspace(c_lo / 2, c_hi * 4, 80)
    for name, f in fits.items():
        col = colors[name]
        ax.scatter(f.data.C, f.data.L, s=10, color=col, alpha=0.45)
        L, _ = compare.frontier_loss(f.fit.params, grid, f.cost)
        band = np.array([compare.frontier_loss(ps, grid, f.cost)[0] for ps in f.params_samples()])
        lo, hi = np.percentile(band, [2.5, 97.5], axis=0)
        ax.fill_between(grid, lo, hi, color=col, alpha=0.12, lw=0)
        ax.plot(grid, L, color=col, lw=1.4, label=f"{name}: a = {f.fit.frontier_exponents[0]:.2f}")
        order = np.argsort(f.data.C)
        envelope = np.minimum.accumulate(f.data.L[order])
        ax.step(f.data.C[order], envelope, where="post", color=col, lw=0.7, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs, attention counted per kernel)")
    ax.set_ylabel("held-out loss (nats/byte)")
    ax.set_title("Loss vs compute per mechanism: runs, observed envelope (dotted),\n"
                 "fitted compute-optimal frontier with 95% band", fontsize=9)  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths = _save(fig, out, "mechanisms_compute")

    fig, axes = plt.subplots(1, 3, figsize=(11, 0.5 * len(fits) + 1.6), sharey=True)
    names = list(fits)
    for ax, q in zip(axes, compare.EXPONENTS, strict=True):
        for i, name in enumerate(names):
            s = fits[name].summary()
            point = s["a"] if q == "a" else s["params"][q]
            iv = s["intervals"][q]
            ax.errorbar(
                point,
                i,
                xerr=[[point - iv["lo"]], [iv["hi"] - point]],
                fmt="o",
                color=colors[name],
                capsize=3,
            )
        ax.set_title(q, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    fig.suptitle("Fitted exponents per mechanism with 95% bootstrap intervals", fontsize=9)
    fig.tight_layout()
    return paths + _save(fig, out, "mechanisms_exponents")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("path", help="sweep folder (results.jsonl) or a folder of runs")
    ap.add_argument("--out", default=None, help="output folder (default: <path>/compare)")
    ap.add_argument("--bootstrap", type=int, default=200, help="resamples per mechanism")
    ap.add_argument("--reference", default="softmax", help="the frontier the others meet")
    ap.add_argument("--tag", default="mechanism", help="the sweep tag that names a group")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    path = pathlib.Path(args.path)
    out = (
        pathlib.Path(args.out) if args.out else (path if path.is_dir() else path.parent) / "compare"
    )
    out.mkdir(parents=True, exist_ok=True)
    fits = fit_all(path, args.tag, args.bootstrap, args.seed)
    reference = args.reference if args.reference in fits else next(iter(fits))
    comparison = compare.compare(fits, reference=reference)
    result = {
        "source": str(path),
        "law": "L = E + A / N^alpha + B / D^beta (Approach 3), N non-embedding, D tokens",
        "groups": {name: f.summary() for name, f in fits.items()},
        **comparison,
    }
    text = tables(fits, comparison)
    if not args.no_plots:
        result["figures"] = plot(fits, out)
    (out / "compare.json").write_text(json.dumps(result, indent=1, default=float))
    (out / "compare.md").write_text(text)
    print(text)
    for name, f in fits.items():
        for w in f.fit.diagnostics.warnings:
            print(f"{name}: WARNING: {w}")
    print(f"wrote {out / 'compare.json'}, {out / 'compare.md'}" + (
        f", {', '.join(result['figures'])}" if not args.no_plots else ""))  # fmt: skip
    return result


if __name__ == "__main__":
    main()
