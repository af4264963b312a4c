"""Analytic parameter counts equal the real ones; FLOPs match the documented formula."""

import jax
import pytest
from flax import nnx

from attn_jax.models import SIZES, DecoderLM, lm_config
from attn_jax.train.flops import flops_6n, flops_per_token, matmul_params, param_counts


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
    assert counts[0] < 2e4 and counts[-1] > 1e7
