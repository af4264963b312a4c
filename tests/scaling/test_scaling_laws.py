"""Every law in the registry, fitted by weighted least squares, recovers its parameters."""

import numpy as np
import pytest

from attn_jax.scaling import laws, wls

X = np.logspace(5, 9, 12)
N = np.repeat(np.logspace(6, 9, 5), 4)
D = np.tile(np.logspace(8, 11, 4), 5)
CASES = {
    "power_offset": ({"E": 1.5, "A": 200.0, "alpha": 0.3}, {"x": X}),
    "kaplan": ({"x_c": 1e10, "alpha": 0.08}, {"x": X}),
    "saturating": ({"a": 50.0, "b": 0.25, "c": 1.2, "d": 1e5}, {"x": X}),
    "broken_power": ({"a": 1.0, "b": 30.0, "c0": 0.1, "c1": 0.3, "d1": 1e7, "f1": 0.5}, {"x": X}),
    "chinchilla": (
        {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
        {"N": N, "D": D},
    ),
    "kaplan_nd": (
        {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095},
        {"N": N, "D": D},
    ),
}


def test_every_law_has_a_case():
    assert set(CASES) == set(laws.LAWS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_wls_recovers_noise_free_parameters(name):
    p, inputs = CASES[name]
    y = laws.get_law(name)(p, **inputs)
    fit = wls.fit_wls(name, y, **inputs)
    for k, v in p.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-4), (k, fit.params)
    np.testing.assert_allclose(fit.predict(**inputs), y, rtol=1e-8)


def test_weights_downweight_an_outlier():
    p, inputs = CASES["power_offset"]
    y = laws.power_offset(p, X) * np.where(np.arange(12) == 6, 1.3, 1.0)
    w = np.where(np.arange(12) == 6, 0.0, 1.0)
    assert wls.fit_wls("power_offset", y, weights=w, x=X).params["alpha"] == pytest.approx(
        0.3, rel=1e-4
    )


def test_unknown_law_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: .*chinchilla"):
        laws.get_law("chinchila")


def test_kaplan_nd_reduces_to_kaplan_n_without_data_limit():
    p, _ = CASES["kaplan_nd"]
    got = laws.kaplan_nd(p, N=X, D=np.full_like(X, 1e40))
    np.testing.assert_allclose(
        got, laws.kaplan({"x_c": p["N_c"], "alpha": p["alpha_N"]}, X), rtol=1e-9
    )
