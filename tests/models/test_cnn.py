"""The CNN baseline: counts equal the model, FLOPs against XLA, per-image outputs, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.models.cnn import CNN, CNNConfig, flops_per_example, param_counts

TINY = dict(image_size=8, channels=3, num_classes=5, widths=(4, 6), convs_per_stage=2)


def _images(B, cfg, seed=0):
    shape = (B, cfg.image_size, cfg.image_size, cfg.channels)
    return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize("widths", [(4, 6), (3, 5, 7)])
def test_param_counts_equal_the_model(widths):
    cfg = CNNConfig(**{**TINY, "widths": widths})
    model = CNN(cfg, rngs=nnx.Rngs(0))
    _, params, _ = nnx.split(model, nnx.Param, ...)
    actual = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    assert param_counts(cfg)["total"] == actual
    logits_BC = model(_images(3, cfg))
    assert logits_BC.shape == (3, 5)
    assert logits_BC.dtype == jnp.float32


def test_flops_are_the_convolution_part_of_what_xla_counts():
    """Forward FLOPs (training FLOPs / 3) sit just under XLA's count (it adds norms, GELU)."""
    cfg = CNNConfig(image_size=16, channels=1, num_classes=10, widths=(8, 16, 32))
    B = 2
    graphdef, state = nnx.split(CNN(cfg, rngs=nnx.Rngs(0)))
    fn = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
    cost = fn.lower(state, _images(B, cfg)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    xla = cost["flops"] / B
    # XLA counts only the taps that land inside the image; the analytic count (like
    # fvcore's) includes the zero-padded ones: per axis 3s - 2 of 3s taps are inside
    k = cfg.kernel_size
    inside = sum(2 * i * o * (k * s - (k - 1)) ** 2 for i, o, s in cfg.convs()) + 2 * 32 * 10
    # the rest of XLA's count is elementwise: bias, LayerNorm, GELU, pools (< 25 per value)
    values = sum(o * s * s for _, o, s in cfg.convs())
    assert inside <= xla <= inside + 25 * values, (inside, xla, values)
    analytic = flops_per_example(cfg) / 3
    assert inside < analytic <= 1.25 * inside


def test_an_images_logits_do_not_depend_on_the_rest_of_the_batch():
    """No batch statistics: the eval of one image is the same in any batch."""
    cfg = CNNConfig(**TINY)
    model = CNN(cfg, rngs=nnx.Rngs(0))
    model.head_w_DC[...] = jax.random.normal(jax.random.key(1), model.head_w_DC[...].shape)
    x = _images(4, cfg)
    y = model(x)
    other = x.at[1:].set(_images(3, cfg, seed=7))
    np.testing.assert_allclose(model(other)[0], y[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(x[:1])[0], y[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(model(other)[1], y[1])  # the other images did change


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="divisible by 4"):
        CNNConfig(image_size=10, widths=(4, 8, 16))
    with pytest.raises(ValueError, match="odd kernel_size"):
        CNNConfig(kernel_size=2)
    with pytest.raises(ValueError, match="positive channel"):
        CNNConfig(widths=())
    with pytest.raises(ValueError, match="Unknown cnn config fields"):
        CNNConfig.from_config({"widths": (4,), "d_model": 3})
    with pytest.raises(ValueError, match="dtype"):
        CNNConfig(dtype="float16")
