"""dot_product_attention against the float64 NumPy reference: forward and gradients.

The matrix is head layout (MHA/GQA/MQA) x mask x position scheme. Masks and
position inputs travel as arrays of one shape, so each head layout compiles once.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from reference import (
    reference_alibi_bias,
    reference_attention,
    reference_attention_grad,
    reference_relative_bucket,
    reference_rope,
    reference_sinusoidal,
    reference_t5_bias,
)

from attn_jax.ops import (
    alibi_bias,
    alibi_slopes,
    apply_rope,
    causal_mask,
    combine_masks,
    dot_product_attention,
    padding_mask,
    prefix_lm_mask,
    sliding_window_mask,
    strided_mask,
    t5_relative_bias,
)

B, T, N, H = 2, 8, 4, 8
HEADS = {"mha": 4, "gqa": 2, "mqa": 1}
LENGTHS = np.array([8, 5])
PREFIX = np.array([3, 5])
R, MAX_DIST = 8, 16


@functools.cache
def make_mask(name):
    """bool [B,1,T,T] (NumPy, built once) for each mask kind of the matrix."""
    builders = {
        "none": lambda: np.ones((T, T), bool),
        "causal": lambda: causal_mask(T),
        "padding": lambda: padding_mask(LENGTHS, T)[:, None, None, :],
        "prefix": lambda: prefix_lm_mask(T, PREFIX)[:, None],
        "window": lambda: sliding_window_mask(T, T, 3, causal=True),
        "strided": lambda: combine_masks(causal_mask(T), strided_mask(T, T, 2, 2)),
        "combined": lambda: combine_masks(
            causal_mask(T), sliding_window_mask(T, T, 4), padding_mask(LENGTHS, T)[:, None, None]
        ),
    }
    mask = np.broadcast_to(np.asarray(builders[name]()), (B, 1, T, T))
    mask.flags.writeable = False
    return mask


def inputs(K, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, T, N, H))
    k = rng.standard_normal((B, T, K, H))
    v = rng.standard_normal((B, T, K, H))
    dout = rng.standard_normal((B, T, N, H))
    table = 0.5 * rng.standard_normal((R, N))
    return q, k, v, dout, table


@jax.jit
def out_and_grads(q, k, v, dout, mask, table, rope_pos_BT, alibi_on):
    """Output and d(sum(out * dout))/d(q, k, v, table) with every position path live.

    One compile per head layout serves every scheme: zero RoPE positions are the
    identity rotation, `alibi_on` switches ALiBi, a zero table gives no T5 bias.
    """
    pos_T = jnp.arange(T)

    def loss(q, k, v, table):
        q, k = apply_rope(q, rope_pos_BT), apply_rope(k, rope_pos_BT)
        bias = alibi_on * alibi_bias(alibi_slopes(N), pos_T, pos_T)
        bias = bias + t5_relative_bias(table, pos_T, pos_T, True, MAX_DIST)
        out = dot_product_attention(q, k, v, mask=mask, bias=bias)
        return jnp.sum(out * dout), out

    (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(q, k, v, table)
    return out, grads


def expected(q, k, v, dout, mask, table, scheme):
    """Reference output and gradients (d q, d k, d v, d table) in float64."""
    pos = np.broadcast_to(np.arange(T), (B, T))
    bias = None
    if scheme == "rope":
        q, k = reference_rope(q, pos), reference_rope(k, pos)
    elif scheme == "alibi":
        bias = reference_alibi_bias(np.asarray(alibi_slopes(N)), np.arange(T), np.arange(T))
    elif scheme == "relative":
        bias = reference_t5_bias(table, np.arange(T), np.arange(T), True, MAX_DIST)
    out, _ = reference_attention(q, k, v, mask=mask, bias=bias)
    dq, dk, dv, dlogits = reference_attention_grad(q, k, v, dout, mask=mask, bias=bias)
    if scheme == "rope":  # rotations are orthogonal: the transpose rotates back
        dq, dk = reference_rope(dq, -pos), reference_rope(dk, -pos)
    dtable = np.zeros_like(table)
    if scheme == "relative":
        for t in range(T):
            for s in range(T):
                r = reference_relative_bucket(s - t, True, R, MAX_DIST)
                dtable[r] += dlogits[:, :, t, s].sum(axis=0)
    return out, (dq, dk, dv, dtable)


@pytest.mark.parametrize("scheme", ["none", "sinusoidal", "rope", "alibi", "relative"])
@pytest.mark.parametrize(
    "mask_name", ["none", "causal", "padding", "prefix", "window", "strided", "combined"]
)
@pytest.mark.parametrize("heads", list(HEADS))
def test_matches_reference_forward_and_grad(heads, mask_name, scheme):
    q, k, v, dout, table = inputs(HEADS[heads])
    if scheme == "sinusoidal":  # absolute encodings are added before attention
        pe = reference_sinusoidal(np.arange(T), H)[None, :, None, :]
        q, k = q + pe, k + pe
    mask = make_mask(mask_name)
    if scheme != "relative":
        table = np.zeros_like(table)
    want_out, want_grads = expected(q, k, v, dout, mask, table, scheme)
    rope_pos = np.broadcast_to(np.arange(T), (B, T)) * (scheme == "rope")
    out, grads = out_and_grads(
        *(np.float32(x) for x in (q, k, v, dout)),
        mask,
        np.float32(table),
        rope_pos.astype(np.int32),
        np.float32(scheme == "alibi"),
    )
    np.testing.assert_allclose(out, want_out, atol=1e-5, rtol=1e-5)
    names = ["q", "k", "v", "table"] if scheme == "relative" else ["q", "k", "v"]
    for name, got, want in zip(names, grads, want_grads):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5, err_msg=f"d{name}")


@pytest.mark.parametrize("K", [4, 2, 1])
def test_reference_backward_matches_finite_differences(K):
    """The analytic reference gradient agrees with central differences (directional)."""
    q, k, v, dout, _ = inputs(K, seed=1)
    mask = make_mask("combined")
    bias = np.random.default_rng(2).standard_normal((1, N, T, T))
    dq, dk, dv, dbias = reference_attention_grad(q, k, v, dout, mask=mask, bias=bias)

    def loss(q, k, v, bias):
        return np.sum(reference_attention(q, k, v, mask=mask, bias=bias)[0] * dout)

    rng = np.random.default_rng(3)
    args, grads = [q, k, v, bias], [dq, dk, dv, dbias.sum(axis=0, keepdims=True)]
    for i, (arg, grad) in enumerate(zip(args, grads)):
        u = rng.standard_normal(arg.shape)
        eps = 1e-6
        plus, minus = list(args), list(args)
        plus[i], minus[i] = arg + eps * u, arg - eps * u
        fd = (loss(*plus) - loss(*minus)) / (2 * eps)
        np.testing.assert_allclose(np.sum(grad * u), fd, rtol=1e-6, atol=1e-7)


# Jitted once per shape: eager calls would compile every primitive separately.
dpa = jax.jit(dot_product_attention, static_argnames=("score", "dropout_rate", "return_weights"))
nn_dpa = jax.jit(jax.nn.dot_product_attention, static_argnames=("is_causal", "local_window_size"))


def _nn_inputs(K, seed=0):
    q, k, v, _, _ = inputs(K, seed)
    return [np.float32(x) for x in (q, k, v)]


def _full(mask):
    return np.broadcast_to(np.asarray(mask), (B, 1, T, T))


NN_CASES = {
    # name: (jax.nn keyword arguments, our mask, with bias)
    "mask_bias": ({}, make_mask("padding"), True),
    "causal_scale": ({"is_causal": True, "scale": 0.3}, causal_mask(T), False),
    "lengths_window": (
        {"is_causal": True, "key_value_seq_lengths": LENGTHS, "local_window_size": (1, 0)},
        combine_masks(sliding_window_mask(T, T, 2), padding_mask(LENGTHS, T)[:, None, None]),
        False,
    ),
    "window_bidirectional": (
        {"local_window_size": 2},
        sliding_window_mask(T, T, 3, causal=False),
        False,
    ),
}


@pytest.mark.parametrize("case", list(NN_CASES))
def test_matches_jax_nn(case):
    """GQA against jax.nn.dot_product_attention's own masks, lengths, windows, bias."""
    kwargs, mask, with_bias = NN_CASES[case]
    q, k, v = _nn_inputs(2)
    bias = np.float32(np.random.default_rng(0).standard_normal((1, N, T, T))) if with_bias else None
    want = np.asarray(nn_dpa(q, k, v, bias=bias, mask=_full(mask) if with_bias else None, **kwargs))
    got = np.asarray(dpa(q, k, v, bias=bias, mask=_full(mask), scale=kwargs.get("scale")))
    # Queries that see no key: jax.nn returns an average, the contract says zeros.
    has_key = _full(mask).any(-1)[:, 0, :, None, None]
    np.testing.assert_allclose(np.where(has_key, got, 0.0), np.where(has_key, want, 0.0), atol=1e-5)
    assert np.all(np.where(has_key, 0.0, got) == 0)


def test_fully_masked_rows_are_zero_with_finite_grads():
    q, k, v = _nn_inputs(2)
    mask = np.ones((B, 1, T, T), bool)
    mask[0, :, 3, :] = False  # one query sees nothing
    mask[1] = False  # a whole example sees nothing

    def loss(q, k, v):
        return jnp.sum(dpa(q, k, v, mask=mask) ** 2)

    out, weights = dpa(q, k, v, mask=mask, return_weights=True)
    out, weights = np.asarray(out), np.asarray(weights)
    assert np.all(out[0, 3] == 0)
    assert np.all(out[1] == 0)
    assert np.all(weights[0, :, 3] == 0)
    grads = [np.asarray(g) for g in jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)]
    assert all(np.all(np.isfinite(g)) for g in grads)
    assert np.all(grads[0][1] == 0)
    want, _ = reference_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(out, want, atol=1e-5)


def test_minus_inf_bias_behaves_as_mask():
    q, k, v = _nn_inputs(4)
    mask = causal_mask(T)
    bias = np.where(mask, 0.0, -np.inf).astype(np.float32)
    np.testing.assert_allclose(dpa(q, k, v, bias=bias), dpa(q, k, v, mask=mask))


def test_bfloat16_inputs_softmax_in_float32():
    q, k, v = _nn_inputs(2)
    # Large logits: a bf16 softmax would lose the runner-up keys entirely.
    q16, k16, v16 = (x.astype(jnp.bfloat16) for x in (4 * q, k, v))  # NumPy, via ml_dtypes
    out, weights = dpa(q16, k16, v16, return_weights=True)
    assert out.dtype == jnp.bfloat16
    assert weights.dtype == jnp.float32
    want, want_w = reference_attention(*(np.asarray(x, np.float64) for x in (q16, k16, v16)))
    np.testing.assert_allclose(weights, want_w, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out, np.float32), want, atol=2e-2)


def test_weights_returned_and_rows_sum_to_one():
    q, k, v = _nn_inputs(1)
    out, weights = dpa(q, k, v, return_weights=True)
    assert weights.shape == (B, N, T, T)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(dpa(q, k, v), out)


def test_dropout_is_inverted_and_keyed():
    q, k, v = _nn_inputs(4)
    v = np.ones(v.shape, np.float32)  # every output is then the sum of its kept weights
    drop = lambda key: np.asarray(dpa(q, k, v, dropout_rate=0.5, dropout_rng=key))
    # rbg keys: XLA's RngBitGenerator compiles much faster than threefry on CPU.
    keys = [jax.random.key(seed, impl="rbg") for seed in range(16)]
    outs = np.stack([drop(key) for key in keys])
    np.testing.assert_array_equal(drop(keys[0]), outs[0])  # same key, same mask
    assert not np.allclose(outs[0], outs[1])
    # Inverted dropout keeps the expectation: E[sum of kept weights / (1 - rate)] = 1.
    # 16 keys x 64 rows, each row's variance known from its weights: 5 standard errors.
    _, weights = reference_attention(q, k, v)
    row_var = np.sum(weights**2, axis=-1)  # sum w^2 p/(1-p), p=1/2
    se = np.sqrt(row_var.sum() * len(keys)) / (row_var.size * len(keys))
    assert abs(outs.mean() - 1.0) < 5 * se


def test_errors_are_actionable():
    q, k, v = _nn_inputs(4)
    with pytest.raises(ValueError, match="dropout_rng"):
        dot_product_attention(q, k, v, dropout_rate=0.1)
    with pytest.raises(ValueError, match="multiple"):
        dot_product_attention(q[:, :, :3], k, v)
    with pytest.raises(ValueError, match="valid scores"):
        dot_product_attention(q, k, v, score="cosine")
    with pytest.raises(ValueError, match="same B, S, K"):
        dot_product_attention(q, k, v[:, :4])
    with pytest.raises(ValueError, match="rank 5"):
        dot_product_attention(q, k, v, mask=np.ones((1, 1, 1, T, T), bool))


def test_value_head_dim_may_differ():
    q, k, v = _nn_inputs(2)
    v_wide = np.concatenate([v, 2 * v], axis=-1)
    out = np.asarray(dpa(q, k, v_wide))
    assert out.shape == (B, T, N, 2 * H)
    np.testing.assert_allclose(out[..., H:], 2 * out[..., :H], atol=1e-5)


def test_sharded_over_batch_and_heads_matches_one_device(devices8):
    """8 devices (4 data x 2 model, kv heads split on model) give the 1-device result."""
    rng = np.random.default_rng(5)
    q = rng.standard_normal((8, T, N, H)).astype(np.float32)
    k, v = (rng.standard_normal((8, T, 2, H)).astype(np.float32) for _ in range(2))
    mask = causal_mask(T)
    want = np.asarray(dpa(*(jax.device_put(x, devices8[0]) for x in (q, k, v)), mask=mask))
    mesh = Mesh(np.array(devices8).reshape(4, 2), ("data", "model"))
    shard = NamedSharding(mesh, P("data", None, "model", None))
    got = dpa(*(jax.device_put(x, shard) for x in (q, k, v)), mask=mask)
    assert got.sharding.is_equivalent_to(shard, got.ndim)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)


@jax.jit
def _cross_out_and_grads(q, k, v, dout, mask, bias):
    def loss(q, k, v, bias):
        out = dot_product_attention(q, k, v, mask=mask, bias=bias)
        return jnp.sum(out * dout), out

    (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(q, k, v, bias)
    return out, grads


def _check_cross(K, T_, S_, seed):
    """Cross-attention shapes (T != S), key padding and a full learned bias, vs float64."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, T_, N, H))
    k, v = rng.standard_normal((B, S_, K, H)), rng.standard_normal((B, S_, K, H))
    dout, bias = rng.standard_normal((B, T_, N, H)), rng.standard_normal((B, N, T_, S_))
    mask = np.broadcast_to(
        padding_mask(np.array([S_, S_ // 2]), S_)[:, None, None, :], (B, 1, T_, S_)
    )
    want_out, _ = reference_attention(q, k, v, mask=mask, bias=bias)
    dq, dk, dv, dbias = reference_attention_grad(q, k, v, dout, mask=mask, bias=bias)
    out, grads = _cross_out_and_grads(
        *(np.float32(x) for x in (q, k, v, dout)), mask, np.float32(bias)
    )
    np.testing.assert_allclose(out, want_out, atol=1e-5, rtol=1e-5)
    for name, got, want in zip("qkv", grads, (dq, dk, dv)):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5, err_msg=f"d{name}")
    np.testing.assert_allclose(grads[3], dbias, atol=1e-5, err_msg="dbias")


def test_cross_attention_shapes_and_bias_gradient():
    _check_cross(K=2, T_=5, S_=11, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("K", [4, 2, 1])
@pytest.mark.parametrize(("T_", "S_"), [(1, 64), (37, 50), (64, 64)])
def test_cross_attention_larger_shapes(K, T_, S_):
    _check_cross(K, T_, S_, seed=K + T_)
