"""A sweep's second trial of a shape loads its programs from JAX's persistent
compilation cache instead of compiling them (counted by the cache's own events)."""

import os

from sweep_helpers import REPO

from attn_jax.sweep import Sweep, Trial, run_sweep

QUIET = {"train.progress_bar": False, "train.tensorboard": False, "train.checkpoint_every": 0}


def _sweep():
    # One shape, two trials that differ in steps and peak lr: the schedule's numbers
    # are arguments of the compiled step, so both trials run the same programs.
    trials = [
        Trial(overrides={**QUIET, "train.steps": steps, "train.lr": lr}, tags={"steps": steps})
        for steps, lr in ((6, 3e-3), (9, 1e-2))
    ]
    return Sweep("cache", os.path.join(REPO, "experiments/lm.py:smoke"), trials)


def test_second_trial_of_a_shape_compiles_nothing(tmp_path):
    # A fresh process per trial (local executor, one worker): nothing shared but the cache.
    first, second = run_sweep(_sweep(), str(tmp_path), executor="local", workers=1, progress=False)
    assert first["status"] == second["status"] == "done"
    assert (first["steps"], second["steps"]) == (6, 9)
    # The runner orders trials by cost, so either may have run first.
    a, b = sorted((r["compilation_cache"] for r in (first, second)), key=lambda c: c["hits"])
    assert a["requests"] > 0, a
    assert (a["hits"], a["writes"]) == (0, a["requests"]), a
    assert (b["requests"], b["hits"], b["writes"]) == (a["requests"], a["requests"], 0), b
    assert os.listdir(tmp_path / ".jax_cache")
    # Turned off, every trial compiles again and the record says nothing about a cache.
    off = run_sweep(
        _sweep(), str(tmp_path / "off"), executor="local", progress=False, compilation_cache=False
    )
    assert all("compilation_cache" not in r for r in off)
