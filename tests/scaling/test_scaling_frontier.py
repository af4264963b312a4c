"""The compute-optimal frontier: a = beta/(alpha+beta), checked by direct minimization."""

import numpy as np
import pytest
import scipy.optimize

from attn_jax.scaling import approach3, frontier, laws

P = approach3.HOFFMANN_2022  # alpha != beta, so a swapped formula fails


def _numeric_n_opt(p, C, k=6.0):
    f = lambda x: laws.chinchilla(p, np.exp(x), C / (k * np.exp(x)))
    return np.exp(
        scipy.optimize.minimize_scalar(
            f, bounds=(0, 60), method="bounded", options={"xatol": 1e-10}
        ).x
    )


@pytest.mark.parametrize("k", [6.0, 7.3])
def test_allocation_minimizes_loss_on_the_isoflop_line(k):
    for C in (1e18, 1e21, 1e24):
        n_opt, d_opt = frontier.optimal_allocation(P, C, k)
        assert n_opt == pytest.approx(_numeric_n_opt(P, C, k), rel=1e-6)
        assert k * n_opt * d_opt == pytest.approx(C, rel=1e-12)


def test_exponent_a_is_beta_over_sum_not_swapped():
    a, b = frontier.exponents(P["alpha"], P["beta"])
    C = np.array([1e19, 1e23])
    slope = np.diff(np.log([_numeric_n_opt(P, c) for c in C])) / np.diff(np.log(C))
    assert slope[0] == pytest.approx(a, abs=1e-6)
    assert a == pytest.approx(0.28 / 0.62)
    assert a + b == pytest.approx(1.0)


def test_derived_quantities():
    d = frontier.derived(P, budgets=(1e21,))
    n, dd = frontier.optimal_allocation(P, 1e21)
    assert d["tokens_per_param@1e+21"] == pytest.approx(dd / n)
    assert d["loss_opt@1e+21"] == pytest.approx(frontier.optimal_loss(P, 1e21))
    assert d["loss_opt@1e+21"] == pytest.approx(laws.chinchilla(P, n, dd))
