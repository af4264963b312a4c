"""Schedules, the token budget rule and the optimizer."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attn_jax.train import optim


def test_steps_from_tokens_rounds_up():
    assert optim.steps_from_tokens(1000, 4, 16) == 16  # 15.6 -> 16
    assert optim.steps_from_tokens(64, 4, 16) == 1
    assert optim.steps_from_tokens(1, 4, 16) == 1


def test_tokens_override_steps(train_config):
    train_config.tokens = 8 * 8 * 10
    assert optim.total_steps(train_config) == 10
    train_config.tokens = 0
    assert optim.total_steps(train_config) == train_config.steps


@pytest.mark.parametrize("name", sorted(optim.SCHEDULES))
def test_schedules_warm_up_to_peak(train_config, name):
    train_config.schedule, train_config.warmup_steps, train_config.lr = name, 10, 1.0
    sched = optim.make_schedule(train_config, 100)
    lrs = np.array([float(sched(s)) for s in range(100)])
    assert lrs[0] < 0.2
    assert np.all(np.diff(lrs[:10]) > 0)
    assert lrs.max() == pytest.approx(1.0, rel=1e-5)
    if name == "cosine":
        assert lrs[-1] == pytest.approx(train_config.min_lr_ratio, abs=0.01)
    if name == "rsqrt":  # Vaswani et al. 2017: lr ~ 1/sqrt(step) after warmup
        assert float(sched(39)) == pytest.approx(0.5, rel=1e-5)
    if name == "constant":
        assert lrs[-1] == pytest.approx(1.0)


def test_unknown_schedule_names_valid_ones(train_config):
    train_config.schedule = "linear-ish"
    with pytest.raises(ValueError, match="cosine"):
        optim.make_schedule(train_config, 10)


def test_clipping_bounds_update_and_decay_skips_vectors(train_config):
    cfg = ml_collections.ConfigDict(train_config.to_dict())
    cfg.schedule, cfg.warmup_steps, cfg.lr, cfg.grad_clip = "constant", 0, 1.0, 1e-3
    tx, _ = optim.make_optimizer(cfg, 10)
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones((2,))}
    grads = {"w": jnp.zeros((2, 2)), "b": jnp.zeros((2,))}
    updates, _ = tx.update(grads, tx.init(params), params)
    # zero gradient: only decoupled weight decay moves the matrix, never the bias
    np.testing.assert_allclose(updates["w"], -cfg.weight_decay * np.ones((2, 2)), rtol=1e-6)
    np.testing.assert_allclose(updates["b"], 0.0)


@pytest.mark.parametrize("shape", ["sqrt", "linear"])
def test_wsd_warms_up_holds_then_cools_down_over_the_last_fraction(train_config, shape):
    train_config.update(schedule="wsd", warmup_steps=10, lr=1.0, min_lr_ratio=0.0)
    train_config.decay_fraction, train_config.decay_shape = 0.2, shape
    sched = optim.make_schedule(train_config, 100)
    lrs = np.array([float(sched(s)) for s in range(100)])
    np.testing.assert_allclose(lrs[:10], np.arange(10) / 10, rtol=1e-6)  # linear warmup
    np.testing.assert_allclose(lrs[10:81], 1.0)  # stable, cooldown starts at step 80
    x = (np.arange(80, 100) - 80) / 20
    want = 1 - (np.sqrt(x) if shape == "sqrt" else x)
    np.testing.assert_allclose(lrs[80:], want, rtol=1e-5, atol=1e-7)
    assert lrs[-1] < 0.25
    assert np.all(np.diff(lrs[80:]) < 0)


def test_wsd_stable_phase_does_not_depend_on_the_run_length(train_config):
    # A cooldown branch reuses the stable run's checkpoint: same LR up to its start.
    train_config.update(schedule="wsd", warmup_steps=5, lr=1.0, min_lr_ratio=0.1)
    train_config.decay_fraction = 0.0
    stable = optim.make_schedule(train_config, 400)
    train_config.decay_fraction = 0.2
    branch = optim.make_schedule(train_config, 100)
    start = optim.wsd_decay_start(100, 0.2)
    assert start == 80
    np.testing.assert_array_equal(
        [float(stable(s)) for s in range(start + 1)], [float(branch(s)) for s in range(start + 1)]
    )
    assert float(branch(99)) < 0.3 < float(stable(99)) == 1.0
    assert optim.is_schedule_final(train_config)
    assert not optim.is_schedule_final(
        ml_collections.ConfigDict({"schedule": "wsd", "decay_fraction": 0.0})
    )


def test_wsd_rejects_unknown_shape_and_bad_fraction(train_config):
    train_config.update(schedule="wsd", decay_fraction=0.2, decay_shape="cubic")
    with pytest.raises(ValueError, match="sqrt"):
        optim.make_schedule(train_config, 10)
    train_config.update(decay_shape="sqrt", decay_fraction=1.5)
    with pytest.raises(ValueError, match="decay_fraction"):
        optim.make_schedule(train_config, 10)
