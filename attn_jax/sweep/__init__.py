"""Sweeps: specs -> trials -> executors (inline, local, ray) -> results.jsonl.

A sweep file (sweeps/*.py) returns a `Sweep` from `get_sweep()`; `designs` builds
its trials (grids over sizes and token budgets, IsoFLOP profiles, LR grids);
`run_sweep` (or `python -m attn_jax.sweep run`) runs and resumes it.
"""

from attn_jax.sweep.designs import grid, isoflop, lr_grid
from attn_jax.sweep.runner import run_sweep
from attn_jax.sweep.spec import Sweep, SweepSpecError, Trial, load_sweep, resolve

__all__ = [
    "Sweep",
    "SweepSpecError",
    "Trial",
    "grid",
    "isoflop",
    "load_sweep",
    "lr_grid",
    "resolve",
    "run_sweep",
]
