"""ViT: patchify round trip, counts equal to the model, FLOPs against XLA, config errors."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.models.vit import (
    ViT,
    ViTConfig,
    flops_per_example,
    param_counts,
    patchify,
    sincos2d,
    unpatchify,
)

TINY = dict(
    image_size=8, patch_size=2, channels=3, num_classes=5, d_model=16, num_layers=2, num_heads=2
)


def _images(B, cfg, seed=0):
    shape = (B, cfg.image_size, cfg.image_size, cfg.channels)
    return jax.random.normal(jax.random.key(seed), shape)


def test_patchify_round_trip_and_patch_contents():
    x_BHWC = jnp.arange(2 * 6 * 8 * 3, dtype=jnp.float32).reshape(2, 6, 8, 3)
    p_BPX = patchify(x_BHWC, 2)
    assert p_BPX.shape == (2, 12, 12)
    np.testing.assert_array_equal(unpatchify(p_BPX, 2, 6, 8), x_BHWC)
    # patch (row 1, col 2) in row-major grid order is the image's [2:4, 4:6] square
    np.testing.assert_array_equal(p_BPX[1, 1 * 4 + 2], x_BHWC[1, 2:4, 4:6].reshape(-1))
    with pytest.raises(ValueError, match="must divide"):
        patchify(x_BHWC, 4)


@pytest.mark.parametrize(
    ("pool", "position"), list(itertools.product(["cls", "gap"], ["learned", "sincos2d"]))
)
def test_param_counts_equal_the_model(pool, position):
    cfg = ViTConfig(**TINY, pool=pool, position=position)
    model = ViT(cfg, rngs=nnx.Rngs(0))
    _, params, _ = nnx.split(model, nnx.Param, ...)
    actual = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    counts = param_counts(cfg)
    assert counts["total"] == actual
    assert counts["embedding"] + counts["non_embedding"] == actual
    logits_BC = model(_images(3, cfg))
    assert logits_BC.shape == (3, 5)
    assert logits_BC.dtype == jnp.float32


@pytest.mark.parametrize(("pool", "position"), [("cls", "learned"), ("gap", "sincos2d")])
def test_flops_are_the_matmul_part_of_what_xla_counts(pool, position):
    """Forward FLOPs (training FLOPs / 3) sit just under XLA's count (it adds softmax, norms)."""
    cfg = ViTConfig(
        image_size=16,
        patch_size=2,
        channels=1,
        num_classes=10,
        d_model=64,
        num_layers=2,
        num_heads=4,
        pool=pool,
        position=position,
    )
    B = 2
    graphdef, state = nnx.split(ViT(cfg, rngs=nnx.Rngs(0)))
    fn = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
    cost = fn.lower(state, _images(B, cfg)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    xla = cost["flops"] / B
    analytic = flops_per_example(cfg) / 3
    assert 0.85 * xla <= analytic <= xla, (analytic, xla)


def test_sincos2d_positions_follow_the_grid():
    table = sincos2d(4, 8)  # omega = [1, 1/100]
    assert table.shape == (16, 8)
    y, x = 2, 3
    expected = [
        np.sin(x),
        np.sin(x / 100),
        np.cos(x),
        np.cos(x / 100),
        np.sin(y),
        np.sin(y / 100),
        np.cos(y),
        np.cos(y / 100),
    ]
    np.testing.assert_allclose(table[y * 4 + x], expected, rtol=1e-6)


def test_gap_pooling_is_invariant_to_permuting_patches_without_positions():
    """With positions zeroed, GAP over a non-causal stack ignores the patch order."""
    cfg = ViTConfig(**TINY, pool="gap", position="learned")
    model = ViT(cfg, rngs=nnx.Rngs(0))
    model.pos_TD[...] = jnp.zeros_like(model.pos_TD[...])
    model.head_w_DC[...] = jax.random.normal(jax.random.key(3), model.head_w_DC[...].shape)
    x_BHWC = _images(2, cfg)
    p_BPX = patchify(x_BHWC, 2)
    perm = np.random.default_rng(0).permutation(p_BPX.shape[1])
    shuffled = unpatchify(p_BPX[:, perm], 2, 8, 8)
    np.testing.assert_allclose(model(x_BHWC), model(shuffled), rtol=1e-4, atol=1e-5)
    assert float(jnp.abs(x_BHWC - shuffled).max()) > 0


def test_bad_config_fields_name_the_valid_choices():
    with pytest.raises(ValueError, match="ViTConfig.pool='mean'"):
        ViTConfig(pool="mean")
    with pytest.raises(ValueError, match="patch_size=5 must divide"):
        ViTConfig(patch_size=5)
    with pytest.raises(ValueError, match="Unknown vit config fields"):
        ViTConfig.from_config({"widht": 3})
