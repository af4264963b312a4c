"""Theorems about softmax attention: convexity, permutation symmetry, causality."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import random_score_params

from attn_jax.ops import (
    SCORES,
    MaskSpec,
    dot_product_attention,
    prefix_lm_mask,
)

B, T, D, N, K, H = 2, 7, 12, 4, 2, 6


@functools.cache
def _setup(score, seed=0):
    """Inputs and (frozen) projections of a small self-attention layer."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    w = {
        name: (rng.standard_normal((D, heads, H)) / np.sqrt(D)).astype(np.float32)
        for name, heads in (("q", N), ("k", K), ("v", K))
    }
    return x, w, random_score_params(score, N, H, seed=seed)


@functools.partial(jax.jit, static_argnames="score")
def self_attention(x_BTD, w, params, mask, *, score):
    q_BTNH = jnp.einsum("BTD,DNH->BTNH", x_BTD, w["q"])
    k_BTKH = jnp.einsum("BTD,DKH->BTKH", x_BTD, w["k"])
    v_BTKH = jnp.einsum("BTD,DKH->BTKH", x_BTD, w["v"])
    out, weights = dot_product_attention(
        q_BTNH, k_BTKH, v_BTKH, mask=mask, score=score, score_params=params, return_weights=True
    )
    return out, weights, v_BTKH


NO_MASK = np.ones((1, 1, T, T), bool)


@pytest.mark.parametrize("score", sorted(SCORES))
def test_outputs_are_convex_combinations_of_values(score):
    x, w, params = _setup(score)
    mask = np.asarray(MaskSpec(causal=True, window=4).dense(T))[None, None]
    out, weights, v = (
        np.asarray(a, np.float64) for a in self_attention(x, w, params, mask, score=score)
    )
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(weights[:, :, ~np.asarray(mask[0, 0])] == 0)
    G = N // K
    for b, t, n in np.ndindex(B, T, N):
        allowed = v[b, np.asarray(mask[0, 0, t]), n // G]  # values this query may mix
        # Inside the bounding box of the allowed values (a necessary hull condition)...
        assert np.all(out[b, t, n] >= allowed.min(0) - 1e-6)
        assert np.all(out[b, t, n] <= allowed.max(0) + 1e-6)
    # ...and exactly the weighted sum: out = sum_s w_s v_s with w on the simplex.
    v_N = np.repeat(v, G, axis=2)
    np.testing.assert_allclose(out, np.einsum("bnts,bsnh->btnh", weights, v_N), atol=1e-5)


@pytest.mark.parametrize("score", sorted(SCORES))
def test_self_attention_is_permutation_equivariant(score):
    """Without positions, permuting tokens permutes outputs (Lee et al. 2019, Set Transformer)."""
    x, w, params = _setup(score)
    perm = np.random.default_rng(0).permutation(T)
    out = np.asarray(self_attention(x, w, params, NO_MASK, score=score)[0])
    out_perm = np.asarray(self_attention(x[:, perm], w, params, NO_MASK, score=score)[0])
    np.testing.assert_allclose(out_perm, out[:, perm], atol=1e-5)


@jax.jit
def _attend(q, k, v):
    return dot_product_attention(q, k, v)


def test_queries_equivariant_and_joint_key_value_permutation_invariant():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, T, N, H)).astype(np.float32)
    k = rng.standard_normal((B, 9, K, H)).astype(np.float32)
    v = rng.standard_normal((B, 9, K, H)).astype(np.float32)
    out = np.asarray(_attend(q, k, v))
    q_perm, kv_perm = rng.permutation(T), rng.permutation(9)
    np.testing.assert_allclose(_attend(q[:, q_perm], k, v), out[:, q_perm], atol=1e-6)
    np.testing.assert_allclose(_attend(q, k[:, kv_perm], v[:, kv_perm]), out, atol=1e-5)
    # Permuting keys alone (not values) does change the output.
    assert np.abs(np.asarray(_attend(q, k[:, kv_perm], v)) - out).max() > 1e-3


@functools.partial(jax.jit, static_argnames="score")
def _input_jacobian(x, w, params, mask, *, score):
    """d out[b, t] / d x[b, s], reduced to a [T, S] dependency map summed over batch."""
    f = lambda x: self_attention(x, w, params, mask, score=score)[0]
    jac = jax.jacrev(f)(x)  # [B,T,N,H, B,S,D]
    return jnp.abs(jac).sum(axis=(0, 2, 3, 4, 6))


@pytest.mark.parametrize("score", ["scaled_dot", "additive"])
@pytest.mark.parametrize("case", ["causal", "window", "strided", "prefix"], ids=lambda c: c)
def test_dependencies_through_gradients(case, score):
    """Output t has gradient from input s exactly where the mask allows (or s == t).

    With a causal mask no output position gets gradient from a later input: the
    strongest check of causality, independent of how the mask was built.
    """
    specs = {
        "causal": MaskSpec(causal=True),
        "window": MaskSpec(causal=True, window=3),
        "strided": MaskSpec(causal=True, block=2, stride=2),
    }
    if case == "prefix":
        allowed = np.asarray(prefix_lm_mask(T, 3))
    else:
        allowed = np.asarray(specs[case].dense(T))
    x, w, params = _setup(score)
    dep = np.asarray(_input_jacobian(x, w, params, allowed[None, None], score=score))
    reach = allowed | np.eye(T, dtype=bool)  # the query itself comes from x[t]
    assert np.all(dep[~reach] == 0)
    assert np.all(dep[reach] > 0)
    if case != "prefix":
        assert np.all(np.triu(dep, 1) == 0), "an output depends on a later input"
