"""Decoder LM: causality through gradients, KV-cache decoding, generate, build_model."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from attn_jax.models import SIZES, DecoderLM, LMConfig, build_model, generate, sample_logits

TINY = dict(vocab_size=32, d_model=32, num_layers=2, num_heads=4, d_ff=64, max_len=64)


def _model(seed=0, **overrides):
    return DecoderLM(LMConfig(**{**TINY, **overrides}), rngs=nnx.Rngs(seed))


def test_lm_is_causal_through_gradients():
    """d logits[t] / d embedding(token at s) is zero exactly when s > t."""
    T = 16
    model = _model(tie_embeddings=False, position="rope", num_kv_heads=2)
    tokens = jnp.arange(T, dtype=jnp.int32)[None]  # token id == position: rows are positions
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def logits_at(params, t):
        return jnp.take(nnx.merge(graphdef, params, rest)(tokens)[0], t, axis=0).sum()

    grad_fn = jax.jit(jax.grad(logits_at))  # t traced: one compile for every position
    for t in (0, 7, T - 1):
        g = np.asarray(jnp.abs(grad_fn(params, t)["embed"]["embedding"][...]).sum(-1))
        assert np.all(g[t + 1 : T] == 0.0), f"position {t} sees the future"
        assert np.all(g[: t + 1] > 0.0), f"position {t} ignores its past"


def test_kv_cache_decoding_equals_full_forward():
    steps, prompt = 32, 4
    model = _model(position="rope", num_kv_heads=1)
    tokens = jax.random.randint(jax.random.key(0), (2, prompt + steps), 0, 32)
    graphdef, state = nnx.split(model)
    full = jax.jit(lambda state, t: nnx.merge(graphdef, state)(t))(state, tokens)

    @jax.jit
    def run(state, tokens):
        m = nnx.merge(graphdef, state)
        logits, cache = m(tokens[:, :prompt], cache=m.init_cache(2, prompt + steps))

        def step(cache, token_B):
            logits_B1V, cache = m(token_B[:, None], cache=cache)
            return cache, logits_B1V[:, 0]

        _, logits_SBV = jax.lax.scan(step, cache, tokens[:, prompt:].T)
        return jnp.concatenate([logits, logits_SBV.transpose(1, 0, 2)], axis=1)

    np.testing.assert_allclose(run(state, tokens), full, atol=1e-5, rtol=1e-5)


def test_generate_greedy_matches_argmax_of_full_forward():
    model = _model(position="rope")
    prompt = jnp.array([[1, 2, 3], [4, 5, 6]], jnp.int32)
    out = generate(model, prompt, 6, rng=jax.random.key(0), temperature=0.0)
    assert out.shape == (2, 9)
    np.testing.assert_array_equal(out[:, :3], prompt)
    logits = nnx.jit(lambda m, t: m(t))(model, out[:, :-1])
    want = jnp.argmax(logits, axis=-1)[:, 2:]  # each new token is the argmax
    np.testing.assert_array_equal(out[:, 3:], want)


def test_sample_logits_top_k_and_greedy():
    logits = jnp.log(jnp.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]]))
    sample = jax.jit(lambda k: jax.vmap(lambda k: sample_logits(logits, k, top_k=2))(k))
    draws = np.asarray(sample(jax.random.split(jax.random.key(0), 200)))
    assert set(draws[:, 0]) == {2, 3}
    assert set(draws[:, 1]) == {0, 1}
    np.testing.assert_array_equal(sample_logits(logits, None, temperature=0.0), [3, 0])


def test_dropout_is_keyed_and_logits_are_float32():
    model = _model(
        dropout=0.3,
        attn_dropout=0.3,
        dtype="bfloat16",
        position="learned",
        norm="post",
        num_layers=1,
    )
    tokens = jnp.zeros((2, 8), jnp.int32)
    logits = nnx.jit(lambda m, t: m(t))(model, tokens)
    assert logits.dtype == jnp.float32
    assert logits.shape == (2, 8, 32)
    train = nnx.jit(lambda m, t, rng: m(t, deterministic=False, dropout_rng=rng))
    a = train(model, tokens, jax.random.key(0))
    b = train(model, tokens, jax.random.key(0))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, logits)
    with pytest.raises(ValueError, match="dropout_rng"):
        jax.eval_shape(lambda: model(tokens, deterministic=False))


def test_post_norm_rmsnorm_sinusoidal_untied_forward():
    model = _model(norm="post", norm_type="rmsnorm", position="sinusoidal", tie_embeddings=False)
    logits = nnx.jit(lambda m, t: m(t))(model, jnp.zeros((1, 5), jnp.int32))
    assert logits.shape == (1, 5, 32)
    assert bool(jnp.isfinite(logits).all())


def test_build_model_from_config_dict_and_errors():
    config = ml_collections.ConfigDict(dict(family="lm", size="6xs", **TINY))
    model = build_model(config, rngs=nnx.Rngs(0))
    assert isinstance(model, DecoderLM)
    with pytest.raises(ValueError, match="lm"):
        build_model(ml_collections.ConfigDict(dict(family="gan")), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="d_model"):
        LMConfig.from_config(dict(d_modle=3))
    with pytest.raises(ValueError, match="xla"):
        _model(kernel="no_such_kernel")


def test_sizes_table_aspect_ratios():
    assert {"s", "xs", "2xs", "3xs", "m", "l"} <= set(SIZES)
    for name, size in SIZES.items():
        D, L, N, F = size["d_model"], size["num_layers"], size["num_heads"], size["d_ff"]
        # 7xs: 20 wide, below 6xs; 1x192, 1x256: the one-layer ladder's widest
        # (sweeps/mechanisms.py)
        assert 32 <= D // L <= 128 or name in ("7xs", "1x192", "1x256"), name
        assert 16 <= D // N <= 64, name
        assert F == 4 * D, name
    assert SIZES["s"] == dict(d_model=256, num_layers=4, num_heads=4, d_ff=1024)


def test_literal_choices_equal_the_registries():
    """LMConfig's typed choices cannot drift from the registries that serve them."""
    from attn_jax import validate
    from attn_jax.models.lm import DTYPE_NAMES, LM_POSITIONS, literal_choices
    from attn_jax.nn.block import NORM_PLACEMENTS
    from attn_jax.nn.mlp import ACTIVATIONS
    from attn_jax.nn.norm import NORM_TYPES
    from attn_jax.ops.kernels import KERNELS
    from attn_jax.ops.scores import SCORES

    registries = dict(
        position=LM_POSITIONS,
        score=SCORES,
        kernel=KERNELS,
        norm=NORM_PLACEMENTS,
        norm_type=NORM_TYPES,
        dtype=DTYPE_NAMES,
        activation=ACTIVATIONS,
    )
    choices = literal_choices(LMConfig)
    assert set(choices) == set(registries)
    for name, registry in registries.items():
        assert sorted(choices[name]) == sorted(registry), name
        assert f"model.{name}" in validate.CHOICES, name  # and the validator checks it
    with pytest.raises(ValueError, match="LMConfig.kernel='flsh' is not one of: auto"):
        LMConfig(kernel="flsh")


def test_kernel_options_reach_the_kernels():
    """num_features / proj_len / sparse_block+stride from LMConfig change what is computed."""
    tokens = jax.random.randint(jax.random.key(1), (2, 32), 0, 32)
    performer = _model(kernel="performer", num_features=16)
    (features,) = performer.blocks[0].attn.kernel_params.values()
    assert features[...].shape[0] == 16
    linformer = _model(kernel="linformer", proj_len=8)
    assert all(v[...].shape[0] == 8 for v in linformer.blocks[0].attn.kernel_params.values())
    # The strided mask: block_sparse computes only its blocks, xla masks densely; both
    # give the same logits, and the pattern matters (full causal attention differs).
    sparse = dict(sparse_block=4, sparse_stride=2)
    logits_bs = _model(kernel="block_sparse", **sparse)(tokens)
    logits_xla = _model(kernel="xla", **sparse)(tokens)
    np.testing.assert_allclose(logits_bs, logits_xla, atol=2e-5)
    assert float(jnp.abs(logits_xla - _model(kernel="xla")(tokens)).max()) > 1e-3
    with pytest.raises(ValueError, match="num_features=16 is read by kernel performer only"):
        LMConfig(kernel="xla", num_features=16)
    with pytest.raises(ValueError, match="proj_len must be >= 0"):
        LMConfig(kernel="linformer", proj_len=-1)
