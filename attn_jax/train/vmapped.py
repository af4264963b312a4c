"""Many tiny models as one program: K trials of one shape trained by one vmapped step.

The demo's smallest models spend most of a step outside their matmuls (dispatch,
the optimizer's many small ops) and each trial compiles afresh. Stacking K
trials' states on a leading axis and `jax.vmap`-ing the pure train step
(attn_jax.train.step.make_scheduled_train_step) over it gives one compile and
one dispatch per step for all K, with K times wider ops. The trials may differ
in init seed and in peak learning rate: the schedule's numbers are arguments of
the step (attn_jax.train.optim.ScheduledOptimizer), stacked per trial like the
states, so trial k is exactly the one-trial run with `seed = seeds[k]` and
`train.lr = lrs[k]`. Every trial sees the same batches, in the same order as a
one-trial run of the same config.

    states, args = init_trials(config, seeds=[0, 1, 2], lrs=[1e-3, 2e-3, 4e-3])
    step = jax.jit(make_trials_step(config), donate_argnums=0)
    states, metrics = step(states, batch, args)   # metrics["loss"]: [K]

benchmarks/small_models.py times it against the same trials run one by one;
tests/train/test_vmapped.py checks it matches them to 1e-5.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from attn_jax import families
from attn_jax.train import optim
from attn_jax.train import step as step_lib
from attn_jax.train.state import TrainState, init_state


def init_trials(
    config: ml_collections.ConfigDict, seeds: Sequence[int], lrs: Sequence[float] | None = None
) -> tuple[TrainState, dict]:
    """(states, args): K train states stacked on a leading axis, and their schedules' numbers.

    Trial k's parameters are those of a one-trial run with `config.seed = seeds[k]`
    (attn_jax.train.state.create_train_state's key rule); its schedule is
    `config.train`'s with peak lr `lrs[k]` (default: train.lr for all).
    """
    lrs = [float(config.train.lr)] * len(seeds) if lrs is None else list(lrs)
    if len(lrs) != len(seeds) or not seeds:
        raise ValueError(f"Give one lr per seed: {len(seeds)} seeds, {len(lrs)} lrs.")
    fns = families.get_family(config)
    optimizer = optim.ScheduledOptimizer(config.train)
    base = optimizer.args(optim.total_steps(config.train))
    tx, _ = optimizer.build(base)

    def init(seed):
        return init_state(fns.model, tx, jax.random.PRNGKey(seed))

    states = jax.jit(jax.vmap(init))(jnp.asarray(list(seeds), jnp.uint32))
    args = {k: jnp.full((len(seeds),), v, jnp.float32) for k, v in base.items()}
    args["lr"] = jnp.asarray(lrs, jnp.float32)
    return states, args


def make_trials_step(config: ml_collections.ConfigDict):
    """trials_step(states, batch, args) -> (states, metrics [K]): one step of every trial."""
    fns = families.get_family(config)
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: fns.model(nnx.Rngs(params=0, dropout=0))))
    one = step_lib.make_scheduled_train_step(
        graphdef, optim.ScheduledOptimizer(config.train), fns.loss, dropout=fns.uses_dropout
    )
    return jax.vmap(one, in_axes=(0, None, 0))
