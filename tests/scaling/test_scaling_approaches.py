"""Approaches 1 and 2 on noise-free surfaces, and Approach 2's refusals."""

import numpy as np
import pytest

from attn_jax.scaling import approach3, approaches, frontier, laws, synthetic

P = approach3.HOFFMANN_2022
A_TRUE, B_TRUE = frontier.exponents(P["alpha"], P["beta"])
BUDGETS = np.logspace(18, 22, 5)


@pytest.mark.parametrize("offset", [0.0, 0.2])
def test_approach2_recovers_a_on_a_noise_free_surface(offset):
    N, D, C, L = synthetic.isoflop_points(P, BUDGETS, offset=offset, span=0.6)
    fit = approaches.approach2(N, D, L, C)
    assert fit.refused == {}
    assert fit.a == pytest.approx(A_TRUE, abs=1e-3)
    assert fit.b == pytest.approx(B_TRUE, abs=1e-3)


def test_approach2_refuses_a_budget_whose_minimum_is_outside_its_sizes():
    N, D, C, L = synthetic.isoflop_points(P, BUDGETS[:4], span=0.6)
    # A fifth budget sampled only below its optimum: the parabola's vertex is extrapolated.
    n_opt, _ = frontier.optimal_allocation(P, BUDGETS[4])
    n5 = n_opt * np.logspace(-2.0, -0.8, 7)
    d5 = BUDGETS[4] / (6 * n5)
    N, D, L = (
        np.concatenate([x, y]) for x, y in ((N, n5), (D, d5), (L, laws.chinchilla(P, n5, d5)))
    )
    C = np.concatenate([C, np.full(7, BUDGETS[4])])
    with pytest.raises(
        ValueError, match=r"C = 1e\+22: the minimum N = .* outside the sampled sizes"
    ):
        approaches.approach2(N, D, L, C, on_bad="raise")
    fit = approaches.approach2(N, D, L, C)
    assert list(fit.refused) == [pytest.approx(1e22)]
    assert fit.a == pytest.approx(A_TRUE, abs=1e-3)


def test_group_budgets_tolerates_jitter():
    rng = np.random.default_rng(0)
    C = np.repeat([1e18, 1e19, 3e19], 4) * np.exp(rng.normal(0, 0.01, 12))
    labels, budgets = approaches.group_budgets(C)
    np.testing.assert_array_equal(labels, np.repeat([0, 1, 2], 4))
    np.testing.assert_allclose(budgets, [1e18, 1e19, 3e19], rtol=0.02)


def test_approach1_lower_envelope():
    sizes = np.logspace(7, 10, 25)
    curves = []
    for n in sizes:
        D = np.logspace(8, 13, 60)
        curves.append({"N": n, "D": D, "C": 6 * n * D, "loss": laws.chinchilla(P, n, D)})
    fit = approaches.approach1(curves, n_grid=40)
    assert fit.a == pytest.approx(A_TRUE, abs=0.03)
    with pytest.raises(ValueError, match="two model sizes"):
        approaches.approach1(curves[:1])


def test_approach1_reads_the_envelope_only_where_two_sizes_overlap():
    # WSD branches: a size's curves share their parent's first eval. Where only the big
    # size's curves reach (the lowest compute), the envelope has no second size to beat.
    small, big = 1e4, 5e4
    curves = [
        {"N": small, "C": np.array([1.2e11, 1.5e11, 6e11]), "loss": np.array([2.1, 2.0, 1.9])},
        {"N": big, "C": np.array([1.1e11, 1.5e11]), "loss": np.array([2.3, 2.2])},
        {"N": big, "C": np.array([1.1e11, 1.2e12]), "loss": np.array([2.3, 1.6])},
    ]
    fit = approaches.approach1(curves, n_grid=60)
    assert fit.C.min() >= 1.2e11
    # the small size wins where both run, until the big one's long curve overtakes it
    assert fit.N_opt[0] == small


def test_approach2_weights_drop_points_and_budgets():
    N, D, C, L = synthetic.isoflop_points(P, BUDGETS, span=0.6)
    w = np.where(C == BUDGETS[0], 0.0, 2.0)  # a resample that lost the smallest budget
    fit = approaches.approach2(N, D, L, C, weights=w)
    assert fit.C.shape == (4,)
    assert fit.C.min() > BUDGETS[0]
    assert fit.a == pytest.approx(A_TRUE, abs=1e-3)
