"""Bootstrap over runs and leave-the-largest-out validation."""

import numpy as np
import pytest

from attn_jax.scaling import approach3, bootstrap, synthetic


def test_resample_weights_resample_runs_not_points():
    groups = np.repeat(np.arange(5), 3)  # 5 runs, 3 points each
    w = bootstrap.resample_weights(groups, 50, seed=0)
    assert w.shape == (50, 15)
    np.testing.assert_array_equal(w.reshape(50, 5, 3).std(axis=2), 0)  # a run moves as one
    np.testing.assert_array_equal(w.sum(axis=1), 15)


def test_bootstrap_summary_and_failed_resamples():
    calls = iter(range(100))

    def fit_fn(w):
        if next(calls) % 5 == 0:
            raise ValueError("too few sizes")
        return {"x": float(w[:3].sum())}

    boot = bootstrap.bootstrap(fit_fn, np.arange(6), n_resamples=20, seed=1)
    assert boot.n_failed == 4
    assert boot.samples["x"].shape == (16,)
    s = boot.summary()["x"]
    assert s["lo"] <= s["mean"] <= s["hi"]
    assert s["se"] > 0


def test_leave_largest_out_on_a_known_surface():
    p = approach3.HOFFMANN_2022
    N, D, L = synthetic.grid_points(p, np.logspace(7, 10, 6), np.logspace(9, 12, 6), sigma=0.002)
    out = bootstrap.leave_largest_out(N, D, L, top_k=4)
    assert out["N_held_out"] == N.max()
    assert out["n_held_out"] == 6
    assert out["mean_abs_rel_error"] < 0.01


def test_leave_largest_out_scores_the_seed_mean():
    """With seeds the held-out size's loss is its mean over seeds: seed noise that
    averages out must not count as prediction error (scored per point, a 3% seed
    spread would read as a 3% miss)."""
    p = approach3.HOFFMANN_2022
    N, D, L = synthetic.grid_points(p, np.logspace(7, 10, 6), np.logspace(9, 12, 6), sigma=0.0)
    spread = np.array([1.03, 1.0, 0.97])  # three seeds per point, mean exactly the law
    N3, D3 = np.repeat(N, 3), np.repeat(D, 3)
    L3 = (L[:, None] * spread[None, :]).ravel()
    out = bootstrap.leave_largest_out(N3, D3, L3, top_k=4)
    assert out["max_abs_rel_error"] < 0.005
    assert out["n_held_out"] == 6
    assert out["n_held_out_points"] == 18
    assert out["seed_rel_sd"] == pytest.approx(0.03)  # the sd of 1.03, 1, 0.97
    one = bootstrap.leave_largest_out(N, D, L, top_k=4)  # one seed: each point is its mean
    assert one["n_held_out"] == one["n_held_out_points"] == 6
    assert one["seed_rel_sd"] is None
