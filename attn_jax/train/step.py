"""The pure train and eval steps, and their jitted, sharded, donated forms.

`train_step(state, batch) -> (state, metrics)` is the only training path: the
gradient of the family's `loss(model, batch, rng)`. It is jitted once with explicit in/out shardings and the state donated, so XLA
updates parameters and optimizer state in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from attn_jax.families import base as family_base
from attn_jax.train import mesh as mesh_lib
from attn_jax.train import optim
from attn_jax.train.state import TrainState

Batch = dict[str, jax.Array]


# The family's loss and eval sums (attn_jax.families.base); re-exported for callers.
cross_entropy = family_base.cross_entropy
LossFn = Callable[[nnx.Module, Batch, "jax.Array | None"], tuple[jax.Array, dict]]
EvalSumsFn = Callable[[nnx.Module, Batch], dict]


def make_train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    loss_fn: LossFn,
    *,
    dropout: bool = False,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """Builds the pure train step around a family's loss.

    Args:
      graphdef: the model's static structure (from `nnx.split`).
      tx: optimizer; schedule: its learning rate, for logging.
      loss_fn: `loss(model, batch, rng) -> (objective, metrics)` (Family.loss):
        metrics are scalars with `loss` and `count` (units carrying loss).
      dropout: pass a per-step dropout rng (fold_in(state.rng, step)) to the loss.

    Returns:
      train_step(state, batch) -> (new_state, metrics): the family's metrics
      plus objective, grad_norm and lr.
    """

    def train_step(state: TrainState, batch: Batch):
        rng = jax.random.fold_in(state.rng, state.step) if dropout else None

        def objective_fn(params):
            model = nnx.merge(graphdef, params, state.model_state)
            return loss_fn(model, batch, rng)

        (objective, aux), grads = jax.value_and_grad(objective_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            **aux,
            "objective": objective,
            "grad_norm": optax.tree.norm(grads),
            "lr": jnp.asarray(schedule(state.step), jnp.float32),
        }
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, metrics

    return train_step


def make_scheduled_train_step(
    graphdef: nnx.GraphDef,
    optimizer: optim.ScheduledOptimizer,
    loss_fn: LossFn,
    *,
    dropout: bool = False,
) -> Callable[[TrainState, Batch, dict], tuple[TrainState, dict]]:
    """make_train_step with the schedule's numbers as an argument: step(state, batch, args).

    `args` is `optimizer.args(steps)` (f32 scalars): runs of one shape that differ
    only in steps or peak lr compile the same program (CompiledSteps(train_args=...)).
    """

    def train_step(state: TrainState, batch: Batch, args: dict):
        tx, schedule = optimizer.build(args)
        return make_train_step(graphdef, tx, schedule, loss_fn, dropout=dropout)(state, batch)

    return train_step


def make_eval_step(
    graphdef: nnx.GraphDef, eval_sums: EvalSumsFn
) -> Callable[[TrainState, Batch], dict]:
    """eval_step(state, batch) -> the family's sums on one batch (no dropout)."""

    def eval_step(state: TrainState, batch: Batch):
        return eval_sums(nnx.merge(graphdef, state.params, state.model_state), batch)

    return eval_step


class CompiledSteps:
    """The jitted steps of one run, with a count of how often each was traced.

    Python side effects run only while tracing, so `train_traces` counts
    compilations of the train step: it must stay 1 for a whole run.

    With `train_args` (a dict of numbers: the schedule's, from
    make_scheduled_train_step) the train step is `train_step(state, batch, args)`
    and `train(state, batch)` passes the current args; `set_train_args` changes
    them (a re-planned time budget) without recompiling.
    """

    def __init__(self, train_step, eval_step, state_shardings: Any, mesh: Mesh, train_args=None):
        self.train_traces = 0
        self.eval_traces = 0
        data = mesh_lib.batch_sharding(mesh)
        rep = mesh_lib.replicated(mesh)
        self.batch_sharding = data

        self._shardings = (state_shardings, data, rep)
        # Without train_args (a fixed schedule) the same jit runs with no args to pass.
        self._jit_train(train_step, takes_args=train_args is not None)
        self.set_train_args(train_args or {})

        def counted_eval(state, batch):
            self.eval_traces += 1
            return eval_step(state, batch)

        self.eval = jax.jit(counted_eval, in_shardings=(state_shardings, data), out_shardings=rep)

    def _jit_train(self, train_step, takes_args: bool) -> None:
        state_shardings, data, rep = self._shardings

        def counted_train(state, batch, args):
            self.train_traces += 1
            return train_step(state, batch, args) if takes_args else train_step(state, batch)

        jitted = jax.jit(
            counted_train,
            in_shardings=(state_shardings, data, rep),
            out_shardings=(state_shardings, rep),
            donate_argnums=0,
        )
        self.train = lambda state, batch: jitted(state, batch, self._train_args)

    def set_train_args(self, args: dict) -> None:
        """New numbers for the train step's schedule (no recompile)."""
        rep = self._shardings[2]
        self._train_args = {
            k: jax.device_put(jnp.asarray(v, jnp.float32), rep) for k, v in args.items()
        }
