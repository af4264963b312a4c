"""train_and_evaluate end to end: files, record, resume, divergence, mock tfds data."""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys

import numpy as np
import tensorflow_datasets as tfds
from train_helpers import REPO, smoke_config

from attn_jax import configs, families
from attn_jax.families import lm as lm_family
from attn_jax.train import record as record_lib
from attn_jax.train.loop import train_and_evaluate
from attn_jax.train.preemption import Preemption


def smoke(**overrides):
    return smoke_config(overrides)


def train_rows(workdir, kind="train"):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]


def test_resume_is_bit_identical_to_uninterrupted(tmp_path):
    overrides = {"train.log_every": 1, "train.checkpoint_every": 0}
    straight = train_and_evaluate(smoke(**overrides), str(tmp_path / "straight"))
    sliced = smoke(**overrides, **{"train.stop_after_steps": 4})
    first = train_and_evaluate(sliced, str(tmp_path / "sliced"))
    assert first["status"] == "preempted"
    assert first["steps"] == 4
    second = train_and_evaluate(sliced, str(tmp_path / "sliced"))  # fresh state, resumes
    assert second["status"] == "done"
    assert second["steps"] == 8
    assert straight["status"] == "done"
    assert straight["train_traces"] == 1
    losses = [r["loss"] for r in train_rows(tmp_path / "straight")]
    resumed = [r["loss"] for r in train_rows(tmp_path / "sliced")]
    assert len(losses) == 8
    assert resumed == losses
    assert second["final_train_loss"] == straight["final_train_loss"]
    assert second["eval"]["loss"] == straight["eval"]["loss"]


class _Poisoned:
    """A checkpointable train iterator whose batches get NaN weights from one on."""

    def __init__(self, inner, first_nan_batch):
        self.inner, self.first, self.index = inner, first_nan_batch, 0

    def __next__(self):
        batch = next(self.inner)
        self.index += 1
        scale = np.nan if self.index > self.first else 1.0
        return dict(batch, weights=batch["weights"] * scale)

    def get_state(self):
        return self.inner.get_state()

    def set_state(self, state):
        self.inner.set_state(state)


def test_nan_loss_ends_run_as_diverged_with_record(tmp_path, monkeypatch):
    nan_step = 4  # a step checkpoint_every=4 saves: its NaN state must not be saved

    def poisoned(config):  # NaN weights from batch nan_step on: the loss turns NaN there
        fns = lm_family.make(config)

        def data(**kwargs):
            train_iter, eval_fn = fns.data(**kwargs)
            return _Poisoned(train_iter, first_nan_batch=nan_step - 1), eval_fn

        return dataclasses.replace(fns, data=data)

    monkeypatch.setitem(families.FAMILIES, "lm", families.FamilyEntry("tokens", poisoned))
    config = smoke(**{"train.log_every": 1})
    assert config.train.checkpoint_every == nan_step
    assert config.train.steps > nan_step
    rec = train_and_evaluate(config, str(tmp_path))
    assert rec["status"] == "diverged"
    assert rec["steps"] == nan_step
    with open(tmp_path / "summary.json") as f:
        assert json.load(f)["status"] == "diverged"
    assert rec["final_train_loss"] is None  # NaN is written as null
    losses = {r["step"]: r["loss"] for r in train_rows(tmp_path)}
    assert all(math.isfinite(losses[s]) for s in range(1, nan_step))  # NaN only from there
    assert losses[nan_step] == "nan"  # metrics.jsonl keeps JSON strict: NaN as a string
    assert not os.path.exists(tmp_path / "checkpoints" / str(nan_step))  # never saved
    assert [p for p in os.listdir(tmp_path / "checkpoints") if p.isdigit()] == []


def test_end_to_end_on_mock_tfds_data(tmp_path):
    config = configs.apply_overrides(
        configs.load_config(os.path.join(REPO, "experiments/lm.py:smoke")),
        {
            "data.name": "lm1b",
            "data.eval_split": "test",
            "data.data_dir": str(tmp_path / "data"),
            "train.report_mfu": False,  # the CPU peak takes a few seconds to measure
        },
    )
    with tfds.testing.mock_data(num_examples=64):
        rec = train_and_evaluate(config, str(tmp_path / "run"))
    run = tmp_path / "run"
    assert rec["status"] == "done"
    assert rec["train_traces"] == 1
    assert set(record_lib.FIELDS) <= set(rec)
    assert rec["tokens_seen"] == config.train.steps * config.train.batch_size * config.train.seq_len
    assert rec["train_flops"] == rec["flops_per_token"] * rec["tokens_seen"]
    assert rec["params_total"] == rec["params_embedding"] + rec["params_non_embedding"]
    assert [e["tokens_budget"] for e in rec["evals_at_budget"]] == [128, 1024]
    assert all(math.isfinite(e["eval_loss"]) for e in rec["evals_at_budget"])
    assert rec["best_eval_loss"] <= rec["evals_at_budget"][0]["eval_loss"]
    with open(run / "config.json") as f:
        assert json.load(f)["train"]["steps"] == config.train.steps
    assert {len(train_rows(run, k)) for k in ("train", "eval")} == {4, 3}
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    assert sorted(os.listdir(run / "checkpoints")) == ["4", "8"]
    # initial loss of a fresh byte LM is about log(256)
    assert abs(train_rows(run)[0]["loss"] - np.log(256)) < 0.5


def test_config_typo_fails_before_anything_runs(tmp_path):
    env = dict(os.environ, ATTN_JAX_NO_REEXEC="1", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "attn_jax.main",
            "--config",
            "experiments/lm.py:smoke",
            "--workdir",
            str(tmp_path / "run"),
            "--config.train.stepz=3",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "stepz" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_sigterm_requests_preemption_and_handler_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    with Preemption() as preemption:
        assert not preemption.requested(1)
        signal.raise_signal(signal.SIGTERM)  # what a scheduler sends before killing a job
        assert preemption.requested(1)
    assert signal.getsignal(signal.SIGTERM) == before


def test_an_unavailable_sync_point_is_said_once(monkeypatch, caplog):
    """Multi-process without a preemption sync manager: a warning, once, not an error
    swallowed at every step (which hid that SIGTERM would not stop the run together)."""
    import logging

    import jax
    from jax.experimental import multihost_utils

    calls = []

    def no_manager(step):
        calls.append(step)
        raise RuntimeError("preemption sync manager has not been initialized")

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(multihost_utils, "reached_preemption_sync_point", no_manager)
    with caplog.at_level(logging.WARNING), Preemption() as preemption:
        assert not preemption.requested(1)
        assert not preemption.requested(2)
    assert calls == [1]
    said = [r.getMessage() for r in caplog.records if "sync point unavailable" in r.getMessage()]
    assert len(said) == 1
    assert "has not been initialized" in said[0]
