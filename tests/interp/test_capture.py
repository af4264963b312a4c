"""Capture leaves outputs bit-identical and records the weights a naive softmax(q k^T) gives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.interp import run_with_cache
from attn_jax.interp.capture import capture
from attn_jax.models.encoder import Encoder, EncoderConfig
from attn_jax.models.lm import DecoderLM, LMConfig
from attn_jax.models.seq2seq import EncoderDecoder, Seq2SeqConfig
from attn_jax.models.vit import ViT, ViTConfig
from attn_jax.nn import Attention, Block

LM = dict(vocab_size=32, d_model=32, num_layers=2, num_heads=4, num_kv_heads=2, max_len=64)


def tokens(B, T, V=32, seed=0):
    return jnp.asarray(np.random.default_rng(seed).integers(0, V, (B, T)), jnp.int32)


def jitted(model, *inputs):
    """The model's outputs under jit, without capture (the reference for bit-identity)."""
    graphdef, state = nnx.split(model)
    return jax.jit(lambda s, xs: nnx.merge(graphdef, s)(*xs))(state, inputs)


def naive_weights(q_BTNH, k_BSKH, allowed_BTS):
    """softmax(q k^T / sqrt(H)) in float64, query head n on kv head n // G; masked -> 0."""
    q, k = np.asarray(q_BTNH, np.float64), np.asarray(k_BSKH, np.float64)
    G = q.shape[2] // k.shape[2]
    logits = np.einsum("btnh,bsnh->bnts", q, np.repeat(k, G, axis=2)) / np.sqrt(q.shape[-1])
    logits = np.where(allowed_BTS[:, None], logits, -np.inf)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def weighted_values(w_BNTS, v_BSKH):
    G = w_BNTS.shape[1] // v_BSKH.shape[2]
    v = np.repeat(np.asarray(v_BSKH, np.float64), G, axis=2)
    return np.einsum("bnts,bsnh->btnh", np.asarray(w_BNTS, np.float64), v)


@pytest.fixture(scope="module")
def lm():
    """A small GQA LM with RoPE (built once: eager init is slow on a loaded machine)."""
    return DecoderLM(LMConfig(**LM), rngs=nnx.Rngs(0))


def test_lm_bit_identical_and_naive_causal_weights(lm, optimized):
    model, x = lm, tokens(2, 16)
    out, cache = run_with_cache(model, x, what=("weights", "q", "k", "v", "z"))
    np.testing.assert_array_equal(out, jitted(model, x))
    causal = np.broadcast_to(np.tril(np.ones((16, 16), bool)), (2, 16, 16))
    w = cache["blocks.0.attn.weights"]
    assert w.shape == (2, 4, 16, 16)
    assert w.dtype == jnp.float32
    np.testing.assert_allclose(
        w, naive_weights(cache["blocks.0.attn.q"], cache["blocks.0.attn.k"], causal), atol=1e-6
    )
    assert (np.asarray(w)[:, :, ~causal[0]] == 0).all()  # future keys: exactly 0
    # the captured q, k, v are the ones the kernel used: its output is weights @ v
    np.testing.assert_allclose(
        weighted_values(w, cache["blocks.0.attn.v"]), cache["blocks.0.attn.z"], atol=1e-5
    )


def test_encoder_padding_keys_get_exactly_zero():
    cfg = EncoderConfig(vocab_size=32, d_model=32, num_layers=2, num_heads=2, max_len=16)
    model = Encoder(cfg, rngs=nnx.Rngs(1))
    x, lengths = tokens(2, 12), jnp.asarray([12, 5], jnp.int32)
    out, cache = run_with_cache(model, x, lengths, what=("weights", "q", "k"))
    np.testing.assert_array_equal(out, jitted(model, x, lengths))
    valid = np.arange(12)[None, :] < np.asarray(lengths)[:, None]
    allowed = np.broadcast_to(valid[:, None, :], (2, 12, 12))
    w = np.asarray(cache["blocks.1.attn.weights"])
    assert (w[1, :, :, 5:] == 0).all()
    np.testing.assert_allclose(
        w, naive_weights(cache["blocks.1.attn.q"], cache["blocks.1.attn.k"], allowed), atol=1e-6
    )


def test_blockwise_kernel_output_untouched_weights_exact():
    """Several key blocks, ALiBi, a window and key padding: the kernel's own output is weights @ v."""
    kwargs = dict(causal=True, window=10, position="alibi", num_kv_heads=2)
    block = Attention(
        32, 4, kernel="blockwise", kernel_options={"block_q": 8, "block_k": 8},
        rngs=nnx.Rngs(2), **kwargs,
    )  # fmt: skip
    dense = Attention(32, 4, kernel="xla", rngs=nnx.Rngs(2), **kwargs)
    x = jax.random.normal(jax.random.key(0), (2, 24, 32))
    lengths = jnp.asarray([24, 17], jnp.int32)
    call = lambda m, x: m(x, kv_lengths_B=lengths)  # noqa: E731
    out, cache = run_with_cache(block, x, method=call, what=("weights", "v", "z"))
    graphdef, state = nnx.split(block)
    ref = jax.jit(lambda s, x: call(nnx.merge(graphdef, s), x))(state, x)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_allclose(weighted_values(cache["weights"], cache["v"]), cache["z"], atol=1e-5)
    _, dense_w = dense(x, kv_lengths_B=lengths, return_weights=True)
    np.testing.assert_allclose(cache["weights"], dense_w, atol=1e-6)
    assert (np.asarray(cache["weights"])[1, :, :, 17:] == 0).all()


def test_vit_bit_identical():
    cfg = ViTConfig(image_size=8, patch_size=4, d_model=16, num_layers=2, num_heads=2)
    model = ViT(cfg, rngs=nnx.Rngs(3))
    images = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
    out, cache = run_with_cache(model, images)
    np.testing.assert_array_equal(out, jitted(model, images))
    assert cache["blocks.1.attn.weights"].shape == (2, 2, 5, 5)


def test_seq2seq_cross_attention():
    cfg = Seq2SeqConfig(
        vocab_size=32, d_model=16, enc_layers=1, dec_layers=2, num_heads=2, max_len=16
    )
    model = EncoderDecoder(cfg, rngs=nnx.Rngs(4))
    src, src_len, tgt = tokens(2, 10), jnp.asarray([10, 4], jnp.int32), tokens(2, 7, seed=1)
    out, cache = run_with_cache(model, src, src_len, tgt, what=("weights", "q", "k"))
    np.testing.assert_array_equal(out, jitted(model, src, src_len, tgt))
    assert set(cache) >= {"encoder.0.attn.weights", "decoder.1.attn.weights"}
    cross = np.asarray(cache["decoder.1.cross_attn.weights"])
    assert cross.shape == (2, 2, 7, 10)
    assert (cross[1, :, :, 4:] == 0).all()
    valid = np.arange(10)[None, :] < np.asarray(src_len)[:, None]
    allowed = np.broadcast_to(valid[:, None, :], (2, 7, 10))
    q, k = cache["decoder.1.cross_attn.q"], cache["decoder.1.cross_attn.k"]
    np.testing.assert_allclose(cross, naive_weights(q, k, allowed), atol=1e-6)


def test_heads_and_layers_select(lm):
    model, x = lm, tokens(1, 8)
    _, full = run_with_cache(model, x)
    _, some = run_with_cache(model, x, layers=[1], heads=[3, 0])
    assert set(some) == {"blocks.1.attn.weights"}
    np.testing.assert_array_equal(
        some["blocks.1.attn.weights"], np.asarray(full["blocks.1.attn.weights"])[:, [3, 0]]
    )
    _, by_name = run_with_cache(model, x, layers=["blocks.0"])
    assert set(by_name) == {"blocks.0.attn.weights"}
    with pytest.raises(ValueError, match="heads"):
        run_with_cache(model, x, heads=[4])


def test_eager_capture_residual_stream_and_nothing_left_behind(lm):
    model, x = lm, tokens(2, 8)
    before = str(jax.make_jaxpr(lambda x: model(x))(x))
    original_call = Block.__call__
    with capture(model, what=("weights", "resid_pre", "resid_post")) as cache:
        logits = model(x)
    np.testing.assert_array_equal(logits, model(x))
    assert {"blocks.0.attn.weights", "blocks.1.resid_post"} <= set(cache)
    h = model.final_norm(cache["blocks.1.resid_post"])
    np.testing.assert_allclose(model.embed.attend(h), logits, atol=1e-5)
    np.testing.assert_array_equal(cache["blocks.1.resid_pre"], cache["blocks.0.resid_post"])
    assert Block.__call__ is original_call
    assert str(jax.make_jaxpr(lambda x: model(x))(x)) == before


def test_bad_requests_raise():
    model = DecoderLM(LMConfig(**{**LM, "kernel": "performer"}), rngs=nnx.Rngs(0))
    x = tokens(1, 8)
    with pytest.raises(ValueError, match="exact kernels"):
        run_with_cache(model, x)
    _, cache = run_with_cache(model, x, what=("q",))
    assert cache["blocks.0.attn.q"].shape == (1, 8, 4, 8)
    with pytest.raises(ValueError, match="valid entries"):
        run_with_cache(model, x, what=("attn",))


def test_decode_step_with_kv_cache_matches_the_full_pass(lm):
    """Through a KV cache: the new query's row over the written slots, unwritten slots 0."""
    x = tokens(1, 6)
    _, full = run_with_cache(lm, x)
    kv = lm.init_cache(1, 16)
    (_, kv), _ = run_with_cache(lm, x[:, :5], method=lambda m, t: m(t, cache=kv))
    (_, kv), step = run_with_cache(lm, x[:, 5:], method=lambda m, t: m(t, cache=kv))
    w = np.asarray(step["blocks.1.attn.weights"])
    assert w.shape == (1, 4, 1, 16)
    assert (w[..., 6:] == 0).all()
    np.testing.assert_allclose(
        w[0, :, 0, :6], np.asarray(full["blocks.1.attn.weights"])[0, :, 5], atol=1e-6
    )
