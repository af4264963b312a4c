"""Score functions: against NumPy formulas, their registry, and the variance of q.k."""

import functools

import jax
import numpy as np
import pytest
from reference import random_score_params, reference_attention

from attn_jax.ops import SCORES, dot_product_attention, get_score, init_score_params

B, T, S, N, H = 2, 5, 6, 4, 8


def _inputs(K, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, T, N, H)).astype(np.float32)
    k = rng.standard_normal((B, S, K, H)).astype(np.float32)
    return q, k


def numpy_logits(name, q, k, params, scale):
    """Each score's formula, head by head, in float64 (query head n uses kv head n // G)."""
    q, k = np.float64(q), np.float64(k)
    G = N // k.shape[2]
    p = {key: np.broadcast_to(np.float64(val), (N,) + val.shape[1:]) for key, val in params.items()}
    out = np.zeros((B, N, T, S))
    for b, n, t, s in np.ndindex(B, N, T, S):
        qv, kv = q[b, t, n], k[b, s, n // G]
        if name in ("dot", "scaled_dot"):
            out[b, n, t, s] = qv @ kv
        elif name == "multiplicative":  # Luong "general": q^T W k
            out[b, n, t, s] = qv @ p["w_NHH"][n] @ kv
        else:  # Bahdanau: v^T tanh(W_q q + W_k k + b)
            hidden = np.tanh(qv @ p["wq_NHA"][n] + kv @ p["wk_NHA"][n] + p["b_NA"][n])
            out[b, n, t, s] = p["v_NA"][n] @ hidden
    default = H**-0.5 if name == "scaled_dot" else 1.0
    return out * (default if scale is None else scale)


@jax.jit
def _all_scores(q, k, params, scale):
    """Every registered score at once (one compile per shape), name -> logits_BNTS."""
    return {name: fn(q, k, params.get(name), scale) for name, fn in SCORES.items()}


def _params(num_heads=N, seed=0):
    return {name: random_score_params(name, num_heads, H, A=3, seed=seed) for name in SCORES}


@pytest.mark.parametrize(("K", "scale"), [(4, None), (2, 0.5), (1, None)])
def test_scores_match_formulas(K, scale):
    q, k = _inputs(K)
    params = _params()
    got = _all_scores(q, k, params, scale)
    assert sorted(got) == sorted(SCORES)
    for name, logits in got.items():
        assert logits.shape == (B, N, T, S)
        assert logits.dtype == np.float32
        want = numpy_logits(name, q, k, params[name], scale)
        np.testing.assert_allclose(logits, want, atol=1e-5, rtol=1e-5, err_msg=name)


def test_shared_params_broadcast_over_heads_and_identity_is_dot():
    q, k = _inputs(4)
    shared = _params(num_heads=1, seed=1)
    per_head = jax.tree.map(lambda x: np.repeat(x, N, axis=0), shared)
    got_shared, got_per_head = _all_scores(q, k, shared, None), _all_scores(q, k, per_head, None)
    for name in ("multiplicative", "additive"):
        np.testing.assert_allclose(got_shared[name], got_per_head[name], atol=1e-6)
    # Luong's "general" score with W = I is the "dot" score.
    shared["multiplicative"] = {"w_NHH": np.eye(H, dtype=np.float32)[None]}
    got = _all_scores(q, k, shared, None)
    np.testing.assert_allclose(got["multiplicative"], got["dot"], atol=1e-6)


def test_init_score_params():
    init = functools.partial(init_score_params, H=H, num_heads=N, hidden=5)
    for name in ("multiplicative", "additive"):  # shapes without running the PRNG
        params = jax.eval_shape(functools.partial(init, name), jax.random.key(0))
        want = jax.tree.map(np.shape, random_score_params(name, N, H, A=5))
        assert jax.tree.map(lambda x: x.shape, params) == want
    # At init q^T W k has about the variance of q.k (= H): logits stay O(sqrt(H)).
    # An rbg key: its generator compiles far faster than threefry on CPU.
    params = jax.jit(functools.partial(init, "multiplicative"))(jax.random.key(0, impl="rbg"))
    q, k = _inputs(4, seed=3)
    logits = np.asarray(jax.jit(SCORES["multiplicative"])(q, k, params))
    assert 0.2 * H < logits.var() < 5 * H


@pytest.mark.parametrize("name", ["multiplicative", "additive"])
def test_attention_with_parameterized_score(name):
    q, k = _inputs(1)
    v = np.random.default_rng(1).standard_normal(k.shape).astype(np.float32)
    params = random_score_params(name, N, H)
    got = jax.jit(functools.partial(dot_product_attention, score=name))(
        q, k, v, score_params=params
    )
    want, _ = reference_attention(q, k, v, logits=numpy_logits(name, q, k, params, None))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_registry_errors_name_valid_keys():
    with pytest.raises(ValueError, match="valid scores.*additive"):
        get_score("cosine")
    with pytest.raises(ValueError, match="valid scores"):
        init_score_params("cosine", jax.random.key(0), H)
    assert init_score_params("scaled_dot", jax.random.key(0), H) == {}
    q, k = _inputs(4)
    for name in ("multiplicative", "additive"):
        with pytest.raises(ValueError, match="init_score_params"):
            get_score(name)(q, k, None, None)


@jax.jit
def _dot_and_scaled(q, k):
    return SCORES["dot"](q, k, None, None), SCORES["scaled_dot"](q, k, None, None)


@pytest.mark.parametrize("d_k", [16, 64])
def test_dot_product_variance_is_d_k(d_k):
    """Var(q.k) = d_k for q, k ~ N(0, I) (Vaswani et al. 2017, footnote 4).

    8 independent replicates (the batch axis) of a 400 x 250 grid of q.k; the
    grid shares q's and k's, so the standard error comes from the spread of the
    replicates, not a textbook formula. The tolerance (5 standard errors, a few
    percent of d_k) is asserted to reject d_k/2 and 2 d_k by a wide margin.
    """
    rng = np.random.default_rng(d_k)
    q = rng.standard_normal((8, 400, 1, d_k)).astype(np.float32)
    k = rng.standard_normal((8, 250, 1, d_k)).astype(np.float32)
    logits, scaled_logits = (np.asarray(x, np.float64) for x in _dot_and_scaled(q, k))
    variances = logits.reshape(8, -1).var(axis=1)
    estimate = variances.mean()
    se = variances.std(ddof=1) / np.sqrt(len(variances))
    tolerance = 5 * se
    assert tolerance < 0.1 * d_k, "test too weak to tell d_k from d_k/2 or 2 d_k"
    assert abs(estimate - d_k) < tolerance
    for wrong in (d_k / 2, 2 * d_k):
        assert abs(estimate - wrong) > 5 * tolerance
    # Scaling by 1/sqrt(d_k) brings the logits to unit variance.
    assert abs(scaled_logits.reshape(8, -1).var(axis=1).mean() - 1.0) < tolerance / d_k
