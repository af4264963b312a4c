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
kink in L(N): the first WSD design mixed them, and its two-layer sizes sat off
the one-layer curve. 5 compute budgets C = 6 N D, a factor 2 apart: 1.5e11 to
2.4e12 FLOPs (1.2 decades), every size at 2-5 of them with D = C / (6 N)
(`designs.isoflop_tokens`, the table `BUDGETS`): profiles of 4, 5, 5, 5 and 3
sizes, each around its minimum; D runs from 0.45M to 16M tokens (1.55 decades),
so N and D vary independently (corr(log N, log D) -0.63). Every run is at
least 390 steps: the first design's 83-300-step branches were still in a byte
LM's early plateau, off any power law. Every point is the end of its own
schedule: per size, one warmup-stable-decay run (`train.schedule=wsd`,
decay_fraction 0) to its largest budget's cooldown start, and from its
checkpoint there a 20% (1 - sqrt) cooldown branch per budget
(`designs.wsd_branches`; Hagele et al. 2024, arXiv 2405.18392: such cooldowns
match cosine runs of the same length). 6 stable runs + 22 branches = 28
trials, 53.3k steps, 1.74e13 analytic FLOPs; the stable runs' evals at the
branch steps are mid-run points, for the learning curves and Approach 1 only.

Cost, measured 2026-12-02 (runs/demo_v3, local executor, 2 workers, on the
shared 2-core machine at load average 1.2 at the start and 5-10 during, other
engineers' tests beside it): 28 of 28 trials done in 13 min 5 s wall, 1019
CPU-seconds (the sweep got 1.3 of the 2 cores), so about 9 min on a quiet
machine (not measured there); analysis/fit.py 51 s more.

Result of that run (final eval loss, nats/byte, per profile small -> large size):
  C 1.5e11  7xs..4xs:    2.018 1.989 2.084 2.127
  C 3e11    7xs..3.5xs:  1.998 1.921 1.951 1.992 2.054
  C 6e11    6xs..3.25xs: 1.884 1.881 1.897 1.939 2.028
  C 1.2e12  6xs..3.25xs: 1.873 1.842 1.843 1.858 1.914
  C 2.4e12  4xs..3.25xs: 1.798 1.797 1.841
analysis/fit.py: L = 1.483 + 4.78 / N^0.289 + 301 / D^0.503, no identifiability
warning (local SEs: alpha 0.083, beta 0.080, log E 0.056); a = 0.809 [0.527,
0.997] (Approach 1), 0.748 [0.280, 1.171] (2, every budget's minimum inside its
sizes, none refused), 0.635 [0.517, 0.915] (3): each inside the others' 95%
intervals. Without 3.25xs the law predicts its 3 losses within 0.72% mean,
1.46% max. Thin margin: alpha's local SE is 0.29 of alpha (the diagnostics
warn above 0.3), and its bootstrap interval is wide ([0.04, 0.44]).

Each run uses a short context and small batches (many steps beat big steps in
a short CPU run, shared/PERFORMANCE.md) and a learning rate per size that
shrinks with width (a single LR for all sizes biases the fitted exponent).
"""

from attn_jax.sweep import Sweep, designs

SIZES = ("7xs", "6xs", "5xs", "4xs", "3.5xs", "3.25xs")
FLOP_BUDGETS = (1.5e11, 3e11, 6e11, 1.2e12, 2.4e12)  # C = 6 N D, N non-embedding
BATCH, SEQ = 16, 64
# The budgets of each size: D = C / (6 N) from 0.4M tokens (390 steps; shorter runs sit
# in a byte LM's early plateau, off any power law) to 16M (3.7 epochs of the 4.3M
# training bytes, which these sizes cannot overfit). 7xs stops at 10M: it is saturated
# there (runs/demo_v2: 2.018, 1.998, 1.989 at 5M, 10M, 20M tokens); 2.4e12 is for the
# three largest only: both keep the sweep near 12 minutes.
BUDGETS = {
    "7xs": (1.5e11, 3e11),
    "6xs": (1.5e11, 3e11, 6e11, 1.2e12),
    "5xs": (1.5e11, 3e11, 6e11, 1.2e12),
    "4xs": (1.5e11, 3e11, 6e11, 1.2e12, 2.4e12),
    "3.5xs": (3e11, 6e11, 1.2e12, 2.4e12),
    "3.25xs": (6e11, 1.2e12, 2.4e12),
}
MIN_TOKENS, MAX_TOKENS = 400_000, 16_100_000
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
# Non-embedding parameters (attn_jax.models.flops.param_counts at these shapes; a
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
    """(FLOP budgets, token budgets) of a size: D = C / (6 N) in whole steps."""
    flop_budgets = list(BUDGETS[size])
    tokens = designs.isoflop_tokens(flop_budgets, PARAMS.get, tokens_per_step=BATCH * SEQ)(size)
    for c, d in zip(flop_budgets, tokens, strict=True):
        # A guard for edits of the table above: the token range is the design's premise.
        if not MIN_TOKENS <= d <= MAX_TOKENS:
            raise ValueError(
                f"sweeps/demo.py: {size} at C = {c:.3g} needs {d} tokens, outside "
                f"[{MIN_TOKENS}, {MAX_TOKENS}]; drop that budget from BUDGETS[{size!r}]."
            )
    return flop_budgets, tokens


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
        description="LM on Shakespeare: 6 one-layer sizes x 5 FLOP budgets via WSD branches.",
        metadata={"flop_budgets": list(FLOP_BUDGETS), "sizes": list(SIZES)},
    )
