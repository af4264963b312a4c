"""LM scaling study: learning rate per size, then IsoFLOP profiles (Chinchilla Approach 2).

Question: at a fixed training compute C, which model size N minimises held-out
loss on Shakespeare (bytes), and how do N_opt and D_opt grow with C? Fitted by
attn_jax.scaling from results.jsonl (Hoffmann et al. 2022, sec. 3.2).

Two stages, the second reading the first's results (run from the repo root):

    python -m attn_jax.sweep run sweeps/lm_scaling.py:stage=lr --out runs/lm_lr --executor local --workers 2
    python -m attn_jax.sweep run sweeps/lm_scaling.py:stage=isoflop,lr_from=runs/lm_lr --out runs/lm_isoflop
    python -m attn_jax.sweep plan sweeps/lm_scaling.py:stage=isoflop   # the trials, no training

stage=lr: 7 sizes (6xs..s) x 3 peak LRs (0.5x, 1x, 2x a guess that shrinks as
d_model^-1/2) at 2^21 tokens: 21 runs, 2.2e14 FLOPs. stage=isoflop: budgets
1e12..1e14 FLOPs (half decades), each with every size whose FLOPs at a whole
number of steps land within 10% of it, at 0.5..1000 tokens per parameter (a
Chinchilla-wide profile around the ~20 optimum) and at most 8 epochs of the
4.3M-byte training split: 18 runs, 4.6e14 FLOPs. lr_from= takes the best LR per
size from stage lr (an error names any size it lacks); without it, the guess.

Expected cost (`plan` prints the exact FLOPs and steps): on this project's
2-core CPU (50-90 GFLOP/s for these shapes in f32, plus 15-25 s of compile and
eval per run) about 1 h for stage lr (21.5k steps) and 2-2.5 h for stage
isoflop (81k steps). On a TPU v5e-1 (197 TFLOP/s bf16 peak) models this small
reach a few % MFU, so the 2-4 ms per step and ~30 s of compile per run
dominate: about 10-20 min per stage (set model.dtype=bfloat16 in COMMON there).

Caveats: the budgets are small because the data are: beyond 1e14 FLOPs the
small models would need more than 8 epochs, where repetition starts to cost
(Muennighoff et al. 2023). SIZES are 2-4x apart, so each profile has 3-4
points; the fit's bootstrap intervals say how much that costs.
"""

from __future__ import annotations

import os

from attn_jax import configs
from attn_jax.models import SIZES as MODEL_SIZES
from attn_jax.sweep import Sweep, SweepSpecError, designs, store

EXPERIMENT = "experiments/lm.py"
COMMON = {
    "train.batch_size": 16,
    "train.seq_len": 128,
    "train.warmup_steps": 100,
    "train.log_every": 100,
    "train.checkpoint_every": 500,
    "train.progress_bar": False,
    "train.report_mfu": False,
}
TOKENS_PER_STEP = COMMON["train.batch_size"] * COMMON["train.seq_len"]
TRAIN_BYTES = 4.34e6  # Shakespeare train split, 34 plays (DESIGN.md)
LR_SIZES = ("6xs", "5xs", "4xs", "3xs", "2xs", "xs", "s")
LR_FACTORS = (0.5, 1.0, 2.0)
LR_TOKENS = 2**21
FLOP_BUDGETS = (1e12, 3e12, 1e13, 3e13, 1e14)
# SIZES' 7xs, 3.5xs and 3.25xs (added for sweeps/demo.py's profiles) are left out, so this
# study stays as documented (18 trials) and every size has an LR stage; to use them,
# add them to LR_SIZES and drop them from this exclusion.
ISOFLOP_SIZES = tuple(
    s for s in MODEL_SIZES if s not in ("7xs", "3.5xs", "3.25xs", "1x192", "1x256")
)  # 1x192, 1x256: sweeps/mechanisms.py's one-layer ladder


def guess_lr(size: str) -> float:
    """3e-3 at d_model 256 (experiments/lm.py's `s` recipe), scaled by (256 / d)^0.5."""
    return round(3e-3 * (256 / MODEL_SIZES[size]["d_model"]) ** 0.5, 5)


def _lr_stage() -> Sweep:
    trials = designs.lr_grid(
        LR_SIZES,
        lambda size: [guess_lr(size) * f for f in LR_FACTORS],
        overrides={**COMMON, "train.tokens": LR_TOKENS},
    )
    return Sweep("lm_scaling_lr", EXPERIMENT, trials, description="Peak LR per size.")


def _tuned_lrs(lr_from: str) -> dict[str, float]:
    if not os.path.exists(os.path.join(lr_from, store.RESULTS)):
        raise SweepSpecError(f"lr_from={lr_from!r} has no {store.RESULTS}; run stage=lr first.")
    return designs.best_lr(store.read_results(lr_from))


def _isoflop_stage(lr_from: str) -> Sweep:
    flops_fn, params_fn, tokens_per_step = designs.experiment_flops(EXPERIMENT, COMMON)
    assert tokens_per_step == TOKENS_PER_STEP
    tuned = _tuned_lrs(lr_from) if lr_from else {}

    def lr(size: str) -> float:
        if lr_from and size not in tuned:
            raise SweepSpecError(
                f"{lr_from} has no finished LR run for size {size!r}; "
                f"add it to LR_SIZES and rerun stage=lr (tuned: {sorted(tuned)})."
            )
        return tuned.get(size, guess_lr(size))

    trials = designs.isoflop(
        FLOP_BUDGETS,
        list(ISOFLOP_SIZES),
        tolerance=0.1,
        flops_fn=flops_fn,
        tokens_per_step=tokens_per_step,
        min_tokens=200 * tokens_per_step,  # past warmup and most of the cosine
        max_tokens=8 * TRAIN_BYTES,
        tokens_per_param=(0.5, 1000),
        params_fn=params_fn,
        min_sizes_per_budget=3,
        overrides=lambda size: {**COMMON, "train.lr": lr(size)},
    )
    return Sweep(
        "lm_scaling_isoflop",
        EXPERIMENT,
        trials,
        description="IsoFLOP profiles, 1e12..1e14 FLOPs.",
        metadata={"lr_from": lr_from or "guess_lr", "flop_budgets": list(FLOP_BUDGETS)},
    )


def get_sweep(arg: str | None = None) -> Sweep:
    """`stage=lr` or `stage=isoflop[,lr_from=DIR]` (default)."""
    arg = configs.parse_arg(arg, stage="isoflop", lr_from="")
    if arg.stage == "lr":
        return _lr_stage()
    if arg.stage == "isoflop":
        return _isoflop_stage(arg.lr_from)
    raise SweepSpecError(f"Unknown stage {arg.stage!r}; valid: lr, isoflop.")
