"""English -> Spanish Bible translation with the original Transformer recipe, on a CPU.

Question: trained for under 25 minutes on a 2-core CPU, does an encoder-decoder
Transformer translate held-out books of the Bible (King James -> Reina-Valera 1909)
at least twice as well, in BLEU, as a word-for-word IBM Model 1 dictionary?

Command (the measured run):

    python -m attn_jax.main --config experiments/translate.py --workdir runs/translate

Data (attn_jax.data.bible): 31,084 verse pairs, split by whole books: train 61 books
(27,502 pairs), validation Ezekiel + Hebrews (1,576, the teacher-forced eval loss),
test Joshua + Proverbs + Romans (2,006, decoded and scored at the end with sacrebleu
corpus BLEU and chrF). One SentencePiece vocabulary of 8,000 pieces trained on the
training books' English and Spanish; verses average 33 (English) / 31 (Spanish)
pieces. max_src_len = max_tgt_len = 64: 2.8% of the training pairs are longer and
dropped, 2.9% of the test sources are truncated (80 would keep 99.7%, at 25% more
compute per step: every batch is padded to the maximum).

Recipe (Vaswani et al. 2017, "Attention Is All You Need", sec. 5): post-norm,
sinusoidal positions, one shared source/target vocabulary with tied embeddings
(sec. 3.4), Adam b1 0.9 b2 0.98 eps 1e-9 without weight decay, the inverse-square-
root schedule with linear warmup (eq. 3; schedule "rsqrt", its peak set to `lr`),
label smoothing 0.1 (sec. 5.4), beam 4 with GNMT length penalty 0.6 (sec. 6.1).
Scaled down to what a shared 2-core CPU trains in under 25 minutes: the `xs` seq2seq
shape (D 128, 2 + 2 layers, 4 heads, F 512; 0.92M non-embedding + 1.02M embedding
parameters), B 32 pairs, 550 steps, peak lr 2e-3 after 100 warmup steps, no dropout
(the run sees 0.64 epochs: it under-fits, dropout would only slow it).

Result (measured 2026-12-02, 2-core AMD EPYC CPU shared with four other agents:
load average 6.58 / 7.95 / 6.63 at the start, 6.90 / 7.24 / 7.26 at the end; the
process got 49% of one core on average). The command was the one above through
train_and_evaluate, with validate's data-name check bypassed by a scratch runner
(that check did not yet know the pair data then; the config and loop were these):
- budget: 550 steps x 32 pairs = 17,600 pairs, 551,621 target tokens carrying loss
  (1.14M padded), 14.0 TFLOP analytic; 709 target tokens/s;
- wall: 17 min 11 s for the whole process (13 min 8 s of training steps, 30 s of
  validation loss, 3 min 4 s to beam-decode the 2,006 test verses);
- validation (teacher-forced): loss 4.09 nats per target token, accuracy 32.1%;
  final train loss 4.02;
- test books, beam 4: BLEU 8.87, chrF 23.59; greedy (the same checkpoint, decoded
  afterwards in 51 s): BLEU 7.93, chrF 22.50;
- the IBM Model 1 dictionary baseline (analysis/translate_baseline.py, same test
  verses): BLEU 13.08, chrF 44.08; copying the English: BLEU 0.12, chrF 17.81.
The target (test BLEU >= 2 x the baseline's, 26.2) is missed by 17.3 BLEU: the
Transformer reaches 0.68 x the dictionary's BLEU and about half its chrF. It is
compute-starved, not recipe-limited: 0.64 epochs of a 2M-parameter model, half of
every padded batch spent on padding (mean 31 of 65 target positions), the loss still
falling steeply (4.57 at step 300, 4.04 at 550). What would close the gap: length-
bucketed batches in the seq2seq family (about 2x tokens per FLOP), then several
epochs of the `s` shape (D 256, 3 + 3), i.e. hours on this CPU or minutes on an
accelerator.

Longer run (the README's figure; records in results/translate/): the same config for
3000 steps (200 warmup), 2026-12-02 04:39-05:17 UTC, load average 5.1 at the start
and 4-10 during it (the process got 73% of one core):

    python -m attn_jax.main --config experiments/translate.py --workdir runs/translate_long \
        --config.train.steps=3000 --config.train.warmup_steps=200

- budget: 3000 steps x 32 pairs (3.5 epochs), 3,009,413 target tokens carrying loss,
  76.4 TFLOP analytic; 1,434 target tokens/s; 37 min 10 s wall for the whole process
  (35 min 11 s of training, 86 s to beam-decode the test books);
- validation loss 2.92 nats per target token (accuracy 46.7%), final train loss 2.48;
- test books, beam 4: BLEU 22.72, chrF 42.81, against the dictionary's 13.08 / 44.08:
  1.74x its BLEU (the target, 2x = 26.2, is missed by 3.4 BLEU) and 1.3 chrF under
  it. The loss was still falling (3.16 at step 1250, 2.67 at 2400, 2.48 at 3000).

Other args: `smoke` (a toy model, a few steps on the Bible data: seconds; needs
`make data`), direction=en-es|es-en, size=<attn_jax.families.seq2seq.SIZES key>,
beam=<beam size>. Any field can be overridden, e.g. --config.train.steps=100.
"""

from __future__ import annotations

import ml_collections

from attn_jax import configs
from attn_jax.families import seq2seq

MAX_LEN = 64  # pieces per verse, specials excluded: 97% of the pairs fit


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The experiment config; `arg` like "smoke", "direction=es-en", "size=xs,beam=1"."""
    arg = configs.parse_arg(arg, smoke=False, direction="en-es", size="xs", beam=4)
    smoke = arg.smoke
    max_len = 24 if smoke else MAX_LEN
    data = dict(
        max_src_len=max_len,
        max_tgt_len=max_len,
        direction=arg.direction,
        sp_vocab_size=8000,
        decode_examples=16 if smoke else 0,
        eval_batches=2 if smoke else 0,
        max_pairs=256 if smoke else 0,
    )
    model = dict(
        vocab_size=8000,
        max_len=max_len + 1,
        norm="post",
        position="sinusoidal",
        tie_embeddings=True,
        dropout=0.0,
    )
    train = dict(
        schedule="rsqrt",
        label_smoothing=0.1,
        b1=0.9,
        b2=0.98,
        eps=1e-9,
        weight_decay=0.0,
        grad_clip=1.0,
    )
    if smoke:
        train.update(batch_size=8, steps=6, lr=3e-3, warmup_steps=2, log_every=2)
        train.update(checkpoint_every=6, progress_bar=False, tensorboard=False)
        model.update(d_model=32, enc_layers=1, dec_layers=1, num_heads=2, d_ff=64)
        size = "toy"
    else:
        train.update(batch_size=32, steps=550, lr=2e-3, warmup_steps=100, log_every=25)
        train.update(checkpoint_every=250, eval_every=0)
        size = arg.size
    config = seq2seq.base_config(
        "bible",
        size,
        model=model,
        data_fields=data,
        decode=dict(beam_size=1 if smoke else arg.beam, length_penalty=0.6, batch_size=64),
        **train,
    )
    config.experiment = "translate"
    return config
