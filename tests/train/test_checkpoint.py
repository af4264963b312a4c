"""Checkpoints: round trip, keep-last-k, corrupt or half-written latest falls back."""

import os

import jax
import numpy as np
import pytest

from attn_jax.train import checkpoint as ckpt_lib
from attn_jax.train import mesh as mesh_lib
from attn_jax.train import optim
from attn_jax.train.state import create_train_state


@pytest.fixture
def fresh_state(model_fn, train_config, devices8):
    tx, _ = optim.make_optimizer(train_config, 10)
    mesh = mesh_lib.make_mesh(devices8[:2], fsdp=2)
    return create_train_state(model_fn, tx, 0, mesh)[1]


def _bumped(state, step):
    """A distinguishable state for `step` (params shifted by step)."""
    return state.replace(
        step=state.step + step, params=jax.tree.map(lambda p: p + step, state.params)
    )


def _save_steps(directory, state, steps, keep=2):
    ckpt = ckpt_lib.Checkpointer(directory, keep=keep)
    for s in steps:
        ckpt.save(s, _bumped(state, s), {"data": {"index": s}})
    ckpt.close()


def test_round_trip_keeps_last_k_and_shardings(tmp_path, fresh_state):
    _save_steps(tmp_path / "ckpt", fresh_state, [1, 2, 3], keep=2)
    ckpt = ckpt_lib.Checkpointer(tmp_path / "ckpt", keep=2)
    assert sorted(ckpt.manager.all_steps()) == [2, 3]
    state, extra = ckpt.restore_latest(fresh_state)
    ckpt.close()
    assert int(state.step) == 3 and extra == {"data": {"index": 3}}
    want = jax.tree.leaves(_bumped(fresh_state, 3).params)
    for got, ref in zip(jax.tree.leaves(state.params), want):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
        assert got.sharding == ref.sharding


def test_corrupt_latest_falls_back_to_previous(tmp_path, fresh_state):
    directory = tmp_path / "ckpt"
    _save_steps(directory, fresh_state, [1, 2])
    for root, _, files in os.walk(directory / "2" / "state"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"\x00garbage")
    # a half-written save (killed mid-write) is a tmp dir orbax never lists as a step
    os.makedirs(directory / "3.orbax-checkpoint-tmp" / "state")
    ckpt = ckpt_lib.Checkpointer(directory)
    with pytest.warns(RuntimeWarning, match="step 2 .* corrupt"):
        state, extra = ckpt.restore_latest(fresh_state)
    assert int(state.step) == 1 and extra["data"]["index"] == 1
    assert ckpt.manager.all_steps() == [1]
    assert (tmp_path / "checkpoints_corrupt" / "2").exists()
    ckpt.save(2, _bumped(fresh_state, 2), {})  # the step can be written again
    ckpt.close()


def test_silently_wrong_arrays_are_caught_by_fingerprint(tmp_path, fresh_state):
    directory = tmp_path / "ckpt"
    _save_steps(directory, fresh_state, [1])
    ckpt = ckpt_lib.Checkpointer(directory)
    meta = ckpt.manager.restore(
        1, args=ckpt_lib.ocp.args.Composite(data=ckpt_lib.ocp.args.JsonRestore())
    )["data"]
    with pytest.raises(ValueError, match="fingerprint"):
        ckpt_lib._check(
            1, _bumped(fresh_state, 1).checkpoint_items() | {"rng": fresh_state.rng + 1}, meta
        )
    ckpt.close()


def test_no_checkpoint_returns_none(tmp_path, fresh_state):
    ckpt = ckpt_lib.Checkpointer(tmp_path / "empty")
    assert ckpt.restore_latest(fresh_state) is None
    ckpt.close()
