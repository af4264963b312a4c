"""Greedy and beam-search decoding of an `EncoderDecoder` through its KV caches.

Dimension key: B batch, W beams, S source length, T generated length, V vocabulary.

The source is encoded once and its cross-attention keys/values projected once
per decoder layer (`init_cross_caches`); each step then feeds one token per
hypothesis through the decoder's self-attention caches. The whole loop is one
jitted `lax.while_loop` at fixed shapes (it stops early once every hypothesis
is finished), so a decode of a given batch shape compiles once.

Outputs are int32 ids without BOS: the hypothesis, its EOS, then PAD.

Beam search keeps W alive hypotheses and the W best finished ones per example
(as in Wu et al. 2016 and the flax/T5X decoders). Each step scores the W x V
extensions, takes the top 2W (at most W of them end in EOS, so W alive ones
always remain), moves the EOS ones to the finished set with the GNMT length
penalty score log P(Y) / lp(Y), lp(Y) = ((5 + |Y|) / 6)^alpha (Wu et al. 2016,
eq. 14; |Y| counts the generated tokens, EOS included), and keeps the W best
others alive. It stops when no alive hypothesis can still beat the worst
finished one (log-probs only fall; the bound divides by the largest lp still
reachable), or at max_len; an example with no finished hypothesis returns its
best alive one.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.data.pairs import BOS, EOS, PAD

NEG = -1.0e9  # "no hypothesis": finite, so sums and comparisons stay well defined


def length_penalty(length, alpha: float):
    """GNMT length penalty ((5 + |Y|) / 6)^alpha (Wu et al. 2016, eq. 14)."""
    return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def _check(src_BS, src_len_B, max_len: int):
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}.")
    src_BS = jnp.asarray(src_BS, jnp.int32)
    src_len_B = jnp.asarray(src_len_B, jnp.int32)
    if src_BS.ndim != 2 or src_len_B.shape != src_BS.shape[:1]:
        raise ValueError(
            f"Expected src_BS [B, S] and src_len_B [B]; got {src_BS.shape} and {src_len_B.shape}."
        )
    return src_BS, src_len_B


@partial(jax.jit, static_argnames=("graphdef", "max_len"))
def _greedy(graphdef, state, src_BS, src_len_B, *, max_len):
    model = nnx.merge(graphdef, state)
    B = src_BS.shape[0]
    cross = model.init_cross_caches(model.encode(src_BS, src_len_B))

    def cond(carry):
        t, _, done_B, _, _ = carry
        return (t < max_len) & ~jnp.all(done_B)

    def body(carry):
        t, token_B, done_B, cache, out_BT = carry
        logits_B1V, cache = model.decode(
            token_B[:, None], None, src_len_B, cache=cache, cross_cache=cross
        )
        next_B = jnp.argmax(logits_B1V[:, 0], axis=-1).astype(jnp.int32)
        next_B = jnp.where(done_B, PAD, next_B)
        out_BT = jax.lax.dynamic_update_slice(out_BT, next_B[:, None], (0, t))
        return t + 1, next_B, done_B | (next_B == EOS), cache, out_BT

    carry = (
        jnp.zeros((), jnp.int32),
        jnp.full((B,), BOS, jnp.int32),
        jnp.zeros((B,), bool),
        model.init_cache(B, max_len),
        jnp.full((B, max_len), PAD, jnp.int32),
    )
    return jax.lax.while_loop(cond, body, carry)[-1]


def greedy(model: nnx.Module, src_BS, src_len_B, *, max_len: int) -> jax.Array:
    """Greedy decoding: the argmax token at every step, until EOS or `max_len` tokens.

    Args:
      model: an `EncoderDecoder`.
      src_BS: int source ids (padded after src_len_B).
      src_len_B: int valid source tokens per example.
      max_len: most tokens generated per example, EOS included.

    Returns:
      int32 tokens_BT, T = max_len: each hypothesis, its EOS, then PAD.
    """
    src_BS, src_len_B = _check(src_BS, src_len_B, max_len)
    graphdef, state = nnx.split(model)
    return _greedy(graphdef, state, src_BS, src_len_B, max_len=int(max_len))


def _gather_beams(x_BW, idx_BK):
    """x[b, idx[b, k]] for every k: [B, W, ...] -> [B, K, ...]."""
    idx = idx_BK.reshape(idx_BK.shape + (1,) * (x_BW.ndim - 2))
    return jnp.take_along_axis(x_BW, idx, axis=1)


@partial(jax.jit, static_argnames=("graphdef", "beam_size", "max_len", "alpha"))
def _beam(graphdef, state, src_BS, src_len_B, *, beam_size, max_len, alpha):
    model = nnx.merge(graphdef, state)
    B, W = src_BS.shape[0], beam_size
    V = model.config.vocab_size
    # Every example's source is encoded once and shared by its W beams.
    enc_BSD = model.encode(src_BS, src_len_B)
    len_X = jnp.repeat(src_len_B, W)  # X = B * W hypotheses, example-major
    cross = model.init_cross_caches(jnp.repeat(enc_BSD, W, axis=0))
    lp_max = jnp.maximum(length_penalty(1, alpha), length_penalty(max_len, alpha))

    def cond(carry):
        t, _, alive_lp_BW, _, fin_score_BW, _ = carry
        # No alive hypothesis can beat the worst finished one: stop.
        bound_B = alive_lp_BW[:, 0] / lp_max
        return (t < max_len) & ~jnp.all(fin_score_BW[:, -1] >= bound_B)

    def body(carry):
        t, alive_BWT, alive_lp_BW, fin_BWT, fin_score_BW, cache = carry
        token_X = jnp.where(t == 0, BOS, jax.lax.dynamic_index_in_dim(alive_BWT, t - 1, 2, False))
        logits_X1V, cache = model.decode(
            token_X.reshape(-1, 1), None, len_X, cache=cache, cross_cache=cross
        )
        logp_BWV = jax.nn.log_softmax(logits_X1V[:, 0]).reshape(B, W, V)
        cand_BM = (alive_lp_BW[:, :, None] + logp_BWV).reshape(B, W * V)
        top_lp_BK, top_idx_BK = jax.lax.top_k(cand_BM, 2 * W)  # K = 2W candidates
        beam_BK, token_BK = top_idx_BK // V, (top_idx_BK % V).astype(jnp.int32)
        top_BKT = _gather_beams(alive_BWT, beam_BK)
        top_BKT = jax.lax.dynamic_update_slice(top_BKT, token_BK[:, :, None], (0, 0, t))
        eos_BK = token_BK == EOS
        real_BK = top_lp_BK > NEG / 2  # not an extension of an empty beam slot
        # Finished: the W best of the old finished and the new EOS candidates.
        new_score_BK = jnp.where(eos_BK & real_BK, top_lp_BK / length_penalty(t + 1, alpha), NEG)
        all_score = jnp.concatenate([fin_score_BW, new_score_BK], axis=1)
        fin_score_BW, keep = jax.lax.top_k(all_score, W)
        fin_BWT = _gather_beams(jnp.concatenate([fin_BWT, top_BKT], axis=1), keep)
        # Alive: the W best candidates that did not end.
        alive_lp_BW, keep = jax.lax.top_k(jnp.where(eos_BK, NEG, top_lp_BK), W)
        alive_BWT = _gather_beams(top_BKT, keep)
        parent_X = (jnp.arange(B)[:, None] * W + _gather_beams(beam_BK, keep)).reshape(-1)
        cache = jax.tree.map(lambda x: x[parent_X] if x.ndim else x, cache)
        return t + 1, alive_BWT, alive_lp_BW, fin_BWT, fin_score_BW, cache

    carry = (
        jnp.zeros((), jnp.int32),
        jnp.full((B, W, max_len), PAD, jnp.int32),
        jnp.full((B, W), NEG, jnp.float32).at[:, 0].set(0.0),  # one live beam at the start
        jnp.full((B, W, max_len), PAD, jnp.int32),
        jnp.full((B, W), NEG, jnp.float32),
        model.init_cache(B * W, max_len),
    )
    _, alive_BWT, alive_lp_BW, fin_BWT, fin_score_BW, _ = jax.lax.while_loop(cond, body, carry)
    none_B = fin_score_BW[:, 0] <= NEG / 2  # nothing finished within max_len
    alive_score_BW = alive_lp_BW / length_penalty(max_len, alpha)
    tokens_BWT = jnp.where(none_B[:, None, None], alive_BWT, fin_BWT)
    scores_BW = jnp.where(none_B[:, None], alive_score_BW, fin_score_BW)
    return tokens_BWT, scores_BW


def beam_search_all(
    model: nnx.Module,
    src_BS,
    src_len_B,
    *,
    beam_size: int,
    max_len: int,
    length_penalty: float = 0.6,
) -> tuple[jax.Array, jax.Array]:
    """Beam search; the W finished hypotheses per example, best first, and their scores.

    Args:
      model: an `EncoderDecoder`.
      src_BS: int source ids (padded after src_len_B).
      src_len_B: int valid source tokens per example.
      beam_size: W >= 1.
      max_len: most tokens generated per hypothesis, EOS included.
      length_penalty: alpha of the GNMT penalty (0 = raw log-probability; GNMT: 0.6..0.7).

    Returns:
      (tokens_BWT int32, scores_BW float32: log P / lp; NEG where a slot is empty).
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}.")
    src_BS, src_len_B = _check(src_BS, src_len_B, max_len)
    graphdef, state = nnx.split(model)
    return _beam(
        graphdef,
        state,
        src_BS,
        src_len_B,
        beam_size=int(beam_size),
        max_len=int(max_len),
        alpha=float(length_penalty),
    )


def beam_search(
    model: nnx.Module,
    src_BS,
    src_len_B,
    *,
    beam_size: int,
    max_len: int,
    length_penalty: float = 0.6,
) -> jax.Array:
    """The best beam-search hypothesis per example: int32 tokens_BT (see `beam_search_all`)."""
    tokens_BWT, _ = beam_search_all(
        model,
        src_BS,
        src_len_B,
        beam_size=beam_size,
        max_len=max_len,
        length_penalty=length_penalty,
    )
    return tokens_BWT[:, 0]


def strip_eos(tokens_T) -> list[int]:
    """A decoded row's ids before its first EOS (PAD and other specials dropped by decode)."""
    out = []
    for i in (int(x) for x in tokens_T):
        if i == EOS:
            break
        out.append(i)
    return out
