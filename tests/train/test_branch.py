"""Cooldown branches (attn_jax.train.branch): a WSD branch off a stable run's
checkpoint is the same run as WSD from scratch; the parent keeps the branch
step; a missing step is an error naming the steps there are; the record says
which run is whose branch and whether its last eval is schedule-final."""

import json
import os

import pytest
from train_helpers import smoke_config

from attn_jax.train.loop import train_and_evaluate

QUIET = {
    "train.log_every": 1,
    "train.schedule": "wsd",
    "train.warmup_steps": 2,
}
STEPS, START = 10, 8  # a branch for 10 steps with decay_fraction 0.2 cools down from step 8


def smoke(**overrides):
    return smoke_config({**QUIET, **overrides})


def train_losses(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return {r["step"]: r["loss"] for r in map(json.loads, f) if r["kind"] == "train"}


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A stable-phase run past the branch step, keeping only the latest and step 8."""
    workdir = str(tmp_path_factory.mktemp("runs") / "parent")
    config = smoke(
        **{
            "train.steps": 12,
            "train.decay_fraction": 0.0,
            "train.checkpoint_every": 4,
            "train.keep_checkpoints": 1,
            "train.keep_steps": (START,),
        }
    )
    return workdir, train_and_evaluate(config, workdir)


def branch_config(parent_dir, **overrides):
    return smoke(
        **{
            "train.steps": STEPS,
            "train.decay_fraction": 0.2,
            "train.init_from": parent_dir,
            "train.init_from_step": START,
            "train.checkpoint_every": 0,
            **overrides,
        }
    )


def test_parent_keeps_branch_step_and_is_not_schedule_final(parent):
    workdir, record = parent
    assert record["status"] == "done"
    assert record["steps"] == 12
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints")), key=int) == [str(START), "12"]
    assert record["schedule"] == "wsd"
    assert record["schedule_final"] is False
    assert record["parent_run_id"] is None
    assert record["init_from_step"] is None


def test_branch_equals_uninterrupted_wsd_run(parent, tmp_path):
    parent_dir, parent_record = parent
    straight_config = smoke(**{"train.steps": STEPS, "train.decay_fraction": 0.2})
    straight = train_and_evaluate(straight_config, str(tmp_path / "straight"))
    branch = train_and_evaluate(branch_config(parent_dir), str(tmp_path / "branch"))
    assert branch["status"] == "done"
    assert branch["steps"] == STEPS
    want, got = train_losses(tmp_path / "straight"), train_losses(tmp_path / "branch")
    assert sorted(got) == list(range(START + 1, STEPS + 1))  # the branch trains 9 and 10
    assert [got[s] for s in got] == [want[s] for s in got]  # bit-identical on CPU
    # and the parent's stable phase is the straight run's first 8 steps
    assert [train_losses(parent_dir)[s] for s in range(1, START + 1)] == [
        want[s] for s in range(1, START + 1)
    ]
    assert branch["eval"]["loss"] == straight["eval"]["loss"]
    assert branch["schedule_final"] is True
    assert straight["schedule_final"] is True
    assert branch["parent_run_id"] == parent_record["run_id"]
    assert branch["init_from_step"] == START
    assert straight["parent_run_id"] is None


def test_killed_branch_resumes_from_its_own_checkpoint(parent, tmp_path):
    parent_dir, _ = parent
    config = branch_config(parent_dir, **{"train.stop_after_steps": 1})
    first = train_and_evaluate(config, str(tmp_path / "b"))
    assert first["status"] == "preempted"
    assert first["steps"] == START + 1
    second = train_and_evaluate(config, str(tmp_path / "b"))
    assert second["status"] == "done"
    assert second["steps"] == STEPS
    with open(tmp_path / "b" / "metrics.jsonl") as f:
        steps = [r["step"] for r in map(json.loads, f) if r["kind"] == "train"]
    assert steps == [START + 1, STEPS]  # not START + 1 again: it did not restart from the parent


def test_missing_parent_is_an_error_naming_it(tmp_path):
    config = branch_config(str(tmp_path / "no-such-parent"))
    with pytest.raises(FileNotFoundError, match="no-such-parent"):
        train_and_evaluate(config, str(tmp_path / "b"))


def test_missing_parent_step_names_the_steps_it_has(parent, tmp_path):
    parent_dir, _ = parent
    config = branch_config(parent_dir, **{"train.init_from_step": 5})
    with pytest.raises(FileNotFoundError, match=r"steps \[8, 12\].*init_from_step=5"):
        train_and_evaluate(config, str(tmp_path / "b"))
