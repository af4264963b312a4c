"""Visual question answering on easy-VQA with cross-attention, and its two baselines.

Question: does a small model whose question tokens cross-attend to ViT patch
tokens answer easy-VQA's test questions (>= 95% overall, the issue's target; a
CNN+LSTM concatenation model reached 87.6%, Kshitij-Ambilduke/VQA), and is it
above both blind baselines on every question type: the same model with the
image blanked (`inputs=question`) and with the question blanked (`inputs=image`)?

Commands (the headline runs; easy-VQA is a pip dependency, no `make data`):

    python -m attn_jax.main --config experiments/vqa.py:inputs=both --workdir runs/vqa/both
    python -m attn_jax.main --config experiments/vqa.py:inputs=question --workdir runs/vqa/question
    python -m attn_jax.main --config experiments/vqa.py:inputs=image --workdir runs/vqa/image

Smoke variant (512 questions, a tiny model, 40 steps, seconds):

    python -m attn_jax.main --config experiments/vqa.py:smoke --workdir /tmp/vqa_smoke

Args (`experiments/vqa.py:inputs=image,examples=1e5`): inputs (both|question|image),
examples (the training budget; 0 keeps the default), smoke.

Tokens: word-level over the 26 words of the train questions (sorted; PAD 0, UNK 1),
padded to 10 words (the longest easy-VQA question has 9).


Recipe: 32x32 images (2x2 average of the 64x64 originals), patch 8 (16 patch tokens),
D 64, 4 heads, F 128, 3 image layers, 1 question layer, 2 fusion layers whose
cross-attention context is the 16 patches plus 2 learned context registers
(attn_jax/models/vqa.py says why); 248,461 parameters, 20.4 MFLOP of training per
question. AdamW lr 2e-3 (b2 0.99, wd 0.05), 200 warmup steps, cosine to 0.1 x lr,
batch 128 x 7,500 steps = 960,000 questions (24.9 epochs), label smoothing 0.1,
horizontal flips; eval on all 9,673 test questions every 1,500 steps.

Result (measured 2026-12-02 on the 2-core AMD EPYC CPU, one training process at a
time under `flock /tmp/cpu_heavy.lock`, other engineers' editors and tests waiting
beside it, load 1.7-2.0; `--config.train.progress_bar=False`; code of commit 3874353):

| inputs   | overall | yes/no | shape  | color  | wall (s) | questions/s | UTC         |
|----------|---------|--------|--------|--------|----------|-------------|-------------|
| both     | 99.07%  | 99.34% | 96.90% | 99.69% | 650      | 1,538       | 16:45-16:56 |
| question | 66.73%  | 82.54% | 33.09% | 11.64% | 666      | 1,494       | 17:05-17:16 |
| image    | 36.78%  | 49.86% |  0.00% |  0.00% | 622      | 1,602       | 17:27-17:38 |

The target is met: 99.07% >= 95% overall (the anchor, a CNN+LSTM, had 87.6%), and
above both baselines on every question type. The question-only baseline is the
answer prior of each template (yes/no 82.5%: most "is there a <colour> shape?"
questions are answered no); the image-only one answers "yes" or "no" to every
question, since yes/no is 74% of the questions. By eval (both): 1,500 steps 84.7%,
3,000 90.8%, 4,500 98.0%, 6,000 98.9%, 7,500 99.07%.

Ablation, the context registers. At 2,500 steps (320,000 questions, the same recipe
otherwise): without them 86.19% (yes/no 82.54%, exactly the question-only prior at
every eval), with 2 registers 91.74% (yes/no 91.00%, off the prior by step 1,500).
At the headline's 7,500 steps they make no difference: without them 99.16% (yes/no
99.47%, shape 96.82%, colour 99.77%; 587 s, 17:55-18:05 UTC), with them 99.07%. So
what reaches the target is the longer schedule; the registers only get yes/no off
the prior sooner. Records:
results/vqa/{both,question,image}/ and results/vqa/ablation/.
"""

from __future__ import annotations

import ml_collections

from attn_jax import configs


def data_config(**overrides) -> ml_collections.ConfigDict:
    """config.data of the VQA family (attn_jax/families/vqa.py)."""
    fields = dict(downsample=1, flip=True, max_train=0, max_eval=0)
    fields.update(overrides)
    return ml_collections.ConfigDict(fields)


def model_config(smoke: bool = False, **overrides) -> ml_collections.ConfigDict:
    """config.model (attn_jax.models.vqa.VQAConfig fields)."""
    if smoke:
        fields = dict(
            image_size=32,
            patch_size=8,
            image_layers=1,
            question_layers=1,
            fusion_layers=1,
            d_model=32,
            num_heads=2,
            d_ff=64,
        )
    else:
        fields = dict(
            image_size=32,
            patch_size=8,
            image_layers=3,
            question_layers=1,
            fusion_layers=2,
            d_model=64,
            num_heads=4,
            d_ff=128,
        )
    fields.update(
        dict(
            channels=3,
            vocab_size=32,
            max_question_len=10,
            num_answers=13,
            context_registers=2,
            pool="mean",
            inputs="both",
            image_position="learned",
        ),
        **overrides,
    )
    return ml_collections.ConfigDict(fields)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The experiment config; `arg` like "smoke", "inputs=question"."""
    arg = configs.parse_arg(arg, smoke=False, inputs="both", examples=0)
    if arg.inputs not in ("both", "question", "image"):
        raise ValueError(
            f"experiments/vqa.py: inputs={arg.inputs!r} is not one of: both, question, image."
        )
    config = ml_collections.ConfigDict()
    config.experiment = "vqa"
    config.family = "vqa"
    config.seed = 0
    config.model = model_config(arg.smoke, inputs=arg.inputs)
    if arg.smoke:
        config.data = data_config(downsample=2, max_train=512, max_eval=256)
        config.train = configs.train_config(
            unit="examples",
            batch_size=32,
            steps=0,
            examples=arg.examples or 40 * 32,
            eval_at_examples=(20 * 32,),
            lr=3e-3,
            warmup_steps=4,
            weight_decay=0.05,
            label_smoothing=0.1,
            log_every=10,
            checkpoint_every=20,
        )
    else:
        config.data = data_config(downsample=2)
        config.train = configs.train_config(
            unit="examples",
            batch_size=128,
            steps=0,
            examples=arg.examples or 128 * 7500,
            lr=2e-3,
            warmup_steps=200,
            min_lr_ratio=0.1,
            weight_decay=0.05,
            b2=0.99,
            label_smoothing=0.1,
            log_every=50,
            eval_every=1500,
            checkpoint_every=500,
        )
    return config
