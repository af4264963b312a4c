"""Position information: absolute encodings, rotary embeddings, relative biases.

Dimension key: B batch, T query length, S key length, N heads, H head dim,
D model width, P table length (max positions), R relative buckets.

Relative schemes are functions of positions: `alibi_bias` and `t5_relative_bias`
take query and key positions and return bias_NTS, so a blockwise kernel can
evaluate them per block. A "bias_fn" is any `bias_fn(q_pos_T, k_pos_S) ->
bias_NTS` (or broadcastable [1|N, T, S]); `alibi_bias_fn` and `t5_bias_fn`
build them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

F32 = jnp.float32


def sinusoidal(positions, D: int, base: float = 10000.0):
    """Sinusoidal absolute encoding (Vaswani et al. 2017, §3.5).

    PE[p, 2i] = sin(p / base^(2i/D)), PE[p, 2i+1] = cos(p / base^(2i/D)).

    Args:
      positions: int or float array of any shape [...].
      D: encoding width (even).
      base: wavelength base.

    Returns:
      float32 [..., D].
    """
    if D % 2:
        raise ValueError(f"sinusoidal encoding needs an even width, got D={D}")
    inv_freq = base ** (-jnp.arange(0, D, 2, dtype=F32) / D)
    positions = jnp.asarray(positions, F32)
    angle = positions[..., None] * inv_freq.reshape((1,) * positions.ndim + (D // 2,))
    # Interleave (sin, cos) pairs: PE[2i], PE[2i+1] share frequency i.
    return jnp.stack([jnp.sin(angle), jnp.cos(angle)], axis=-1).reshape(angle.shape[:-1] + (D,))


def init_learned_table(key, P: int, D: int, stddev: float = 0.02, dtype=F32):
    """A learned absolute position table [P, D] (GPT-2 style init N(0, stddev^2))."""
    return jax.random.normal(key, (P, D), dtype) * stddev


def learned_positions(table_PD, positions):
    """Look up learned absolute encodings: [...] int -> [..., D]."""
    return jnp.take(table_PD, jnp.asarray(positions, jnp.int32), axis=0)


def rope_frequencies(H: int, base: float = 1e4):
    """Inverse frequencies theta_i = base^(-2i/H), i < H/2 (Su et al. 2021, eq. 15)."""
    if H % 2:
        raise ValueError(f"RoPE needs an even head dim, got H={H}")
    return base ** (-jnp.arange(0, H, 2, dtype=F32) / H)


def apply_rope(x_BTNH, positions_BT, base: float = 1e4):
    """Rotary position embedding (Su et al. 2021, RoFormer).

    Rotates pairs (x[i], x[i + H/2]) by angle p * theta_i (the half-split layout
    of GPT-NeoX/Llama/Gemma), so <rope(q, m), rope(k, n)> depends on m - n only.
    Computed in float32, returned in x's dtype.

    Args:
      x_BTNH: queries or keys.
      positions_BT: int[B, T] or int[T] absolute positions.
      base: frequency base.

    Returns:
      array like x_BTNH.
    """
    H = x_BTNH.shape[-1]
    inv_freq_h = rope_frequencies(H, base)
    positions = jnp.asarray(positions_BT, F32)
    if positions.ndim == 1:
        positions = positions[None, :]
    angle_BTh = positions[:, :, None] * inv_freq_h[None, None, :]
    sin, cos = jnp.sin(angle_BTh)[:, :, None, :], jnp.cos(angle_BTh)[:, :, None, :]
    x = x_BTNH.astype(F32)
    x1, x2 = x[..., : H // 2], x[..., H // 2 :]
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x_BTNH.dtype)


def alibi_slopes(N: int):
    """ALiBi head slopes (Press et al. 2022, §3 and their reference code).

    For N a power of two: 2^(-8/N), 2^(-16/N), ..., 2^(-8). Otherwise the slopes
    of the closest lower power of two p, then every other slope of 2p.

    Returns:
      float32[N].
    """
    if N < 1:
        raise ValueError(f"alibi_slopes needs N >= 1, got {N}")

    def power_of_2(n):
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    p = 2 ** int(math.floor(math.log2(N)))
    slopes = power_of_2(p)
    if p != N:
        slopes += power_of_2(2 * p)[0::2][: N - p]
    return jnp.asarray(slopes, F32)


def alibi_bias(slopes_N, q_pos_T, k_pos_S):
    """ALiBi bias -slope * |q_pos - k_pos| (Press et al. 2022, eq. in §3).

    Causal models only see k_pos <= q_pos, where this is the paper's -m (i - j);
    the absolute value is the usual symmetric extension for bidirectional use.

    Returns:
      float32 bias_NTS.
    """
    dist_TS = jnp.abs(jnp.asarray(q_pos_T, F32)[:, None] - jnp.asarray(k_pos_S, F32)[None, :])
    return -jnp.asarray(slopes_N, F32)[:, None, None] * dist_TS[None, :, :]


def alibi_bias_fn(slopes_N):
    """A bias_fn(q_pos_T, k_pos_S) -> bias_NTS for ALiBi with these slopes."""
    return lambda q_pos_T, k_pos_S: alibi_bias(slopes_N, q_pos_T, k_pos_S)


def relative_bucket(
    rel, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
):
    """T5 relative-position buckets (Raffel et al. 2020; mesh-tensorflow's code).

    Half the buckets (per direction) hold exact small offsets, the rest are
    log-spaced up to `max_distance`; larger offsets share the last bucket.

    Args:
      rel: int array, key position - query position.
      bidirectional: separate buckets for keys after the query; if False,
        keys after the query fall in bucket 0.
      num_buckets: R, total number of buckets.
      max_distance: offset at which the log-spaced buckets end.

    Returns:
      int32 array like `rel`, values in [0, num_buckets).
    """
    n = -jnp.asarray(rel, jnp.int32)
    ret = jnp.zeros_like(n)
    if bidirectional:
        num_buckets //= 2
        ret = ret + (n < 0).astype(jnp.int32) * num_buckets
        n = jnp.abs(n)
    else:
        n = jnp.maximum(n, 0)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    # log-spaced buckets; n is clamped to >= 1 so log stays finite where unused.
    n_large = jnp.maximum(n, 1).astype(F32)
    val_if_large = max_exact + (
        jnp.log(n_large / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).astype(jnp.int32)
    val_if_large = jnp.minimum(val_if_large, num_buckets - 1)
    return ret + jnp.where(is_small, n, val_if_large)


def t5_relative_bias(
    table_RN, q_pos_T, k_pos_S, bidirectional: bool = True, max_distance: int = 128
):
    """T5 relative-position bias: a learned scalar per (bucket, head).

    Args:
      table_RN: float[R, N], R = number of buckets.
      q_pos_T: int query positions.
      k_pos_S: int key positions.
      bidirectional: see `relative_bucket`.
      max_distance: see `relative_bucket`.

    Returns:
      bias_NTS in the table's dtype.
    """
    rel_TS = jnp.asarray(k_pos_S, jnp.int32)[None, :] - jnp.asarray(q_pos_T, jnp.int32)[:, None]
    bucket_TS = relative_bucket(rel_TS, bidirectional, table_RN.shape[0], max_distance)
    return jnp.take(table_RN, bucket_TS, axis=0).transpose(2, 0, 1)


def t5_bias_fn(table_RN, bidirectional: bool = True, max_distance: int = 128):
    """A bias_fn(q_pos_T, k_pos_S) -> bias_NTS for a T5 relative-bias table."""
    return lambda q_pos_T, k_pos_S: t5_relative_bias(
        table_RN, q_pos_T, k_pos_S, bidirectional, max_distance
    )


def init_t5_table(key, num_buckets: int, N: int, stddev: float = 0.02, dtype=F32):
    """A T5 relative-bias table [R, N]."""
    return jax.random.normal(key, (num_buckets, N), dtype) * stddev
