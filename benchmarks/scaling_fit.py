"""Benchmark: a full Approach-3 fit with bootstrap on the 240 Chinchilla points.

  python benchmarks/scaling_fit.py [--bootstrap 200] [--starts 16] [--full-multistart]

--full-multistart refits every resample as a fresh multi-start fit instead of from the
full-data optimum; on the Chinchilla points both give the same SEs (bootstrap.py).

Prints wall and CPU time and os.getloadavg() (the machine is shared: read the time
against the load). Never asserts on time. Target: under a minute on a 2-core CPU.
"""

import argparse
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attn_jax.scaling import approach3, bootstrap, records  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--starts", type=int, default=16)
    p.add_argument("--full-multistart", action="store_true", help="fresh multi-start refits")
    args = p.parse_args()
    data = records.load_csv(
        ROOT / "tests" / "data" / "chinchilla_svg_extracted.csv", drop_highest=5
    )
    print(f"load average before: {os.getloadavg()}")
    t0, c0 = time.perf_counter(), time.process_time()
    fit = approach3.fit_approach3(data.N, data.D, data.L, top_k=args.starts)
    t1 = time.perf_counter()
    boot = bootstrap.bootstrap_approach3(
        data.N,
        data.D,
        data.L,
        data.run,
        init=fit.params,
        n_resamples=args.bootstrap,
        full_multistart=args.full_multistart,
    )
    t2, c2 = time.perf_counter(), time.process_time()
    print(
        f"points: {data.N.shape[0]}, starts: {args.starts}, bootstrap resamples: {args.bootstrap}"
    )
    print("fit: " + ", ".join(f"{k} = {v:.4g}" for k, v in fit.params.items()))
    print(f"a = beta/(alpha+beta) = {fit.frontier_exponents[0]:.4f}")
    print(
        "bootstrap SE: "
        + ", ".join(f"{k} {boot.se(k):.3g}" for k in ("E", "A", "B", "alpha", "beta", "a"))
    )
    print("\n".join(fit.diagnostics.lines()))
    print(
        f"fit {t1 - t0:.2f} s + bootstrap {t2 - t1:.2f} s = {t2 - t0:.2f} s wall, {c2 - c0:.2f} s CPU"
    )
    print(f"load average after: {os.getloadavg()} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
