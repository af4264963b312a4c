"""Demo sweep: byte-level LM on Shakespeare, 6 sizes x 2 token budgets (12 runs).

Question: does held-out loss fall steadily with model size at a fixed token
budget, and with tokens at a fixed size, on a CPU in minutes? It is the
smallest sweep whose results.jsonl the scaling analysis can fit.

Command (`make demo` runs this, then prints the results table):

    python -m attn_jax.sweep run sweeps/demo.py --out runs/demo --executor local --workers 2
    python -m attn_jax.sweep results runs/demo

Expected cost and result: 6 sizes from 6xs (12.5k non-embedding params) to xs
(1.33M) at 2^18 and 2^19 tokens (256 and 512 steps of 16 x 64 tokens): 12 runs,
1.03e13 training FLOPs, 570 s of CPU time in all. Measured 2026-11-29 with
`--executor local --workers 2` on the 2-core CPU while other jobs kept the load
average at 12-15: 15 min 18 s wall (estimated 6-8 min on an idle machine).
Eval loss (nats per byte), 6xs -> xs:
  2^18 tokens: 2.50 2.39 2.34 2.35 2.19 2.15
  2^19 tokens: 2.33 2.24 2.15 2.15 2.02 1.99
Loss falls with size at 2^19 tokens and with tokens at every size; at 2^18,
3xs (2 layers of width 64) trails 4xs (1 layer) by 0.01: at 256 steps the
extra layer has not paid off yet. Rerunning the command resumes; it skips
finished runs.

Each run uses a short context and small batches (many steps beat big steps in
a short CPU run, shared/PERFORMANCE.md) and a learning rate per size that
shrinks with width (a single LR for all sizes biases the fitted exponent).
"""

from attn_jax.sweep import Sweep, designs

SIZES = ("6xs", "5xs", "4xs", "3xs", "2xs", "xs")
TOKEN_BUDGETS = (2**18, 2**19)
# Peak LR per size: 3e-3 at d_model 192 (xs) up to 1e-2 at 32 (6xs), about
# d_model^-2/3; tried at 2^19 tokens for xs and 6xs.
LR = {"6xs": 1e-2, "5xs": 8e-3, "4xs": 7e-3, "3xs": 6e-3, "2xs": 4e-3, "xs": 3e-3}
COMMON = {
    "train.batch_size": 16,
    "train.seq_len": 64,
    "train.warmup_steps": 30,
    "train.log_every": 64,
    "train.checkpoint_every": 128,
    "train.progress_bar": False,  # the sweep draws its own bar
    "train.tensorboard": False,
    "train.report_mfu": False,  # skips measuring the CPU's matmul peak in every run
    # Held-out loss at these budgets too: each run adds points to the fit and a
    # learning curve for Approach 1 (the 2^18-token runs stop at their last one).
    "train.eval_at_tokens": (2**16, 2**17, 2**18),
    "data.eval_batches": 32,  # 32 x 16 x 64 = 32k held-out bytes per eval
}


def get_sweep() -> Sweep:
    return Sweep(
        name="demo",
        experiment="experiments/lm.py",
        trials=designs.grid(
            SIZES, TOKEN_BUDGETS, overrides=lambda s: {**COMMON, "train.lr": LR[s]}
        ),
        description="LM on Shakespeare: 6 sizes x 2 token budgets, CPU in minutes.",
    )
