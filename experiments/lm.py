"""Byte-level decoder LM on Shakespeare's plays (the default LM experiment).

Question: how low a held-out loss does the `s` LM (3.15M non-embedding
params, shared/PERFORMANCE.md's reference shape) reach in 10 minutes of
training on a 2-core CPU, and which short-run recipe gets there?

Command (the headline run; `make`'s GLIBC_TUNABLES are applied by main itself):

    python -m attn_jax.main --config experiments/lm.py:size=s --workdir runs/lm_s

Recipe: B 8 x T 128, 1400 steps (1.43M tokens), AdamW lr 1.3e-3 (b2 0.95,
weight decay 0.1, clip 1), 100 warmup steps, cosine to 0.05 x lr. Held-out set:
the four validation plays (476,880 bytes); eval_batches=128 takes 1024 evenly
spaced windows of 128 = 131k tokens (27% of it), evaluated at 2^19 tokens and
at the end.

Result (measured 2026-11-29 with the command above, load average 1.1-1.8 at the
start): held-out 1.683 nats per byte (1.926 at 2^19 tokens), final train loss
1.576; 7 min 54 s wall for the whole process (470 s in train_and_evaluate,
3,344 tokens/s, MFU 53.6% of the in-process matmul peak), 850 CPU-seconds.
How the learning rate was chosen (600-step runs of the same schedule, 65k
held-out tokens, under load): lr 5e-3 -> 2.049, 3e-3 -> 1.927, 2e-3 -> 1.870,
1.3e-3 -> 1.838; 8e-3 and 1e-2 were far worse early. The first recipe (lr 5e-3,
1000 steps) reached 1.935.

Time budget: `budget=600` is the 10-minute recipe (BUDGET_RECIPE below: the xs
model, planned by train.time_budget_s so that the schedule and the final
evaluation on every non-overlapping validation window end within 600 s of
process wall time):

    python -m attn_jax.main --config experiments/lm.py:budget=600 --workdir runs/lm_600s

Other args: `smoke` (a 6xs model for a few steps: seconds), size=<SIZES key>,
position=rope|alibi|relative|sinusoidal|learned|none, kernel=<KERNELS key>,
score=<SCORES key>, norm=pre|post, data=shakespeare|austen|<tfds name>,
tokenizer=byte|sentencepiece. Any field can be overridden from the command
line, e.g. --config.train.steps=100; a misspelt field is an error before
anything compiles (the config is locked).
"""

from __future__ import annotations

import ml_collections

from attn_jax import configs, validate
from attn_jax.configs import train_config
from attn_jax.data import default_data_config
from attn_jax.data.tokenizers import vocab_size
from attn_jax.models import SIZES

# The 10-minute recipe of the `s` model: small batches, a short context and many
# steps beat big steps in a short run on this CPU (shared/PERFORMANCE.md).
S_RECIPE = dict(
    batch_size=8, seq_len=128, steps=1400, lr=1.3e-3, warmup_steps=100, min_lr_ratio=0.05
)


# The time-budget recipe (`budget=<seconds>`, train.time_budget_s): the xs model
# (1.33M non-embedding params) at B 16 x T 256. A 10-minute run on this CPU buys
# about 1e14 FLOPs; Hoffmann et al. 2022's ~20 tokens per parameter put the
# compute-optimal size near sqrt(1e14 / 120) = 0.9M params, so xs (about 8M
# tokens in 10 minutes at 14.6k tokens/s) rather than s (4.6M tokens at 7.9k/s;
# the s recipe above reached 1.541 with 4.3M tokens). B 16 x T 256 is the
# smallest step at which xs runs near its best MFU (39% at B 16 against 46% for
# s). The loop plans the step count from the measured step time.
BUDGET_RECIPE = dict(batch_size=16, seq_len=256, lr=2e-3, warmup_steps=100, min_lr_ratio=0.05)
BUDGET_SIZE = "xs"


def model_config(size: str, vocab: int, **overrides) -> ml_collections.ConfigDict:
    """config.model for a SIZES entry (fields: docs/CONTRACTS.md, LMConfig in attn_jax/models/lm.py)."""
    if size not in SIZES:
        raise ValueError(f"Unknown size {size!r}; valid: {', '.join(SIZES)}.")
    model = dict(
        family="lm",
        size=size,
        vocab_size=vocab,
        d_model=0,
        num_layers=0,
        num_heads=0,
        num_kv_heads=0,
        head_dim=0,
        d_ff=0,
        max_len=1024,
        norm="pre",
        norm_type="layernorm",
        position="rope",
        score="scaled_dot",
        kernel="xla",
        window=0,
        num_features=0,  # Performer's M; 0 = 256
        proj_len=0,  # Linformer's R; 0 = 64
        sparse_block=0,  # block_sparse pattern (MaskSpec.block / .stride)
        sparse_stride=0,
        tie_embeddings=True,
        dropout=0.0,
        attn_dropout=0.0,
        dtype="auto",  # bfloat16 on GPU/TPU, float32 on CPU (attn_jax.models.lm.compute_dtype)
    )
    model.update(SIZES[size])
    model.update(overrides)
    return ml_collections.ConfigDict(model)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The experiment config; `arg` like "size=s", "smoke", "size=xs,position=alibi"."""
    arg = configs.parse_arg(
        arg,
        size="s",
        smoke=False,
        position="rope",
        kernel="xla",
        score="scaled_dot",
        norm="pre",
        data="shakespeare",
        tokenizer="byte",
        budget=0.0,
    )
    config = ml_collections.ConfigDict()
    config.experiment = "lm"
    config.family = "lm"
    config.seed = 0
    config.data = default_data_config()
    config.data.name = arg.data
    config.data.tokenizer = arg.tokenizer
    # vocab_size reads the tokenizer: name a bad one the way check_config does.
    validate.check_choice("data.tokenizer", arg.tokenizer, "experiments/lm.py")
    size = "6xs" if arg.smoke else (BUDGET_SIZE if arg.budget > 0 else arg.size)
    config.model = model_config(
        size,
        vocab_size(config.data),
        position=arg.position,
        kernel=arg.kernel,
        score=arg.score,
        norm=arg.norm,
    )
    if arg.smoke:
        config.data.eval_batches = 2
        config.train = train_config(
            batch_size=8,
            seq_len=32,
            steps=8,
            lr=3e-3,
            warmup_steps=2,
            log_every=2,
            eval_at_tokens=(128, 1024),
            checkpoint_every=4,
        )
    elif arg.budget > 0:
        # All non-overlapping validation windows: 476,879 // 256 = 1,862 of them.
        config.data.eval_batches = 1_000_000
        config.train = train_config(**BUDGET_RECIPE, time_budget_s=float(arg.budget), log_every=50)
    elif size == "s":
        # 128 x B 8 x T 128 = 131k held-out tokens (27%), spread over all four plays.
        config.data.eval_batches = 128
        config.train = train_config(**S_RECIPE, log_every=25, eval_at_tokens=(2**19,))
    else:
        config.train = train_config()
    return config
