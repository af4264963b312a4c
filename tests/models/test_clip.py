"""CLIP dual encoder: InfoNCE against a naive reference, padding invariance, the learned and
clipped temperature, counts equal to the model, FLOPs against XLA, config errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.models.clip import (
    CLIPConfig,
    DualEncoder,
    contrastive_loss,
    flops_per_example,
    param_counts,
)

TINY = dict(
    image_size=16,
    patch_size=4,
    d_model=16,
    num_layers=1,
    num_heads=2,
    vocab_size=11,
    max_len=8,
    text_d_model=16,
    text_layers=2,
    text_heads=2,
    embed_dim=8,
)


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def naive_infonce(img, txt, scale, labels, weights, smoothing=0.0):
    """Both directions with explicit loops: row i's target is uniform over its real positives."""
    B = len(img)
    real = [j for j in range(B) if weights[j] > 0]

    def direction(a, b):
        total = 0.0
        for i in real:
            logits = [scale * float(np.dot(a[i], b[j])) for j in real]
            lse = math.log(sum(math.exp(v) for v in logits))
            positives = [k for k, j in enumerate(real) if labels[j] == labels[i]]
            loss_i = 0.0
            for k in range(len(real)):
                target = (1.0 / len(positives) if k in positives else 0.0) * (1 - smoothing)
                target += smoothing / len(real)
                loss_i -= target * (logits[k] - lse)
            total += loss_i
        return total / len(real)

    return 0.5 * (direction(img, txt) + direction(txt, img))


@pytest.mark.parametrize(
    ("labels", "weights", "smoothing"),
    [
        (None, None, 0.0),  # distinct captions: CLIP's one-hot diagonal
        ([0, 1, 0, 2, 1, 0], None, 0.0),  # shared captions: multi-positive targets
        ([0, 1, 0, 2, 1, 0], [1, 1, 1, 1, 0, 0], 0.0),  # padding rows
        ([3, 1, 3, 3, 1, 2], [1, 1, 1, 0, 1, 1], 0.1),  # label smoothing
    ],
)
def test_contrastive_loss_equals_the_naive_reference(labels, weights, smoothing):
    rng = np.random.default_rng(0)
    img, txt = _unit(rng.normal(size=(6, 5))), _unit(rng.normal(size=(6, 5)))
    log_scale = math.log(7.0)
    got = contrastive_loss(
        jnp.asarray(img, jnp.float32),
        jnp.asarray(txt, jnp.float32),
        jnp.float32(log_scale),
        None if labels is None else jnp.asarray(labels),
        None if weights is None else jnp.asarray(weights, jnp.float32),
        label_smoothing=smoothing,
    )
    ref = naive_infonce(
        img,
        txt,
        7.0,
        list(range(6)) if labels is None else labels,
        [1] * 6 if weights is None else weights,
        smoothing,
    )
    np.testing.assert_allclose(float(got), ref, rtol=1e-5)


def test_contrastive_loss_padding_rows_change_nothing():
    rng = np.random.default_rng(1)
    img, txt = _unit(rng.normal(size=(4, 5))), _unit(rng.normal(size=(4, 5)))
    labels = jnp.asarray([0, 1, 0, 2])
    base = contrastive_loss(jnp.asarray(img), jnp.asarray(txt), 2.0, labels)
    junk = rng.normal(size=(2, 5)) * 50  # large junk rows must not reach the loss
    padded = contrastive_loss(
        jnp.asarray(np.concatenate([img, junk])),
        jnp.asarray(np.concatenate([txt, junk])),
        2.0,
        jnp.asarray([0, 1, 0, 2, 0, 1]),
        jnp.asarray([1, 1, 1, 1, 0, 0], jnp.float32),
    )
    np.testing.assert_allclose(float(padded), float(base), rtol=1e-6)


@pytest.mark.parametrize("text_pool", ["mean", "last"])
def test_padded_caption_tokens_change_nothing(text_pool):
    model = DualEncoder(CLIPConfig(**TINY, text_pool=text_pool), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    encode = jax.jit(lambda t, n: nnx.merge(graphdef, state).encode_texts(t, n))
    rng = np.random.default_rng(0)
    lengths = np.array([3, 5, 1, 4], np.int32)
    tokens = rng.integers(1, 11, (4, 5)).astype(np.int32)
    tokens[np.arange(5)[None, :] >= lengths[:, None]] = 0
    base = np.asarray(encode(tokens, lengths))
    # other tokens in the padded slots, and three more padded columns (T 5 -> 8)
    noisy = np.where(tokens > 0, tokens, rng.integers(1, 11, tokens.shape)).astype(np.int32)
    wider = np.concatenate([noisy, rng.integers(0, 11, (4, 3)).astype(np.int32)], axis=1)
    for other in (noisy, wider):
        np.testing.assert_allclose(np.asarray(encode(other, lengths)), base, atol=1e-6)
    # a real token does matter (the check above can fail)
    changed = tokens.copy()
    changed[1, 0] = 1 + changed[1, 0] % 10
    assert np.abs(np.asarray(encode(changed, lengths))[1] - base[1]).max() > 1e-4
    np.testing.assert_allclose(np.linalg.norm(base, axis=-1), 1.0, rtol=1e-5)


def test_temperature_is_learned_and_clipped():
    cfg = CLIPConfig(**TINY)
    model = DualEncoder(cfg, rngs=nnx.Rngs(0))
    assert float(model.log_scale[...]) == pytest.approx(math.log(1 / 0.07), rel=1e-6)
    assert float(model.scale()) == pytest.approx(1 / 0.07, rel=1e-5)
    images = jax.random.normal(jax.random.key(1), (4, 16, 16, 3))
    tokens = jnp.asarray([[1, 2, 0], [3, 4, 5], [6, 0, 0], [7, 8, 9]], jnp.int32)
    lengths = jnp.asarray([2, 3, 1, 3], jnp.int32)
    labels = jnp.asarray([0, 1, 2, 3])
    graphdef, _, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def loss_and_grad(params):  # the gradient training takes: w.r.t. every nnx.Param
        def f(params):
            image_BE, text_BE = nnx.merge(graphdef, params, rest)(images, tokens, lengths)
            return contrastive_loss(image_BE, text_BE, params["log_scale"][...], labels)

        loss, grad = jax.value_and_grad(f)(params)
        return loss, grad["log_scale"][...]

    def at(log_scale):
        model.log_scale[...] = jnp.float32(log_scale)
        return loss_and_grad(nnx.split(model, nnx.Param, ...)[1])

    _, grad = at(math.log(1 / 0.07))
    assert abs(float(grad)) > 1e-6, "the temperature gets a gradient"
    # above the clip: the scale is 100, the loss is the loss at log(100), no gradient
    loss_hi, grad_hi = at(math.log(1000.0))
    assert float(model.scale()) == pytest.approx(100.0, rel=1e-5)
    assert float(grad_hi) == 0.0
    loss_cap, _ = at(math.log(100.0))
    np.testing.assert_allclose(float(loss_hi), float(loss_cap), rtol=1e-5)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        dict(pool="cls", position="sincos2d", text_pool="last"),
        dict(norm="post", norm_type="rmsnorm", num_kv_heads=1, d_ff=24, text_d_ff=40),
        dict(score="multiplicative", head_dim=4),
    ],
)
def test_param_counts_equal_the_model(extra):
    cfg = CLIPConfig(**TINY, **extra)
    model = DualEncoder(cfg, rngs=nnx.Rngs(0))
    _, params, _ = nnx.split(model, nnx.Param, ...)
    actual = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    counts = param_counts(cfg)
    assert counts["total"] == actual
    assert counts["embedding"] + counts["non_embedding"] == actual
    embedding_tables = model.text.embed.embedding[...].size + model.text.embed.pos_table[...].size
    assert counts["embedding"] >= embedding_tables


def test_flops_are_the_matmul_part_of_what_xla_counts():
    """Forward FLOPs (training FLOPs / 3) sit just under XLA's count (it adds softmax, norms)."""
    cfg = CLIPConfig(
        image_size=32,
        patch_size=4,
        d_model=64,
        num_layers=2,
        num_heads=4,
        vocab_size=30,
        max_len=16,
        text_d_model=64,
        text_layers=2,
        text_heads=4,
        embed_dim=32,
    )
    B = 4
    graphdef, state = nnx.split(DualEncoder(cfg, rngs=nnx.Rngs(0)))

    def forward(state, images, tokens, lengths):
        m = nnx.merge(graphdef, state)
        image_BE, text_BE = m(images, tokens, lengths)
        return m.scale() * image_BE @ text_BE.T

    images = jnp.zeros((B, 32, 32, 3))
    tokens, lengths = jnp.ones((B, 16), jnp.int32), jnp.full((B,), 16, jnp.int32)
    cost = jax.jit(forward).lower(state, images, tokens, lengths).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    xla = cost["flops"] / B
    analytic = flops_per_example(cfg, batch_size=B) / 3
    assert 0.85 * xla <= analytic <= xla, (analytic, xla)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="patch_size"):
        CLIPConfig(**dict(TINY, patch_size=5))
    with pytest.raises(ValueError, match="text_heads"):
        CLIPConfig(**dict(TINY, text_heads=3))
    with pytest.raises(ValueError, match="init_temperature"):
        CLIPConfig(**TINY, init_temperature=0.001)
    with pytest.raises(ValueError, match="text_pool"):
        CLIPConfig(**TINY, text_pool="max")
