"""Length generalization: the byte LM trained at T 128 with each position scheme, tested to 2048.

Question: which position schemes let a model trained on 128-byte windows predict
well at positions it never saw? Press et al. 2022 (ALiBi, arXiv 2108.12409,
fig. 1) report that ALiBi extrapolates far past its training length while
sinusoidal positions fail within tens of tokens past it, with RoPE and T5's
relative bias in between.

Commands (from the repo root; a killed run resumes):

    python -m attn_jax.sweep run sweeps/length.py --out runs/length --executor local --workers 2
    python analysis/length_generalization.py runs/length     # per-position loss to T 2048

Design: the 2xs LM (2 layers, width 128, 4 heads of 32; 394k non-embedding
parameters) with each of the six position schemes (sinusoidal, learned, T5
relative, RoPE, ALiBi, none) and 3 seeds: 18 runs, each 2^21 tokens (1,024 steps
of B 16 x T 128, cosine schedule, peak lr 4e-3 as sweeps/demo.py's width-128
size). model.max_len is 2048 so that every scheme can be evaluated there: the
learned table's rows past 128 are never trained (their initial values), the T5
buckets saturate at relative_max_distance 128, the rest are functions of
position. The evaluation reads each run's final checkpoint and scores 64
non-overlapping 2048-byte windows of the held-out plays (131k bytes, spread over
all four plays) per position: the loss of position t uses the t bytes before it,
so the mean over positions < L is the loss of evaluating at length L.

Cost: `plan` prints 18.4k steps, 1.1e14 FLOPs; about 20 min on this project's 2-core CPU
(2 workers), plus 1-2 min for the evaluation.
"""

from __future__ import annotations

from attn_jax.sweep import Sweep, Trial

POSITIONS = ("sinusoidal", "learned", "relative", "rope", "alibi", "none")
SEEDS = (0, 1, 2)
SIZE = "2xs"
TRAIN_LEN, EVAL_LEN = 128, 2048
COMMON = {
    "train.batch_size": 16,
    "train.seq_len": TRAIN_LEN,
    "train.tokens": 2**21,
    "train.lr": 4e-3,
    "train.warmup_steps": 50,
    "train.log_every": 256,
    "train.checkpoint_every": 512,
    "train.keep_checkpoints": 1,
    "train.progress_bar": False,
    "train.tensorboard": False,
    "train.report_mfu": False,
    "model.max_len": EVAL_LEN,
    "data.eval_batches": 32,
}


def get_sweep() -> Sweep:
    trials = [
        Trial(
            f"size={SIZE},position={position}",
            {**COMMON, "seed": seed},
            {"position": position, "seed": seed, "size": SIZE},
        )
        for position in POSITIONS
        for seed in SEEDS
    ]
    return Sweep(
        name="length",
        experiment="experiments/lm.py",
        trials=trials,
        description="Position schemes trained at T 128, evaluated per position to T 2048.",
        metadata={"train_len": TRAIN_LEN, "eval_len": EVAL_LEN, "positions": list(POSITIONS)},
    )
