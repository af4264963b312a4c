"""Vision scaling sweep: ViT size x images seen on Fashion-MNIST, fitted with a saturating law.

Question: how does test error fall with training compute for small ViTs, and
where does it saturate? Zhai et al. (2022, "Scaling Vision Transformers", eq. 1)
fit E = a (C + d)^-b + c to the error of the compute frontier; here the same
law (attn_jax.scaling.laws "saturating") is fitted to test error vs training
FLOPs, and to each size's error vs images seen.

Commands (from the repo root; results/vit_scaling keeps the run records):

    python -m attn_jax.sweep run sweeps/vit_scaling.py --out results/vit_scaling --executor local --workers 1
    python -m attn_jax.sweep results results/vit_scaling
    python analysis/vision_scaling.py results/vit_scaling

Design. The five patch-7 SIZES of experiments/vit.py (2xs, xs, s, m, l: 18.6k
to 797k non-embedding parameters, 1.6 decades) x five budgets of 12.8k to
204.8k images (100 to 1,600 steps of 128; up to 3.4 epochs of the 60,000
training images), through warmup-stable-decay branches (`designs.wsd_branches`;
Hagele et al. 2024): per size one stable run to 1,280 steps and a 20% cooldown
branch per budget, so every point ends its own decayed schedule. 5 parents + 25
branches = 30 trials, 1.22M images. Peak learning rate per size shrinks with
width (`LR`; 2e-3 at width 64 was the best of 1e-3 and 2e-3 for the 6-layer
width-64 model in short probes, 2026-12-02).

The measured cost and the fitted law are in analysis/vision_scaling.py's output
(results/vit_scaling/fit/) and the README.
"""

from __future__ import annotations

from attn_jax.sweep import Sweep, designs

EXPERIMENT = "experiments/vit.py"
SIZES = ("2xs", "xs", "s", "m", "l")
BATCH = 128
EXAMPLE_BUDGETS = (12_800, 25_600, 51_200, 102_400, 204_800)
LR = {"2xs": 3e-3, "xs": 3e-3, "s": 2e-3, "m": 1.5e-3, "l": 1e-3}
COMMON = {
    "train.batch_size": BATCH,
    "train.warmup_steps": 50,
    "train.log_every": 100,
    "train.eval_every": 0,
    "train.checkpoint_every": 100_000,  # only the branch steps (train.keep_steps) and the end
    "train.keep_checkpoints": 1,
    "train.progress_bar": False,  # the sweep draws its own bar
    "train.tensorboard": False,
    "train.report_mfu": False,  # skips measuring the CPU's matmul peak in every run
}


def get_sweep() -> Sweep:
    trials = designs.wsd_branches(
        SIZES,
        EXAMPLE_BUDGETS,
        tokens_per_step=BATCH,
        decay_fraction=0.2,
        overrides=lambda size: {**COMMON, "train.lr": LR[size]},
        tokens_key="train.examples",
        eval_at_key="train.eval_at_examples",
    )
    return Sweep(
        name="vit_scaling",
        experiment=EXPERIMENT,
        trials=trials,
        description="ViT on Fashion-MNIST: 5 sizes x 5 image budgets via WSD branches.",
        metadata={"sizes": list(SIZES), "example_budgets": list(EXAMPLE_BUDGETS)},
    )
