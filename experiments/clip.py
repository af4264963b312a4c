"""CLIP-style contrastive dual encoder (Radford et al. 2021) on easy-VQA shape-colour captions.

Question: trained from scratch on the 4,000 easy-VQA train images, each paired with
a caption of its shape and colour ("a red circle", "a circle that is red", ...: six
templates, attn_jax/families/clip.py), does a small ViT image tower and Transformer
text tower reach 90% zero-shot accuracy on the 1,000 held-out test images, ranking
the canonical captions of all 24 shape-colour combinations?

Command (the headline run; easy-VQA ships in its pip package, no `make data`):

    python -m attn_jax.main --config experiments/clip.py --workdir runs/clip

Smoke variant (256 train / 128 test images, a tiny model, 40 steps, seconds):

    python -m attn_jax.main --config experiments/clip.py:smoke --workdir /tmp/clip_smoke

Args (`experiments/clip.py:examples=100000`): examples (the training budget; 0
keeps the default), smoke.

Model: 225,025 parameters (6,016 embedding: the ViT's 64 x 64 position table, the
22 x 64 word table and the 8 x 64 caption positions). Image tower: ViT, 64x64x3
images in 8x8 patches (64 tokens), width 64, 4 layers, 4 heads, MLP 128, mean
pooling, its head as the 64 -> 64 projection; text tower: width 64, 2 layers, 4
heads, MLP 128, masked mean pool, 64 -> 64 projection; joint width 64; learned
temperature from 1/0.07, clipped at 100. 71.0 MFLOP of training per pair
(analytic, 3 x forward, the 128 x 128 similarity matrix included).
Recipe: AdamW lr 1e-3 (b2 0.99, weight decay 0.05), 100 warmup steps, cosine to
0.1 x lr, batch 128 x 600 steps = 76,800 pairs (19.2 epochs of the 4,000 train
images), a random caption template per pair and step, left-right flips; eval on
all 1,000 test images every 200 steps. The budget came from a 150-step probe
(19,200 pairs, 2026-12-02, load ~8-11): 91.3% zero-shot already.

Result (measured 2026-12-02 08:27-08:30 UTC, 2-core AMD EPYC CPU, a quiet moment:
load average 0.76 at the start and 1.49 at the end): zero-shot accuracy 99.6% over
the 24 shape-colour captions on the 1,000 held-out test images (shape 99.6%, colour
100%), image->text recall@1 99.6% (every class occurs in the test split, so the
distinct-caption pool is the 24 captions and both figures agree), eval contrastive
loss 1.763; final train loss 1.763. With multi-positive targets the loss cannot
reach 0: its floor is the mean log(positives per row), about 1.77 for 128 pairs
over 24 classes, so both losses sit at it. Zero-shot accuracy by step: 200: 91.0%,
400: 98.6%, 600: 99.6%; logit scale 14.3 -> 18.3. 155.2 s wall for the whole
process (2.6 min; 152.2 s in the loop, evals and checkpoints included), 591
examples/s, MFU 0.219 against a 192 GFLOP/s matmul peak measured in the same
process; 5.45 TFLOP of training. The issue's target, 90% zero-shot on held-out
images, is met. The same command earlier under load (07:29-07:35 UTC, load 6.72 at
the start, 6.42 at the end) gave identical metrics (the run is deterministic) in
378.7 s wall, 237.6 examples/s (results/clip/loaded/). The command was the one
above with `--config.train.progress_bar=False` and the Makefile's GLIBC_TUNABLES,
run through `flock /tmp/cpu_heavy.lock`; the record is results/clip/summary.json.
"""

from __future__ import annotations

import ml_collections

from attn_jax import configs

# The caption vocabulary (21 words + padding) and the longest caption (8 words) of
# attn_jax/families/clip.py's templates; the family checks them before any compile.
VOCAB_SIZE, MAX_LEN = 22, 8


def data_config(**overrides) -> ml_collections.ConfigDict:
    """config.data of the CLIP family (attn_jax/families/clip.py)."""
    fields = dict(flip=True, crop_pad=0, max_train=0, max_eval=0)
    fields.update(overrides)
    return ml_collections.ConfigDict(fields)


def model_config(smoke: bool = False, **overrides) -> ml_collections.ConfigDict:
    """config.model (attn_jax.models.clip.CLIPConfig): a ViT on 64x64 images, a text tower."""
    if smoke:
        fields = dict(
            patch_size=16,
            d_model=32,
            num_layers=1,
            num_heads=2,
            text_d_model=32,
            text_layers=1,
            text_heads=2,
            embed_dim=32,
        )
    else:
        fields = dict(
            patch_size=8,
            d_model=64,
            num_layers=4,
            num_heads=4,
            d_ff=128,
            text_d_model=64,
            text_layers=2,
            text_heads=4,
            text_d_ff=128,
            embed_dim=64,
        )
    fields.update(
        dict(image_size=64, channels=3, pool="gap", vocab_size=VOCAB_SIZE, max_len=MAX_LEN),
        **overrides,
    )
    return ml_collections.ConfigDict(fields)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The experiment config; `arg` like "smoke", "examples=100000"."""
    arg = configs.parse_arg(arg, smoke=False, examples=0)
    config = ml_collections.ConfigDict()
    config.experiment = "clip"
    config.family = "clip"
    config.seed = 0
    config.model = model_config(arg.smoke)
    if arg.smoke:
        config.data = data_config(max_train=256, max_eval=128)
        config.train = configs.train_config(
            unit="examples",
            batch_size=32,
            steps=0,
            examples=arg.examples or 40 * 32,
            eval_at_examples=(20 * 32,),
            lr=3e-3,
            warmup_steps=4,
            weight_decay=0.05,
            log_every=10,
            checkpoint_every=20,
        )
    else:
        config.data = data_config()
        config.train = configs.train_config(
            unit="examples",
            batch_size=128,
            steps=0,
            examples=arg.examples or 128 * 600,
            lr=1e-3,
            warmup_steps=100,
            min_lr_ratio=0.1,
            weight_decay=0.05,
            b2=0.99,
            log_every=50,
            eval_every=200,
            checkpoint_every=200,
        )
    return config
