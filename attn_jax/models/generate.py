"""Sampling from a `DecoderLM` through its KV cache.

The prompt is processed in one prefill call that fills the cache; each new
token is then one decode step (T = 1) at fixed shapes, all inside one jitted
`lax.scan`, so the step compiles once and Python is not in the loop.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx


def sample_logits(logits_BV, rng, *, temperature: float = 1.0, top_k: int = 0):
    """Next tokens from last-position logits: greedy at temperature 0, else sampled.

    Args:
      logits_BV: float logits.
      rng: PRNG key (unused when greedy).
      temperature: softmax temperature; 0 means argmax.
      top_k: keep only the k most likely tokens before sampling (0 = all).

    Returns:
      int32 tokens_B.
    """
    if temperature == 0.0:
        return jnp.argmax(logits_BV, axis=-1).astype(jnp.int32)
    logits_BV = logits_BV.astype(jnp.float32) / temperature
    if top_k:
        kth_B1 = jax.lax.top_k(logits_BV, top_k)[0][:, -1:]
        logits_BV = jnp.where(logits_BV < kth_B1, -jnp.inf, logits_BV)
    return jax.random.categorical(rng, logits_BV, axis=-1).astype(jnp.int32)


@partial(jax.jit, static_argnames=("graphdef", "num_steps", "temperature", "top_k"))
def _generate(graphdef, state, prompt_BT, rng, *, num_steps, temperature, top_k):
    model = nnx.merge(graphdef, state)
    B, T = prompt_BT.shape
    cache = model.init_cache(B, T + num_steps)
    logits_BTV, cache = model(prompt_BT, cache=cache)
    rng, key = jax.random.split(rng)
    first_B = sample_logits(logits_BTV[:, -1], key, temperature=temperature, top_k=top_k)

    def step(carry, key):
        token_B, cache = carry
        logits_B1V, cache = model(token_B[:, None], cache=cache)
        next_B = sample_logits(logits_B1V[:, 0], key, temperature=temperature, top_k=top_k)
        return (next_B, cache), token_B

    keys = jax.random.split(rng, num_steps - 1)
    (last_B, _), tokens_SB = jax.lax.scan(step, (first_B, cache), keys)
    tokens_BS = jnp.concatenate([tokens_SB.T, last_B[:, None]], axis=1)
    return jnp.concatenate([prompt_BT, tokens_BS], axis=1)


def generate(
    model: nnx.Module,
    prompt_BT: jnp.ndarray,
    num_steps: int,
    *,
    rng: jax.Array,
    temperature: float = 1.0,
    top_k: int = 0,
) -> jnp.ndarray:
    """Extends `prompt_BT` by `num_steps` tokens (greedy when temperature == 0).

    Args:
      model: a `DecoderLM` (anything with `init_cache` and `__call__(..., cache=)`).
      prompt_BT: int prompt tokens (T >= 1).
      num_steps: tokens to generate (>= 1); T + num_steps must fit `max_len`
        when the model uses learned positions.
      rng: PRNG key for sampling.
      temperature: softmax temperature; 0 = greedy.
      top_k: sample among the k most likely tokens (0 = all).

    Returns:
      int32 tokens of shape [B, T + num_steps]: the prompt then the new tokens.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
    prompt_BT = jnp.asarray(prompt_BT, jnp.int32)
    graphdef, state = nnx.split(model)
    return _generate(
        graphdef,
        state,
        prompt_BT,
        rng,
        num_steps=num_steps,
        temperature=float(temperature),
        top_k=int(top_k),
    )
