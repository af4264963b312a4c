"""Head types across model size: a small LM ladder whose checkpoints feed the attention analysis.

Question (issue 18): as a byte-level LM on Shakespeare grows, how do the
shares of head types (sink, positional, broad, content; attn_jax.interp.
measures.classify_heads) and the mean attention distance per relative depth
change? This sweep trains the models; analysis/attention_sweep.py restores each
trial's final checkpoint and measures its heads on held-out text, and
analysis/attention_attribution.py compares attention with input x gradient.

Command (from the repo root; the runner writes checkpoints, so --out goes under
runs/, which git ignores; the records are copied to results/attention_heads/):

    python -m attn_jax.sweep run sweeps/attention_heads.py --out runs/attention_heads \
        --executor local --workers 1
    python analysis/attention_sweep.py runs/attention_heads --out results/attention_heads
    python analysis/attention_attribution.py --workdir runs/attention_heads/trials/<s run id> \
        --out results/attention_heads/attribution

Design: 5 sizes from SIZES, 1 to 4 layers (4xs 1x4 heads, 3xs 2x3, 2xs 2x4,
xs 3x4, s 4x4: 49.5k to 3.15M non-embedding params, 1.8 decades), each trained
on the same 400k tokens (391 steps of B 8 x T 128, the context the analysis
reads), cosine schedule, peak LR 2e-3 x (256 / d_model)^0.5 (experiments/lm.py's
`s` runs favour ~1.3-2e-3 at d 256; smaller widths take more). 400k tokens is
past a byte LM's early plateau, where previous-token heads have formed;
a longer run would be a better model, not a different design. One checkpoint,
the final one, is kept per trial (checkpoint_every > steps: the trainer saves at
the end).

Cost, measured 2026-12-02 (runs/attention_heads, local executor, 1 worker, the
shared 2-core machine under the CPU lock): 5 of 5 done in 158 s wall (s 70.9 s,
xs 35.9, 2xs 17.7, 3xs 14.8, 4xs 8.2, each with its compile and eval).

Result of that run (eval loss, nats/byte, 16k held-out bytes): 4xs 2.309, 3xs
2.147, 2xs 2.095, xs 2.027, s 2.016. Heads on 128 held-out bytes
(results/attention_heads/heads_by_size.md), positional / content of L x N:
4xs 1/3, 3xs 2/4, 2xs 4/4, xs 2/10, s 8/8; no sink or broad head at any size.
"""

from attn_jax.models import SIZES as MODEL_SIZES
from attn_jax.sweep import Sweep, designs

SIZES = ("4xs", "3xs", "2xs", "xs", "s")
TOKENS = 400_000
BATCH, SEQ = 8, 128
COMMON = {
    "train.batch_size": BATCH,
    "train.seq_len": SEQ,
    "train.warmup_steps": 40,
    "train.min_lr_ratio": 0.05,
    "train.log_every": 50,
    "train.checkpoint_every": 100_000,  # only the final checkpoint (saved at the end)
    "train.keep_checkpoints": 1,
    "train.progress_bar": False,  # the sweep draws its own bar
    "train.tensorboard": False,
    "train.report_mfu": False,
    "data.eval_batches": 16,  # 16 x 8 x 128 = 16k held-out bytes: a sanity check only
}


def lr(size: str) -> float:
    """Peak LR: 2e-3 at d_model 256, scaled by (256 / d_model)^0.5."""
    return round(2e-3 * (256 / MODEL_SIZES[size]["d_model"]) ** 0.5, 5)


def get_sweep() -> Sweep:
    trials = designs.grid(SIZES, [TOKENS], overrides=lambda size: {**COMMON, "train.lr": lr(size)})
    return Sweep(
        name="attention_heads",
        experiment="experiments/lm.py",
        trials=trials,
        description="LM on Shakespeare: 5 sizes (1-4 layers) at 400k tokens, for head types.",
        metadata={"sizes": list(SIZES), "tokens": TOKENS},
    )
