"""Attention kernels: forward+backward time and peak memory against sequence length.

For each kernel and T in 512..65536 (B=1, N=4, H=64, causal, float32) one
subprocess compiles `grad(sum(out * dout))` with respect to q, k, v, runs it,
and reports the median step time, the peak resident-memory growth
(`resource.getrusage` maxrss after minus before) and XLA's compiled temporary
bytes (`memory_analysis`). A subprocess per point means a kernel that runs out
of memory or time cannot take the benchmark down; its failure is recorded.
Naive kernels are skipped above the T where their analytic memory passes
--mem_cap_gb, and any kernel is skipped above the first T where one step took
longer than --time_cap_s. PyTorch's scaled_dot_product_attention (a flash
kernel on CPU) runs as a baseline when torch is importable.

Outputs (in --out_dir): attention.json (every point, load averages, CPU
model) and attention.png / attention.svg (log-log time and memory against T).
Prints figures; asserts nothing about time.

    python benchmarks/attention.py                        # full sweep
    python benchmarks/attention.py --kernels blockwise,xla --max_T 4096
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from attn_jax import runtime  # noqa: E402  (no JAX import yet: safe before re-exec)

B, N, H = 1, 4, 64
# Kernel options used in the sweep: approximate kernels at typical settings.
KERNEL_SETTINGS = {
    "xla": dict(spec=dict(causal=True)),
    "blockwise": dict(spec=dict(causal=True), options=dict(block_q=512, block_k=512)),
    "local": dict(spec=dict(causal=True, window=256)),
    "block_sparse": dict(spec=dict(causal=True, block=128, stride=8)),
    "linear": dict(spec=dict(causal=True)),
    "performer": dict(spec=dict(causal=True), options=dict(num_features=256)),
    "linformer": dict(spec=dict(), options=dict(proj_len=256)),  # non-causal by construction
    "torch_sdpa": dict(spec=dict(causal=True)),
}
QUADRATIC = ("xla", "torch_sdpa_math")
# Exact kernels: their FLOP rate is printed against the matmul peak.
EXACT = ("xla", "blockwise", "torch_sdpa")


def causal_flops(T: int) -> float:
    """Matmul FLOPs of exact causal attention fwd+bwd over the T(T+1)/2 pairs it needs.

    Forward q.k and p.v: 2 x 2 H per pair; backward dv, dp, dq, dk: 4 x 2 H per pair
    (a flash kernel's recomputed q.k not credited). A dense kernel does about twice
    this (the masked half too); the rate below credits only the causal work.
    """
    return 12.0 * B * N * H * T * (T + 1) / 2


def _worker_peak() -> dict:
    from attn_jax.train.metrics import measured_cpu_peak_flops

    return dict(peak_flops=measured_cpu_peak_flops())


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _worker_jax(kernel: str, T: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    from attn_jax.ops.kernels import get_kernel
    from attn_jax.ops.masks import MaskSpec

    settings = KERNEL_SETTINGS[kernel]
    spec = MaskSpec(**settings["spec"])
    options = dict(settings.get("options", {}))
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    q, k, v, dout = (jax.random.normal(kk, (B, T, N, H), jnp.float32) for kk in keys)
    params = None
    if kernel == "linformer":
        from attn_jax.ops.kernels import init_kernel_params

        params = init_kernel_params(
            kernel, keys[0], head_dim=H, max_len=T, proj_len=options.pop("proj_len")
        )

    def loss(q, k, v):
        out = get_kernel(kernel)(q, k, v, spec=spec, params=params, **options)
        return jnp.sum(out * dout)

    step = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    jax.block_until_ready((q, k, v, dout))
    base = _maxrss_bytes()
    t0 = time.perf_counter()
    compiled = step.lower(q, k, v).compile()
    compile_s = time.perf_counter() - t0
    temp = compiled.memory_analysis().temp_size_in_bytes
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(q, k, v))
        times.append(time.perf_counter() - t0)
    # The first run (page faults, warm caches) is dropped unless it is the only one.
    timed = times[1:] or times
    return dict(
        time_s=statistics.median(timed),
        times_s=times,
        compile_s=compile_s,
        peak_rss_delta_bytes=_maxrss_bytes() - base,
        xla_temp_bytes=temp,
    )


def _worker_torch(T: int, repeats: int) -> dict:
    import torch

    torch.manual_seed(0)
    q, k, v, dout = (torch.randn(B, N, T, H) for _ in range(4))
    for x in (q, k, v):
        x.requires_grad_(True)
    base = _maxrss_bytes()

    def step():
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return torch.autograd.grad((out * dout).sum(), (q, k, v))

    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    timed = times[1:] or times
    return dict(
        time_s=statistics.median(timed),
        times_s=times,
        compile_s=0.0,
        peak_rss_delta_bytes=_maxrss_bytes() - base,
        xla_temp_bytes=None,
        torch_threads=torch.get_num_threads(),
    )


def _naive_bytes(T: int) -> float:
    """Analytic fwd+bwd memory of a dense kernel: about 3 live [B, N, T, T] float32 arrays."""
    return 3 * B * N * T * T * 4


def _run_point(kernel: str, T: int, repeats: int, timeout_s: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", kernel, "--T", str(T), "--repeats", str(repeats)]
    t0 = time.perf_counter()
    try:
        env = dict(os.environ)  # the malloc tunables come from main's re-exec
        env.setdefault("JAX_PLATFORMS", "cpu")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return dict(status="timeout", reason=f"over {timeout_s:.0f} s")
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        reason = "killed (out of memory?)" if proc.returncode < 0 else proc.stderr[-400:]
        return dict(status="failed", returncode=proc.returncode, reason=reason)
    point = json.loads(lines[-1])
    point.update(status="ok", subprocess_wall_s=wall)
    return point


def _plot(results: list[dict], out_dir: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.5))
    for kernel in dict.fromkeys(r["kernel"] for r in results):
        pts = [r for r in results if r["kernel"] == kernel and r["status"] == "ok"]
        if not pts:
            continue
        Ts = [r["T"] for r in pts]
        ax_t.plot(Ts, [r["time_s"] for r in pts], "o-", label=kernel)
        mem = [max(r["peak_rss_delta_bytes"], 1) / 2**30 for r in pts]
        ax_m.plot(Ts, mem, "o-", label=kernel)
    for ax, ylabel in ((ax_t, "forward+backward time (s)"), (ax_m, "peak RSS growth (GiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.suptitle(f"Attention kernels, B={B} N={N} H={H} causal f32, CPU")
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out_dir, f"attention.{ext}"), dpi=120)


APPROX_CASES = [
    ("performer", dict(num_features=16), True),
    ("performer", dict(num_features=64), True),
    ("performer", dict(num_features=256), True),
    ("performer", dict(num_features=1024), True),
    ("linear", {}, True),
    ("local", dict(window=64), True),
    ("local", dict(window=256), True),
    ("block_sparse", dict(block=64, stride=4), True),
    ("performer", dict(num_features=256), False),
    ("linear", {}, False),
    ("linformer", dict(proj_len=64), False),
    ("linformer", dict(proj_len=256), False),
]


def approximation_errors(q, k, v, seeds=(0, 1, 2)) -> list[dict]:
    """Relative error ||approx - exact|| / ||exact|| of each approximate kernel.

    q, k, v: [B, T, N, H] arrays (random, or captured from a trained model).
    Causal cases are compared with causal softmax attention, the others with full.
    Performer's error is averaged over `seeds` draws of its random features.
    """
    import jax
    import jax.numpy as jnp

    from attn_jax.ops.kernels import get_kernel, init_kernel_params
    from attn_jax.ops.masks import MaskSpec

    T, H = q.shape[1], q.shape[-1]
    rows = []
    for kernel, opts, causal in APPROX_CASES:
        exact = get_kernel("xla")(q, k, v, spec=MaskSpec(causal=causal))
        spec_kw = dict(causal=causal)
        opts = dict(opts)
        if kernel == "local":
            spec_kw["window"] = opts.pop("window")
        if kernel == "block_sparse":
            spec_kw.update(block=opts.pop("block"), stride=opts.pop("stride"))
        spec = MaskSpec(**spec_kw)
        errs = []
        for seed in seeds if kernel == "performer" else seeds[:1]:
            key = jax.random.PRNGKey(seed)
            params = None
            if kernel == "performer":
                params = init_kernel_params(kernel, key, head_dim=H, **opts)
            if kernel == "linformer":
                params = init_kernel_params(kernel, key, head_dim=H, max_len=T, **opts)
            call_opts = {} if params is not None else opts
            out = get_kernel(kernel)(q, k, v, spec=spec, params=params, **call_opts)
            errs.append(float(jnp.linalg.norm(out - exact) / jnp.linalg.norm(exact)))
        rows.append(
            dict(kernel=kernel, options=dict(opts, **spec_kw), rel_error=sum(errs) / len(errs))
        )
    return rows


def _approx_main(out_dir: str) -> None:
    import jax

    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    q, k, v = (jax.random.normal(kk, (2, 1024, N, H)) for kk in keys)
    rows = approximation_errors(q, k, v)
    print("approximation error vs exact softmax attention (random q,k,v ~ N(0,1), T=1024, H=64)")
    for r in rows:
        print(f"  {r['kernel']:13s} {json.dumps(r['options']):45s} rel err {r['rel_error']:.4f}")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "approx_error.json"), "w") as f:
        json.dump(dict(inputs="random normal q,k,v B=2 T=1024 N=4 H=64", rows=rows), f, indent=1)


def _print_point(kernel: str, T: int, row: dict, peak: float | None) -> None:
    """One line per point; an exact kernel's causal FLOP rate against the peak."""
    if row["status"] != "ok":
        print(f"{kernel:13s} T={T:6d} {row['status']}: {row.get('reason', '')}", flush=True)
        return
    rate = ""
    if kernel in EXACT:
        row["causal_flops_per_s"] = causal_flops(T) / row["time_s"]
        share = row["causal_flops_per_s"] / peak if peak else float("nan")
        rate = f"{row['causal_flops_per_s'] / 1e9:6.1f} GFLOP/s causal ({share:4.0%} of peak)  "
    print(
        f"{kernel:13s} T={T:6d} time {row['time_s']:8.3f} s  {rate}"
        f"peak RSS +{row['peak_rss_delta_bytes'] / 2**30:6.2f} GiB  "
        f"XLA temp {(row['xla_temp_bytes'] or 0) / 2**30:6.2f} GiB  "
        f"load {row['load_avg'][0]:.1f}",
        flush=True,
    )


def _print_ratios(results: list[dict], ours: str, baseline: str) -> None:
    """`ours` against `baseline` at every T both ran, read the way the numbers go."""
    times = {(r["kernel"], r["T"]): r["time_s"] for r in results if r["status"] == "ok"}
    for T in sorted({t for k, t in times if k == ours}):
        if (baseline, T) not in times:
            continue
        ratio = times[(baseline, T)] / times[(ours, T)]
        word = "faster" if ratio >= 1 else "slower"
        print(f"{ours} vs {baseline} at T={T}: {max(ratio, 1 / ratio):.2f}x {word}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--T", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kernels", default=",".join(KERNEL_SETTINGS))
    parser.add_argument("--min_T", type=int, default=512)
    parser.add_argument("--max_T", type=int, default=65536)
    parser.add_argument("--mem_cap_gb", type=float, default=8.0)
    parser.add_argument("--time_cap_s", type=float, default=60.0)
    parser.add_argument("--timeout_s", type=float, default=900.0)
    parser.add_argument("--out_dir", default="runs/bench_attention")
    parser.add_argument("--approx", action="store_true", help="only measure approximation errors")
    parser.add_argument(
        "--append", action="store_true", help="merge into an existing attention.json"
    )
    args = parser.parse_args()
    # The allocator settings of shared/PERFORMANCE.md, for this process and every worker
    # (a GLIBC_TUNABLES already set, even empty, used to keep the workers off them).
    runtime.ensure_malloc_tunables()
    if args.approx:
        _approx_main(args.out_dir)
        return

    if args.worker:
        # Long T: one run, no warm-up, keeps the sweep within minutes.
        repeats = args.repeats if args.T <= 8192 else 0
        if args.worker == "peak":
            point = _worker_peak()
        elif args.worker == "torch_sdpa":
            point = _worker_torch(args.T, repeats)
        else:
            point = _worker_jax(args.worker, args.T, repeats)
        print(json.dumps(point))
        return

    kernels = [k for k in args.kernels.split(",") if k]
    if "torch_sdpa" in kernels:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch not importable: skipping the torch_sdpa baseline")
            kernels.remove("torch_sdpa")
    Ts = [T for T in (2**p for p in range(9, 17)) if args.min_T <= T <= args.max_T]
    os.makedirs(args.out_dir, exist_ok=True)
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in open("/proc/cpuinfo")
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"cpu: {cpu}, {os.cpu_count()} cores; load average at start: {os.getloadavg()}")
    peak = _run_point("peak", 0, 0, args.timeout_s).get("peak_flops")
    print(
        f"f32 matmul peak (2048^3, this machine, now): {(peak or float('nan')) / 1e9:.1f} GFLOP/s"
    )
    results = []
    for kernel in kernels:
        capped = None
        for T in Ts:
            row = dict(kernel=kernel, T=T, load_avg=os.getloadavg())
            if capped:
                row.update(status="skipped", reason=capped)
            elif kernel in QUADRATIC and _naive_bytes(T) > args.mem_cap_gb * 1e9:
                capped = f"analytic memory {_naive_bytes(T) / 1e9:.1f} GB > {args.mem_cap_gb} GB"
                row.update(status="skipped", reason=capped)
            else:
                row.update(_run_point(kernel, T, args.repeats, args.timeout_s))
                if row["status"] != "ok":
                    capped = f"failed at T={T}: {row.get('reason', '')}"
                elif row["time_s"] > args.time_cap_s:
                    capped = f"step took {row['time_s']:.0f} s at T={T} > {args.time_cap_s} s cap"
            results.append(row)
            _print_point(kernel, T, row, peak)
    _print_ratios(results, "blockwise", "torch_sdpa")
    peak_end = _run_point("peak", 0, 0, args.timeout_s).get("peak_flops")
    print(f"f32 matmul peak again at the end: {(peak_end or float('nan')) / 1e9:.1f} GFLOP/s")
    record = dict(
        shape=dict(B=B, N=N, H=H, dtype="float32", causal=True),
        matmul_peak_flops=[peak, peak_end],
        settings=KERNEL_SETTINGS,
        cpu=cpu,
        cores=os.cpu_count(),
        glibc_tunables=os.environ.get("GLIBC_TUNABLES"),
        load_avg_end=os.getloadavg(),
        results=results,
    )
    path = os.path.join(args.out_dir, "attention.json")
    if args.append and os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        new = {(r["kernel"], r["T"]) for r in results}
        old = [r for r in previous["results"] if (r["kernel"], r["T"]) not in new]
        record["results"] = results = sorted(old + results, key=lambda r: (r["kernel"], r["T"]))
        record["load_avg_runs"] = previous.get("load_avg_runs", []) + [record["load_avg_end"]]
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
    _plot(results, args.out_dir)
    print(
        f"load average at end: {os.getloadavg()}; wrote {args.out_dir}/attention.json, .png, .svg"
    )


if __name__ == "__main__":
    main()
