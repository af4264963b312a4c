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
    assert lrs[0] < 0.2 and np.all(np.diff(lrs[:10]) > 0)
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
