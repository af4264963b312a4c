"""Demo sweep: byte-level LM on Shakespeare, 6 sizes x 2 token budgets (12 runs).

Question: does held-out loss fall steadily with model size at a fixed token
budget, and with tokens at a fixed size, on a CPU in minutes? It is the
smallest sweep whose results.jsonl the scaling analysis can fit.

Command (`make demo` runs this, then prints the results table):

    python -m attn_jax.sweep run sweeps/demo.py --out runs/demo --executor local --workers 2
    python -m attn_jax.sweep results runs/demo

Expected cost and result: 6 sizes from 6xs (12.5k non-embedding params) to xs
(1.33M) at 2^18 and 2^19 tokens (256 and 512 steps of 16 x 64 tokens): 12 runs,
1.1e13 training FLOPs. Measured 2026-11-29 with `make demo` (local executor, 2
workers) on the 2-core CPU at load average 1-2 before it started: 6 min 46 s
wall for the sweep, its results table and the fit. Eval loss (nats per byte),
6xs -> xs:
  2^18 tokens: 2.499 2.387 2.342 2.242 2.185 2.154
  2^19 tokens: 2.335 2.236 2.153 2.059 2.019 1.985
Loss falls with size at both budgets and with tokens at every size. Rerunning
the command resumes; it skips finished runs.

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
