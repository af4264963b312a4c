"""Learning rate per attention mechanism, for the mechanisms study (sweeps/mechanisms.py).

Question: the mechanisms study ran every kernel at the learning rates tuned for
softmax (sweeps/demo.py's width rule, about 1e-2 x (32 / d_model)^(2/3)). Linear
attention and the Performer came out flat or non-monotone in N there, which no
L(N, D) fits. Is that the mechanism or its learning rate?

Commands (from the repo root; a killed run resumes):

    python -m attn_jax.sweep plan sweeps/mechanisms_lr.py
    python -m attn_jax.sweep run sweeps/mechanisms_lr.py --out runs/mechanisms_lr --executor local --workers 2
    python analysis/mechanisms_lr.py runs/mechanisms_lr

Design: each mechanism (default linear and Performer; `mechanisms=a+b` picks
others) at three sizes of the study's ladder (6xs, 4xs, 3.25xs: 12.5k-197k
non-embedding parameters) and four multiples of the width rule's LR (0.25, 0.5,
1, 2), each a WSD run to 2^21 tokens (1,024 steps of B 16 x T 128, the study's
second budget) with the study's 20% cooldown, so that the x1 point is the study's
own 2^21 schedule-final point run from scratch. One multiplier per mechanism (the
one with the lowest mean held-out loss over the three sizes) then scales the
whole LR table for that mechanism in sweeps/mechanisms.py: a per-size LR would
fit noise, and the width rule's shape is kept.

Cost: 24 trials, 24.6k steps, 4.0e13 FLOPs (`plan`); 2026-12-03 14:19-14:38 UTC on
this project's 2-core CPU (2 workers, beside the `s` bf16 parity runs: load 5-6).

Result (results/mechanisms_lr; held-out nats/byte at 2^21 tokens, x0.25 / x0.5 /
x1 / x2): linear 6xs 2.386 / 2.311 / 2.290 / 2.349, 4xs 2.304 / 2.278 / 2.347 /
2.352, 3.25xs 2.267 / 2.230 / 2.326 / 2.289 (mean best x0.5, 0.048 better than
x1); Performer 6xs 2.414 / 2.407 / 2.435 / 2.145, 4xs 2.229 / 2.182 / 2.118 /
2.164, 3.25xs 2.189 / 2.039 / 2.130 / 2.193 (mean best x2, at the grid's edge,
carried by one 6xs run). The x1 runs reproduce the study's 2^21 points to the
printed digit (e.g. linear 3.25xs 2.326, Performer 3.25xs 2.130): a WSD run from
scratch equals its cooldown branch. Reading: the curves are not bowls; the swings
between neighbouring LRs (up to 0.29 nats for the Performer at 6xs) are as large
as the effect of the LR itself. These runs sit on a plateau-then-drop learning
curve (the study's Performer 6xs falls from 2.435 at 2^21 tokens to 2.018 at
2^22), and when the drop comes depends on LR and seed. Linear's mean best
(x0.5, also best at 2 of 3 sizes) was adopted: LR_MULTIPLIER in sweeps/mechanisms.py
runs linear at x0.5, and its held-out prediction error fell from 3.30% to 2.26%.
The Performer's best (x2) rests on one run at the grid's edge, so it stays at x1.
"""

from __future__ import annotations

import os

from attn_jax import configs
from attn_jax.sweep import Sweep, SweepSpecError, Trial

study = configs.import_file(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "mechanisms.py")
)

SIZES = ("6xs", "4xs", "3.25xs")
MULTIPLIERS = (0.25, 0.5, 1.0, 2.0)
TOKENS = 2**21


def get_sweep(arg: str | None = None) -> Sweep:
    """`mechanisms=a+b` picks the mechanisms (default linear+performer)."""
    arg = configs.parse_arg(arg, mechanisms="linear+performer")
    names = [m for m in arg.mechanisms.split("+") if m]
    unknown = [m for m in names if m not in study.MECHANISMS]
    if unknown or not names:
        raise SweepSpecError(
            f"Unknown mechanism(s) {unknown or names!r}; valid: {', '.join(study.MECHANISMS)}."
        )
    trials = []
    for name in names:
        for size in SIZES:
            for mult in MULTIPLIERS:
                lr = study.LR[size] * mult
                over = {
                    **study.COMMON,
                    **study.MECHANISMS[name],
                    "data.name": "shakespeare",
                    "seed": 0,
                    "train.lr": lr,
                    "train.tokens": TOKENS,
                    "train.schedule": "wsd",
                    "train.decay_fraction": 0.2,
                }
                tags = {"mechanism": name, "size": size, "lr": lr, "lr_multiplier": mult}
                trials.append(Trial(f"size={size}", over, tags))
    return Sweep(
        name="mechanisms_lr",
        experiment=study.EXPERIMENT,
        trials=trials,
        description=f"{len(names)} mechanisms x {len(SIZES)} sizes x {len(MULTIPLIERS)} LRs.",
        metadata={"sizes": list(SIZES), "multipliers": list(MULTIPLIERS)},
    )
