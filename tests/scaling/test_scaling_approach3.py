"""Approach 3 against published numbers (Besiroglu et al. 2024) and known surfaces."""

import pathlib

import numpy as np
import pytest
import scipy.optimize

from attn_jax.scaling import approach3, bootstrap, frontier, laws, records, synthetic

DATA = pathlib.Path(__file__).parents[1] / "data" / "chinchilla_svg_extracted.csv"
TRUE = approach3.HOFFMANN_2022


@pytest.fixture(scope="module")
def chinchilla():
    data = records.load_csv(DATA, drop_highest=5)
    assert data.N.shape == (240,)
    return data


@pytest.fixture(scope="module")
def chinchilla_fit(chinchilla):
    return approach3.fit_approach3(chinchilla.N, chinchilla.D, chinchilla.L, top_k=16)


def _assert_besiroglu(p):
    ref = approach3.BESIROGLU_2024
    assert abs(p["alpha"] - 0.348) <= 0.003, p
    assert abs(p["beta"] - 0.366) <= 0.005, p
    assert abs(p["E"] - 1.817) <= 0.01, p
    assert abs(p["A"] / ref["A"] - 1) <= 0.05, p
    assert abs(p["B"] / ref["B"] - 1) <= 0.05, p
    a, _ = frontier.exponents(p["alpha"], p["beta"])
    assert abs(a - 0.51) <= 0.01, a


def test_reproduces_besiroglu_refit(chinchilla_fit):
    _assert_besiroglu(chinchilla_fit.params)
    d = chinchilla_fit.diagnostics
    assert d.warnings == [], d.lines()
    assert d.identifiable
    assert d.n_agree >= 2
    assert d.grad_norm < 1e-5


def test_from_hoffmann_values_reaches_the_same_optimum(chinchilla, chinchilla_fit):
    fit = approach3.fit_approach3(
        chinchilla.N, chinchilla.D, chinchilla.L, init=TRUE, grid=np.zeros((0, 5))
    )
    _assert_besiroglu(fit.params)
    np.testing.assert_allclose(fit.theta, chinchilla_fit.theta, atol=1e-4)
    assert abs(fit.params["beta"] - TRUE["beta"]) > 0.07, "stopped where it started"


def test_averaged_objective_is_what_stops_early(chinchilla):
    """The published failure: an averaged Huber loss under default tolerances barely moves."""
    logs = [np.log(x) for x in (chinchilla.N, chinchilla.D, chinchilla.L)]
    mean_obj = lambda t: tuple(v / 240 for v in approach3.objective(t, *logs))
    res = scipy.optimize.minimize(
        mean_obj, approach3.theta_from_params(TRUE), jac=True, method="L-BFGS-B"
    )
    assert abs(res.x[4] - TRUE["beta"]) < 0.01  # beta stuck near 0.28, not 0.366


def test_gradient_is_exact():
    rng = np.random.default_rng(0)
    N, D, L = synthetic.grid_points(TRUE, np.logspace(7, 10, 6), np.logspace(9, 12, 6), sigma=0.02)
    logs = [np.log(x) for x in (N, D, L)]
    w = rng.integers(0, 3, N.shape[0]).astype(float)
    for _ in range(3):
        theta = approach3.theta_from_params(TRUE) + rng.normal(0, 0.05, 5)
        _, g = approach3.objective(theta, *logs, weights_P=w)
        fd = scipy.optimize.approx_fprime(
            theta, lambda t: approach3.objective(t, *logs, weights_P=w)[0], 1e-7
        )
        np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-9)


def test_lse_is_the_chinchilla_law():
    N, D, L = synthetic.grid_points(TRUE, np.logspace(7, 10, 4), np.logspace(9, 12, 4))
    theta = approach3.theta_from_params(TRUE)
    pred, _ = approach3._lse(theta[None], np.log(N), np.log(D))
    np.testing.assert_allclose(np.exp(pred[0]), L, rtol=1e-12)
    np.testing.assert_allclose(
        approach3.objective_many(theta[None], np.log(N), np.log(D), np.log(L)), [0.0], atol=1e-20
    )


def test_noise_free_surface_recovered_exactly():
    N, D, L = synthetic.grid_points(TRUE, np.logspace(7, 10, 7), np.logspace(9, 12, 7))
    fit = approach3.fit_approach3(N, D, L, top_k=8)
    for k, v in TRUE.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-4), (k, fit.params)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_surface_frontier_exponent_within_002(seed):
    N, D, L = synthetic.grid_points(
        TRUE, np.logspace(7, 10, 8), np.logspace(9, 12, 8), sigma=0.005, seed=seed
    )
    fit = approach3.fit_approach3(N, D, L, top_k=8)
    a_true, _ = frontier.exponents(TRUE["alpha"], TRUE["beta"])
    assert abs(fit.frontier_exponents[0] - a_true) < 0.02, fit.params


def test_warns_when_alpha_beta_not_identifiable():
    N = np.logspace(7, 10, 12)
    D = 20 * N  # every run at 20 tokens/param: N and D move together
    fit = approach3.fit_approach3(N, D, laws.chinchilla(TRUE, N, D), top_k=4)
    assert not fit.diagnostics.identifiable
    assert any("not identifiable" in w for w in fit.diagnostics.warnings)


def test_bootstrap_standard_errors_fast(chinchilla, chinchilla_fit):
    boot = bootstrap.bootstrap_approach3(
        chinchilla.N, chinchilla.D, chinchilla.L, init=chinchilla_fit.params, n_resamples=24
    )
    assert 0.006 < boot.se("alpha") < 0.03
    assert 0.01 < boot.se("beta") < 0.04
    lo, hi = boot.interval("a")
    assert lo < chinchilla_fit.frontier_exponents[0] < hi


@pytest.mark.slow
def test_bootstrap_standard_errors_full(chinchilla, chinchilla_fit):
    """Besiroglu et al. report SEs of about 0.02 for alpha and beta (200 resamples)."""
    boot = bootstrap.bootstrap_approach3(
        chinchilla.N, chinchilla.D, chinchilla.L, init=chinchilla_fit.params, n_resamples=200
    )
    assert 0.012 < boot.se("alpha") < 0.025
    assert 0.015 < boot.se("beta") < 0.03
