"""Analytic parameter counts equal the real ones; FLOPs match the documented formula."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.models import SIZES, DecoderLM, lm_config
from attn_jax.models.flops import (
    attention_flops,
    flops_6n,
    flops_per_token,
    matmul_params,
    param_counts,
    pattern_pairs,
)
from attn_jax.ops.kernels import get_kernel, init_kernel_params
from attn_jax.ops.masks import MaskSpec


def _real_count(cfg):
    abstract = nnx.eval_shape(lambda: DecoderLM(cfg, rngs=nnx.Rngs(0)))
    return sum(p.size for p in jax.tree.leaves(nnx.state(abstract, nnx.Param)))


@pytest.mark.parametrize("size", list(SIZES))
def test_param_counts_equal_real_count_for_every_size(size):
    cfg = lm_config(size)
    counts = param_counts(cfg)
    assert counts["total"] == _real_count(cfg)
    assert counts["embedding"] + counts["non_embedding"] == counts["total"]


@pytest.mark.parametrize(
    "overrides",
    [
        dict(tie_embeddings=False, position="learned", max_len=128),
        dict(norm="post", norm_type="rmsnorm", position="sinusoidal"),
        dict(num_kv_heads=1, head_dim=16, position="relative", relative_buckets=16),
        dict(num_kv_heads=2, score="multiplicative", position="alibi"),
        dict(score="additive", d_ff=100, vocab_size=1000),
    ],
)
def test_param_counts_equal_real_count_for_options(overrides):
    cfg = lm_config("2xs", **overrides)  # two layers, four heads: GQA with K=2 fits
    assert param_counts(cfg)["total"] == _real_count(cfg)


def test_reference_shape_flops_per_token():
    cfg = lm_config("s", vocab_size=256)
    assert matmul_params(cfg) == 3_211_264
    assert flops_per_token(cfg, 256) == 6 * 3_211_264 + 12 * 4 * 256 * 256  # 22.41M
    assert flops_6n(cfg) == 6 * param_counts(cfg)["non_embedding"]
    assert flops_6n(cfg, params="total") == 6 * param_counts(cfg)["total"]


def test_non_embedding_params_span_sweep_range():
    counts = [param_counts(lm_config(s))["non_embedding"] for s in SIZES]
    assert counts == sorted(counts)
    assert counts[0] < 2e4
    assert counts[-1] > 1e7


@pytest.mark.parametrize("T", [64, 100])
@pytest.mark.parametrize(
    "spec",
    [
        MaskSpec(causal=True, window=16),
        MaskSpec(window=200),
        MaskSpec(causal=True, block=8, stride=3),
        MaskSpec(block=16),
        MaskSpec(stride=4),
        MaskSpec(causal=True, block=8, stride=2, window=20),
    ],
    ids=str,
)
def test_sparse_kernel_flops_count_the_pattern(spec, T):
    """local/block_sparse: 4 N H x the pairs of spec.dense (causality not credited, as dense)."""
    symmetric = MaskSpec(window=spec.window, block=spec.block, stride=spec.stride)
    pairs = int(np.asarray(symmetric.dense(T, T)).sum())
    assert pattern_pairs(spec, T) == pairs
    kernel = "local" if spec.block is None and spec.stride is None else "block_sparse"
    got = attention_flops(kernel, T, num_heads=4, head_dim=16, spec=spec)
    assert got == pytest.approx(4 * 4 * 16 * pairs / T)
    assert got <= attention_flops("xla", T, num_heads=4, head_dim=16, spec=spec)


def _xla_flops_per_token(name, spec, T, N, K, H, **options):
    q = jnp.ones((1, T, N, H))
    kv = jnp.ones((1, T, K, H))
    fn = get_kernel(name)
    compiled = jax.jit(lambda q, k, v: fn(q, k, v, spec=spec, **options)).lower(q, kv, kv).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["flops"] / T


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("xla", MaskSpec(causal=True)),
        ("local", MaskSpec(causal=True, window=32)),
        ("linear", MaskSpec()),
        ("linear", MaskSpec(causal=True)),
        ("performer", MaskSpec()),
        ("performer", MaskSpec(causal=True)),
        ("linformer", MaskSpec()),
    ],
    ids=str,
)
def test_kernel_flops_agree_with_xla_cost_analysis(name, spec):
    """The analytic count is the matmul part of what XLA counts for the compiled kernel.

    XLA also counts softmax, exp and masking (not counted here, as in Chinchilla),
    so the analytic figure is a little below it, never above.
    """
    T, N, K, H, M = 256, 4, 2, 16, 64
    options = {}
    if name == "performer":  # W passed in, so XLA does not count the QR that draws it
        options["params"] = init_kernel_params(
            name, jax.random.PRNGKey(0), head_dim=H, num_features=M
        )
    if name == "linformer":
        options["params"] = init_kernel_params(name, None, head_dim=H, max_len=T, proj_len=64)
    xla = _xla_flops_per_token(name, spec, T, N, K, H, **options)
    got = attention_flops(name, T, num_heads=N, head_dim=H, kv_heads=K, spec=spec, num_features=M)
    assert 0.7 * xla <= got <= xla, (got, xla)


def test_lm_flops_per_token_count_the_kernel():
    """A local-attention LM is credited with its window, not with dense attention."""
    dense = lm_config("s", vocab_size=256)
    local = lm_config("s", vocab_size=256, kernel="local", window=32)
    T, L, N, H = 256, 4, 4, 64
    local_attn = 4 * N * H * (T * (2 * 32 - 1) - 32 * 31) / T
    assert flops_per_token(local, T) == pytest.approx(6 * 3_211_264 + 3 * L * local_attn)
    assert flops_per_token(local, T) < flops_per_token(dense, T)
    linear = lm_config("s", vocab_size=256, kernel="linear")
    assert flops_per_token(linear, T) == pytest.approx(
        6 * 3_211_264 + 3 * L * N * (4 * H * H + 2 * H + 2 * 64 * 2 * H)
    )
    with pytest.raises(ValueError, match="counted kernels"):
        attention_flops("nope", T, num_heads=N, head_dim=H)
