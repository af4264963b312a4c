"""The `Family` protocol, and the token-loss pieces several families share.

A family fills in one `Family` per config (its factory, registered in
attn_jax.families.FAMILIES). The loop (attn_jax.train.loop) asks it and
nothing else:

- `model(rngs) -> nnx.Module`;
- `data(batch_size=, seed=, process_index=, process_count=) -> (train_iter,
  eval_batches)`: `train_iter` yields this process's rows of a global batch (a
  dict of numpy arrays, leading dim = rows) forever and has JSON-able
  `get_state()`/`set_state()`, saved in the checkpoint; `eval_batches()`
  returns the same list of batches on every call;
- `loss(model, batch, rng) -> (objective, metrics)`: the differentiated scalar
  and scalar metrics, means over the units that carry loss, with `count` (how
  many there were; padding excluded) and `loss` (the reported loss, e.g. the
  unsmoothed nll); `rng` is a dropout key, or None for no dropout;
- `eval_sums(model, batch) -> {name: sum}` (jitted, summed over the eval
  batches) and `eval_finalize(totals) -> metrics` (with `loss` where the family
  has one: it is the record's `best_eval_loss`) and `count`;
- optionally `decode_eval(model, final) -> metrics`, decoding-based metrics
  (BLEU, exact match) computed on the host, at the end of the run;
- `sizes(params) -> {params_total, params_embedding, params_non_embedding,
  flops_per_unit}`: analytic counts that must equal the real model
  (`check_param_count`), training FLOPs per planned unit;
- `unit`: "tokens" or "examples"; `uses_dropout`: pass a dropout rng.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Batch = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family, built for one config (see the module docstring)."""

    name: str
    unit: str
    model: Callable[[Any], Any]
    data: Callable[..., tuple[Any, Callable[[], Iterable[Batch]]]]
    loss: Callable[[Any, Batch, jax.Array | None], tuple[jax.Array, dict[str, jax.Array]]]
    eval_sums: Callable[[Any, Batch], dict[str, jax.Array]]
    eval_finalize: Callable[[Mapping[str, float]], dict[str, float]]
    sizes: Callable[[Any], dict[str, float]]
    uses_dropout: bool = False
    decode_eval: Callable[[Any, bool], dict[str, float]] | None = None


def count_params(params) -> int:
    """Number of scalars in a parameter pytree."""
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def check_param_count(params, expected: int, where: str) -> None:
    """Raises when the analytic count `expected` differs from the model's."""
    actual = count_params(params)
    if actual != int(expected):
        raise AssertionError(
            f"{where} counts {int(expected)} parameters but the model has {actual}; "
            "the analytic count is out of date with the model."
        )


def checked_sizes(counts: Callable[[Any], dict], config, where: str) -> Callable[[Any], dict]:
    """A family's `sizes(params)`: `counts(config)`, its params_total checked against
    the model's (`where` names the counting code in the error)."""

    def sizes(params) -> dict:
        out = counts(config)
        check_param_count(params, out["params_total"], where)
        return out

    return sizes


def cross_entropy(
    logits_BTV: jax.Array, targets_BT: jax.Array, label_smoothing: float = 0.0
) -> tuple[jax.Array, jax.Array]:
    """Per-token (nll_BT, objective_BT) in float32.

    The objective mixes the one-hot target with a uniform distribution over V
    (label smoothing, Szegedy et al. 2016): (1-e) * nll + e * mean_v(-log p_v).
    The nll is the unsmoothed loss every figure reports. Works for any leading
    shape (e.g. [B, C] logits with [B] targets).
    """
    logits_BTV = logits_BTV.astype(jnp.float32)
    lse_BT = jax.nn.logsumexp(logits_BTV, axis=-1)
    target_BT = jnp.take_along_axis(logits_BTV, targets_BT[..., None], axis=-1)[..., 0]
    nll_BT = lse_BT - target_BT
    if not label_smoothing:
        return nll_BT, nll_BT
    uniform_BT = lse_BT - jnp.mean(logits_BTV, axis=-1)
    return nll_BT, (1.0 - label_smoothing) * nll_BT + label_smoothing * uniform_BT


def classification_sums(logits, targets, weights) -> dict[str, jax.Array]:
    """Weighted sums {loss_sum, correct_sum, count} of a softmax classifier.

    `logits` [..., V], `targets` and `weights` [...] (weight 0 = padding).
    """
    nll, _ = cross_entropy(logits, targets)
    weights = weights.astype(jnp.float32)
    correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    return {
        "loss_sum": (nll * weights).sum(),
        "correct_sum": (correct * weights).sum(),
        "count": weights.sum(),
    }


def classification_loss(
    logits, targets, weights, label_smoothing: float = 0.0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(objective, {loss, accuracy, count}): means over weighted units."""
    nll, obj = cross_entropy(logits, targets, label_smoothing)
    weights = weights.astype(jnp.float32)
    count = weights.sum()
    denom = jnp.maximum(count, 1.0)
    correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    metrics = {
        "loss": (nll * weights).sum() / denom,
        "accuracy": (correct * weights).sum() / denom,
        "count": count,
    }
    return (obj * weights).sum() / denom, metrics


def classification_finalize(totals: Mapping[str, float]) -> dict[str, float]:
    """{loss, accuracy, count} from summed `classification_sums`."""
    denom = max(float(totals["count"]), 1.0)
    return {
        "loss": float(totals["loss_sum"]) / denom,
        "accuracy": float(totals["correct_sum"]) / denom,
        "count": float(totals["count"]),
    }
