"""Attention masks: boolean arrays, True = the query may attend to the key.

Dimension key: B batch, T query length, S key length, N heads.

Queries sit at absolute positions `q_offset + arange(T)` and keys at `arange(S)`;
`q_offset` is how a decode step (or a query block of a kernel) says where its
queries are. Every function accepts a traced `q_offset`, so the same code serves
a KV-cache step inside `jit`.

Static inputs (Python ints, NumPy arrays) give NumPy masks: trace-time
constants that cost no compile and that a kernel can inspect to skip empty
blocks. Any jax array or tracer among the inputs gives a jax array.

`MaskSpec` is the structured form of the masks below. Efficient kernels consume
the spec (they evaluate it per block and never build the dense T x S mask);
`MaskSpec.dense` is the one definition both they and the dense path agree on.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


def _xp(*args):
    """NumPy when every argument is static, else jax.numpy (traced or device values)."""
    return jnp if any(isinstance(a, jax.Array) for a in args) else np


def _positions(T: int, S: int, q_offset=0):
    """Query positions [T, 1] and key positions [1, S] as int32."""
    xp = _xp(q_offset)
    q_pos = (xp.arange(T, dtype=np.int32) + xp.asarray(q_offset, np.int32))[:, None]
    k_pos = xp.arange(S, dtype=np.int32)[None, :]
    return q_pos, k_pos


def causal_mask(T: int, S: int | None = None, q_offset=0):
    """Causal (autoregressive) mask: key position <= query position.

    Args:
      T: number of queries.
      S: number of keys (default T).
      q_offset: absolute position of the first query (a KV-cache index); may be traced.

    Returns:
      bool_TS, True where key j <= q_offset + i.
    """
    S = T if S is None else S
    q_pos, k_pos = _positions(T, S, q_offset)
    return k_pos <= q_pos


def padding_mask(lengths_B, S: int):
    """Key-padding mask from sequence lengths.

    Args:
      lengths_B: int[B], number of valid (leading) keys per example.
      S: padded key length.

    Returns:
      bool_BS, True for valid keys. Broadcast to [B,N,T,S] with `expand_key_mask`.
    """
    xp = _xp(lengths_B)
    lengths_B = xp.asarray(lengths_B, np.int32)
    return xp.arange(S, dtype=np.int32)[None, :] < lengths_B[:, None]


def token_padding_mask(tokens_BS, pad_id: int = 0):
    """Key-padding mask from token ids: True where the token is not `pad_id` (bool_BS)."""
    return _xp(tokens_BS).asarray(tokens_BS) != pad_id


def expand_key_mask(valid_BS):
    """bool_BS key mask -> bool_B11S, broadcastable against [B,N,T,S]."""
    return valid_BS[:, None, None, :]


def pair_padding_mask(q_valid_BT, k_valid_BS):
    """bool_B1TS mask that also blanks padded queries (their rows give zeros)."""
    return (q_valid_BT[:, :, None] & k_valid_BS[:, None, :])[:, None, :, :]


def prefix_lm_mask(T: int, prefix_len_B, S: int | None = None, q_offset=0):
    """Prefix-LM mask (Raffel et al. 2020, T5 §3.2.3).

    Keys inside the prefix are visible to every query (the prefix is encoded
    bidirectionally); later keys are causal.

    Args:
      T: number of queries.
      prefix_len_B: int prefix length, or int[B] per example.
      S: number of keys (default T).
      q_offset: absolute position of the first query.

    Returns:
      bool_TS for a scalar prefix length, bool_BTS for a per-example one.
    """
    S = T if S is None else S
    q_pos, k_pos = _positions(T, S, q_offset)
    prefix = _xp(prefix_len_B, q_offset).asarray(prefix_len_B, np.int32)
    if prefix.ndim == 0:
        return (k_pos <= q_pos) | (k_pos < prefix)
    if prefix.ndim != 1:
        raise ValueError(f"prefix_len_B must be a scalar or rank 1, got shape {prefix.shape}")
    return (k_pos <= q_pos)[None] | (k_pos[None] < prefix[:, None, None])


def sliding_window_mask(T: int, S: int | None, window: int, causal: bool = True, q_offset=0):
    """Local (sliding-window) mask: |query pos - key pos| < window.

    With `causal`, each query sees itself and the `window - 1` keys before it
    (`window` keys in all, as Mistral's sliding window); without, also the
    `window - 1` keys after it.

    Args:
      T: number of queries.
      S: number of keys (None = T).
      window: window size, >= 1.
      causal: also require key pos <= query pos.
      q_offset: absolute position of the first query.

    Returns:
      bool_TS.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    S = T if S is None else S
    q_pos, k_pos = _positions(T, S, q_offset)
    delta = q_pos - k_pos
    if causal:
        return (delta >= 0) & (delta < window)
    return abs(delta) < window


def strided_mask(T: int, S: int | None, block: int, stride: int, q_offset=0):
    """Block-sparse strided pattern of the Sparse Transformer (Child et al. 2019, §4.2).

    Positions are grouped in blocks of `block`; with d = query block - key block,
    a query attends to a key when |d| < stride (the local part: the previous
    `stride - 1` blocks and its own) or d % stride == 0 (the strided part).
    With block=1 this is exactly the paper's strided pattern with l = stride; a
    larger block keeps every touched block dense, which is what a block-sparse
    kernel needs. Not causal by itself: combine with `causal_mask` (or set
    `MaskSpec.causal`) for the autoregressive pattern.

    Args:
      T: number of queries.
      S: number of keys (None = T).
      block: block size in positions, >= 1.
      stride: stride in blocks, >= 1.
      q_offset: absolute position of the first query.

    Returns:
      bool_TS.
    """
    if block < 1 or stride < 1:
        raise ValueError(f"block and stride must be >= 1, got block={block}, stride={stride}")
    S = T if S is None else S
    q_pos, k_pos = _positions(T, S, q_offset)
    d = q_pos // block - k_pos // block
    return (abs(d) < stride) | (d % stride == 0)


def _broadcast_rank(*arrays):
    """Prepend unit axes so all arrays share one rank (rank promotion is an error here)."""
    rank = max(a.ndim for a in arrays)
    return [a.reshape((1,) * (rank - a.ndim) + a.shape) for a in arrays]


def combine_masks(*masks):
    """Logical AND of masks, broadcasting numpy-style; None entries are ignored.

    Returns:
      The combined bool mask, or None when every input is None.
    """
    masks = [m for m in masks if m is not None]
    if not masks:
        return None
    xp = _xp(*masks)
    masks = [xp.asarray(m, np.bool_) for m in masks]
    masks = _broadcast_rank(*masks)
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out


@dataclasses.dataclass(frozen=True)
class MaskSpec:
    """Structured description of a mask (hashable: usable as a static jit argument).

    The allowed set is the AND of every constraint that is set, at query
    position qp = q_offset + i and key position kp = j:

    - causal: kp <= qp, or kp < prefix_len when `prefix_len` is set (prefix-LM).
    - window: |qp - kp| < window (see `sliding_window_mask`).
    - block/stride: the strided pattern of `strided_mask`; `block` alone means
      block-local attention (same block only), `stride` alone block=1.

    Per-example masks (padding, per-example prefix lengths) are not part of the
    spec: they travel as explicit masks or `kv_lengths_B`.

    Attributes:
      causal: autoregressive.
      window: sliding-window size, None = unbounded.
      block: block size of the sparse pattern.
      stride: stride (in blocks) of the sparse pattern.
      prefix_len: bidirectional prefix length (only meaningful with causal).
    """

    causal: bool = False
    window: int | None = None
    block: int | None = None
    stride: int | None = None
    prefix_len: int | None = None

    def __post_init__(self):
        for name in ("window", "block", "stride"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"MaskSpec.{name} must be >= 1 or None, got {value}")
        if self.prefix_len is not None and self.prefix_len < 0:
            raise ValueError(f"MaskSpec.prefix_len must be >= 0 or None, got {self.prefix_len}")

    @property
    def is_full(self) -> bool:
        """True when the spec allows every (query, key) pair."""
        return (
            not self.causal and self.window is None and self.block is None and self.stride is None
        )

    def dense(self, T: int, S: int | None = None, q_offset=0):
        """The dense bool_TS mask (True = may attend) at the given query offset."""
        S = T if S is None else S
        mask = _xp(q_offset).ones((T, S), np.bool_)
        if self.causal:
            if self.prefix_len:
                mask = prefix_lm_mask(T, self.prefix_len, S, q_offset)
            else:
                mask = causal_mask(T, S, q_offset)
        if self.window is not None:
            mask = mask & sliding_window_mask(T, S, self.window, causal=False, q_offset=q_offset)
        if self.block is not None and self.stride is not None:
            mask = mask & strided_mask(T, S, self.block, self.stride, q_offset)
        elif self.block is not None:
            q_pos, k_pos = _positions(T, S, q_offset)
            mask = mask & (q_pos // self.block == k_pos // self.block)
        elif self.stride is not None:
            mask = mask & strided_mask(T, S, 1, self.stride, q_offset)
        return mask
