"""Training throughput of the decoder LM: tokens/s and MFU at the reference shape.

Reference shape (shared/PERFORMANCE.md): byte LM, D 256, L 4, N 4 (H 64), F 1024,
T 256, B 32, V 256, float32, AdamW; 22.41M training FLOPs per token.

Prints compile time, the steady-state median step time, tokens/s, MFU against the
f32 matmul peak measured in this same process, and the load average (the machine
is shared: quote ratios measured in one sitting, not absolute figures).

`--compare` weighs the two special paths this codebase has carried against the
plain ones, in one process: plain (autodiff MLP, `KERNELS["xla"]` with
layout="token_major", i.e. `ops.dot_product_attention`), the custom-VJP MLP
below, and the "xla" kernel's heads-major layout (the library default). The
three programs are compiled first, then timed in `--rounds` interleaved rounds
(A, B, C, A, B, C, ...), so load changes hit all of them alike; it prints every
round's median step time, the medians over rounds, each special path's speed
ratio (> 1 = faster than plain) and the round-to-round spread of that ratio,
which is the noise a decision must beat. The custom-VJP MLP lives here, not in
attn_jax (it did not win), so the comparison can be rerun.

    python benchmarks/train_lm.py                 # the reference shape
    python benchmarks/train_lm.py --compare       # special paths vs plain, 3 rounds
    python benchmarks/train_lm.py --size xs --batch 16 --seq 128

The process re-executes itself with GLIBC_TUNABLES set (attn_jax.runtime);
`--no-tunables` (or ATTN_JAX_NO_REEXEC=1) measures glibc's default allocator.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from attn_jax import runtime  # noqa: E402  (no JAX import yet: safe before re-exec)


def _parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", default="s")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--steps", type=int, default=8, help="timed steps after warmup")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--position", default="rope")
    p.add_argument("--kernel", default="xla")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any other LMConfig field, e.g. --model window=32 --model num_kv_heads=1",
    )
    p.add_argument("--compare", action="store_true", help="time the special paths vs plain")
    p.add_argument("--profile", action="store_true", help="per-instruction time breakdown")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of --compare")
    p.add_argument("--no-tunables", action="store_true", help="keep glibc's default malloc")
    p.add_argument("--peak-n", type=int, default=2048, help="matmul size for the peak")
    return p.parse_args()


# ---------------------------------------------------------------- candidates
# The special paths under test, with the library's signatures. JAX is imported
# inside: this module must not import it before the malloc re-exec.


def custom_vjp_gelu_mlp():
    """`gelu(x @ w_fc) @ w_proj` with a hand-written backward (the former nn/mlp.py path).

    The backward saves x and the pre-activation, recomputes GELU and contracts the
    token axis M in `dot_general` for both weight gradients, so no transposed
    [F, M] buffer is materialized.
    """
    import jax

    contract_tokens = (((0,), (0,)), ((), ()))

    import jax.numpy as jnp

    c, k = math.sqrt(2.0 / math.pi), 0.044715

    def gelu(h):  # tanh-approximate GELU (Hendrycks & Gimpel 2016)
        return 0.5 * h * (1.0 + jnp.tanh(c * (h + k * h * h * h)))

    def gelu_and_grad(h):
        t = jnp.tanh(c * (h + k * h * h * h))
        du = c * (1.0 + 3.0 * k * h * h)
        return 0.5 * h * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * h * (1.0 - t * t) * du

    @jax.custom_vjp
    def mlp(x_MD, w_fc_DF, w_proj_FD):
        return gelu(x_MD @ w_fc_DF) @ w_proj_FD

    def fwd(x_MD, w_fc_DF, w_proj_FD):
        h_MF = x_MD @ w_fc_DF
        return gelu(h_MF) @ w_proj_FD, (x_MD, h_MF, w_fc_DF, w_proj_FD)

    def bwd(res, dy_MD):
        x_MD, h_MF, w_fc_DF, w_proj_FD = res
        a_MF, da_dh_MF = gelu_and_grad(h_MF)
        dw_proj_FD = jax.lax.dot_general(a_MF, dy_MD, contract_tokens)
        dh_MF = (dy_MD @ w_proj_FD.T) * da_dh_MF
        dw_fc_DF = jax.lax.dot_general(dh_MF, x_MD, contract_tokens).T
        return dh_MF @ w_fc_DF.T, dw_fc_DF, dw_proj_FD

    mlp.defvjp(fwd, bwd)
    return mlp


VARIANTS = ("plain", "custom-VJP MLP", "heads-major attention")


@contextlib.contextmanager
def patched(variant: str):
    """The library with the plain paths (autodiff MLP, token-major "xla"), or one special."""
    from attn_jax.nn import mlp as mlp_lib
    from attn_jax.ops import kernels

    saved = mlp_lib.gelu_mlp, kernels.KERNELS["xla"]
    layout = "heads_major" if variant == "heads-major attention" else "token_major"
    kernels.KERNELS["xla"] = functools.partial(kernels.xla_attention, layout=layout)
    mlp_lib.gelu_mlp = custom_vjp_gelu_mlp() if variant == "custom-VJP MLP" else plain_gelu_mlp
    try:
        yield
    finally:
        mlp_lib.gelu_mlp, kernels.KERNELS["xla"] = saved


def plain_gelu_mlp(x_MD, w_fc_DF, w_proj_FD):
    """The autodiff MLP (what attn_jax.nn.mlp.gelu_mlp computes)."""
    import jax

    return jax.nn.gelu(x_MD @ w_fc_DF, approximate=True) @ w_proj_FD


# ---------------------------------------------------------------- timing


def matmul_peak(n: int, ncpu: int, reps: int = 5, dtype: str = "float32") -> tuple[float, float]:
    """(wall-clock, CPU-time) matmul FLOP/s, best of `reps` (bf16: f32 accumulation).

    The CPU-time figure divides by process CPU seconds / cores: on a machine
    shared with other jobs it is far less noisy than wall time.
    """
    import jax
    import jax.numpy as jnp

    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    f(a, a).block_until_ready()
    wall = cpu = float("inf")
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        f(a, a).block_until_ready()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, (time.process_time() - c0) / ncpu)
    return 2.0 * n**3 / wall, 2.0 * n**3 / cpu


def compile_step(cfg, batch):
    """(compiled train step, initial state, seconds to compile) of the real train step."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from attn_jax.families import base
    from attn_jax.models import DecoderLM
    from attn_jax.train.state import TrainState
    from attn_jax.train.step import make_train_step

    def lm_loss(model, batch, rng):  # what attn_jax.families.lm's loss computes
        logits = model(batch["inputs"], deterministic=rng is None, dropout_rng=rng)
        return base.classification_loss(logits, batch["targets"], batch["weights"])

    model = DecoderLM(cfg, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.adamw(3e-4, weight_decay=0.1)
    train_step = make_train_step(graphdef, tx, optax.constant_schedule(3e-4), lm_loss)
    step = jax.jit(train_step, donate_argnums=0)
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        rng=jax.random.PRNGKey(0),
        model_state=rest,
    )
    t0 = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    return compiled, state, time.perf_counter() - t0


def time_steps(compiled, state, batch, n: int, ncpu: int):
    """Runs `n` steps; returns (state, wall seconds per step, CPU seconds per core per step)."""
    import jax

    walls, cpus = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        state, metrics = compiled(state, batch)
        jax.block_until_ready(metrics)
        walls.append(time.perf_counter() - t0)
        cpus.append((time.process_time() - c0) / ncpu)
    return state, walls, cpus


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(label, walls, cpus, fpt, tokens, peak, peak_cpu):
    median, cpu = statistics.median(walls), statistics.median(cpus)
    tps, tps_cpu = tokens / median, tokens / cpu
    print(
        f"[{label}] step median {median * 1e3:.0f} ms (min {min(walls) * 1e3:.0f}, max "
        f"{max(walls) * 1e3:.0f}) | {tps:,.0f} tokens/s | {fpt * tps / 1e9:.1f} GFLOP/s | "
        f"MFU {fpt * tps / peak:.1%}\n"
        f"    CPU-time basis: {cpu * 1e3:.0f} ms/step per core, {tps_cpu:,.0f} tokens/s, "
        f"MFU {fpt * tps_cpu / peak_cpu:.1%} of the CPU-time peak",
        flush=True,
    )


def compare(cfg, batch, args, ncpu: int) -> None:
    """Interleaved rounds over VARIANTS; prints per-round medians, ratios and spread."""
    programs = {}
    for variant in VARIANTS:
        with patched(variant):
            compiled, state, seconds = compile_step(cfg, batch)
        state, _, _ = time_steps(compiled, state, batch, args.warmup, ncpu)
        programs[variant] = [compiled, state]
        print(f"compiled [{variant}] in {seconds:.1f}s", flush=True)
    walls = {v: [] for v in VARIANTS}  # per-round median wall seconds per step
    cpus = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in VARIANTS:
            compiled, state = programs[variant]
            state, w, c = time_steps(compiled, state, batch, args.steps, ncpu)
            programs[variant][1] = state
            walls[variant].append(statistics.median(w))
            cpus[variant].append(statistics.median(c))
            print(
                f"round {r + 1} [{variant}] median {walls[variant][-1] * 1e3:.0f} ms wall, "
                f"{cpus[variant][-1] * 1e3:.0f} ms CPU/core | load {load_average()}",
                flush=True,
            )
    plain = VARIANTS[0]
    for variant in VARIANTS[1:]:
        for basis, times in (("wall", walls), ("CPU-time", cpus)):
            per_round = [p / s for p, s in zip(times[plain], times[variant])]
            ratio = statistics.median(times[plain]) / statistics.median(times[variant])
            print(
                f"{variant} vs plain ({basis}): medians {statistics.median(times[variant]) * 1e3:.0f}"
                f" vs {statistics.median(times[plain]) * 1e3:.0f} ms -> {ratio:.3f}x "
                f"(> 1 = special faster); per round {', '.join(f'{x:.3f}' for x in per_round)}, "
                f"spread {max(per_round) - min(per_round):.3f}",
                flush=True,
            )


def model_fields(items: list[str]) -> dict:
    """`["window=32", "num_features=64"]` -> LMConfig overrides (ints, floats, else text)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--model takes FIELD=VALUE, got {item!r}")
        for cast in (int, float):
            try:
                out[key] = cast(raw)
                break
            except ValueError:
                continue
        else:
            out[key] = raw
    return out


def main():
    args = _parse()
    if not args.no_tunables:
        runtime.ensure_malloc_tunables()

    import jax
    import jax.numpy as jnp
    import numpy as np

    from attn_jax.models import lm_config
    from attn_jax.models.flops import flops_per_token

    ncpu = len(os.sched_getaffinity(0))
    cfg = lm_config(
        args.size,
        vocab_size=args.vocab,
        max_len=args.seq,
        dtype=args.dtype,
        position=args.position,
        kernel=args.kernel,
        **model_fields(args.model),
    )
    B, T = args.batch, args.seq
    fpt = flops_per_token(cfg, T)
    rng = np.random.default_rng(0)
    batch = {
        "inputs": jnp.asarray(rng.integers(0, args.vocab, (B, T)), jnp.int32),
        "targets": jnp.asarray(rng.integers(0, args.vocab, (B, T)), jnp.int32),
        "weights": jnp.ones((B, T), jnp.float32),
    }
    print(
        f"jax {jax.__version__} | {jax.devices()[0].device_kind} x{len(jax.devices())} | "
        f"GLIBC_TUNABLES {'set' if runtime.malloc_tunables_active() else 'unset'} | "
        f"size {args.size} D{cfg.d_model} L{cfg.num_layers} N{cfg.num_heads} F{cfg.ff_size} "
        f"T{T} B{B} V{args.vocab} {args.dtype} | {fpt / 1e6:.2f}M FLOPs/token | "
        f"load {load_average()}",
        flush=True,
    )
    peak, peak_cpu = matmul_peak(args.peak_n, ncpu)
    print(
        f"measured f32 matmul peak ({args.peak_n}^3, {ncpu} cores): {peak / 1e9:.1f} GFLOP/s "
        f"wall, {peak_cpu / 1e9:.1f} GFLOP/s CPU-time basis",
        flush=True,
    )
    if args.dtype != "float32":
        # MFU of a mixed-precision step is against the low-precision matmul peak.
        peak, peak_cpu = matmul_peak(args.peak_n, ncpu, dtype=args.dtype)
        print(
            f"measured {args.dtype} matmul peak (f32 accumulation): {peak / 1e9:.1f} GFLOP/s "
            f"wall, {peak_cpu / 1e9:.1f} CPU-time basis (the MFU below is against it)",
            flush=True,
        )
    if args.compare:
        compare(cfg, batch, args, ncpu)
    else:
        compiled, state, seconds = compile_step(cfg, batch)
        print(f"compiled in {seconds:.1f}s", flush=True)
        state, _, _ = time_steps(compiled, state, batch, args.warmup, ncpu)
        state, walls, cpus = time_steps(compiled, state, batch, args.steps, ncpu)
        report("library", walls, cpus, fpt, B * T, peak, peak_cpu)
        if args.profile:
            import hlo_profile

            _, rows, top = hlo_profile.profile_breakdown(compiled, state, batch)
            hlo_profile.print_profile(rows, top, statistics.median(walls))
    peak_after, peak_cpu_after = matmul_peak(args.peak_n, ncpu)
    print(
        f"peak again after: {peak_after / 1e9:.1f} wall, {peak_cpu_after / 1e9:.1f} CPU-time "
        f"GFLOP/s | load average {load_average()}",
        flush=True,
    )


if __name__ == "__main__":
    main()
