"""Trials trained as one vmapped program equal the same trials trained one by one."""

import jax
import numpy as np
import pytest
from train_helpers import smoke_config

from attn_jax import families
from attn_jax.train import mesh as mesh_lib
from attn_jax.train import optim, vmapped
from attn_jax.train import step as step_lib
from attn_jax.train.state import create_train_state

SEEDS, LRS = (0, 1, 0), (3e-3, 3e-3, 1e-2)
STEPS = 6


def _batches(config):
    fns = families.get_family(config)
    it, _ = fns.data(batch_size=int(config.train.batch_size), seed=0)
    return [next(it) for _ in range(STEPS)]


def _one_by_one(config, batches):
    fns = families.get_family(config)
    mesh = mesh_lib.make_mesh(mesh_lib.select_devices(1))
    out = []
    for seed, lr in zip(SEEDS, LRS):
        tc = config.train.to_dict()
        tc["lr"] = lr
        tx, schedule = optim.make_optimizer(type(config.train)(tc), optim.total_steps(config.train))
        graphdef, state, _ = create_train_state(fns.model, tx, seed, mesh)
        step = jax.jit(step_lib.make_train_step(graphdef, tx, schedule, fns.loss))
        losses = []
        for batch in batches:
            state, metrics = step(state, batch)
            losses.append(float(metrics["loss"]))
        out.append((losses, state.params))
    return out


def test_vmapped_trials_match_one_by_one():
    config = smoke_config({"train.steps": STEPS})
    batches = _batches(config)
    states, args = vmapped.init_trials(config, SEEDS, LRS)
    step = jax.jit(vmapped.make_trials_step(config), donate_argnums=0)
    losses_K = []
    for batch in batches:
        states, metrics = step(states, batch, args)
        losses_K.append(np.asarray(metrics["loss"]))
    losses_K = np.stack(losses_K, axis=1)
    for k, (losses, params) in enumerate(_one_by_one(config, batches)):
        np.testing.assert_allclose(losses_K[k], losses, rtol=1e-5, atol=1e-5)
        mine = jax.tree.map(lambda x, k=k: np.asarray(x[k]), states.params)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5),
            mine,
            params,
        )
    # The trials differ (the test would pass trivially if every trial were trial 0).
    assert abs(losses_K[0, -1] - losses_K[1, -1]) > 1e-4
    assert abs(losses_K[0, -1] - losses_K[2, -1]) > 1e-4


def test_one_lr_per_seed():
    with pytest.raises(ValueError, match="one lr per seed"):
        vmapped.init_trials(smoke_config({}), [0, 1], [1e-3])
