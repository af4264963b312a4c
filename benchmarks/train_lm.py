"""Training throughput of the decoder LM: tokens/s and MFU at the reference shape.

Reference shape (shared/PERFORMANCE.md): byte LM, D 256, L 4, N 4 (H 64), F 1024,
T 256, B 32, V 256, float32, AdamW; 22.41M training FLOPs per token.

Prints compile time, the steady-state median step time, tokens/s, MFU against the
f32 matmul peak measured in this same process, and the load average (the machine
is shared: quote ratios measured in one sitting, not absolute figures). With
`--compare` it also times plain variants in the same process (MLP by autodiff;
then also attention through the token-major `ops.dot_product_attention`) and
prints the speed ratios.

    python benchmarks/train_lm.py                 # the reference shape
    python benchmarks/train_lm.py --compare       # also the plain-MLP baseline
    python benchmarks/train_lm.py --size xs --batch 16 --seq 128

The process re-executes itself with GLIBC_TUNABLES set (attn_jax.runtime);
`--no-tunables` (or ATTN_JAX_NO_REEXEC=1) measures glibc's default allocator.
"""

from __future__ import annotations

import argparse
import os
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
    p.add_argument("--compare", action="store_true", help="also time the plain-MLP baseline")
    p.add_argument("--no-tunables", action="store_true", help="keep glibc's default malloc")
    p.add_argument("--peak-n", type=int, default=2048, help="matmul size for the peak")
    return p.parse_args()


def main():
    args = _parse()
    if not args.no_tunables:
        runtime.ensure_malloc_tunables()

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import nnx

    from attn_jax.models import DecoderLM, lm_config
    from attn_jax.nn import mlp as mlp_lib
    from attn_jax.train.flops import flops_per_token

    ncpu = len(os.sched_getaffinity(0))

    def matmul_peak(n: int, reps: int = 5) -> tuple[float, float]:
        """(wall-clock, CPU-time) f32 matmul FLOP/s, best of `reps`.

        The CPU-time figure divides by process CPU seconds / cores: on a machine
        shared with other jobs it is far less noisy than wall time.
        """
        a = jnp.ones((n, n), jnp.float32)
        f = jax.jit(lambda x, y: x @ y)
        f(a, a).block_until_ready()
        wall = cpu = float("inf")
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            f(a, a).block_until_ready()
            wall = min(wall, time.perf_counter() - t0)
            cpu = min(cpu, (time.process_time() - c0) / ncpu)
        return 2.0 * n**3 / wall, 2.0 * n**3 / cpu

    cfg = lm_config(
        args.size,
        vocab_size=args.vocab,
        max_len=args.seq,
        dtype=args.dtype,
        position=args.position,
        kernel=args.kernel,
    )
    B, T = args.batch, args.seq
    fpt = flops_per_token(cfg, T)
    rng = np.random.default_rng(0)
    batch = {
        "inputs": jnp.asarray(rng.integers(0, args.vocab, (B, T)), jnp.int32),
        "targets": jnp.asarray(rng.integers(0, args.vocab, (B, T)), jnp.int32),
    }

    def make_step(graphdef, tx):
        # The TRAIN worker's step when present (the real path), else an equivalent one.
        try:
            from attn_jax.train.state import TrainState
            from attn_jax.train.step import make_train_step

            step = make_train_step(graphdef, tx, optax.constant_schedule(3e-4))

            def init(params, rest):
                return TrainState(
                    step=jnp.zeros((), jnp.int32),
                    params=params,
                    opt_state=tx.init(params),
                    rng=jax.random.PRNGKey(0),
                    model_state=rest,
                )

            full = {**batch, "weights": jnp.ones((B, T), jnp.float32)}
            return jax.jit(step, donate_argnums=0), init, full, "attn_jax.train.step"
        except ImportError:

            def step(state, batch):
                params, opt_state, rest = state

                def loss_fn(params):
                    logits = nnx.merge(graphdef, params, rest)(batch["inputs"])
                    return optax.softmax_cross_entropy_with_integer_labels(
                        logits, batch["targets"]
                    ).mean()

                loss, grads = jax.value_and_grad(loss_fn)(params)
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state, rest), {"loss": loss}

            init = lambda params, rest: (params, tx.init(params), rest)
            return jax.jit(step, donate_argnums=0), init, batch, "local pure step"

    def run(label: str) -> float:
        model = DecoderLM(cfg, rngs=nnx.Rngs(0))
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        tx = optax.adamw(3e-4, weight_decay=0.1)
        step, init, full_batch, source = make_step(graphdef, tx)
        state = init(params, rest)
        t0 = time.perf_counter()
        compiled = step.lower(state, full_batch).compile()
        compile_s = time.perf_counter() - t0
        times, cpus = [], []
        for i in range(args.warmup + args.steps):
            t0, c0 = time.perf_counter(), time.process_time()
            state, metrics = compiled(state, full_batch)
            jax.block_until_ready(metrics)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
                cpus.append((time.process_time() - c0) / ncpu)
        median, cpu = float(np.median(times)), float(np.median(cpus))
        tps, tps_cpu = B * T / median, B * T / cpu
        print(
            f"[{label}] step={source} compile {compile_s:.1f}s | step median {median * 1e3:.0f} ms "
            f"(min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f}) | {tps:,.0f} tokens/s | "
            f"{fpt * tps / 1e9:.1f} GFLOP/s | MFU {fpt * tps / peak:.1%}\n"
            f"    CPU-time basis: {cpu * 1e3:.0f} ms/step per core, {tps_cpu:,.0f} tokens/s, "
            f"MFU {fpt * tps_cpu / peak_cpu:.1%} of the CPU-time peak",
            flush=True,
        )
        return tps_cpu

    print(
        f"jax {jax.__version__} | {jax.devices()[0].device_kind} x{len(jax.devices())} | "
        f"GLIBC_TUNABLES {'set' if runtime.malloc_tunables_active() else 'unset'} | "
        f"size {args.size} D{cfg.d_model} L{cfg.num_layers} N{cfg.num_heads} F{cfg.ff_size} "
        f"T{T} B{B} V{args.vocab} {args.dtype} | {fpt / 1e6:.2f}M FLOPs/token",
        flush=True,
    )
    peak, peak_cpu = matmul_peak(args.peak_n)
    print(
        f"measured f32 matmul peak ({args.peak_n}^3, {ncpu} cores): {peak / 1e9:.1f} GFLOP/s "
        f"wall, {peak_cpu / 1e9:.1f} GFLOP/s CPU-time basis",
        flush=True,
    )
    fast = run("custom-vjp MLP")
    if args.compare:
        # Plain baseline in the same process: autodiff MLP and the token-major ops path.
        from attn_jax.nn import attention as attn_lib
        from attn_jax.ops.attention import dot_product_attention

        def plain_core(q_BNTH, k_BKSH, v_BKSH, *, scale, return_weights=False, **kwargs):
            sw = lambda a: a.swapaxes(1, 2)
            out = dot_product_attention(
                sw(q_BNTH),
                sw(k_BKSH),
                sw(v_BKSH),
                scale=scale,
                return_weights=return_weights,
                **kwargs,
            )
            return (sw(out[0]), out[1]) if return_weights else sw(out)

        custom, core = mlp_lib.gelu_mlp, attn_lib.heads_major_attention
        mlp_lib.gelu_mlp = lambda x, w1, w2: jax.nn.gelu(x @ w1, approximate=True) @ w2
        try:
            plain_mlp = run("plain MLP (autodiff), heads-major attention")
            attn_lib.heads_major_attention = plain_core
            plain = run("plain MLP, token-major ops attention")
        finally:
            mlp_lib.gelu_mlp, attn_lib.heads_major_attention = custom, core
        print(
            f"speedup (CPU-time basis): custom-VJP MLP {fast / plain_mlp:.2f}x; "
            f"both changes vs plain {fast / plain:.2f}x",
            flush=True,
        )
    peak_after, peak_cpu_after = matmul_peak(args.peak_n)
    print(
        f"peak again after: {peak_after / 1e9:.1f} wall, {peak_cpu_after / 1e9:.1f} CPU-time "
        "GFLOP/s | "
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
