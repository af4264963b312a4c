"""Position schemes: formulas, and the properties they were designed for."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import (
    reference_alibi_bias,
    reference_relative_bucket,
    reference_rope,
    reference_sinusoidal,
    reference_t5_bias,
)

from attn_jax.ops import (
    alibi_bias,
    alibi_bias_fn,
    alibi_slopes,
    apply_rope,
    relative_bucket,
    sinusoidal,
    t5_bias_fn,
    t5_relative_bias,
)
from attn_jax.ops.positions import init_learned_table, learned_positions
from attn_jax.ops.scores import grouped_logits


def test_sinusoidal_matches_formula():
    positions = np.array([[0, 1, 7], [30, 99, 3]])
    got = sinusoidal(positions, 12)
    assert got.shape == (2, 3, 12)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, reference_sinusoidal(positions, 12), atol=2e-5)
    with pytest.raises(ValueError, match="even"):
        sinusoidal(positions, 7)


def test_sinusoidal_shift_is_a_fixed_linear_map():
    """PE(p + k) = M_k PE(p) with M_k independent of p (Vaswani et al. 2017, §3.5).

    M_k is fitted by least squares on positions 0..39 and must then map
    positions 200..239 as well; it also equals the block rotation the sin/cos
    addition formulas predict.
    """
    D, shift = 8, 5
    rng = np.random.default_rng(0)
    # Spread the fit over thousands of positions: the slowest frequency is 1e-3.
    fit_p, test_p = rng.choice(5000, 64, replace=False), 5000 + rng.choice(5000, 64)
    pe = lambda p: np.asarray(sinusoidal(p, D), np.float64)
    m_k, *_ = np.linalg.lstsq(pe(fit_p), pe(fit_p + shift), rcond=None)
    m_k = m_k.T  # lstsq solves X A = Y for row vectors; M_k = A^T
    np.testing.assert_allclose(pe(test_p) @ m_k.T, pe(test_p + shift), atol=2e-3)
    rotation = np.zeros((D, D))
    for i in range(D // 2):
        a = shift / 10000 ** (2 * i / D)
        # [sin(x+a), cos(x+a)] = [[cos a, sin a], [-sin a, cos a]] [sin x, cos x]
        rotation[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [
            [np.cos(a), np.sin(a)],
            [-np.sin(a), np.cos(a)],
        ]
    np.testing.assert_allclose(m_k, rotation, atol=2e-3)
    np.testing.assert_allclose(pe(test_p) @ rotation.T, pe(test_p + shift), atol=2e-3)
    # A shift of a different size is a different map: M_k really depends on k.
    assert np.abs(pe(test_p) @ m_k.T - pe(test_p + shift + 1)).max() > 0.1


def test_learned_positions_lookup():
    table = np.asarray(init_learned_table(jax.random.key(0, impl="rbg"), 10, 4))
    assert table.shape == (10, 4)
    assert 0.005 < table.std() < 0.05
    np.testing.assert_array_equal(learned_positions(table, np.array([[3, 0]])), table[[[3, 0]]])


rope = jax.jit(apply_rope)


def test_rope_matches_formula_and_keeps_norms():
    x = np.random.default_rng(0).standard_normal((2, 5, 3, 8)).astype(np.float32)
    positions = np.array([[0, 1, 2, 3, 4], [7, 100, 2, 9, 0]])
    got = np.asarray(rope(x, positions))
    np.testing.assert_allclose(got, reference_rope(x, positions), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(rope(x, positions[0]), rope(x, positions[:1]), atol=0)
    np.testing.assert_array_equal(rope(x, np.zeros((2, 5), int)), x)
    x16 = x.astype(jnp.bfloat16)
    assert rope(x16, positions).dtype == jnp.bfloat16


@jax.jit
def _rope_logits(q, k, q_pos, k_pos):
    return grouped_logits(apply_rope(q, q_pos), apply_rope(k, k_pos))


def test_rope_scores_depend_only_on_relative_offset():
    """<R_m q, R_n k> = <q, R_(n-m) k> (Su et al. 2021, eq. 16): shift both, same logits."""
    rng = np.random.default_rng(1)
    q = rng.standard_normal((1, 6, 2, 16)).astype(np.float32)
    k = rng.standard_normal((1, 6, 1, 16)).astype(np.float32)
    pos = np.arange(6)[None]
    base = np.asarray(_rope_logits(q, k, pos, pos))
    for shift in (1, 17, 250):
        shifted = _rope_logits(q, k, pos + shift, pos + shift)
        np.testing.assert_allclose(shifted, base, atol=1e-4)
    # ...and they do depend on the offset: moving only the queries changes them.
    assert np.abs(np.asarray(_rope_logits(q, k, pos + 3, pos)) - base).max() > 1e-2
    # Every logit is a function of (m - n): equal offsets, equal logits for one q, k pair.
    same_q = np.broadcast_to(q[:, :1], q.shape)
    same_k = np.broadcast_to(k[:, :1], k.shape)
    diag = np.asarray(_rope_logits(same_q, same_k, pos, pos))[0, 0]
    for offset in range(-5, 6):
        np.testing.assert_allclose(np.diagonal(diag, offset), np.diagonal(diag, offset)[0], 1e-5)


def test_alibi_slopes_follow_press_et_al():
    np.testing.assert_allclose(alibi_slopes(8), 2.0 ** -np.arange(1, 9), rtol=1e-6)
    np.testing.assert_allclose(alibi_slopes(4), 2.0 ** (-2.0 * np.arange(1, 5)), rtol=1e-6)
    # Non-powers of two: slopes of the lower power of two, then every other of 2x.
    want6 = np.r_[2.0 ** (-2.0 * np.arange(1, 5)), 2.0**-1, 2.0**-3]
    np.testing.assert_allclose(alibi_slopes(6), want6, rtol=1e-6)
    want12 = np.r_[2.0 ** -np.arange(1, 9), 2.0 ** -np.array([0.5, 1.5, 2.5, 3.5])]
    np.testing.assert_allclose(alibi_slopes(12), want12, rtol=1e-6)
    assert alibi_slopes(1).shape == (1,)
    for n in range(1, 20):
        slopes = np.asarray(alibi_slopes(n))
        assert slopes.shape == (n,)
        assert np.all((slopes > 0) & (slopes < 1))
        assert len(np.unique(slopes)) == n


def test_alibi_bias():
    slopes = alibi_slopes(6)
    q_pos, k_pos = np.array([4, 5, 6]), np.arange(8)
    want = reference_alibi_bias(np.asarray(slopes), q_pos, k_pos)
    np.testing.assert_allclose(alibi_bias(slopes, q_pos, k_pos), want, atol=1e-6)
    np.testing.assert_allclose(alibi_bias_fn(slopes)(q_pos, k_pos), want, atol=1e-6)


BUCKET_CASES = [(bi, nb, md) for bi in (True, False) for nb, md in ((32, 128), (8, 20))]
REL = np.arange(-300, 301)


@functools.cache
def _buckets():
    """Every bucket configuration in one compile."""
    return jax.jit(lambda rel: [relative_bucket(rel, *case) for case in BUCKET_CASES])(REL)


@pytest.mark.parametrize("case", range(len(BUCKET_CASES)))
def test_relative_bucket_matches_t5(case):
    bidirectional, num_buckets, max_distance = BUCKET_CASES[case]
    want = [
        reference_relative_bucket(int(r), bidirectional, num_buckets, max_distance) for r in REL
    ]
    got = np.asarray(_buckets()[case])
    np.testing.assert_array_equal(got, want)
    assert got.min() >= 0
    assert got.max() == num_buckets - 1


@jax.jit
def _t5_biases(table, q_pos, k_pos):
    return (
        t5_relative_bias(table, q_pos, k_pos, True, 16),
        t5_bias_fn(table, True, 16)(q_pos, k_pos),
        t5_relative_bias(table, q_pos, k_pos, False, 16),
    )


def test_t5_relative_bias():
    table = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    q_pos, k_pos = np.arange(5, 10), np.arange(12)
    bidir, bidir_fn, causal = _t5_biases(table, q_pos, k_pos)
    want = reference_t5_bias(table, q_pos, k_pos, True, 16)
    np.testing.assert_allclose(bidir, want)
    np.testing.assert_allclose(bidir_fn, want)
    np.testing.assert_allclose(causal, reference_t5_bias(table, q_pos, k_pos, False, 16))
