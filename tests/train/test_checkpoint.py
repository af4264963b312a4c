"""Checkpoints: round trip, keep-last-k, corrupt or half-written latest falls back,
transient read errors retried, quarantines kept, another model's checkpoint refused."""

import os

import jax
import numpy as np
import pytest
from train_helpers import TinyLM

from attn_jax.train import checkpoint as ckpt_lib
from attn_jax.train import mesh as mesh_lib
from attn_jax.train import optim
from attn_jax.train.state import create_train_state

NO_WAIT = (0.0, 0.0)  # two retries, no pauses


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
    assert int(state.step) == 3
    assert extra == {"data": {"index": 3}}
    want = jax.tree.leaves(_bumped(fresh_state, 3).params)
    for got, ref in zip(jax.tree.leaves(state.params), want):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
        assert got.sharding == ref.sharding


def _corrupt(step_dir):
    for root, _, files in os.walk(step_dir / "state"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"\x00garbage")


def test_corrupt_latest_falls_back_to_previous(tmp_path, fresh_state):
    directory = tmp_path / "ckpt"
    _save_steps(directory, fresh_state, [1, 2])
    _corrupt(directory / "2")
    # a half-written save (killed mid-write) is a tmp dir orbax never lists as a step
    os.makedirs(directory / "3.orbax-checkpoint-tmp" / "state")
    ckpt = ckpt_lib.Checkpointer(directory, retry_delays_s=NO_WAIT)
    with pytest.warns(RuntimeWarning, match="step 2 .* corrupt"):
        state, extra = ckpt.restore_latest(fresh_state)
    assert int(state.step) == 1
    assert extra["data"]["index"] == 1
    assert ckpt.manager.all_steps() == [1]
    assert (tmp_path / "checkpoints_corrupt" / "2-1" / "state").exists()
    ckpt.save(2, _bumped(fresh_state, 2), {})  # the step can be written again
    ckpt.close()


def test_read_only_reader_skips_a_corrupt_step_and_moves_nothing(tmp_path, fresh_state):
    directory = tmp_path / "ckpt"
    _save_steps(directory, fresh_state, [1, 2])
    _corrupt(directory / "2")
    ckpt = ckpt_lib.Checkpointer(directory, read_only=True, retry_delays_s=NO_WAIT)
    with pytest.warns(RuntimeWarning, match="step 2 .* corrupt.*read-only"):
        state, _ = ckpt.restore_latest(fresh_state)
    ckpt.close()
    assert int(state.step) == 1
    assert (directory / "2" / "state").exists()  # another run's files stay where they are
    assert not (tmp_path / "checkpoints_corrupt").exists()


def test_second_quarantine_of_a_step_keeps_the_first(tmp_path, fresh_state):
    directory, corrupt = tmp_path / "ckpt", tmp_path / "checkpoints_corrupt"
    _save_steps(directory, fresh_state, [1, 2])
    for n in (1, 2):
        _corrupt(directory / "2")
        ckpt = ckpt_lib.Checkpointer(directory, retry_delays_s=NO_WAIT)
        with pytest.warns(RuntimeWarning, match=f"moved it to .*2-{n}"):
            state, _ = ckpt.restore_latest(fresh_state)
        assert int(state.step) == 1
        ckpt.save(2, _bumped(fresh_state, 2), {"data": {"index": 2}})
        ckpt.close()
    assert sorted(os.listdir(corrupt)) == ["2-1", "2-2"]
    for name in ("2-1", "2-2"):  # both post-mortems intact, not just their folders
        assert any(files for _, _, files in os.walk(corrupt / name / "state"))


def _failing_restore(ckpt, monkeypatch, fails):
    """Makes manager.restore raise OSError on the calls `fails(step, call)` picks."""
    real, calls = ckpt.manager.restore, []

    def restore(step, *args, **kwargs):
        calls.append(step)
        if fails(step, calls.count(step)):
            raise OSError(5, "Input/output error (a flaky network filesystem)")
        return real(step, *args, **kwargs)

    monkeypatch.setattr(ckpt.manager, "restore", restore)
    return calls


def test_transient_read_error_is_retried_not_quarantined(tmp_path, fresh_state, monkeypatch):
    _save_steps(tmp_path / "ckpt", fresh_state, [1, 2])
    ckpt = ckpt_lib.Checkpointer(tmp_path / "ckpt", retry_delays_s=NO_WAIT)
    calls = _failing_restore(ckpt, monkeypatch, lambda step, call: call == 1)
    state, extra = ckpt.restore_latest(fresh_state)  # a warning here would fail the test
    ckpt.close()
    assert int(state.step) == 2
    assert extra == {"data": {"index": 2}}
    assert calls == [2, 2]
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["1", "2"]
    assert not (tmp_path / "checkpoints_corrupt").exists()


def test_read_error_on_every_retry_quarantines(tmp_path, fresh_state, monkeypatch):
    _save_steps(tmp_path / "ckpt", fresh_state, [1, 2])
    ckpt = ckpt_lib.Checkpointer(tmp_path / "ckpt", retry_delays_s=NO_WAIT)
    calls = _failing_restore(ckpt, monkeypatch, lambda step, call: step == 2)
    with pytest.warns(RuntimeWarning, match="step 2 .*OSError"):
        state, _ = ckpt.restore_latest(fresh_state)
    ckpt.close()
    assert int(state.step) == 1
    assert calls == [2, 2, 2, 1]  # one read and two retries, then the previous step
    assert os.listdir(tmp_path / "checkpoints_corrupt") == ["2-1"]


def test_checkpoint_of_another_model_is_refused_not_quarantined(
    tmp_path, fresh_state, train_config, devices8
):
    _save_steps(tmp_path / "ckpt", fresh_state, [1, 2])
    tx, _ = optim.make_optimizer(train_config, 10)
    mesh = mesh_lib.make_mesh(devices8[:2], fsdp=2)
    wider = create_train_state(lambda rngs: TinyLM(d=24, rngs=rngs), tx, 0, mesh)[1]
    ckpt = ckpt_lib.Checkpointer(tmp_path / "ckpt", retry_delays_s=NO_WAIT)
    with pytest.raises(ckpt_lib.CheckpointMismatchError, match="another model .*restart"):
        ckpt.restore_latest(wider)
    ckpt.close()
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["1", "2"]
    assert not (tmp_path / "checkpoints_corrupt").exists()


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
