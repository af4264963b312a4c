"""The VQA family: easy-VQA question answering in the "examples" unit (one question each).

Data: `attn_jax.data.vqa.load_vqa(split)` -> the split's images once (uint8[I,64,64,3],
row = image id) and its questions (text, answer, image_id, qtype). Questions are
tokenized by words (`tokenize`: lower case, "?" dropped, split on spaces) over a
vocabulary built from the train questions (`build_vocab`: sorted, PAD_ID 0,
UNK_ID 1, then the words), padded with PAD_ID (and truncated) to
`model.max_question_len` words. Batches are question rows (`ExampleIterator`,
`eval_batches`); each batch's transform gathers its images from the image table
by image_id (kept once in memory), optionally average-pools them by
`data.downsample` (a factor: 2 turns 64x64 into 32x32), applies a horizontal
flip with probability 1/2 when `data.flip` (train only: shapes, colours and the
upright triangles are all mirror-symmetric, so no answer changes), scales to
[0, 1] and normalizes by the train images' per-channel mean and std.

Loss: softmax cross-entropy over the 13 answers with label smoothing
`train.label_smoothing`. Eval: the whole test split; accuracy overall and per
question type (`accuracy_yesno`, `accuracy_shape`, `accuracy_color`), loss, count.

config.data fields: downsample, flip, max_train, max_eval (0 = all questions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from attn_jax.data.examples import ExampleIterator, eval_batches
from attn_jax.families import base
from attn_jax.models import vqa as vqa_model

# metric suffixes of the question types (attn_jax.data.vqa.QTYPES order)
QTYPE_KEYS = ("yesno", "shape", "color")


def tokenize(question: str) -> list[str]:
    """The words of a question: lower case, "?" removed, split on whitespace."""
    return question.lower().replace("?", " ").split()


def build_vocab(questions: Sequence[str]) -> tuple[str, ...]:
    """The sorted words of `questions`; word k gets id k + 2 (0 = PAD_ID, 1 = UNK_ID)."""
    return tuple(sorted({w for q in questions for w in tokenize(q)}))


def encode(
    questions: Sequence[str], vocab: Sequence[str], max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """(ids int32[Q, max_len], lengths int32[Q]): word ids padded with PAD_ID.

    Unknown words map to UNK_ID; questions longer than `max_len` words are truncated.
    """
    index = {w: i + 2 for i, w in enumerate(vocab)}
    ids_QT = np.full((len(questions), max_len), vqa_model.PAD_ID, np.int32)
    lengths_Q = np.zeros((len(questions),), np.int32)
    for r, q in enumerate(questions):
        words = tokenize(q)[:max_len] or ["?"]  # an empty question reads as one unknown word
        ids_QT[r, : len(words)] = [index.get(w, vqa_model.UNK_ID) for w in words]
        lengths_Q[r] = len(words)
    return ids_QT, lengths_Q


def _pool(images_NHWC: np.ndarray, factor: int) -> np.ndarray:
    """float32 images average-pooled by `factor` x `factor` (1 = unchanged)."""
    x = images_NHWC.astype(np.float32)
    if factor == 1:
        return x
    N, H, W, C = x.shape
    return x.reshape(N, H // factor, factor, W // factor, factor, C).mean(axis=(2, 4))


def load(split: str, vocab: Sequence[str] | None, max_len: int, factor: int) -> tuple[dict, dict]:
    """(question rows, {"image": float32[I,h,w,C] in 0..255, "vocab"}) of one split.

    Question rows: {"question": int32[Q,T], "length": int32[Q], "answer", "image_id",
    "qtype": int32[Q]}. `vocab` None builds it from this split's questions.
    """
    from attn_jax.data.vqa import load_vqa  # local: reading the package's PNGs needs Pillow

    d = load_vqa(split)
    vocab = build_vocab(d["question"]) if vocab is None else tuple(vocab)
    ids_QT, lengths_Q = encode(d["question"], vocab, max_len)
    rows = {
        "question": ids_QT,
        "length": lengths_Q,
        "answer": np.asarray(d["answer"], np.int32),
        "image_id": np.asarray(d["image_id"], np.int32),
        "qtype": np.asarray(d["qtype"], np.int32),
    }
    return rows, {"image": _pool(np.asarray(d["image"]), factor), "vocab": vocab}


def _truncate(rows: dict, limit: int) -> dict:
    return {k: v[:limit] for k, v in rows.items()} if limit else rows


def make_transforms(image_IHWC: np.ndarray, mean_C, std_C, flip: bool):
    """(train_transform, eval_transform): gather each row's image, flip (train), normalize."""
    table_IHWC = ((image_IHWC / 255.0 - mean_C) / std_C).astype(np.float32)

    def gather(batch):
        return table_IHWC[batch["image_id"]]

    def train_transform(batch, rng):
        images = gather(batch)
        if flip:
            mirror = rng.random(len(images)) < 0.5
            images = np.where(mirror[:, None, None, None], images[:, :, ::-1], images)
        return dict(batch, image=images)

    def eval_transform(batch, rng):
        del rng
        return dict(batch, image=gather(batch))

    return train_transform, eval_transform


def counts(config) -> dict:
    """Analytic sizes from the config alone (what the sweep plans with)."""
    c = vqa_model.param_counts(config.model)
    return {
        "params_total": c["total"],
        "params_embedding": c["embedding"],
        "params_non_embedding": c["non_embedding"],
        "flops_per_unit": vqa_model.flops_per_example(config.model),
    }


def qtype_sums(logits_BA, batch) -> dict:
    """`base.classification_sums` overall and per question type (correct_<t>, count_<t>)."""
    out = base.classification_sums(logits_BA, batch["answer"], batch["valid"])
    correct_B = (jnp.argmax(logits_BA, axis=-1) == batch["answer"]).astype(jnp.float32)
    valid_B = batch["valid"].astype(jnp.float32)
    for t, key in enumerate(QTYPE_KEYS):
        w_B = valid_B * (batch["qtype"] == t).astype(jnp.float32)
        out[f"correct_{key}"] = (correct_B * w_B).sum()
        out[f"count_{key}"] = w_B.sum()
    return out


def qtype_finalize(totals: Mapping[str, float]) -> dict:
    """{loss, accuracy, accuracy_<type>, count} from summed `qtype_sums`."""
    out = base.classification_finalize(totals)
    for key in QTYPE_KEYS:
        out[f"accuracy_{key}"] = float(totals[f"correct_{key}"]) / max(
            float(totals[f"count_{key}"]), 1.0
        )
    return out


def make(config) -> base.Family:
    """The VQA family for `config` (see the module docstring)."""
    cfg = vqa_model.VQAConfig.from_config(config.model)
    data_cfg = config.data
    smoothing = float(config.train.label_smoothing)
    factor = int(data_cfg.downsample)
    if factor < 1 or 64 % factor or 64 // factor != cfg.image_size:
        raise ValueError(
            f"config.data.downsample={factor} turns the 64x64 easy-VQA images into "
            f"{64 // max(factor, 1)}x{64 // max(factor, 1)}, but config.model.image_size="
            f"{cfg.image_size}; set image_size = 64 / downsample (downsample 1, 2, 4, ...)."
        )

    def model(rngs):
        return vqa_model.VQA(cfg, rngs=rngs)

    def data(*, batch_size, seed, process_index=0, process_count=1):
        T = cfg.max_question_len
        train_rows, train_images = load("train", None, T, factor)
        test_rows, test_images = load("test", train_images["vocab"], T, factor)
        if len(train_images["vocab"]) + 2 > cfg.vocab_size:
            raise ValueError(
                f"The easy-VQA train questions have {len(train_images['vocab'])} words (+2 "
                f"reserved ids); set config.model.vocab_size >= "
                f"{len(train_images['vocab']) + 2} (got {cfg.vocab_size})."
            )
        train_rows = _truncate(train_rows, int(data_cfg.max_train))
        test_rows = _truncate(test_rows, int(data_cfg.max_eval))
        x = train_images["image"] / 255.0
        mean_C, std_C = x.mean((0, 1, 2)), np.maximum(x.std((0, 1, 2)), 1e-3)
        flip = bool(data_cfg.flip)
        train_tf, _ = make_transforms(train_images["image"], mean_C, std_C, flip)
        _, eval_tf = make_transforms(test_images["image"], mean_C, std_C, flip)
        kw = dict(batch_size=batch_size, process_index=process_index, process_count=process_count)
        train = ExampleIterator(train_rows, seed=seed, transform=train_tf, **kw)
        evals = eval_batches(test_rows, transform=eval_tf, **kw)
        return train, lambda: evals

    def logits(model, batch, rng=None):
        return model(
            batch["image"],
            batch["question"],
            batch["length"],
            deterministic=rng is None,
            dropout_rng=rng,
        )

    def loss(model, batch, rng):
        return base.classification_loss(
            logits(model, batch, rng), batch["answer"], batch["valid"], smoothing
        )

    def eval_sums(model, batch):
        return qtype_sums(logits(model, batch), batch)

    return base.Family(
        name="vqa",
        unit="examples",
        model=model,
        data=data,
        loss=loss,
        eval_sums=eval_sums,
        eval_finalize=qtype_finalize,
        sizes=base.checked_sizes(counts, config, "attn_jax.models.vqa.param_counts"),
        uses_dropout=cfg.dropout > 0 or cfg.attn_dropout > 0,
    )
