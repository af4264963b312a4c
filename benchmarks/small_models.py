"""Small models: the training loop's per-step overhead, and many trials as one program.

The demo's smallest trials (sweeps/demo.py: 6xs, B 16 x T 64) spend most of a step
outside their matmuls. Two measurements, in one process, with the load average:

1. **Overhead.** The same compiled train step run (a) as a bare loop (batches from
   the real data iterator, placed on the device, one fetch of the metrics at the
   end) and (b) by `attn_jax.train.loop.train_and_evaluate` (one-step-late metric
   fetch, logging, the progress bar off). Overhead = 1 - bare / loop per step,
   from the steady-state seconds between the first and the last step.
2. **Trials per hour.** K trials (seeds x learning rates) of `--steps` steps run
   one by one (each compiles its own step) and as one vmapped program
   (attn_jax.train.vmapped: one compile for all K), compile included.

    python benchmarks/small_models.py                  # 6xs, K 8, 300 steps
    python benchmarks/small_models.py --size 4xs --trials 16
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from attn_jax import runtime  # noqa: E402  (no JAX import yet: safe before re-exec)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", default="6xs")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--trials", type=int, default=8)
    return p.parse_args()


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_config(args, steps: int):
    from attn_jax import configs

    config = configs.load_config(os.path.join(REPO, f"experiments/lm.py:size={args.size}"))
    return configs.apply_overrides(
        config,
        {
            "train.batch_size": args.batch,
            "train.seq_len": args.seq,
            "train.steps": steps,
            "train.warmup_steps": 30,
            "train.lr": 1e-2,
            "train.eval_at_tokens": (),
            "train.progress_bar": False,
            "train.tensorboard": False,
            "train.checkpoint_every": 0,
            "train.log_every": 50,
            "data.eval_batches": 1,
        },
    )


def bare_loop(config, steps: int) -> float:
    """Seconds per step of the jitted step alone, steps 2..steps (compile excluded)."""
    import jax

    from attn_jax import families
    from attn_jax.train import mesh as mesh_lib
    from attn_jax.train import optim
    from attn_jax.train import step as step_lib
    from attn_jax.train.state import create_train_state

    fns = families.get_family(config)
    mesh = mesh_lib.make_mesh(mesh_lib.select_devices(1))
    tx, schedule = optim.make_optimizer(config.train, steps)
    graphdef, state, shardings = create_train_state(fns.model, tx, 0, mesh)
    compiled = step_lib.CompiledSteps(
        step_lib.make_train_step(graphdef, tx, schedule, fns.loss),
        step_lib.make_eval_step(graphdef, fns.eval_sums),
        shardings,
        mesh,
    )
    it, _ = fns.data(batch_size=int(config.train.batch_size), seed=0)
    put = mesh_lib.device_put_batch
    state, metrics = compiled.train(state, put(next(it), compiled.batch_sharding))
    jax.block_until_ready(metrics)
    t0 = time.perf_counter()
    for _ in range(steps - 1):
        state, metrics = compiled.train(state, put(next(it), compiled.batch_sharding))
    jax.block_until_ready(metrics)
    return (time.perf_counter() - t0) / (steps - 1)


def loop_seconds_per_step(config, workdir: str) -> float:
    """Seconds per step of train_and_evaluate's loop, from its tokens/s (compile excluded)."""
    from attn_jax.train.loop import train_and_evaluate

    record = train_and_evaluate(config, workdir)
    tokens_per_step = config.train.batch_size * config.train.seq_len
    return tokens_per_step / record["tokens_per_second"]


def trials_one_by_one(config, seeds, lrs) -> float:
    import jax

    from attn_jax import families
    from attn_jax.train import mesh as mesh_lib
    from attn_jax.train import optim
    from attn_jax.train import step as step_lib
    from attn_jax.train.state import create_train_state

    fns = families.get_family(config)
    mesh = mesh_lib.make_mesh(mesh_lib.select_devices(1))
    steps = int(config.train.steps)
    t0 = time.perf_counter()
    for seed, lr in zip(seeds, lrs):
        tc = config.train.to_dict()
        tc["lr"] = lr
        tx, schedule = optim.make_optimizer(type(config.train)(tc), steps)
        graphdef, state, _ = create_train_state(fns.model, tx, seed, mesh)
        step = jax.jit(step_lib.make_train_step(graphdef, tx, schedule, fns.loss), donate_argnums=0)
        it, _ = fns.data(batch_size=int(config.train.batch_size), seed=0)
        for _ in range(steps):
            state, metrics = step(state, next(it))
        jax.block_until_ready(metrics)
    return time.perf_counter() - t0


def trials_vmapped(config, seeds, lrs) -> float:
    import jax

    from attn_jax import families
    from attn_jax.train import vmapped

    fns = families.get_family(config)
    t0 = time.perf_counter()
    states, args = vmapped.init_trials(config, seeds, lrs)
    step = jax.jit(vmapped.make_trials_step(config), donate_argnums=0)
    it, _ = fns.data(batch_size=int(config.train.batch_size), seed=0)
    for _ in range(int(config.train.steps)):
        states, metrics = step(states, next(it), args)
    jax.block_until_ready(metrics)
    return time.perf_counter() - t0


def main():
    args = _parse()
    runtime.ensure_malloc_tunables()
    import jax

    print(
        f"jax {jax.__version__} | size {args.size} B{args.batch} T{args.seq} | "
        f"load {load_average()}",
        flush=True,
    )
    config = make_config(args, args.steps)
    bare = bare_loop(config, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        loop = loop_seconds_per_step(config, os.path.join(tmp, "run"))
    print(
        f"per step: bare jitted loop {bare * 1e3:.2f} ms, train_and_evaluate {loop * 1e3:.2f} ms"
        f" -> loop overhead {1 - bare / loop:+.1%} of its step | load {load_average()}",
        flush=True,
    )
    K = args.trials
    seeds = [k // 2 for k in range(K)]
    lrs = [(3e-3, 1e-2)[k % 2] for k in range(K)]
    one = trials_one_by_one(config, seeds, lrs)
    print(f"{K} trials one by one: {one:.1f} s ({K * 3600 / one:,.0f} trials/hour)", flush=True)
    many = trials_vmapped(config, seeds, lrs)
    print(
        f"{K} trials vmapped: {many:.1f} s ({K * 3600 / many:,.0f} trials/hour) -> "
        f"{one / many:.2f}x faster | load {load_average()}",
        flush=True,
    )


if __name__ == "__main__":
    main()
