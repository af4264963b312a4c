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


_FILL = """
import os, sys
import jax, jax.numpy as jnp
from attn_jax import runtime
runtime.enable_compilation_cache(sys.argv[1])
first = int(sys.argv[2])
for i in range(first, first + 8):  # 8 distinct programs
    jax.jit(lambda x, i=i: jnp.sin(x) * i + jnp.cos(x) ** (i + 1)).lower(jnp.ones(64)).compile()
"""


def _cache_files(path):
    return [os.path.join(path, n) for n in os.listdir(path) if n.endswith("-cache")]


def _fill(path, first, max_bytes):
    import subprocess
    import sys

    env = dict(os.environ, ATTN_JAX_COMPILATION_CACHE_MAX_BYTES=str(max_bytes))
    return subprocess.run(
        [sys.executable, "-c", _FILL, str(path), str(first)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )


def test_the_cache_is_bounded(tmp_path):
    """Past ATTN_JAX_COMPILATION_CACHE_MAX_BYTES the least recently used programs go
    (a fresh process each, as a sweep's trials are), also in a directory filled
    while the cache was unbounded (-1); a cap of 0 is an error."""
    path = tmp_path / "cache"
    assert _fill(path, 0, -1).returncode == 0
    unbounded = [os.path.getsize(f) for f in _cache_files(path)]
    assert len(unbounded) >= 8  # the 8 programs (and the small ones jnp.ones compiles)
    cap = 3 * max(unbounded) + max(unbounded) // 2  # room for three programs
    proc = _fill(path, 100, cap)  # 8 new programs into the full directory
    assert proc.returncode == 0, proc.stderr
    assert "Error writing persistent compilation cache" not in proc.stderr
    sizes = [os.path.getsize(f) for f in _cache_files(path)]
    assert 0 < len(sizes) <= 4
    assert sum(sizes) <= cap
    proc = _fill(tmp_path / "bad", 0, 0)
    assert proc.returncode != 0
    assert "ATTN_JAX_COMPILATION_CACHE_MAX_BYTES must be > 0 or -1" in proc.stderr
