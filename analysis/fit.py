"""Fit scaling laws to a sweep's run records and write fit.json, report.md and figures.

  python analysis/fit.py runs/demo
  python analysis/fit.py tests/data/chinchilla_svg_extracted.csv --drop-highest 5 --out /tmp/chin

Reads results.jsonl, a directory of runs (*/summary.json), one summary.json, or any CSV
with N, D or C, and loss. Everything is in attn_jax.scaling; this is the command line.
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
    )
    print((out / "report.md").read_text())
    print(
        f"wrote {out / 'fit.json'}, {out / 'report.md'} and {len(result.get('figures', []))} figure files"
    )
    return result


if __name__ == "__main__":
    main()
