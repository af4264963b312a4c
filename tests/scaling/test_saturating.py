"""The saturating-law frontier fit: frontier extraction, recovery of a known law, held out."""

import numpy as np
import pytest

from attn_jax.scaling import laws, saturating

TRUE = {"a": 5.0, "b": 0.15, "c": 0.06, "d": 1e9}


def _points(noise=0.0, seed=0):
    """Frontier points on the known law, plus dominated points above it (small models
    past their capacity), as a sweep gives them."""
    rng = np.random.default_rng(seed)
    C = np.geomspace(1e10, 1e13, 10)
    E = laws.get_law("saturating").fn(TRUE, x=C) * np.exp(noise * rng.standard_normal(10))
    C_dom = np.geomspace(3e10, 1e13, 6)
    E_dom = laws.get_law("saturating").fn(TRUE, x=C_dom) + 0.05  # worse at equal compute
    return np.concatenate([C, C_dom]), np.concatenate([E, E_dom])


def test_frontier_keeps_only_points_better_than_all_cheaper_ones():
    C = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    E = np.array([0.5, 0.6, 0.4, 0.45, 0.3, 0.3])
    idx = saturating.frontier(C, E)
    assert idx.tolist() == [0, 2, 4]  # 0.6 and 0.45 are dominated; the tie at 0.3 is no gain


def test_recovers_a_known_law_and_predicts_the_held_out_point():
    C, E = _points()
    out = saturating.fit_frontier(C, E, n_bootstrap=0)
    assert len(out.frontier_idx) == 10  # the dominated points are left out
    assert out.params["b"] == pytest.approx(TRUE["b"], rel=0.02)
    assert out.params["c"] == pytest.approx(TRUE["c"], rel=0.02)
    assert out.held_out["rel_error"] < 1e-3
    np.testing.assert_allclose(out.predict(C[:10]), E[:10], rtol=1e-4)


def test_noisy_fit_is_close_and_predicts_the_held_out_point():
    C, E = _points(noise=0.01, seed=1)
    out = saturating.fit_frontier(C, E, n_bootstrap=20, seed=0)
    # b and d trade off against each other under noise; c and the curve are identified.
    assert out.params["c"] == pytest.approx(TRUE["c"], rel=0.1)
    np.testing.assert_allclose(out.predict(C[:10]), E[:10], rtol=0.03)
    assert out.held_out["rel_error"] < 0.05
    assert out.intervals["c"]["lo"] < out.params["c"] < out.intervals["c"]["hi"]


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_truth_at_about_their_rate():
    """20 replicate sweeps with 2% noise: the 90% intervals of c and of the error at the
    largest compute cover the truth in at least 70% of them (a 10-point bootstrap
    undercovers a little; a broken one, e.g. resampling nothing, covers almost never)."""
    truth = {"c": TRUE["c"], "E_at_max_C": float(laws.get_law("saturating").fn(TRUE, x=1e13))}
    hits = {k: 0 for k in truth}
    R = 20
    for r in range(R):
        C, E = _points(noise=0.02, seed=100 + r)
        out = saturating.fit_frontier(C, E, n_bootstrap=100, seed=r, level=0.9)
        for k in hits:
            hits[k] += out.intervals[k]["lo"] <= truth[k] <= out.intervals[k]["hi"]
    assert min(hits.values()) / R >= 0.7, hits


def test_too_few_frontier_points_is_a_clear_error():
    with pytest.raises(ValueError, match="frontier has 3 points"):
        saturating.fit_frontier([1e10, 2e10, 3e10, 4e10], [0.3, 0.2, 0.1, 0.2], n_bootstrap=0)
    with pytest.raises(ValueError, match="E > 0"):
        saturating.fit_frontier([1e10, 2e10], [0.3, 0.0], n_bootstrap=0)
