"""Fit scaling laws to a sweep's run records and write fit.json, report.md and figures.

  python analysis/fit.py runs/demo
  python analysis/fit.py tests/data/chinchilla_svg_extracted.csv --drop-highest 5 --out /tmp/chin

Reads results.jsonl, a directory of runs (*/summary.json), one summary.json, or any CSV
with N, D or C, and loss. Approaches 2 and 3 fit schedule-final points only (records
written before `schedule_final` existed count as final); --allow-midrun fits the mid-run
evals too. Ends by printing the three approaches' allocation exponents with their
intervals, the held-out check and the paths of the figures. Everything is in
attn_jax.scaling; this is the command line.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

try:
    from attn_jax.scaling import report
except ModuleNotFoundError:  # run as a script from a checkout: put the repo root on the path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from attn_jax.scaling import report


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("path", help="results.jsonl, sweep/run directory, summary.json or CSV")
    p.add_argument("--out", default=None, help="output directory (default: <path dir>/fit)")
    p.add_argument("--params", choices=["non_embedding", "total"], default="non_embedding")
    p.add_argument("--flops", choices=["6nd", "analytic"], default="6nd")
    p.add_argument("--bootstrap", type=int, default=200, help="resamples over runs (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--starts", type=int, default=16, help="Approach-3 grid starts optimized (0: all 4500)"
    )
    p.add_argument("--drop-highest", type=int, default=0, help="drop the k highest-loss points")
    p.add_argument(
        "--budget",
        type=float,
        action="append",
        default=[],
        help="FLOP budget to report (repeatable)",
    )
    p.add_argument("--level", type=float, default=0.95, help="interval coverage")
    p.add_argument("--dpi", type=int, default=300, help="PNG resolution")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--huber-delta",
        type=float,
        default=report.HUBER_DELTA,
        help="Approach 3's Huber delta on log loss (1e-3: as Hoffmann et al. and Besiroglu et al.)",
    )
    p.add_argument(
        "--allow-midrun",
        action="store_true",
        help="also fit mid-run evals with Approaches 2 and 3 (biased: refused by default)",
    )
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    path = pathlib.Path(args.path)
    out = pathlib.Path(args.out) if args.out else (path if path.is_dir() else path.parent) / "fit"
    result = report.analyze(
        path,
        out,
        params=args.params,
        flops=args.flops,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        top_k=args.starts or None,
        drop_highest=args.drop_highest,
        budgets=args.budget,
        level=args.level,
        plots=not args.no_plots,
        dpi=args.dpi,
        allow_midrun=args.allow_midrun,
        huber_delta=args.huber_delta,
    )
    print(summary(result, out))
    return result


def summary(result: dict, out: pathlib.Path) -> str:
    """The closing lines: exponents a with intervals, the held-out check, the files."""
    lines = ["", "Allocation exponent a (N* ∝ C^a), 95% bootstrap intervals:"]
    names = {"approach1": "lower envelope", "approach2": "IsoFLOP", "approach3": "parametric"}
    for i, (key, how) in enumerate(names.items(), 1):
        e = result["exponents"][key]
        if "error" in e:
            lines.append(f"  Approach {i} ({how}): not available: {e['error']}")
        else:
            ci = "no interval" if e["lo"] is None else f"[{e['lo']:.3f}, {e['hi']:.3f}]"
            lines.append(f"  Approach {i} ({how}): a = {e['a']:.3f} {ci}")
    agree = result["exponents"]["agree"]
    if agree is not None:
        lines.append("  they agree" if agree else "  they DISAGREE: see report.md")
    llo = result["leave_largest_out"]
    if "error" not in llo:
        lines.append(
            f"Held out the largest size (N = {llo['N_held_out']:.3g}): predicted its loss within "
            f"{100 * llo['mean_abs_rel_error']:.2f}% mean, {100 * llo['max_abs_rel_error']:.2f}% max"
        )
    warn = [w for w in result["approach3"]["diagnostics"]["warnings"]]
    lines += [f"WARNING: {w}" for w in warn]
    lines.append(f"Report: {out / 'report.md'}  fit: {out / 'fit.json'}")
    figs = [f for f in result.get("figures", []) if f.endswith(".png")]
    if figs:
        lines.append("Figures (PNG; SVG and CSV beside each): " + ", ".join(figs))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
