"""Demo sweep: byte-level LM on Shakespeare, IsoFLOP profiles from WSD cooldown branches.

Question: on a 2-core CPU in about 12 minutes, can a sweep identify a scaling law
L(N, D) = E + A / N^alpha + B / D^beta, so that Chinchilla's three approaches
(Hoffmann et al. 2022) agree on the allocation exponent a (N_opt ~ C^a)?

Command (`make demo` runs this, then the fit):

    python -m attn_jax.sweep run sweeps/demo.py --out runs/demo --executor local --workers 2
    python analysis/fit.py runs/demo

Design. One depth for every size: 6 one-layer models, widths 20 to 128 (7xs,
6xs, 5xs, 4xs, 3.5xs, 3.25xs: 4.92k to 197k non-embedding params, 1.6 decades
of N), heads of 16 (7xs: one of 20). A one-layer ladder has no 1 -> 2 layer
kink in L(N) (the first design mixed them, and its two-layer sizes sat off the
one-layer curve). 4 compute budgets C = 6 N D, a factor 2 apart: 1.5e11, 3e11,
6e11, 1.2e12 FLOPs; a size is at a budget when D = C / (6 N)
(`designs.isoflop_tokens`) is 0.4M to 21M tokens: at least 390 steps (the
shorter runs of the first design, 83-300 steps, were still in the early plateau
of a byte LM and off any power law) and at most 4.9 epochs of the 4.3M training
bytes (the 4.9k-param 7xs does not overfit them). Profiles: 1.5e11 has 4 sizes
(7xs..4xs), 3e11 5 (7xs..3.5xs), 6e11 all 6, 1.2e12 5 (6xs..3.25xs); every size
has 2-4 budgets, so D also varies at fixed N: D runs from 0.45M to 20.3M tokens
(1.65 decades). The first design's one-layer points put each profile's
minimum inside its sizes (about 10k at 2e11, 20k at 6e11, 50k at 1.8e12).
Every point is the end of its own schedule: per size, one warmup-stable-decay
run (`train.schedule=wsd`, decay_fraction 0) to its largest budget's cooldown
start, and from its checkpoint there a 20% (1 - sqrt) cooldown branch per
budget (`designs.wsd_branches`; Hagele et al. 2024, arXiv 2405.18392: such
cooldowns match cosine runs of the same length). 6 stable runs + 20 branches =
26 trials; the stable runs' evals at the branch steps are mid-run points, for
the learning curves and Approach 1 only.

Expected cost (`plan` prints it): 7.6e12 FLOPs by 6ND (the first design:
1.06e13 and 25 trials, 937 CPU-seconds measured).

Each run uses a short context and small batches (many steps beat big steps in
a short CPU run, shared/PERFORMANCE.md) and a learning rate per size that
shrinks with width (a single LR for all sizes biases the fitted exponent).
"""

from attn_jax.sweep import Sweep, designs

SIZES = ("7xs", "6xs", "5xs", "4xs", "3.5xs", "3.25xs")
FLOP_BUDGETS = (1.5e11, 3e11, 6e11, 1.2e12)  # C = 6 N D, N non-embedding
BATCH, SEQ = 16, 64
MIN_TOKENS, MAX_TOKENS = 400_000, 21_000_000
# Peak LR per size, about 1e-2 x (32 / d_model)^(2/3): 1e-2 at width 32 (6xs) and
# 3e-3 at 192 were tried at 2^19 tokens; the others follow the rule.
LR = {
    "7xs": 1.3e-2,
    "6xs": 1e-2,
    "5xs": 8e-3,
    "4xs": 7e-3,
    "3.5xs": 5e-3,
    "3.25xs": 4e-3,
}
# Non-embedding parameters (attn_jax.train.flops.param_counts at these shapes; a
# test checks them through D = C / (6 N)).
PARAMS = {
    "7xs": 4920,
    "6xs": 12480,
    "5xs": 27936,
    "4xs": 49536,
    "3.5xs": 111168,
    "3.25xs": 197376,
}
COMMON = {
    "train.batch_size": BATCH,
    "train.seq_len": SEQ,
    "train.warmup_steps": 30,
    "train.log_every": 128,
    "train.checkpoint_every": 2048,
    "train.keep_checkpoints": 1,  # plus the branch steps (train.keep_steps)
    "train.progress_bar": False,  # the sweep draws its own bar
    "train.tensorboard": False,
    "train.report_mfu": False,  # skips measuring the CPU's matmul peak in every run
    "data.eval_batches": 32,  # 32 x 16 x 64 = 32k held-out bytes per eval
}


def budgets(size: str) -> tuple[list[float], list[int]]:
    """(FLOP budgets, token budgets) of a size: D = C / (6 N) within the token range."""
    tokens = designs.isoflop_tokens(FLOP_BUDGETS, PARAMS.get, tokens_per_step=BATCH * SEQ)(size)
    kept = [
        (c, d)
        for c, d in zip(FLOP_BUDGETS, tokens, strict=True)
        if MIN_TOKENS <= d <= MAX_TOKENS
    ]
    return [c for c, _ in kept], [d for _, d in kept]


def get_sweep() -> Sweep:
    trials = []
    for size in SIZES:
        flop_budgets, token_budgets = budgets(size)
        trials += designs.wsd_branches(
            [size],
            token_budgets,
            tokens_per_step=BATCH * SEQ,
            decay_fraction=0.2,
            flop_budgets=flop_budgets,
            overrides={**COMMON, "train.lr": LR[size]},
        )
    return Sweep(
        name="demo",
        experiment="experiments/lm.py",
        trials=trials,
        description="LM on Shakespeare: 6 one-layer sizes x 4 FLOP budgets via WSD branches.",
        metadata={"flop_budgets": list(FLOP_BUDGETS), "sizes": list(SIZES)},
    )
