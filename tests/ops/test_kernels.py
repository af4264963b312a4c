"""Exact kernels equal the float64 reference under the equivalent dense mask.

Forward and gradients, MHA / GQA / MQA, causal and not, with an ALiBi bias
evaluated per block; plus the registry, key padding, query offsets, prefix-LM
and gradients of a learned T5 bias table through the blockwise custom VJP.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import reference_alibi_bias, reference_attention, reference_attention_grad

from attn_jax.ops.kernels import KERNELS, get_kernel, init_kernel_params
from attn_jax.ops.masks import MaskSpec
from attn_jax.ops.positions import alibi_bias_fn, alibi_slopes, t5_bias_fn

TOL = dict(rtol=1e-5, atol=1e-5)
# Compile-bound tests: XLA's backend optimizations off halves the compile time here.
FAST_COMPILE = {"xla_backend_optimization_level": 0}

EXACT_CASES = [
    ("blockwise", MaskSpec(), dict(block_q=16, block_k=16)),
    ("blockwise", MaskSpec(causal=True), dict(block_q=16, block_k=8)),
    ("local", MaskSpec(window=12), {}),
    ("local", MaskSpec(causal=True, window=12), {}),
    ("block_sparse", MaskSpec(block=8, stride=3), dict(block_q=8, block_k=8)),
    ("block_sparse", MaskSpec(causal=True, block=4, stride=3), dict(block_q=8, block_k=16)),
]
HEADS = {"mha": (4, 4), "gqa": (4, 2), "mqa": (4, 1)}
# Default suite: every kernel causal and not, every head layout twice (compiles are
# the cost); the full cross product runs under -m slow.
FAST = [(case, head) for case, head in zip(EXACT_CASES, ["mha", "gqa", "mqa"] * 2)]
SLOW = [
    pytest.param(case, head, marks=pytest.mark.slow)
    for case in EXACT_CASES
    for head in HEADS
    if (case, head) not in FAST
]


def _qkv(key, B, T, S, N, K, H):
    kq, kk, kv, kd = jax.random.split(key, 4)
    q = jax.random.normal(kq, (B, T, N, H), jnp.float32)
    k = jax.random.normal(kk, (B, S, K, H), jnp.float32)
    v = jax.random.normal(kv, (B, S, K, H), jnp.float32)
    dout = jax.random.normal(kd, (B, T, N, H), jnp.float32)
    return q, k, v, dout


def _fwd_and_grads(fn, q, k, v, dout):
    out, vjp = jax.vjp(fn, q, k, v)
    return (out, *vjp(dout))


@pytest.mark.parametrize(
    ("case", "head"), FAST + SLOW, ids=lambda x: x if isinstance(x, str) else f"{x[0]}-{x[1]}"
)
def test_exact_kernel_matches_reference(case, head):
    kernel, spec, opts = case
    N, K = HEADS[head]
    B, T, H = 2, 40, 8
    q, k, v, dout = _qkv(jax.random.PRNGKey(N * 10 + K), B, T, T, N, K, H)
    slopes = alibi_slopes(N)
    fn = lambda q, k, v: get_kernel(kernel)(
        q, k, v, spec=spec, bias_fn=alibi_bias_fn(slopes), **opts
    )
    got = jax.jit(_fwd_and_grads, static_argnums=0, compiler_options=FAST_COMPILE)(
        fn, q, k, v, dout
    )

    mask = np.asarray(spec.dense(T, T))
    bias = reference_alibi_bias(np.asarray(slopes), np.arange(T), np.arange(T))
    want_out, _ = reference_attention(q, k, v, mask=mask, bias=bias)
    want_dq, want_dk, want_dv, _ = reference_attention_grad(q, k, v, dout, mask=mask, bias=bias)
    for name, g, w in zip("out dq dk dv".split(), got, (want_out, want_dq, want_dk, want_dv)):
        np.testing.assert_allclose(np.asarray(g), w, **TOL, err_msg=f"{kernel} {name}")


def test_get_kernel_unknown_names_valid_keys():
    with pytest.raises(ValueError, match="blockwise"):
        get_kernel("flash9000")
    assert {"xla", "blockwise", "local", "block_sparse", "linear", "performer"} <= set(KERNELS)
    assert init_kernel_params("blockwise", jax.random.PRNGKey(0), head_dim=8) is None


def test_blockwise_offset_lengths_prefix_window_match_xla():
    """Key padding (one row fully padded), a query offset (cache decoding), prefix-LM and
    a window in one spec, forward and backward; fully masked rows are zeros, not NaN."""
    B, T, S, N, K, H = 2, 20, 45, 4, 2, 8
    q, k, v, dout = _qkv(jax.random.PRNGKey(3), B, T, S, N, K, H)
    spec = MaskSpec(causal=True, window=9, prefix_len=11)
    kw = dict(spec=spec, q_offset=25, kv_lengths_B=jnp.array([45, 0]))
    fast = lambda q, k, v: get_kernel("blockwise")(q, k, v, block_q=8, block_k=16, **kw)
    dense = lambda q, k, v: get_kernel("xla")(q, k, v, **kw)
    run = jax.jit(_fwd_and_grads, static_argnums=0, compiler_options=FAST_COMPILE)
    got = run(fast, q, k, v, dout)
    for g, w in zip(got, run(dense, q, k, v, dout)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), **TOL)
        assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.asarray(got[0][1]) == 0.0)


def test_blockwise_learned_bias_table_gets_gradients():
    """A T5 table closed over by bias_fn gets the same gradient as with dense attention."""
    B, T, N, H = 2, 33, 4, 8
    q, k, v, dout = _qkv(jax.random.PRNGKey(4), B, T, T, N, N, H)
    table = 0.5 * jax.random.normal(jax.random.PRNGKey(5), (16, N))
    spec = MaskSpec(causal=True)

    def loss(table, kernel, **opts):
        out = get_kernel(kernel)(
            q, k, v, spec=spec, bias_fn=t5_bias_fn(table, bidirectional=False), **opts
        )
        return jnp.sum(out * dout)

    fast = jax.grad(lambda t: loss(t, "blockwise", block_q=8, block_k=8))
    g_fast = jax.jit(fast, compiler_options=FAST_COMPILE)(table)
    g_dense = jax.jit(jax.grad(lambda t: loss(t, "xla")), compiler_options=FAST_COMPILE)(table)
    np.testing.assert_allclose(np.asarray(g_fast), np.asarray(g_dense), **TOL)
