"""Induction-head score on repeated random tokens (Olsson et al. 2022).

Dimension key: B batch, N heads, T = start + 2n tokens.

On [r, r], r random tokens of length n, an induction head at position i of the
second copy attends to the token after the previous occurrence of its own
token: key i - n + 1. The score is the mean attention from every i in the second
copy to that key (1 for a perfect induction head; about 1/T for uniform
attention over T keys). `start` leading tokens (e.g. a BOS) shift both copies.
"""

from __future__ import annotations

import numpy as np

from attn_jax.interp.capture import run_with_cache


def repeated_random_tokens(
    batch: int, n: int, vocab_size: int, *, seed: int = 0, prefix=()
) -> np.ndarray:
    """int32 [batch, len(prefix) + 2n]: prefix, then r, r with r uniform in [0, vocab_size)."""
    if n < 2 or vocab_size < 2:
        raise ValueError(f"need n >= 2 and vocab_size >= 2, got n={n}, vocab_size={vocab_size}.")
    r = np.random.default_rng(seed).integers(0, vocab_size, (batch, n))
    head = np.broadcast_to(np.asarray(prefix, np.int64), (batch, len(prefix)))
    return np.concatenate([head, r, r], axis=1).astype(np.int32)


def induction_score(weights_BNTS, n: int, start: int = 0) -> np.ndarray:
    """[N]: mean weight from i in the second copy to key i - n + 1."""
    w = np.asarray(weights_BNTS, np.float64)
    T = w.shape[2]
    if start + 2 * n > T or w.shape[3] < T:
        raise ValueError(f"weights {w.shape} do not cover start={start} + 2n={2 * n} positions.")
    i = np.arange(start + n, start + 2 * n)
    return w[:, :, i, i - n + 1].mean(axis=(0, 2))


def model_induction_scores(
    model, *, n: int = 32, batch: int = 8, vocab_size: int | None = None, seed: int = 0, prefix=()
) -> dict[str, np.ndarray]:
    """{attention path: scores_N} of an LM (`model(tokens_BT)`) on repeated random tokens."""
    V = vocab_size or model.config.vocab_size
    tokens = repeated_random_tokens(batch, n, V, seed=seed, prefix=prefix)
    _, cache = run_with_cache(model, tokens)
    return {
        key[: -len(".weights")]: induction_score(w, n, start=len(prefix))
        for key, w in cache.items()
    }
