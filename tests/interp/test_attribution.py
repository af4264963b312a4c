"""Attention vs input x gradient: Spearman per layer, and an attribution that respects causality."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from attn_jax.interp import attribution
from attn_jax.models.lm import DecoderLM, LMConfig


def test_spearman_by_layer_signs():
    a = np.array([[[0.1, 0.2, 0.3, 0.4]], [[0.4, 0.3, 0.2, 0.1]]])
    b = np.array([[[1.0, 5.0, 7.0, 9.0]], [[1.0, 5.0, 7.0, 9.0]]])
    np.testing.assert_allclose(attribution.spearman_by_layer(a, b), [[1.0], [-1.0]])
    assert np.isnan(attribution.spearman(np.ones(4), np.arange(4)))


def test_attribution_is_zero_after_the_query_and_finite_before():
    cfg = LMConfig(vocab_size=32, d_model=16, num_layers=2, num_heads=2, max_len=16)
    model = DecoderLM(cfg, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).integers(0, 32, (2, 10)), jnp.int32)
    q = 6
    result = attribution.attention_vs_attribution(
        model, x, query=q, target_fn=lambda logits: logits[:, q, 3].sum()
    )
    assert set(result) == {"blocks.0", "blocks.1"}
    for r in result.values():
        attr, att = r["attribution"], r["attention"]
        assert attr.shape == att.shape == (2, 10)
        assert (attr[:, q + 1 :] == 0).all()  # causal: later tokens cannot move the logit
        assert (attr[:, : q + 1] > 0).all()
        np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
        assert np.all(np.abs(r["rho"]) <= 1)
