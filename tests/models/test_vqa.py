"""VQA model: padding changes nothing, baselines blank one input, counts equal the model."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.models.vqa import (
    PAD_ID,
    UNK_ID,
    VQA,
    VQAConfig,
    blank_question,
    flops_per_example,
    param_counts,
)

TINY = dict(
    image_size=16,
    patch_size=4,
    channels=3,
    image_layers=1,
    vocab_size=20,
    max_question_len=6,
    question_layers=1,
    fusion_layers=2,
    num_answers=13,
    d_model=16,
    num_heads=2,
    d_ff=32,
)


def _randomize_head(model):
    """The head starts at zero (uniform logits); random weights make outputs informative."""
    shape = model.head_w_DA[...].shape
    model.head_w_DA[...] = jax.random.normal(jax.random.key(7), shape)


@functools.partial(jax.jit, static_argnums=0)
def _call(graphdef, state, *args):
    return nnx.merge(graphdef, state)(*args)


def _apply(model, *args):
    """model(*args) as one jitted call, cached per model structure and shapes (eager
    op-by-op dispatch is slow to warm up)."""
    return _call(*nnx.split(model), *args)


def _inputs(cfg, B=4, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    images = jax.random.normal(k1, (B, cfg.image_size, cfg.image_size, cfg.channels))
    ids = jax.random.randint(k2, (B, cfg.max_question_len), 2, cfg.vocab_size)
    lengths = jnp.array([1, 3, cfg.max_question_len, 2][:B], jnp.int32)
    pad = jnp.arange(cfg.max_question_len)[None, :] >= lengths[:, None]
    return images, jnp.where(pad, PAD_ID, ids), lengths


def _model(**overrides):
    cfg = VQAConfig(**{**TINY, **overrides})
    model = VQA(cfg, rngs=nnx.Rngs(0))
    _randomize_head(model)
    return cfg, model


@pytest.mark.parametrize("pool", ["mean", "first"])
def test_padded_question_tokens_change_nothing(pool):
    cfg, model = _model(pool=pool)
    images, ids, lengths = _inputs(cfg)
    logits = _apply(model, images, ids, lengths)
    pad = jnp.arange(cfg.max_question_len)[None, :] >= lengths[:, None]
    junk = jax.random.randint(jax.random.key(3), ids.shape, 0, cfg.vocab_size)
    logits_junk = _apply(model, images, jnp.where(pad, junk, ids), lengths)
    np.testing.assert_allclose(logits_junk, logits, rtol=1e-5, atol=1e-5)
    # and the real tokens do matter (the test could see a change)
    real_junk = _apply(model, images, jnp.where(pad, ids, junk), lengths)
    assert not np.allclose(real_junk, logits, atol=1e-4)


def test_padding_equals_the_unpadded_question_alone():
    """A question padded to T gives the logits of the same words with no padding at all."""
    cfg, model = _model()
    images, ids, lengths = _inputs(cfg)
    logits = _apply(model, images, ids, lengths)
    b, n = 1, int(lengths[1])  # a 3-word question of the 6 padded positions
    # a model for questions of exactly n words: every parameter shared but the position
    # rows beyond n, which the padded model does not read either
    short = VQA(VQAConfig(**{**TINY, "max_question_len": n}), rngs=nnx.Rngs(0))
    state = nnx.state(model)
    state["embed"]["pos_table"] = nnx.Param(state["embed"]["pos_table"][...][:n])
    nnx.update(short, state)
    out = _apply(short, images[b : b + 1], ids[b : b + 1, :n], lengths[b : b + 1])
    np.testing.assert_allclose(out[0], logits[b], rtol=1e-5, atol=1e-5)


def test_image_matters_in_the_full_model():
    cfg, model = _model()
    images, ids, lengths = _inputs(cfg)
    other = jax.random.normal(jax.random.key(11), images.shape)
    assert not np.allclose(
        _apply(model, other, ids, lengths), _apply(model, images, ids, lengths), atol=1e-4
    )


@pytest.mark.parametrize("inputs", ["question", "image"])
def test_baselines_are_the_same_model_with_one_input_blanked(inputs):
    cfg, full = _model()
    _, baseline = _model(inputs=inputs)
    tree = lambda m: jax.tree.map(jnp.shape, nnx.state(m, nnx.Param))
    assert tree(baseline) == tree(full)
    nnx.update(baseline, nnx.state(full, nnx.Param))
    images, ids, lengths = _inputs(cfg)
    out = _apply(baseline, images, ids, lengths)
    if inputs == "question":
        other = jax.random.normal(jax.random.key(5), images.shape)
        np.testing.assert_allclose(_apply(baseline, other, ids, lengths), out, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            out, _apply(full, jnp.zeros_like(images), ids, lengths), atol=1e-6
        )
        # the question still matters
        assert not np.allclose(_apply(baseline, images, ids[::-1], lengths[::-1]), out, atol=1e-4)
    else:
        junk = jax.random.randint(jax.random.key(5), ids.shape, 0, cfg.vocab_size)
        np.testing.assert_allclose(_apply(baseline, images, junk, lengths[::-1]), out, atol=1e-6)
        blank_ids, blank_len = blank_question(len(ids), cfg.max_question_len)
        assert blank_ids[0, 0] == UNK_ID
        assert int(blank_len[0]) == 1
        np.testing.assert_allclose(out, _apply(full, images, blank_ids, blank_len), atol=1e-6)
        other = jax.random.normal(jax.random.key(5), images.shape)
        assert not np.allclose(_apply(baseline, other, ids, lengths), out, atol=1e-4)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        dict(num_kv_heads=1, image_position="sincos2d", pool="first"),
        dict(norm="post", norm_type="rmsnorm", score="multiplicative", question_layers=0),
        dict(context_registers=3),
    ],
)
def test_param_counts_equal_the_model(overrides):
    cfg = VQAConfig(**{**TINY, **overrides})
    model = VQA(cfg, rngs=nnx.Rngs(0))
    actual = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    counts = param_counts(cfg)
    assert counts["total"] == actual
    assert counts["embedding"] + counts["non_embedding"] == actual
    logits = _apply(model, *_inputs(cfg))
    assert logits.shape == (4, 13)
    assert logits.dtype == jnp.float32


def _xla_flops(cfg, B=2):
    graphdef, state = nnx.split(VQA(cfg, rngs=nnx.Rngs(0)))
    fn = jax.jit(lambda s, *a: nnx.merge(graphdef, s)(*a))
    cost = fn.lower(state, *_inputs(cfg, B)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["flops"] / B


def test_flops_are_the_matmul_part_of_what_xla_counts():
    """Forward FLOPs (training FLOPs / 3) sit just under XLA's count (it adds softmax, norms),
    for the whole model and for one fusion layer alone (the difference of two depths; with
    few question tokens its cost is mostly the cross-attention keys/values of the patches)."""
    wide = {**TINY, "d_model": 64, "num_heads": 4, "d_ff": 256}
    cfg = VQAConfig(**{**wide, "max_question_len": 8})
    xla, analytic = _xla_flops(cfg), flops_per_example(cfg) / 3
    assert 0.85 * xla <= analytic <= xla, (analytic, xla)
    one, two = (
        VQAConfig(**{**wide, "max_question_len": 4, "fusion_layers": n, "context_registers": 2})
        for n in (1, 2)
    )
    xla_layer = _xla_flops(two) - _xla_flops(one)
    analytic_layer = (flops_per_example(two) - flops_per_example(one)) / 3
    assert 0.85 * xla_layer <= analytic_layer <= xla_layer, (analytic_layer, xla_layer)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="inputs"):
        VQAConfig(**{**TINY, "inputs": "neither"})
    with pytest.raises(ValueError, match="patch_size"):
        VQAConfig(**{**TINY, "patch_size": 5})
    with pytest.raises(ValueError, match="kernel"):
        VQAConfig(**{**TINY, "kernel": "linear"})
