"""Golden first step of the smoke LM: catches silent changes to init, model or loss."""

import os

import jax
import numpy as np
import pytest

from attn_jax import configs, families
from attn_jax.train import mesh as mesh_lib
from attn_jax.train import optim
from attn_jax.train import step as step_lib
from attn_jax.train.state import create_train_state

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# experiments/lm.py:smoke (6xs byte LM), seed 0, first step on the batch below.
GOLDEN = {"loss": 5.5468, "grad_norm": 0.7006}

HOW_TO_FIX = (
    "The smoke LM's first training step changed. If you changed parameter init, the "
    "model, the loss or the optimizer ON PURPOSE, check the new values are sane "
    "(loss near log(256)=5.545) and update GOLDEN in tests/train/test_golden.py to "
    "the values printed here. Otherwise your change altered training numerics by accident."
)


@pytest.mark.parametrize("num_devices", [1, 8])
def test_first_step_matches_golden(devices8, num_devices):
    config = configs.load_config(os.path.join(REPO, "experiments/lm.py:smoke"))
    tc = config.train
    mesh = mesh_lib.make_mesh(devices8[:num_devices])
    tx, sched = optim.make_optimizer(tc, optim.total_steps(tc))
    family = families.get_family(config)
    graphdef, state, shardings = create_train_state(family.model, tx, config.seed, mesh)
    steps = step_lib.CompiledSteps(
        step_lib.make_train_step(graphdef, tx, sched, family.loss),
        step_lib.make_eval_step(graphdef, family.eval_sums),
        shardings,
        mesh,
    )
    tokens = np.random.default_rng(0).integers(32, 127, (tc.batch_size, tc.seq_len + 1))
    batch = {
        "inputs": tokens[:, :-1].astype(np.int32),
        "targets": tokens[:, 1:].astype(np.int32),
        "weights": np.ones((tc.batch_size, tc.seq_len), np.float32),
    }
    with jax.transfer_guard("disallow"):
        _, metrics = steps.train(state, mesh_lib.device_put_batch(batch, steps.batch_sharding))
    got = {k: float(v) for k, v in jax.device_get(metrics).items() if k in GOLDEN}
    assert abs(got["loss"] - np.log(256)) < 0.1, f"initial loss {got['loss']} far from log(256)"
    for key, want in GOLDEN.items():
        assert abs(got[key] - want) < 2e-3 * max(1.0, abs(want)), (
            f"{HOW_TO_FIX}\nGot on {num_devices} device(s): {got}"
        )
