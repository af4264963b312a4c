"""Attention layer: equivalence to a naive reference, GQA, cross, KV-cache decode, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.nn import Attention

D, N, T = 32, 4, 12


def jitted(module, **static):
    """module(*args, **static, **kwargs) as one jitted function (one compile, not one per op)."""
    graphdef, state = nnx.split(module)
    fn = jax.jit(lambda state, *a, **kw: nnx.merge(graphdef, state)(*a, **static, **kw))
    return functools.partial(fn, state)


def _x(key, B=2, T=T, D=D):
    return jax.random.normal(jax.random.key(key), (B, T, D), jnp.float32)


def _naive_mha(x, context, w_q, w_k, w_v, w_out, causal):
    """Reference: per-head softmax(q k^T / sqrt(H)) v in float64 numpy."""
    x, context = np.asarray(x, np.float64), np.asarray(context, np.float64)
    q = np.einsum("btd,dnh->bnth", x, w_q)
    k = np.einsum("bsd,dnh->bnsh", context, w_k)
    v = np.einsum("bsd,dnh->bnsh", context, w_v)
    logits = np.einsum("bnth,bnsh->bnts", q, k) / np.sqrt(q.shape[-1])
    if causal:
        T_, S_ = logits.shape[-2:]
        logits = np.where(np.tril(np.ones((T_, S_), bool)), logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    out = np.einsum("bnts,bnsh->btnh", w, v)
    return np.einsum("btnh,nhd->btd", out, w_out)


@pytest.mark.parametrize("causal", [False, True])
def test_mha_matches_naive_reference(causal):
    """A GQA layer with K = N is plain multi-head attention."""
    layer = Attention(D, N, num_kv_heads=N, causal=causal, rngs=nnx.Rngs(0))
    w = np.asarray(layer.w_qkv[...], np.float64)
    x = _x(1)
    want = _naive_mha(x, x, w[:, :N], w[:, N : 2 * N], w[:, 2 * N :], layer.w_out[...], causal)
    np.testing.assert_allclose(jitted(layer)(x), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("K", [2, 1])
def test_gqa_equals_mha_with_repeated_kv_heads(K):
    """A GQA layer equals the MHA layer whose kv heads are the GQA ones repeated G times."""
    gqa = Attention(D, N, num_kv_heads=K, causal=True, position="rope", rngs=nnx.Rngs(1))
    mha = Attention(D, N, causal=True, position="rope", rngs=nnx.Rngs(2))
    w = gqa.w_qkv[...]
    q, k, v = w[:, :N], w[:, N : N + K], w[:, N + K :]
    G = N // K
    mha.w_qkv[...] = jnp.concatenate([q, jnp.repeat(k, G, 1), jnp.repeat(v, G, 1)], axis=1)
    mha.w_out[...] = gqa.w_out[...]
    x = _x(3)
    np.testing.assert_allclose(jitted(gqa)(x), jitted(mha)(x), atol=1e-5, rtol=1e-5)


def test_cross_attention_with_different_lengths():
    layer = Attention(D, N, num_kv_heads=2, cross=True, rngs=nnx.Rngs(0))
    x, context = _x(1, T=5), _x(2, T=9)
    out = jitted(layer)(x, context)
    assert out.shape == (2, 5, D)
    w_kv = np.asarray(layer.w_kv[...], np.float64)
    w_k, w_v = np.repeat(w_kv[:, :2], 2, 1), np.repeat(w_kv[:, 2:], 2, 1)
    want = _naive_mha(x, context, layer.w_q[...], w_k, w_v, layer.w_out[...], False)
    np.testing.assert_allclose(out, want, atol=1e-5, rtol=1e-5)
    # The cross cache projects the context once; later calls reuse it.
    cache = layer.init_cross_cache(context)
    out_cached, same_cache = jitted(layer)(x, cache=cache)
    np.testing.assert_allclose(out_cached, out, atol=1e-6)
    np.testing.assert_array_equal(same_cache.k_BSKH, cache.k_BSKH)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(position="rope", num_kv_heads=2),
        dict(position="alibi", num_kv_heads=1, window=5),
        dict(position="relative", score="multiplicative"),
    ],
)
def test_kv_cache_decode_equals_full_causal_forward(kwargs):
    steps = 32
    layer = Attention(D, N, causal=True, rngs=nnx.Rngs(0), **kwargs)
    x = _x(4, T=steps)
    apply = jitted(layer)
    full = apply(x)
    cache = layer.init_cache(2, steps)
    outs = []
    for t in range(steps):
        out, cache = apply(x[:, t : t + 1], cache=cache)
        outs.append(out)
    np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5, rtol=1e-5)
    assert int(cache.index) == steps


def test_return_weights_are_causal_distributions():
    layer = Attention(D, N, causal=True, position="alibi", rngs=nnx.Rngs(0))
    out, weights = jitted(layer, return_weights=True)(_x(5))
    assert out.shape == (2, T, D)
    assert weights.shape == (2, N, T, T)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert float(jnp.abs(jnp.triu(weights, k=1)).max()) == 0.0


def test_padding_by_kv_lengths_ignores_padded_keys():
    layer = Attention(D, N, rngs=nnx.Rngs(0))
    x = _x(6)
    lengths = jnp.array([7, T])
    apply = jitted(layer)
    out = apply(x, kv_lengths_B=lengths)
    changed = x.at[0, 7:].set(100.0)  # garbage in padded keys must not matter
    np.testing.assert_allclose(apply(changed, kv_lengths_B=lengths)[0, :7], out[0, :7], atol=1e-5)


def test_unknown_choices_fail_at_construction_naming_valid_keys():
    with pytest.raises(ValueError, match="xla"):
        Attention(D, N, kernel="no_such_kernel", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="scaled_dot"):
        Attention(D, N, score="cosine", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="rope"):
        Attention(D, N, position="xpos", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="multiple"):
        Attention(D, N, num_kv_heads=3, rngs=nnx.Rngs(0))


def test_registry_kernel_matches_xla_path_including_decode():
    kwargs = dict(num_kv_heads=2, causal=True, position="alibi")
    xla = jitted(Attention(D, N, rngs=nnx.Rngs(0), **kwargs))
    options = dict(block_q=4, block_k=4)
    layer = Attention(D, N, kernel="blockwise", kernel_options=options, rngs=nnx.Rngs(0), **kwargs)
    apply = jitted(layer)
    x = _x(8)
    full = xla(x)
    np.testing.assert_allclose(apply(x), full, atol=1e-5)
    cache, outs = layer.init_cache(2, T), []
    for t in range(T):
        out, cache = apply(x[:, t : t + 1], cache=cache)
        outs.append(out)
    np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)


def test_every_kernel_including_xla_goes_through_the_registry(monkeypatch):
    """The layer's dense path is KERNELS["xla"]: replacing the entry changes the layer."""
    from attn_jax.ops import kernels

    calls = []
    real = kernels.KERNELS["xla"]

    def recorded(q_BTNH, k_BSKH, v_BSKH, **kwargs):
        calls.append(sorted(kwargs))
        return 0.0 * real(q_BTNH, k_BSKH, v_BSKH, **kwargs)

    monkeypatch.setitem(kernels.KERNELS, "xla", recorded)
    layer = Attention(D, N, causal=True, position="alibi", rngs=nnx.Rngs(0))
    out = jitted(layer)(_x(9))
    assert calls
    assert "spec" in calls[0]
    assert "bias_fn" in calls[0]
    np.testing.assert_array_equal(out, np.zeros_like(out))


def test_xla_kernel_takes_dropout_weights_and_parameterized_scores():
    """Dense-only options: dropout is keyed, weights come before dropout, any score."""
    layer = Attention(D, N, causal=True, score="additive", attn_dropout=0.5, rngs=nnx.Rngs(0))
    x = _x(10)
    apply = jitted(layer, return_weights=True)
    out, weights = apply(x)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert float(jnp.abs(jnp.triu(weights, k=1)).max()) == 0.0
    train = jitted(layer, return_weights=True, deterministic=False)
    key = jax.random.key(3)
    dropped, same_weights = train(x, dropout_rng=key)
    np.testing.assert_allclose(same_weights, weights, atol=1e-6)
    assert float(jnp.abs(dropped - out).max()) > 1e-3
    np.testing.assert_array_equal(train(x, dropout_rng=key)[0], dropped)


def test_dense_only_options_on_other_kernels_raise_naming_the_option():
    layer = Attention(D, N, causal=True, kernel="blockwise", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="return_weights.*kernel='xla'"):
        layer(_x(11), return_weights=True)
    with pytest.raises(ValueError, match="mask.*kernel='xla'"):
        layer(_x(11), mask=jnp.ones((T, T), bool))
    with pytest.raises(ValueError, match="kernel='xla'"):
        Attention(D, N, kernel="blockwise", score="additive", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("score", ["scaled_dot", "dot"])
def test_xla_layouts_agree_on_gqa_with_bias_padding_and_weights(score):
    """KERNELS["xla"]'s heads-major layout equals the token-major ops path."""
    kwargs = dict(num_kv_heads=2, causal=True, position="alibi", score=score)
    fast = Attention(D, N, rngs=nnx.Rngs(0), **kwargs)
    plain = Attention(D, N, kernel_options=dict(layout="token_major"), rngs=nnx.Rngs(0), **kwargs)
    x, lengths = _x(12), jnp.array([5, T])
    out, weights = jitted(fast, return_weights=True)(x, kv_lengths_B=lengths)
    want, want_weights = jitted(plain, return_weights=True)(x, kv_lengths_B=lengths)
    np.testing.assert_allclose(out, want, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
