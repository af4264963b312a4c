"""The pure train and eval steps, and their jitted, sharded, donated forms.

`train_step(state, batch) -> (state, metrics)` is the only training path. It
is jitted once with explicit in/out shardings and the state donated, so XLA
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

from attn_jax.train import mesh as mesh_lib
from attn_jax.train.state import TrainState

Batch = dict[str, jax.Array]


def cross_entropy(
    logits_BTV: jax.Array, targets_BT: jax.Array, label_smoothing: float = 0.0
) -> tuple[jax.Array, jax.Array]:
    """Per-token (nll_BT, objective_BT) in float32.

    The objective mixes the one-hot target with a uniform distribution over V
    (label smoothing, Szegedy et al. 2016): (1-e) * nll + e * mean_v(-log p_v).
    The nll is the unsmoothed loss every figure reports.
    """
    logits_BTV = logits_BTV.astype(jnp.float32)
    lse_BT = jax.nn.logsumexp(logits_BTV, axis=-1)
    target_BT = jnp.take_along_axis(logits_BTV, targets_BT[..., None], axis=-1)[..., 0]
    nll_BT = lse_BT - target_BT
    if not label_smoothing:
        return nll_BT, nll_BT
    uniform_BT = lse_BT - jnp.mean(logits_BTV, axis=-1)
    return nll_BT, (1.0 - label_smoothing) * nll_BT + label_smoothing * uniform_BT


def _forward(graphdef, params, model_state, inputs_BT, dropout_rng):
    model = nnx.merge(graphdef, params, model_state)
    deterministic = dropout_rng is None
    return model(inputs_BT, deterministic=deterministic, dropout_rng=dropout_rng)


def make_train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    *,
    label_smoothing: float = 0.0,
    dropout: bool = False,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """Builds the pure train step.

    Args:
      graphdef: the model's static structure (from `nnx.split`).
      tx: optimizer; schedule: its learning rate, for logging.
      label_smoothing: training objective smoothing; the reported loss is the nll.
      dropout: pass a per-step dropout rng (fold_in(state.rng, step)) to the model.

    Returns:
      train_step(state, batch) -> (new_state, metrics) with scalar metrics
      loss (nll per weighted token), objective, accuracy, grad_norm, lr, tokens.
    """

    def train_step(state: TrainState, batch: Batch):
        rng = jax.random.fold_in(state.rng, state.step) if dropout else None
        weights_BT = batch["weights"].astype(jnp.float32)
        denom = jnp.maximum(weights_BT.sum(), 1.0)

        def loss_fn(params):
            logits_BTV = _forward(graphdef, params, state.model_state, batch["inputs"], rng)
            nll_BT, obj_BT = cross_entropy(logits_BTV, batch["targets"], label_smoothing)
            correct_BT = jnp.argmax(logits_BTV, axis=-1) == batch["targets"]
            aux = {
                "loss": (nll_BT * weights_BT).sum() / denom,
                "accuracy": (correct_BT * weights_BT).sum() / denom,
            }
            return (obj_BT * weights_BT).sum() / denom, aux

        (objective, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            **aux,
            "objective": objective,
            "grad_norm": optax.tree.norm(grads),
            "lr": jnp.asarray(schedule(state.step), jnp.float32),
            "tokens": weights_BT.sum(),
        }
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, metrics

    return train_step


def make_eval_step(graphdef: nnx.GraphDef) -> Callable[[TrainState, Batch], dict]:
    """eval_step(state, batch) -> sums {loss_sum, correct_sum, weight_sum} (no dropout)."""

    def eval_step(state: TrainState, batch: Batch):
        logits_BTV = _forward(graphdef, state.params, state.model_state, batch["inputs"], None)
        nll_BT, _ = cross_entropy(logits_BTV, batch["targets"])
        weights_BT = batch["weights"].astype(jnp.float32)
        correct_BT = jnp.argmax(logits_BTV, axis=-1) == batch["targets"]
        return {
            "loss_sum": (nll_BT * weights_BT).sum(),
            "correct_sum": (correct_BT * weights_BT).sum(),
            "weight_sum": weights_BT.sum(),
        }

    return eval_step


class CompiledSteps:
    """The jitted steps of one run, with a count of how often each was traced.

    Python side effects run only while tracing, so `train_traces` counts
    compilations of the train step: it must stay 1 for a whole run.
    """

    def __init__(self, train_step, eval_step, state_shardings: Any, mesh: Mesh):
        self.train_traces = 0
        self.eval_traces = 0
        data = mesh_lib.batch_sharding(mesh)
        rep = mesh_lib.replicated(mesh)
        self.batch_sharding = data

        def counted_train(state, batch):
            self.train_traces += 1
            return train_step(state, batch)

        def counted_eval(state, batch):
            self.eval_traces += 1
            return eval_step(state, batch)

        self.train = jax.jit(
            counted_train,
            in_shardings=(state_shardings, data),
            out_shardings=(state_shardings, rep),
            donate_argnums=0,
        )
        self.eval = jax.jit(counted_eval, in_shardings=(state_shardings, data), out_shardings=rep)
