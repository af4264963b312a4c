"""Encoder-decoder: a bidirectional, padding-masked encoder; a causal decoder; exact counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.families import base
from attn_jax.families.seq2seq import flops_per_token, param_counts
from attn_jax.models.lm import LM_POSITIONS
from attn_jax.models.seq2seq import EncoderDecoder, Seq2SeqConfig

TINY = dict(vocab_size=16, d_model=32, enc_layers=2, dec_layers=2, num_heads=4, d_ff=64, max_len=16)
B, S, T = 2, 8, 6


def _model(seed=0, **overrides):
    return EncoderDecoder(Seq2SeqConfig(**{**TINY, **overrides}), rngs=nnx.Rngs(seed))


def _tokens(key, shape, low=3, high=15):
    return jax.random.randint(jax.random.key(key), shape, low, high, jnp.int32)


@pytest.mark.parametrize("position", LM_POSITIONS)
def test_encoder_is_bidirectional_for_every_position(position):
    """Changing the LAST valid source token changes the encoder output at position 0."""
    model = _model(position=position, enc_layers=1)
    src = _tokens(0, (B, S))
    src_len = jnp.array([S, 5], jnp.int32)
    encode = nnx.jit(lambda m, s: m.encode(s, src_len))
    changed = (
        src.at[0, S - 1].set(3 + (src[0, S - 1] - 2) % 12).at[1, 4].set(3 + (src[1, 4] - 2) % 12)
    )
    before, after = encode(model, src), encode(model, changed)
    assert np.all(np.abs(np.asarray(after - before))[:, 0].max(-1) > 1e-4), position


def test_padding_is_masked_in_values_and_gradients():
    """Padded source tokens change neither valid encoder rows nor logits, and get no gradient."""
    pad_token = 15  # used only at padded source positions
    model = _model(tie_embeddings=False, position="relative", norm="pre")
    src_len = jnp.array([S, 4], jnp.int32)
    src = _tokens(1, (B, S), high=14)
    src = jnp.where(jnp.arange(S)[None] < src_len[:, None], src, pad_token)
    tgt = _tokens(2, (B, T), high=14)
    valid_BS1 = (jnp.arange(S)[None] < src_len[:, None])[..., None]
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def outputs(params, src):
        m = nnx.merge(graphdef, params, rest)
        enc = m.encode(src, src_len)
        return jnp.where(valid_BS1, enc, 0.0), m(src, src_len, tgt)

    run = jax.jit(outputs)
    enc, logits = run(params, src)
    other = jnp.where(src == pad_token, 7, src)  # different tokens in the padding
    enc2, logits2 = run(params, other)
    np.testing.assert_allclose(enc2, enc, atol=1e-6)
    np.testing.assert_allclose(logits2, logits, atol=1e-6)

    def total(params):
        enc, logits = outputs(params, src)
        return enc.sum() + logits.sum()

    grad = jax.jit(jax.grad(total))(params)["embed"]["embedding"][...]
    assert np.all(np.asarray(grad[pad_token]) == 0.0), "padded source tokens get gradient"
    assert np.abs(np.asarray(grad[int(src[0, 0])])).sum() > 0.0


def test_decoder_is_causal():
    """d logits[t] / d embedding(target token at s) is zero exactly when s > t."""
    model = _model(tie_embeddings=False, position="rope", num_kv_heads=2, vocab_size=32)
    src = _tokens(3, (1, S), low=3, high=3 + S)
    tgt = jnp.arange(3 + S, 3 + S + T, dtype=jnp.int32)[None]  # target ids unique to positions
    src_len = jnp.array([S], jnp.int32)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def logits_at(params, t):
        return jnp.take(nnx.merge(graphdef, params, rest)(src, src_len, tgt)[0], t, axis=0).sum()

    grad_fn = jax.jit(jax.grad(logits_at))
    for t in (0, 3, T - 1):
        g = np.abs(np.asarray(grad_fn(params, t)["embed"]["embedding"][...])).sum(-1)[3 + S :]
        assert np.all(g[t + 1 :] == 0.0), f"target position {t} sees the future"
        assert np.all(g[: t + 1] > 0.0), f"target position {t} ignores its past"


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        dict(tie_embeddings=False, norm="pre"),
        dict(position="relative", norm_type="rmsnorm", num_kv_heads=2),
        dict(position="learned", norm="pre", head_dim=4, d_ff=0),
        dict(position="alibi", score="multiplicative", enc_layers=1, dec_layers=3),
        dict(position="rope", score="additive", num_kv_heads=1),
    ],
)
def test_param_count_equals_the_model(overrides):
    cfg = Seq2SeqConfig(**{**TINY, **overrides})
    model = EncoderDecoder(cfg, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    counts = param_counts(cfg)
    base.check_param_count(params, counts["total"], "param_counts")
    embedding = params["embed"]["embedding"][...].size
    embedding += params["pos_table"][...].size if cfg.position == "learned" else 0
    embedding += 0 if cfg.tie_embeddings else params["head"][...].size
    assert counts["embedding"] == embedding


def test_flops_per_token_counts_the_reference_shape_by_hand():
    """D 32, L 1+1, N 4, F 64, V 16, S 8, T 4 (dense): the docstring's formula by hand."""
    cfg = Seq2SeqConfig(**{**TINY, "enc_layers": 1, "dec_layers": 1})
    D, F, V, S_, T_ = 32, 64, 16, 8, 4
    enc = 2 * (4 * D * D + 2 * D * F) + 4 * S_ * D + 2 * 2 * D * D
    dec = 2 * (4 * D * D + 2 * D * D + 2 * D * F) + 4 * T_ * D + 4 * S_ * D + 2 * D * V
    assert flops_per_token(cfg, S_, T_) == 3 * (dec + enc * S_ / T_)


def test_config_rejects_unknown_fields_and_choices():
    with pytest.raises(ValueError, match="num_layers"):
        Seq2SeqConfig.from_config({**TINY, "num_layers": 2})
    with pytest.raises(ValueError, match="position"):
        Seq2SeqConfig(position="sinus")
    with pytest.raises(ValueError, match="kernel"):
        Seq2SeqConfig(kernel="flsh")


def test_dropout_is_keyed_and_logits_are_float32():
    model = _model(dropout=0.3, attn_dropout=0.1, dtype="bfloat16")
    src, tgt = _tokens(4, (B, S)), _tokens(5, (B, T))
    src_len = jnp.array([S, 3], jnp.int32)

    @nnx.jit
    def run(m, key):
        return m(src, src_len, tgt, deterministic=False, dropout_rng=key)

    a, b, c = (
        run(model, jax.random.key(0)),
        run(model, jax.random.key(0)),
        run(model, jax.random.key(1)),
    )
    assert a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(np.asarray(a - c)).max() > 0


def test_blockwise_kernel_masks_the_encoder_padding_like_xla():
    """Cross-attention gets the source lengths, not a dense mask: any kernel can serve it."""
    src_len = jnp.array([S, 3], jnp.int32)
    src = _tokens(6, (B, S))
    padded = jnp.where(jnp.arange(S)[None] < src_len[:, None], src, 7 + src % 5)
    tgt = _tokens(7, (B, T))
    logits = {}
    for kernel in ("xla", "blockwise"):
        model = _model(kernel=kernel)  # the same seed: the same parameters
        run = nnx.jit(lambda m, s: m(s, src_len, tgt))
        logits[kernel] = run(model, src)
        np.testing.assert_allclose(run(model, padded), logits[kernel], atol=1e-5)
    np.testing.assert_allclose(logits["blockwise"], logits["xla"], atol=1e-4)
