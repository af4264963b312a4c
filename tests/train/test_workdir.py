"""Workdirs: a config that does not fit the run there stops before training and
loses nothing; resumable changes resume; train.restart moves the old run aside."""

import json
import os
import shutil

import pytest
from train_helpers import smoke_config

from attn_jax import configs
from attn_jax.train import checkpoint as ckpt_lib
from attn_jax.train import record as record_lib
from attn_jax.train.loop import train_and_evaluate

QUIET = {
    "train.stop_after_steps": 4,  # preempted at the step-4 checkpoint: a run to resume
}
WIDER = {"model.d_ff": 64}  # another model: the smoke LM has d_ff 128


def smoke(**overrides):
    return smoke_config({**QUIET, **overrides})


def snapshot(workdir):
    """{relative path: bytes} of every file under `workdir`."""
    out = {}
    for root, _, files in os.walk(workdir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, workdir)] = f.read()
    return out


def train_steps(path):
    with open(path) as f:
        return [r["step"] for r in map(json.loads, f) if r["kind"] == "train"]


@pytest.fixture(scope="module")
def preempted_run(tmp_path_factory):
    """A smoke run preempted at step 4, with its checkpoint: copied by each test."""
    workdir = tmp_path_factory.mktemp("preempted") / "run"
    rec = train_and_evaluate(smoke(), str(workdir))
    assert rec["status"] == "preempted"
    assert rec["steps"] == 4
    return workdir


@pytest.fixture
def workdir(preempted_run, tmp_path):
    shutil.copytree(preempted_run, tmp_path / "run")
    return tmp_path / "run"


def test_config_changes_rule():
    saved = json.loads(json.dumps(smoke().to_dict()))
    saved["train"].pop("num_devices")  # a field this workdir's code did not have yet
    new = configs.apply_overrides(
        smoke(),
        {
            "model.num_layers": 2,
            "seed": 1,
            "data.name": "austen",
            "train.lr": 1e-3,
            "train.batch_size": 16,
            "train.steps": 20,
            "train.log_every": 1,
            "train.eval_at_tokens": (256,),
            "data.eval_batches": 4,
        },
    )
    blocking, resumable = record_lib.config_changes(saved, new)
    assert blocking == [
        ("data.name", "shakespeare", "austen"),
        ("model.num_layers", 1, 2),
        ("seed", 0, 1),
        ("train.batch_size", 8, 16),
        ("train.lr", 0.003, 0.001),
    ]
    assert [name for name, _, _ in resumable] == [
        "data.eval_batches",
        "train.eval_at_tokens",
        "train.log_every",
        "train.num_devices",
        "train.steps",
    ]
    same = record_lib.config_changes(saved, smoke())
    assert same == ([], [("train.num_devices", record_lib.ABSENT, 0)])


def test_other_model_stops_before_training_and_keeps_every_file(workdir):
    before = snapshot(workdir)
    with pytest.raises(record_lib.WorkdirConfigError) as err:
        train_and_evaluate(smoke(**WIDER, **{"seed": 3}), str(workdir))
    message = str(err.value)
    assert "model.d_ff: 128 -> 64" in message
    assert "seed: 0 -> 3" in message
    assert "--config.train.restart=True" in message
    assert "new --workdir" in message
    assert snapshot(workdir) == before  # config.json, metrics, record, checkpoints as they were
    assert not any(n.startswith(("previous-", "checkpoints_corrupt")) for n in os.listdir(workdir))


def test_resumable_change_resumes_and_is_recorded(workdir):
    rec = train_and_evaluate(
        smoke(**{"train.stop_after_steps": 0, "train.steps": 6, "train.log_every": 1}),
        str(workdir),
    )
    assert rec["status"] == "done"
    assert rec["steps"] == 6
    assert train_steps(workdir / "metrics.jsonl") == [2, 4, 5, 6]  # resumed at 4, not from 0
    with open(workdir / "config.json") as f:
        assert json.load(f)["train"]["log_every"] == 1


def test_checkpoint_of_another_model_without_config_json_is_refused(workdir):
    os.remove(workdir / "config.json")
    before = snapshot(workdir)
    with pytest.raises(ckpt_lib.CheckpointMismatchError, match="another model"):
        train_and_evaluate(smoke(**WIDER), str(workdir))
    after = snapshot(workdir)
    assert {k: v for k, v in after.items() if k.startswith("checkpoints")} == {
        k: v for k, v in before.items() if k.startswith("checkpoints")
    }


def test_restart_moves_old_run_aside_and_the_same_command_resumes(workdir):
    old = snapshot(workdir)
    restart = smoke(**WIDER, **{"train.restart": True, "train.stop_after_steps": 2})
    rec = train_and_evaluate(restart, str(workdir))
    assert rec["status"] == "preempted"
    assert rec["steps"] == 2
    kept = snapshot(workdir / "previous-1")
    assert {k: v for k, v in kept.items() if k != "restart.json"} == old  # nothing lost
    with open(workdir / "previous-1" / "restart.json") as f:
        note = json.load(f)
    assert {"field": "model.d_ff", "old": "128", "new": "64"} in note["config_changes"]
    assert note["moved_at"].startswith("20")

    rec = train_and_evaluate(restart, str(workdir))  # rerun after a preemption: resumes
    assert rec["status"] == "preempted"
    assert rec["steps"] == 4
    assert not (workdir / "previous-2").exists()
    assert train_steps(workdir / "metrics.jsonl") == [2, 4]

    # Back to the first model, restarting again: a second archive, the first untouched.
    rec = train_and_evaluate(smoke(**{"train.restart": True}), str(workdir))
    assert rec["steps"] == 4
    assert snapshot(workdir / "previous-1") == kept
    with open(workdir / "previous-2" / "config.json") as f:
        assert json.load(f)["model"]["d_ff"] == 64
