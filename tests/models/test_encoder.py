"""Encoder: bidirectional, padding-masked (values and gradients), counts equal the model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.models.encoder import (
    Encoder,
    EncoderConfig,
    flops_per_masked_token,
    flops_per_position,
    param_counts,
)

TINY = dict(vocab_size=40, d_model=32, num_layers=2, num_heads=4, d_ff=64, max_len=32)
POSITIONS = ("none", "sinusoidal", "learned", "rope", "alibi", "relative")


def _model(seed=0, **overrides):
    return Encoder(EncoderConfig(**{**TINY, **overrides}), rngs=nnx.Rngs(seed))


def _tokens(B, T, seed=0):
    return jax.random.randint(jax.random.key(seed), (B, T), 4, TINY["vocab_size"])


@pytest.mark.parametrize("position", POSITIONS)
def test_a_later_token_changes_an_earlier_output(position):
    """d h[0] / d x[s] is nonzero for every s: no causal mask, whatever the positions."""
    T = 12
    model = _model(position=position)
    x_BTD = model.embed_tokens(_tokens(1, T))
    lengths_B = jnp.array([T])
    # A random readout: the plain sum of a LayerNorm output is constant (its mean is 0).
    r_D = jax.random.normal(jax.random.key(7), (TINY["d_model"],))
    g_BTD = jax.grad(lambda x: model.encode(x, lengths_B)[0, 0] @ r_D)(x_BTD)
    per_position = np.abs(np.asarray(g_BTD[0])).sum(-1)
    assert np.all(per_position[1:] > 0), f"{position}: position 0 ignores later positions"
    # and the forward agrees: changing the last token changes the first output
    t1 = _tokens(1, T)
    t2 = t1.at[0, -1].set((t1[0, -1] - 3) % 36 + 4)
    h1, h2 = model.features(t1, lengths_B), model.features(t2, lengths_B)
    assert float(jnp.abs(h1[0, 0] - h2[0, 0]).max()) > 1e-6


@pytest.mark.parametrize(
    ("position", "kernel"), [(p, "xla") for p in POSITIONS] + [("rope", "blockwise")]
)
def test_padding_changes_no_valid_output_nor_gradient(position, kernel):
    """Padded tokens change no valid feature or logit; valid outputs have zero gradient there."""
    B, T = 3, 16
    lengths_B = jnp.array([16, 9, 4])
    model = _model(position=position, kernel=kernel)
    t1 = _tokens(B, T, seed=1)
    t2 = jnp.where(jnp.arange(T)[None, :] < lengths_B[:, None], t1, _tokens(B, T, seed=2))
    valid_BT = np.asarray(jnp.arange(T)[None, :] < lengths_B[:, None])
    l1, l2 = np.asarray(model(t1, lengths_B)), np.asarray(model(t2, lengths_B))
    assert np.abs(l1 - l2)[~valid_BT].max() > 0, "the perturbation must reach padded rows"
    np.testing.assert_allclose(l1[valid_BT], l2[valid_BT], rtol=1e-5, atol=1e-6)

    x_BTD = model.embed_tokens(t1)
    # valid outputs under a random readout (a plain sum of LayerNorm outputs is constant)
    r_BTD = jax.random.normal(jax.random.key(7), x_BTD.shape)
    r_BTD = r_BTD * jnp.asarray(valid_BT, jnp.float32)[..., None]
    g_BTD = jax.grad(lambda x: (model.encode(x, lengths_B) * r_BTD).sum())(x_BTD)
    g_BT = np.abs(np.asarray(g_BTD)).sum(-1)
    assert np.all(g_BT[~valid_BT] == 0.0), f"{position}/{kernel}: valid outputs read padding"
    assert np.all(g_BT[valid_BT] > 0.0)


def test_pool_mean_over_valid_tokens_and_cls():
    h_BTD = jax.random.normal(jax.random.key(0), (2, 5, 3))
    lengths_B = jnp.array([5, 2])
    mean = np.asarray(Encoder.pool(h_BTD, lengths_B, "mean"))
    h = np.asarray(h_BTD)
    np.testing.assert_allclose(mean, np.stack([h[0].mean(0), h[1, :2].mean(0)]), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(Encoder.pool(h_BTD, lengths_B, "cls")), h[:, 0])
    with pytest.raises(ValueError, match="valid: mean, cls"):
        Encoder.pool(h_BTD, lengths_B, "max")


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"position": "learned", "tie_embeddings": False},
        {"position": "relative", "norm": "post", "norm_type": "rmsnorm"},
        {"num_kv_heads": 2, "head_dim": 4, "score": "multiplicative"},
        {"score": "additive", "d_ff": 48, "num_layers": 3},
    ],
    ids=str,
)
def test_param_counts_equal_the_model(overrides):
    model = _model(**overrides)
    _, params, _ = nnx.split(model, nnx.Param, ...)
    actual = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    counts = param_counts(EncoderConfig(**{**TINY, **overrides}))
    assert counts["total"] == actual
    assert counts["embedding"] + counts["non_embedding"] == actual
    assert counts["embedding"] >= TINY["vocab_size"] * TINY["d_model"]


def test_flops_are_the_matmul_part_of_what_xla_counts():
    """Forward FLOPs (per-position training FLOPs / 3) sit just under XLA's count.

    XLA also counts softmax, norms and GELU (not counted analytically), so the
    analytic figure is a little below it, never above; per masked token it is
    the per-position figure divided by the mask rate.
    """
    cfg = EncoderConfig(vocab_size=260, d_model=64, num_layers=2, num_heads=4, max_len=128)
    B, T = 2, 128
    model = Encoder(cfg, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    fn = jax.jit(lambda s, t, n: nnx.merge(graphdef, s)(t, n))
    tokens, lengths = jnp.zeros((B, T), jnp.int32), jnp.full((B,), T, jnp.int32)
    cost = fn.lower(state, tokens, lengths).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    xla_per_position = cost["flops"] / (B * T)
    analytic = flops_per_position(cfg, T) / 3
    assert 0.8 * xla_per_position <= analytic <= xla_per_position, (analytic, xla_per_position)
    assert flops_per_masked_token(cfg, T, 0.15) == pytest.approx(flops_per_position(cfg, T) / 0.15)


def test_bad_config_fields_name_the_valid_choices():
    with pytest.raises(ValueError, match="EncoderConfig.position='causal'"):
        EncoderConfig(position="causal")
    with pytest.raises(ValueError, match="Unknown encoder config fields"):
        EncoderConfig.from_config({"d_model": 8, "window": 4})
