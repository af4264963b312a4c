"""The attention mechanism as a scaling axis: one L(N, D) design per mechanism.

Question: does the attention mechanism change how a byte LM scales (the exponents
alpha, beta and the allocation a = beta / (alpha + beta)) or only shift its loss
(E, A, B)? Tay et al. 2022 ("Scaling Laws vs Model Architectures", arXiv
2207.10551) asked it of ten architectures with straight-line fits and no
uncertainty; here each mechanism gets Chinchilla's Approach 3 fit with bootstrap
intervals (`analysis/compare_mechanisms.py`).

Commands (from the repo root; a killed run resumes where it stopped):

    python -m attn_jax.sweep plan sweeps/mechanisms.py          # trials, steps, FLOPs
    python -m attn_jax.sweep run sweeps/mechanisms.py --out runs/mechanisms --executor local --workers 2
    python analysis/compare_mechanisms.py runs/mechanisms

Mechanisms (`MECHANISMS`, the experiment's model fields): softmax (exact, the
"xla" kernel); local sliding windows of 8 and 32 bytes (the "local" kernel,
which computes only the window's strip); linear attention with the elu+1
feature map (Katharopoulos et al. 2020); Performer FAVOR+ with M = 64 positive
orthogonal random features (Choromanski et al. 2021; M ~ H log H = 44 at head
size 16, where the kernel's default 256 would cost 3x the dense attention); and
MQA, softmax with one key/value head (Shazeer 2019), the efficiency baseline
within softmax.

Design, the same for every mechanism: the one-layer ladder of sweeps/demo.py
without its smallest size, carried to width 256 (6xs, 5xs, 4xs, 3.5xs, 3.25xs,
1x192, 1x256: 12.5k to 788k non-embedding parameters, 1.8 decades of N; heads of
16; 1x192 so that the fit without 1x256 still spans 1.55 decades),
each trained to 2^20, 2^21, 2^22 and 2^23 tokens (0.9 decades of D, 512 to 4,096
steps of B 16 x T 128), every point the end of its own schedule: per size one
warmup-stable run to its largest budget's cooldown start and from its checkpoints
a 20% (1 - sqrt) cooldown branch per budget (`designs.wsd_branches`; Hagele et
al. 2024). Linear and Performer get 3 seeds (SEEDS), the others 1:
(4 x 1 + 2 x 3) x 7 sizes x (1 stable + 4 branches) = 350 trials, 28 schedule-final
points per mechanism and seed. The first run of this study (2026-12-03
09:19-10:09 UTC) had only the five sizes to 3.25xs (1.2 decades) and could not
identify the laws; 1x256 was added in a second run that kept the first's 150
records (same run ids). T 128 (not the demo's 64) so that the
windows and the quadratic term mean something: at T 128 dense attention is
20-40% of these models' training FLOPs. The learning rate per size is the
demo's (tuned for softmax at T 64; 3e-3 and 2.5e-3 for 1x192 and 1x256 by the
same width rule), the same for every mechanism except linear, which runs at half
of it (LR_MULTIPLIER, from sweeps/mechanisms_lr.py).

FLOPs are counted per kernel (`attn_jax.models.flops.attention_flops`): the
windows by the pairs they compute, linear and Performer by their feature maps
and chunked prefix sums, MQA's smaller k/v projections by its parameters.

Cost (`plan` prints the exact steps and FLOPs): 337k steps, 1.21e15 analytic
FLOPs. Measured on this project's 2-core CPU (local executor, 2 workers): the
five smaller sizes (150 trials, 2.01e14) 2026-12-03 09:19-10:09 UTC, 50 min at
load 2-5, including one SIGKILL of the whole sweep at 7 min and its resume (the
two finished records kept byte-identical; the two killed stable runs resumed
from their kept checkpoints at step 1638); 1x256 (30 trials) 11:59-13:43 UTC,
104 min beside another study and tests (load up to 7 at the runs' starts), with
one more kill and relaunch (resumed from the checkpoints at steps 819 and 0);
1x192 (30 trials, 1.87e14) 37 min and linear's 35 trials at x0.5 23 min on a quiet
machine; seeds 1 and 2 of linear and Performer (140 trials, 5.05e14) 2026-12-04
19:04-20:00 and 20:04-20:53 UTC, 105 min at load 0.5-5 (`max_seeds=2` first, then
all; the seed-0 run ids do not change with SEEDS). On
a TPU v5e-1 (197 TFLOP/s bf16) models this small run at a few % MFU: the ~2-4 ms
per step and ~20 s of compile per shape dominate, about 25-35 min (change COMMON's
model.dtype to bfloat16 there; the persistent compilation cache makes each
branch start without compiling); not measured.

Result (results/mechanisms, analysis/compare_mechanisms.py): fitted without
1x256, the law predicts its four losses (seed means) within 1.07% for softmax,
0.98% MQA, 0.75% local8, 1.66% local32 (max errors: the 2% target met); linear
misses at 2.28% with a seed sd of 0.24% there (systematic: its small-budget losses
are flat or rising in N up to 111k parameters), Performer at 3.31% with a seed sd
of 1.94% (its held-out losses are about as noisy as the target; 4xs seed 1
diverged at step 2360). Both fits put E at its bound of 0. Losses at 1x256 and
8.4M tokens: softmax 1.600, local32 1.606, MQA 1.613, local8 1.624, Performer
1.707, linear 1.888 (means of 3 seeds for the last two).

Args: `mechanisms=softmax+linear` (a subset, joined by +), `data=austen` (the
second corpus: Austen's novels, Persuasion held out).
"""

from __future__ import annotations

from attn_jax import configs
from attn_jax.sweep import Sweep, SweepSpecError, designs

EXPERIMENT = "experiments/lm.py"
SIZES = ("6xs", "5xs", "4xs", "3.5xs", "3.25xs", "1x192", "1x256")
TOKENS = (2**20, 2**21, 2**22, 2**23)
BATCH, SEQ = 16, 128
# The model fields of each mechanism, on top of experiments/lm.py's defaults.
MECHANISMS: dict[str, dict[str, object]] = {
    "softmax": {"model.kernel": "xla"},
    "local8": {"model.kernel": "local", "model.window": 8},
    "local32": {"model.kernel": "local", "model.window": 32},
    "linear": {"model.kernel": "linear"},
    "performer": {"model.kernel": "performer", "model.num_features": 64},
    "mqa": {"model.kernel": "xla", "model.num_kv_heads": 1},
}
# Peak LR per size: sweeps/demo.py's table (about 1e-2 x (32 / d_model)^(2/3)).
LR = {"6xs": 1e-2, "5xs": 8e-3, "4xs": 7e-3, "3.5xs": 5e-3, "3.25xs": 4e-3}
LR["1x192"] = 3e-3  # the same rule carried to widths 192 and 256
LR["1x256"] = 2.5e-3
# Each mechanism's multiple of that table. sweeps/mechanisms_lr.py gridded x0.25-x2
# for linear and Performer (analysis/mechanisms_lr.py): linear's mean was best at x0.5
# (and at 2 of 3 sizes), so linear runs at x0.5; the Performer's best (x2, at the
# grid's edge) rested on one run, so it stays at x1 with the other mechanisms.
LR_MULTIPLIER = {"linear": 0.5, "performer": 1.0}
# Seeds per mechanism (default 1). Linear's and the Performer's learning curves
# plateau and then drop at a step that depends on seed and LR (sweeps/mechanisms_lr.py
# measured swings of up to 0.29 nats between neighbouring LRs), so their points get
# three seeds; the fit takes every seed's point and the held-out check scores the
# seed mean. `max_seeds=N` caps the count (to run the study in stages).
SEEDS = {"linear": 3, "performer": 3}
COMMON = {
    "train.batch_size": BATCH,
    "train.seq_len": SEQ,
    "train.warmup_steps": 30,
    "train.log_every": 256,
    "train.checkpoint_every": 4096,
    "train.keep_checkpoints": 1,  # plus the branch steps (train.keep_steps)
    "train.progress_bar": False,  # the sweep draws its own bar
    "train.tensorboard": False,
    "train.report_mfu": False,
    "model.max_len": SEQ,
    "model.dtype": "float32",  # pinned: precision is part of the controlled comparison
    "data.eval_batches": 32,  # 32 x 16 x 128 = 65.5k held-out bytes per eval
}


def mechanism_trials(name: str, data: str = "shakespeare", max_seeds: int = 0) -> list:
    """The stable runs and cooldown branches of one mechanism, tagged `mechanism`.

    `max_seeds` > 0 caps the mechanism's SEEDS count.
    """
    if name not in MECHANISMS:
        raise SweepSpecError(f"Unknown mechanism {name!r}; valid: {', '.join(MECHANISMS)}.")
    n_seeds = SEEDS.get(name, 1)
    if max_seeds > 0:
        n_seeds = min(n_seeds, max_seeds)
    trials = []
    for size in SIZES:
        trials += designs.wsd_branches(
            [size],
            TOKENS,
            tokens_per_step=BATCH * SEQ,
            decay_fraction=0.2,
            seeds=range(n_seeds),
            overrides={
                **COMMON,
                **MECHANISMS[name],
                "data.name": data,
                "train.lr": LR[size] * LR_MULTIPLIER.get(name, 1.0),
            },
            extra_tags={"mechanism": name, "data": data},
        )
    return trials


def get_sweep(arg: str | None = None) -> Sweep:
    """`mechanisms=a+b` picks a subset (default all); `data=austen` the second corpus."""
    arg = configs.parse_arg(arg, mechanisms="+".join(MECHANISMS), data="shakespeare", max_seeds=0)
    if arg.max_seeds < 0:
        raise SweepSpecError(f"max_seeds must be >= 0 (0: no cap), got {arg.max_seeds}.")
    names = [m for m in arg.mechanisms.split("+") if m]
    trials = [t for m in names for t in mechanism_trials(m, arg.data, arg.max_seeds)]
    suffix = "" if arg.data == "shakespeare" else f"_{arg.data}"
    seeds = ", ".join(f"{m} x{SEEDS[m]}" for m in names if SEEDS.get(m, 1) > 1)
    return Sweep(
        name=f"mechanisms{suffix}",
        experiment=EXPERIMENT,
        trials=trials,
        description=(
            f"{len(names)} attention mechanisms x {len(SIZES)} sizes x {len(TOKENS)} token "
            f"budgets (WSD branches); seeds: {seeds or 'one each'}."
        ),
        metadata={"mechanisms": {m: MECHANISMS[m] for m in names}, "sizes": list(SIZES)},
    )
