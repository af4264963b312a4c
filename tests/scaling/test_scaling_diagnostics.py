"""The identifiability warning fires when the data cannot pin the law, and only then."""

import numpy as np
import pytest

from attn_jax.scaling import approach3, synthetic

# The old demo's 12 schedule-final points (sweeps/demo.py before issue 16): 6 sizes from
# 12.5k to 1.33M parameters at 2^18 and 2^19 tokens, held-out nats per byte.
OLD_N = np.tile(np.geomspace(12.5e3, 1.33e6, 6), 2)
OLD_D = np.repeat([2.0**18, 2.0**19], 6)
OLD_L = np.array(
    [2.499, 2.387, 2.342, 2.242, 2.185, 2.154, 2.335, 2.236, 2.153, 2.059, 2.019, 1.985]
)


def _ident_warning(fit):
    return [w for w in fit.diagnostics.warnings if "not identifiable" in w]


def test_fires_on_the_old_demo_design():
    fit = approach3.fit_approach3(OLD_N, OLD_D, OLD_L, top_k=16)
    assert not fit.diagnostics.identifiable
    (w,) = _ident_warning(fit)
    assert "D 0.30 decades" in w
    assert "standard error" in w


@pytest.mark.parametrize("seed", [0, 2])
def test_fires_when_E_is_not_pinned_on_a_wide_design(seed):
    """Data from a law without a floor (E = 0): N and D vary widely and independently and
    the curvature is positive definite, yet E's standard error dwarfs E."""
    N, D = synthetic.DEMO_DESIGN
    L = synthetic.replicate({**synthetic.DEMO_LAW, "E": 0.0}, N, D, seed=seed)
    fit = approach3.fit_approach3(N, D, L, top_k=16)
    assert fit.diagnostics.hessian_pd
    assert not fit.diagnostics.identifiable
    assert "far below every observed loss" in _ident_warning(fit)[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_silent_on_a_good_design_with_realistic_noise(seed):
    N, D = synthetic.DEMO_DESIGN
    L = synthetic.replicate(synthetic.DEMO_LAW, N, D, seed=seed)
    fit = approach3.fit_approach3(N, D, L, top_k=16)
    assert fit.diagnostics.identifiable, fit.diagnostics.lines()
    assert fit.diagnostics.warnings == [], fit.diagnostics.lines()
    se = fit.diagnostics.local_se
    assert 0 < se["alpha"] < 0.1
    assert 0 < se["beta"] < 0.1
