"""The real DecoderLM through train_and_evaluate gives the same losses on 1 device,
on 8 fake CPU devices (data parallel) and with fsdp=2 (the README's claim)."""

import json
import os

import jax
import numpy as np
import pytest

from attn_jax import configs
from attn_jax.train import mesh as mesh_lib
from attn_jax.train.loop import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MESHES = {  # name: (train.num_devices, train.mesh_fsdp, how the record names the devices)
    "1 device": (1, 1, "1x "),
    "8 devices, data": (0, 1, "8x "),
    "8 devices, fsdp=2": (0, 2, "8x "),
}


def train_losses(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [(r["step"], r["loss"]) for r in map(json.loads, f) if r["kind"] == "train"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, devices8):
    """Three steps of the smoke LM on Shakespeare on each mesh: {name: (record, losses)}."""
    # XLA optimizations off (as the flax examples' end-to-end tests): compiling three
    # meshes dominates the cost, and the comparison holds for any fixed compiler.
    prev = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield _train_on_each_mesh(tmp_path_factory)
    finally:
        jax.config.update("jax_disable_most_optimizations", prev)


def _train_on_each_mesh(tmp_path_factory):
    config = configs.load_config(os.path.join(REPO, "experiments/lm.py:smoke"))
    out = {}
    for name, (num_devices, fsdp, _) in MESHES.items():
        run_config = configs.apply_overrides(
            config,
            {
                "train.steps": 3,
                "train.log_every": 1,
                "train.checkpoint_every": 0,
                "train.eval_at_tokens": (),
                "train.num_devices": num_devices,
                "train.mesh_fsdp": fsdp,
                "train.progress_bar": False,
                "train.tensorboard": False,
                "train.report_mfu": False,
            },
        )
        workdir = tmp_path_factory.mktemp("devices") / "run"
        rec = train_and_evaluate(run_config, str(workdir))
        out[name] = rec, train_losses(workdir)
    return out


def test_runs_use_the_devices_asked_for(runs):
    for name, (rec, _) in runs.items():
        assert rec["status"] == "done", name
        assert rec["devices"].startswith(MESHES[name][2]), name


@pytest.mark.parametrize("name", ["8 devices, data", "8 devices, fsdp=2"])
def test_losses_match_one_device(runs, name):
    ref_rec, ref = runs["1 device"]
    rec, got = runs[name]
    assert [s for s, _ in got] == [s for s, _ in ref] == [1, 2, 3]
    assert len({loss for _, loss in ref}) == 3  # the loss moves: three distinct steps compared
    np.testing.assert_allclose([loss for _, loss in got], [loss for _, loss in ref], rtol=1e-5)
    np.testing.assert_allclose(rec["eval"]["loss"], ref_rec["eval"]["loss"], rtol=1e-5)


def test_num_devices_selects_the_first_devices(devices8):
    assert mesh_lib.select_devices(1) == devices8[:1]
    assert mesh_lib.select_devices(0) == mesh_lib.select_devices(8) == devices8
    with pytest.raises(ValueError, match="train.num_devices=9"):
        mesh_lib.select_devices(9)
