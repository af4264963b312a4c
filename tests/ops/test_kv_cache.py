"""KV-cache decoding equals the full causal forward; cross-attention caches."""

import functools

import jax
import numpy as np
import pytest

from attn_jax.ops import (
    MaskSpec,
    alibi_bias,
    alibi_bias_fn,
    alibi_slopes,
    apply_rope,
    cached_self_attention,
    cross_cache,
    decode_mask,
    decode_positions,
    dot_product_attention,
    init_cache,
    padding_mask,
    update_cache,
)

B, S_MAX, N, H = 2, 32, 4, 8


def _qkv(K, T=S_MAX, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, T, N, H)).astype(np.float32)
    k = rng.standard_normal((B, T, K, H)).astype(np.float32)
    v = rng.standard_normal((B, T, K, H)).astype(np.float32)
    return q, k, v


def _with_positions(q, k, positions, rope):
    if rope:
        q, k = apply_rope(q, positions), apply_rope(k, positions)
    return q, k


@functools.partial(jax.jit, static_argnames=("rope", "alibi", "window"))
def full_forward(q, k, v, *, rope, alibi, window):
    T = q.shape[1]
    positions = np.arange(T)
    q, k = _with_positions(q, k, positions, rope)
    bias = alibi_bias(alibi_slopes(N), positions, positions) if alibi else None
    mask = MaskSpec(causal=True, window=window).dense(T)
    return dot_product_attention(q, k, v, mask=mask, bias=bias)


@functools.partial(jax.jit, static_argnames=("rope", "alibi", "window"))
def decode_step(q, k, v, cache, *, rope, alibi, window):
    """T new tokens through the cache; positions come from the cache index."""
    positions = decode_positions(cache.index, q.shape[1])
    q, k = _with_positions(q, k, positions, rope)
    bias_fn = alibi_bias_fn(alibi_slopes(N)) if alibi else None
    return cached_self_attention(q, k, v, cache, bias_fn=bias_fn, window=window)


def _decode(q, k, v, chunks, **options):
    cache = init_cache(B, S_MAX, k.shape[2], H)
    outs, start = [], 0
    for size in chunks:
        stop = start + size
        out, cache = decode_step(
            q[:, start:stop], k[:, start:stop], v[:, start:stop], cache, **options
        )
        outs.append(np.asarray(out))
        start = stop
    assert int(cache.index) == start
    return np.concatenate(outs, axis=1), cache


@pytest.mark.parametrize("K", [4, 2, 1])
def test_32_single_token_steps_equal_full_causal_forward(K):
    q, k, v = _qkv(K)
    options = dict(rope=False, alibi=False, window=None)
    compiled_before = decode_step._cache_size()
    got, cache = _decode(q, k, v, [1] * S_MAX, **options)
    assert decode_step._cache_size() == compiled_before + 1  # one compile serves all 32 steps
    np.testing.assert_allclose(got, full_forward(q, k, v, **options), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(cache.k_BSKH, k)
    np.testing.assert_array_equal(cache.v_BSKH, v)


def test_chunked_decoding_with_rope_alibi_and_window():
    """Prefill 8, then steps of 1 and 6: positions come from the cache index."""
    q, k, v = _qkv(2, seed=1)
    options = dict(rope=True, alibi=True, window=5)
    got, _ = _decode(q, k, v, [8, 1, 1, 6] + [1] * 16, **options)
    np.testing.assert_allclose(got, full_forward(q, k, v, **options), atol=1e-5, rtol=1e-5)


def test_update_cache_and_decode_mask():
    cache = init_cache(1, 6, 1, 2)
    assert cache.k_BSKH.shape == (1, 6, 1, 2)
    assert int(cache.index) == 0
    new = np.arange(1, 5, dtype=np.float32).reshape(1, 2, 1, 2)
    cache = update_cache(update_cache(cache, new, -new), new, -new)
    assert int(cache.index) == 4
    np.testing.assert_array_equal(cache.k_BSKH[0, :4, 0], np.concatenate([new[0, :, 0]] * 2))
    np.testing.assert_array_equal(cache.k_BSKH[0, 4:], 0)
    np.testing.assert_array_equal(cache.v_BSKH[0, :4, 0], -np.concatenate([new[0, :, 0]] * 2))
    mask = np.asarray(decode_mask(2, 3, 6))
    want = np.array([[j <= 2 + i for j in range(6)] for i in range(3)])
    np.testing.assert_array_equal(mask, want)
    assert not mask[:, 5].any()  # slots not yet written stay hidden
    leaves = jax.tree.leaves(cache)
    assert len(leaves) == 3  # a pytree: passes through jit/scan as a carry


def test_cross_cache_equals_direct_cross_attention():
    rng = np.random.default_rng(3)
    enc_k = rng.standard_normal((B, 10, 2, H)).astype(np.float32)
    enc_v = rng.standard_normal((B, 10, 2, H)).astype(np.float32)
    cache = cross_cache(enc_k, enc_v)
    assert int(cache.index) == 10
    enc_mask = padding_mask(np.array([10, 6]), 10)[:, None, None, :]
    attend = jax.jit(dot_product_attention)
    q_all = rng.standard_normal((B, 4, N, H)).astype(np.float32)
    want = np.asarray(attend(q_all, enc_k, enc_v, mask=enc_mask))
    for t in range(4):  # one decoder step at a time, the encoder side never recomputed
        got = attend(q_all[:, t : t + 1], cache.k_BSKH, cache.v_BSKH, mask=enc_mask)
        np.testing.assert_allclose(got, want[:, t : t + 1], atol=1e-6)
