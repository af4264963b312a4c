"""`python -m attn_jax.sweep run|status|results`.

  python -m attn_jax.sweep plan sweeps/demo.py      # validate and list the trials; runs nothing
  python -m attn_jax.sweep run sweeps/demo.py --out runs/demo [--executor inline|local|ray] [--workers N]
  python -m attn_jax.sweep run sweeps/demo.py --out runs/demo --executor ray --address HEAD:6379 --workers 8
  python -m attn_jax.sweep status runs/demo
  python -m attn_jax.sweep results runs/demo [--format table|csv|jsonl] [--output FILE]

Rerunning `run` with the same arguments resumes the sweep.
"""

from __future__ import annotations

import argparse
import sys

from attn_jax.sweep import executors, report, runner, worker
from attn_jax.sweep.spec import SweepSpecError, load_sweep, resolve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m attn_jax.sweep", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run (or resume) a sweep")
    run.add_argument("spec", help="sweep file with get_sweep(), e.g. sweeps/demo.py")
    run.add_argument("--out", required=True, help="sweep directory, e.g. runs/demo")
    run.add_argument("--executor", default="inline", choices=sorted(executors.EXECUTORS))
    run.add_argument("--workers", type=int, default=1, help="trials at once (local, ray)")
    run.add_argument("--max-attempts", type=int, default=2, help="attempts before 'failed'")
    run.add_argument("--retry-failed", action="store_true", help="rerun trials recorded as failed")
    run.add_argument("--no-wait", action="store_true", help="don't wait for trials run elsewhere")
    run.add_argument("--trainer", default=worker.DEFAULT_TRAINER, help="module:function")
    run.add_argument(
        "--ray-address",
        "--address",
        dest="ray_address",
        default=None,
        help="a running Ray cluster's head, host:port (else a local one for the sweep)",
    )
    run.add_argument("--cpus-per-trial", type=float, default=1, help="Ray resource request")
    run.add_argument("--gpus-per-trial", type=float, default=0, help="Ray resource request")
    run.add_argument("--quiet", action="store_true", help="no progress bar or trial lines")
    run.add_argument(
        "--no-compilation-cache",
        action="store_true",
        help="compile every trial afresh (default: JAX's persistent cache in <out>/.jax_cache)",
    )

    plan = sub.add_parser("plan", help="validate a sweep and list its trials; runs nothing")
    plan.add_argument("spec", help="sweep file[:arg]")

    status = sub.add_parser("status", help="table of trials: done/running/failed/diverged, ETA")
    status.add_argument("out")

    results = sub.add_parser("results", help="the run records as a table, CSV or JSON lines")
    results.add_argument("out")
    results.add_argument("--format", default="table", choices=("table", "csv", "jsonl"))
    results.add_argument("--output", default=None, help="write here instead of stdout")
    return parser


def _plan(spec: str) -> str:
    sweep = load_sweep(spec)
    trials = resolve(sweep)
    rows = [
        {
            "index": t.index,
            "run_id": t.run_id,
            "label": t.label(),
            "steps": runner.planned_steps(t),
            "flops": runner.planned_flops(t),
            # a branch starts from this trial's checkpoint (designs.wsd_branches)
            "parent": f"{t.parent_run_id}@{t.trial.branch_step}" if t.parent_run_id else "",
        }
        for t in trials
    ]
    flops = [r["flops"] for r in rows]
    total = f"{sum(flops):.3g} FLOPs" if all(f is not None for f in flops) else "FLOPs unknown"
    steps = sum(r["steps"] or 0 for r in rows)
    table = report.format_table(rows, ("index", "run_id", "label", "parent", "steps", "flops"))
    branches = sum(1 for t in trials if t.parent_run_id)
    kinds = f" ({branches} branches of {len(rows) - branches} runs)" if branches else ""
    return f"{table}\n\n{sweep.name}: {len(rows)} trials{kinds}, {steps} steps, {total}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            options = {}
            if args.executor == "ray":
                options["address"] = args.ray_address
                options["resources"] = {"num_cpus": args.cpus_per_trial}
                if args.gpus_per_trial:
                    options["resources"]["num_gpus"] = args.gpus_per_trial
            records = runner.run_sweep(
                args.spec,
                args.out,
                executor=args.executor,
                workers=args.workers,
                trainer=args.trainer,
                max_attempts=args.max_attempts,
                retry_failed=args.retry_failed,
                wait=not args.no_wait,
                progress=not args.quiet,
                executor_options=options,
                compilation_cache=False if args.no_compilation_cache else None,
            )
            counts: dict[str, int] = {}
            for record in records:
                counts[record.get("status")] = counts.get(record.get("status"), 0) + 1
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no records"
            print(f"{len(records)} records in {args.out}/results.jsonl: {summary}")
            return 1 if counts.get("failed") else 0
        if args.command == "plan":
            print(_plan(args.spec))
            return 0
        if args.command == "status":
            print(report.format_status(args.out))
            return 0
        text = report.format_results(args.out, args.format)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
        else:
            sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        return 0
    except (SweepSpecError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
