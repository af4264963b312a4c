"""The CLIP family: a contrastive dual encoder on easy-VQA images and shape-colour captions.

Data: easy-VQA (`attn_jax.data.vqa`): 4,000 train and 1,000 test 64x64 images,
each with one shape (SHAPES) in one colour (COLORS). An image's caption class
is c = shape * |COLORS| + colour (24 classes); its caption is a template filled
with the two words:

    TEMPLATES[0] "a {color} {shape}"          the canonical caption (eval, zero-shot)
    TEMPLATES[1] "a photo of a {color} {shape}"
    TEMPLATES[2] "a {shape} that is {color}"
    TEMPLATES[3] "there is a {color} {shape} in the image"
    TEMPLATES[4] "the {shape} is {color}"
    TEMPLATES[5] "a picture of a {color} {shape}"

Training draws one of the six templates per pair and step with the iterator's
seeded rng (`ExampleIterator` transform), so a resumed run sees the same
captions. Words are tokens 1.. of `vocabulary()` (0 pads); captions are padded
to `max_caption_len()` = 8 tokens with their lengths. Images are normalised by
the train set's per-channel mean and std, optionally flipped left-right
(`data.flip`: a mirrored shape keeps its shape and colour) and shifted
(`data.crop_pad`), through attn_jax.families.vit's transforms.

Loss: `attn_jax.models.clip.contrastive_loss`, the symmetric InfoNCE with
multi-positive targets over the caption classes (a batch of 128 pairs from 24
classes repeats captions; every same-class pair is a positive), label
smoothing `train.label_smoothing`. Train metrics add the in-batch image->text
top-1 (`batch_accuracy`: the top text has the image's class) and `logit_scale`.

Eval, on the held-out test images with their canonical captions: the
contrastive loss (per eval batch, averaged over real pairs); `recall_at_1`,
image->text retrieval among the test set's distinct canonical captions (the top
one is the image's); `zero_shot_accuracy` over all |SHAPES| x |COLORS| captions
(the same figure when, as in easy-VQA's test split, every class occurs), and
`shape_accuracy` / `color_accuracy` of the zero-shot prediction.

config.data fields: flip, crop_pad, max_train (0 = all), max_eval (0 = all).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import ml_collections
import numpy as np

from attn_jax.data import vqa
from attn_jax.data.examples import ExampleIterator, eval_batches
from attn_jax.families import base
from attn_jax.families import vit as vit_family
from attn_jax.models import clip as clip_model

TEMPLATES = (
    "a {color} {shape}",
    "a photo of a {color} {shape}",
    "a {shape} that is {color}",
    "there is a {color} {shape} in the image",
    "the {shape} is {color}",
    "a picture of a {color} {shape}",
)
PAD = 0


def num_classes() -> int:
    """Caption classes: every shape-colour combination."""
    return len(vqa.SHAPES) * len(vqa.COLORS)


def caption(template: int, cls: int) -> str:
    """TEMPLATES[template] filled with class `cls`'s colour and shape."""
    shape, color = divmod(int(cls), len(vqa.COLORS))
    return TEMPLATES[template].format(shape=vqa.SHAPES[shape], color=vqa.COLORS[color])


@functools.cache
def vocabulary() -> tuple[str, ...]:
    """The caption words in sorted order; word k is token k + 1 (token 0 pads)."""
    words = {
        w
        for t in range(len(TEMPLATES))
        for c in range(num_classes())
        for w in caption(t, c).split()
    }
    return tuple(sorted(words))


def vocab_size() -> int:
    return len(vocabulary()) + 1


def max_caption_len() -> int:
    return max(
        len(caption(t, c).split()) for t in range(len(TEMPLATES)) for c in range(num_classes())
    )


def tokenize(captions: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(tokens int32[B, max_len] padded with 0, lengths int32[B]) of whitespace-split captions."""
    index = {w: k + 1 for k, w in enumerate(vocabulary())}
    tokens = np.full((len(captions), max_len), PAD, np.int32)
    lengths = np.zeros((len(captions),), np.int32)
    for b, text in enumerate(captions):
        words = text.split()
        if len(words) > max_len:
            raise ValueError(f"Caption {text!r} has {len(words)} words; max_len is {max_len}.")
        unknown = [w for w in words if w not in index]
        if unknown:
            raise ValueError(f"Caption {text!r} has words outside the vocabulary: {unknown}.")
        tokens[b, : len(words)] = [index[w] for w in words]
        lengths[b] = len(words)
    return tokens, lengths


def caption_table(max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Every template x class caption: (tokens int32[templates, classes, T], lengths [.., ..])."""
    texts = [caption(t, c) for t in range(len(TEMPLATES)) for c in range(num_classes())]
    tokens, lengths = tokenize(texts, max_len)
    shape = (len(TEMPLATES), num_classes())
    return tokens.reshape(*shape, max_len), lengths.reshape(shape)


def load(split: str, limit: int = 0) -> dict[str, np.ndarray]:
    """{"image": uint8[I,64,64,3], "label": int32[I] caption class, "shape", "color"}."""
    attrs = vqa.image_attributes(split)
    image = vqa.load_vqa(split)["image"]
    out = {
        "image": np.asarray(image),
        "shape": np.asarray(attrs["shape"], np.int32),
        "color": np.asarray(attrs["color"], np.int32),
    }
    out["label"] = (out["shape"] * len(vqa.COLORS) + out["color"]).astype(np.int32)
    return {k: v[:limit] for k, v in out.items()} if limit else out


def _check_model(cfg: clip_model.CLIPConfig) -> None:
    """The caption vocabulary and length the config must carry (raised before any compile)."""
    if cfg.vocab_size != vocab_size() or cfg.max_len < max_caption_len():
        raise ValueError(
            f"The easy-VQA captions need config.model.vocab_size={vocab_size()} and "
            f"max_len >= {max_caption_len()} (got {cfg.vocab_size}, {cfg.max_len})."
        )


def counts(config) -> dict:
    """Analytic sizes from the config alone (what the sweep plans with)."""
    c = clip_model.param_counts(config.model)
    return {
        "params_total": c["total"],
        "params_embedding": c["embedding"],
        "params_non_embedding": c["non_embedding"],
        "flops_per_unit": clip_model.flops_per_example(config.model, int(config.train.batch_size)),
    }


def make_transforms(data_cfg, train_images: np.ndarray, max_len: int):
    """(train_transform, eval_transform): uint8 image batches -> normalised images + captions."""
    image_cfg = ml_collections.ConfigDict(
        dict(crop_pad=int(data_cfg.crop_pad), flip=bool(data_cfg.flip), mixup=0.0)
    )
    image_train, image_eval = vit_family.make_transforms(
        image_cfg, *vit_family._normalizer(train_images)
    )
    tokens_KCT, lengths_KC = caption_table(max_len)

    def train_transform(batch, rng):
        out = image_train(batch, rng)
        template_B = rng.integers(0, len(TEMPLATES), len(batch["label"]))
        out["tokens"] = tokens_KCT[template_B, batch["label"]]
        out["lengths"] = lengths_KC[template_B, batch["label"]]
        return out

    def eval_transform(batch, rng):
        out = image_eval(batch, rng)
        out["tokens"], out["lengths"] = tokens_KCT[0, batch["label"]], lengths_KC[0, batch["label"]]
        return out

    return train_transform, eval_transform


def make(config) -> base.Family:
    """The CLIP family for `config` (see the module docstring)."""
    cfg = clip_model.CLIPConfig.from_config(config.model)
    _check_model(cfg)
    data_cfg = config.data
    smoothing = float(config.train.label_smoothing)
    C = num_classes()
    # the zero-shot candidates: the canonical caption of every class, class order
    tokens_KCT, lengths_KC = caption_table(cfg.max_len)
    zs_tokens_CT, zs_lengths_C = jnp.asarray(tokens_KCT[0]), jnp.asarray(lengths_KC[0])

    def model(rngs):
        return clip_model.DualEncoder(cfg, rngs=rngs)

    def data(*, batch_size, seed, process_index=0, process_count=1):
        train_set = load("train", int(data_cfg.max_train))
        test_set = load("test", int(data_cfg.max_eval))
        shape = train_set["image"].shape[1:]
        if shape != (cfg.image_size, cfg.image_size, cfg.channels):
            raise ValueError(
                f"easy-VQA images are {shape}; set config.model.image_size={shape[0]} and "
                f"channels={shape[2]} (got {cfg.image_size}, {cfg.channels})."
            )
        # recall@1 ranks the test set's distinct captions: mark the classes it has
        present_C = np.zeros((C,), np.float32)
        present_C[np.unique(test_set["label"])] = 1.0
        test_set["present"] = np.broadcast_to(present_C, (len(test_set["label"]), C)).copy()
        train_tf, eval_tf = make_transforms(data_cfg, train_set["image"], cfg.max_len)
        kw = dict(batch_size=batch_size, process_index=process_index, process_count=process_count)
        train = ExampleIterator(train_set, seed=seed, transform=train_tf, **kw)
        evals = eval_batches(test_set, transform=eval_tf, **kw)
        return train, lambda: evals

    def loss(model, batch, rng):
        image_BE, text_BE = model(
            batch["image"],
            batch["tokens"],
            batch["lengths"],
            deterministic=rng is None,
            dropout_rng=rng,
        )
        w_B = batch["valid"].astype(jnp.float32)
        objective = clip_model.contrastive_loss(
            image_BE,
            text_BE,
            model.log_scale[...],
            batch["label"],
            w_B,
            max_scale=cfg.max_scale,
            label_smoothing=smoothing,
        )
        reported = objective
        if smoothing:
            reported = clip_model.contrastive_loss(
                image_BE,
                text_BE,
                model.log_scale[...],
                batch["label"],
                w_B,
                max_scale=cfg.max_scale,
            )
        sims_BB = jnp.where(w_B[None, :] > 0, image_BE @ text_BE.T, -jnp.inf)
        top_B = batch["label"][jnp.argmax(sims_BB, axis=1)]
        hit_B = (top_B == batch["label"]).astype(jnp.float32)
        count = w_B.sum()
        metrics = {
            "loss": reported,
            "count": count,
            "batch_accuracy": (hit_B * w_B).sum() / jnp.maximum(count, 1.0),
            "logit_scale": model.scale(),
        }
        return objective, metrics

    def eval_sums(model, batch):
        image_BE = model.encode_images(batch["image"])
        text_BE = model.encode_texts(batch["tokens"], batch["lengths"])
        w_B = batch["valid"].astype(jnp.float32)
        labels_B = batch["label"]
        nll = clip_model.contrastive_loss(
            image_BE, text_BE, model.log_scale[...], labels_B, w_B, max_scale=cfg.max_scale
        )
        sims_BC = image_BE @ model.encode_texts(zs_tokens_CT, zs_lengths_C).T
        pred_B = jnp.argmax(sims_BC, axis=1)
        retrieved_B = jnp.argmax(jnp.where(batch["present"] > 0, sims_BC, -jnp.inf), axis=1)
        n_colors = len(vqa.COLORS)

        def hits(ok_B):
            return (ok_B.astype(jnp.float32) * w_B).sum()

        return {
            "loss_sum": nll * w_B.sum(),
            "recall_sum": hits(retrieved_B == labels_B),
            "zero_shot_sum": hits(pred_B == labels_B),
            "shape_sum": hits(pred_B // n_colors == labels_B // n_colors),
            "color_sum": hits(pred_B % n_colors == labels_B % n_colors),
            "count": w_B.sum(),
        }

    def eval_finalize(totals):
        n = max(float(totals["count"]), 1.0)
        return {
            "loss": float(totals["loss_sum"]) / n,
            "recall_at_1": float(totals["recall_sum"]) / n,
            "zero_shot_accuracy": float(totals["zero_shot_sum"]) / n,
            "shape_accuracy": float(totals["shape_sum"]) / n,
            "color_accuracy": float(totals["color_sum"]) / n,
            "count": float(totals["count"]),
        }

    return base.Family(
        name="clip",
        unit="examples",
        model=model,
        data=data,
        loss=loss,
        eval_sums=eval_sums,
        eval_finalize=eval_finalize,
        sizes=base.checked_sizes(counts, config, "attn_jax.models.clip.param_counts"),
        uses_dropout=cfg.dropout > 0 or cfg.attn_dropout > 0,
    )


__all__ = ["TEMPLATES", "caption", "counts", "make", "tokenize", "vocabulary"]
