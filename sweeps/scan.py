"""SCAN sweep: length generalization per position scheme, and the four standard splits.

Question: does the position scheme decide whether a small Transformer
encoder-decoder generalizes to longer outputs on SCAN's length split (Csordas
et al. 2021 report that relative positions help), and how do the four splits
compare (Lake & Baroni 2018)? experiments/scan.py holds the model, the recipe
and the measured table.

Command (from the repo root; results/scan keeps the run records):

    python -m attn_jax.sweep run sweeps/scan.py --out results/scan --executor local --workers 1
    python -m attn_jax.sweep results results/scan

Trials: the length split x every position scheme of
attn_jax.models.lm.LM_POSITIONS (sinusoidal, learned, relative, rope, alibi,
none) x seeds 0, 1, 2; then simple, addprim_jump and addprim_turn_left at the
default position, seed 0 (length at the default position and seed 0 resolves
to the same config, hence run id, as one of the first 18, so it runs once): 21 runs.

Cost, measured 2026-12-02 on the shared 2-core AMD EPYC CPU (load average 9.1
at the start, 6.8 at the end, other engineers' jobs beside it): 49 min 13 s
wall, 93-219 s per run (1000 steps each; the length runs pad targets to 23,
the others to 49). The table of results is in experiments/scan.py.
"""

from __future__ import annotations

from attn_jax.models.lm import LM_POSITIONS
from attn_jax.sweep import Sweep, Trial

EXPERIMENT = "experiments/scan.py"
SEEDS = (0, 1, 2)
SPLITS = ("simple", "length", "addprim_jump", "addprim_turn_left")
COMMON = {
    "train.progress_bar": False,  # the sweep draws its own bar
    "train.tensorboard": False,
    "train.report_mfu": False,  # skips measuring the CPU's matmul peak in every run
}


def get_sweep() -> Sweep:
    trials = [
        Trial(
            arg=f"split=length,position={position}",
            overrides={**COMMON, "seed": seed},
            tags={"split": "length", "position": position, "seed": seed},
        )
        for position in LM_POSITIONS
        for seed in SEEDS
    ]
    trials += [
        Trial(
            arg=f"split={split}",  # the experiment's default position
            overrides={**COMMON, "seed": 0},
            tags={"split": split, "position": "default", "seed": 0},
        )
        for split in SPLITS
    ]
    return Sweep(
        name="scan",
        experiment=EXPERIMENT,
        trials=trials,
        description="SCAN: length split x 6 position schemes x 3 seeds, and the 4 splits.",
        metadata={"positions": list(LM_POSITIONS), "seeds": list(SEEDS), "splits": list(SPLITS)},
    )
