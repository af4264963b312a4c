"""The pure step: 1 vs 8 devices (and fsdp) agree, it traces once, losses are right."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from train_helpers import make_batches, make_train_config, run_steps, setup_steps, tiny_model_fn

from attn_jax.train import mesh as mesh_lib
from attn_jax.train import step as step_lib


@pytest.fixture(scope="module")
def one_device(devices8):
    state, steps = setup_steps(tiny_model_fn, make_train_config(), devices8[:1])
    first_head = state.params["head"]["kernel"]
    state, losses = run_steps(state, steps, make_batches(3))
    return state, steps, losses, first_head


@pytest.mark.parametrize("fsdp", [1, 2])
def test_one_vs_eight_devices_same_losses(one_device, devices8, fsdp):
    state1, _, one, _ = one_device
    state8, steps8 = setup_steps(tiny_model_fn, make_train_config(), devices8, fsdp=fsdp)
    state8, eight = run_steps(state8, steps8, make_batches(3))
    np.testing.assert_allclose(one, eight, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(state1.params), jax.tree.leaves(state8.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    assert one[-1] < one[0]
    assert steps8.train_traces == 1  # three steps, one compilation
    if fsdp == 2:
        head = state8.params["head"]["kernel"]  # [32, 32]: largest dim sharded
        assert head.sharding.spec == jax.sharding.PartitionSpec("fsdp", None)
        mu = state8.opt_state[1][0].mu["head"]["kernel"]
        assert mu.sharding.spec == head.sharding.spec


def test_step_traces_once_and_donates_state(one_device):
    _, steps, _, first_head = one_device
    assert steps.train_traces == 1
    assert first_head.is_deleted()  # the initial state was donated to the first step


def test_eval_weights_mask_tokens(one_device):
    state, steps, _, _ = one_device
    batch = make_batches(1)[0]
    half_w = np.concatenate([np.ones((8, 4)), np.zeros((8, 4))], 1).astype(np.float32)
    put = lambda b: mesh_lib.device_put_batch(b, steps.batch_sharding)
    full = jax.device_get(steps.eval(state, put(batch)))
    half = jax.device_get(steps.eval(state, put(dict(batch, weights=half_w))))
    assert half["count"] == 32
    assert full["count"] == 64
    assert 0 < half["loss_sum"] < full["loss_sum"]


def test_cross_entropy_matches_optax_with_label_smoothing():
    logits = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 7))
    targets = jnp.array([[0, 1, 6], [2, 2, 3]])
    nll, obj = step_lib.cross_entropy(logits, targets, 0.1)
    onehot = optax.smooth_labels(jax.nn.one_hot(targets, 7), 0.1)
    np.testing.assert_allclose(obj, optax.softmax_cross_entropy(logits, onehot), rtol=1e-5)
    np.testing.assert_allclose(
        nll, optax.softmax_cross_entropy_with_integer_labels(logits, targets), rtol=1e-5
    )


def test_transfer_guard_catches_implicit_transfers(one_device):
    # A device-to-host `float(loss)` raises too on GPU/TPU; CPU arrays live on the host.
    state, steps, _, _ = one_device
    with jax.transfer_guard("disallow"), pytest.raises(Exception, match="Disallowed"):
        steps.eval(state, make_batches(1)[0])  # a numpy batch not put on the mesh
