"""The ViT and CNN families: image classification in the "examples" unit.

`make` builds the ViT (attn_jax.models.vit), `make_cnn` the convolutional baseline
(attn_jax.models.cnn); both share everything below but the model.

Data: `attn_jax.data.images.load_images(name, split)` -> {"image": uint8[N,H,W,C],
"label": int32[N]} ("fashion_mnist", "digits"). Train batches come from
`ExampleIterator` with a seeded augmentation (random crop after zero padding by `data.crop_pad` pixels; a
horizontal flip when `data.flip`; mixup with Beta(`data.mixup`, same) weights
when > 0, Zhang et al. 2018); every batch is scaled to [0, 1] and normalized by
the train set's per-channel mean and std. Eval: the whole test split through
`eval_batches` (padding rows have valid 0).

Loss: softmax cross-entropy with label smoothing `train.label_smoothing`; with
mixup the objective is lam * CE(y_a) + (1 - lam) * CE(y_b), while the reported
loss and accuracy are against the first label (y_a).

config.data fields: name, crop_pad, flip, mixup, max_train (0 = all), max_eval (0 = all).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from attn_jax.data.examples import ExampleIterator, eval_batches
from attn_jax.data.images import load_images
from attn_jax.families import base
from attn_jax.models import cnn as cnn_model
from attn_jax.models import vit as vit_model


def load(name: str, split: str) -> dict[str, np.ndarray]:
    """{"image": uint8[N,H,W,C], "label": int32[N]} of dataset `name`, split "train"|"test"."""
    out = load_images(name, split)
    return {"image": np.asarray(out["image"]), "label": np.asarray(out["label"], np.int32)}


def _normalizer(images_NHWC: np.ndarray):
    """(mean_C, std_C) of the train images scaled to [0, 1]."""
    x = images_NHWC.astype(np.float32) / 255.0
    axes = (0, 1, 2)
    return x.mean(axes), np.maximum(x.std(axes), 1e-3)


def _crop(images_BHWC: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of each image after zero padding by `pad` pixels on every side."""
    B, H, W, _ = images_BHWC.shape
    padded = np.pad(images_BHWC, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy, dx = rng.integers(0, 2 * pad + 1, (2, B))
    rows = dy[:, None] + np.arange(H)[None, :]  # [B, H]
    cols = dx[:, None] + np.arange(W)[None, :]  # [B, W]
    return padded[np.arange(B)[:, None, None], rows[:, :, None], cols[:, None, :]]


def make_transforms(data_cfg, mean_C, std_C):
    """(train_transform, eval_transform): uint8 batches -> normalized float32 batches."""
    pad, flip, alpha = int(data_cfg.crop_pad), bool(data_cfg.flip), float(data_cfg.mixup)

    def normalize(images):
        return ((images.astype(np.float32) / 255.0 - mean_C) / std_C).astype(np.float32)

    def train_transform(batch, rng):
        images = batch["image"]
        if pad:
            images = _crop(images, pad, rng)
        if flip:
            mirror = rng.random(len(images)) < 0.5
            images = np.where(mirror[:, None, None, None], images[:, :, ::-1], images)
        out = dict(batch, image=normalize(images))
        if alpha > 0:
            lam = rng.beta(alpha, alpha, len(images)).astype(np.float32)
            partner = rng.permutation(len(images))
            lam4 = lam[:, None, None, None]
            out["image"] = lam4 * out["image"] + (1.0 - lam4) * out["image"][partner]
            out["label_b"] = batch["label"][partner]
            out["mix"] = lam
        return out

    def eval_transform(batch, rng):
        del rng
        return dict(batch, image=normalize(batch["image"]))

    return train_transform, eval_transform


def _counts(module, config) -> dict:
    c = module.param_counts(config.model)
    return {
        "params_total": c["total"],
        "params_embedding": c["embedding"],
        "params_non_embedding": c["non_embedding"],
        "flops_per_unit": module.flops_per_example(config.model),
    }


def counts(config) -> dict:
    """Analytic sizes of the ViT from the config alone (what the sweep plans with)."""
    return _counts(vit_model, config)


def counts_cnn(config) -> dict:
    """Analytic sizes of the CNN from the config alone."""
    return _counts(cnn_model, config)


def make(config) -> base.Family:
    """The ViT family for `config` (see the module docstring)."""
    cfg = vit_model.ViTConfig.from_config(config.model)
    return _make(
        config,
        "vit",
        lambda rngs: vit_model.ViT(cfg, rngs=rngs),
        (cfg.image_size, cfg.channels),
        base.checked_sizes(counts, config, "attn_jax.models.vit.param_counts"),
        uses_dropout=cfg.dropout > 0 or cfg.attn_dropout > 0,
    )


def make_cnn(config) -> base.Family:
    """The CNN family for `config`: the ViT family's data, loss and eval, a CNN model."""
    cfg = cnn_model.CNNConfig.from_config(config.model)
    return _make(
        config,
        "cnn",
        lambda rngs: cnn_model.CNN(cfg, rngs=rngs),
        (cfg.image_size, cfg.channels),
        base.checked_sizes(counts_cnn, config, "attn_jax.models.cnn.param_counts"),
        uses_dropout=False,
    )


def _make(config, name, model, image_shape, sizes, *, uses_dropout) -> base.Family:
    """The image-classification family around `model(rngs)` (module docstring)."""
    image_size, channels = image_shape
    data_cfg = config.data
    smoothing = float(config.train.label_smoothing)

    def data(*, batch_size, seed, process_index=0, process_count=1):
        train_set, test_set = load(data_cfg.name, "train"), load(data_cfg.name, "test")
        shape = train_set["image"].shape[1:]
        if shape != (image_size, image_size, channels):
            raise ValueError(
                f"{data_cfg.name} images are {shape}; set config.model.image_size={shape[0]} "
                f"and channels={shape[2]} (got {image_size}, {channels})."
            )
        for split, limit in (
            (train_set, int(data_cfg.max_train)),
            (test_set, int(data_cfg.max_eval)),
        ):
            if limit:
                for k in split:
                    split[k] = split[k][:limit]
        train_tf, eval_tf = make_transforms(data_cfg, *_normalizer(train_set["image"]))
        kw = dict(batch_size=batch_size, process_index=process_index, process_count=process_count)
        train = ExampleIterator(train_set, seed=seed, transform=train_tf, **kw)
        evals = eval_batches(test_set, transform=eval_tf, **kw)
        return train, lambda: evals

    def loss(model, batch, rng):
        logits_BC = model(batch["image"], deterministic=rng is None, dropout_rng=rng)
        objective, metrics = base.classification_loss(
            logits_BC, batch["label"], batch["valid"], smoothing
        )
        if "mix" in batch:
            _, obj_a_B = base.cross_entropy(logits_BC, batch["label"], smoothing)
            _, obj_b_B = base.cross_entropy(logits_BC, batch["label_b"], smoothing)
            lam_B = batch["mix"].astype(jnp.float32)
            w_B = batch["valid"].astype(jnp.float32)
            mixed_B = lam_B * obj_a_B + (1.0 - lam_B) * obj_b_B
            objective = (mixed_B * w_B).sum() / jnp.maximum(w_B.sum(), 1.0)
        return objective, metrics

    def eval_sums(model, batch):
        return base.classification_sums(model(batch["image"]), batch["label"], batch["valid"])

    return base.Family(
        name=name,
        unit="examples",
        model=model,
        data=data,
        loss=loss,
        eval_sums=eval_sums,
        eval_finalize=base.classification_finalize,
        sizes=sizes,
        uses_dropout=uses_dropout,
    )
