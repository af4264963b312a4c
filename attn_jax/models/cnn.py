"""A small convolutional image classifier: the baseline of the data-efficiency study.

Dimension key: B batch, H/W image height/width, C channels (images and feature
maps) or classes (logits), I/O a convolution's input/output channels, k the
kernel side, S stages.

    images_BHWC -> S stages of [convs_per_stage x (3x3 conv -> LayerNorm over C -> GELU)]
      with a 2x2 average pool between stages -> global average pool -> linear -> logits_BC

The inductive biases a ViT lacks (locality, translation equivariance, a pyramid
of resolutions) are the point: Dosovitskiy et al. 2021 find that ViTs trail
ResNets of similar cost on small datasets and overtake them as data grows. The
norm is a channels-last LayerNorm (as in ConvNeXt, Liu et al. 2022) rather than
BatchNorm, so the model has no batch statistics: the same loop, loss and
evaluation as the ViT family, and an eval that does not depend on the batch.

Counts follow attn_jax.models.vit: "embedding" is empty (nothing is indexed by
position); training FLOPs = 3 x forward, forward = 2 x every convolution weight
at every output pixel it produces (padding "SAME", the zero-padded border taps
included, as fvcore and most FLOP counters count them; XLA's cost analysis leaves
them out, 8% less at 16x16 with three stages) + 2 C_last C for the head.
Norms, activations and pools are not counted (as the transformers' counts leave
out their norms and softmax).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.models.lm import ArchConfig, Dtype, compute_dtype
from attn_jax.nn import Norm


@dataclasses.dataclass(frozen=True)
class CNNConfig(ArchConfig):
    """Architecture of a `CNN` (the `config.model` fields of experiments/vit.py:arch=cnn).

    `ArchConfig` gives it the checked `Literal` fields and `from_config` (unknown
    fields are an error); its head/FF properties do not apply.

    Attributes:
      image_size: H = W (square images).
      channels: C of the input images.
      num_classes: C of the logits.
      widths: output channels of each stage, e.g. (16, 32, 64).
      convs_per_stage: 3x3 convolutions per stage.
      kernel_size: k, the convolutions' side.
      dtype: compute dtype; parameters and logits stay float32.
    """

    image_size: int = 28
    channels: int = 1
    num_classes: int = 10
    widths: tuple[int, ...] = (16, 32, 64)
    convs_per_stage: int = 2
    kernel_size: int = 3
    dtype: Dtype = "auto"

    NAME = "cnn"

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))  # JSON: a list
        super().__post_init__()
        if not self.widths or min(self.widths) < 1:
            raise ValueError(
                f"CNNConfig.widths must be positive channel counts, got {self.widths}."
            )
        if self.convs_per_stage < 1 or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(
                "CNNConfig needs convs_per_stage >= 1 and an odd kernel_size, got "
                f"{self.convs_per_stage} and {self.kernel_size}."
            )
        if self.image_size % 2 ** (len(self.widths) - 1):
            raise ValueError(
                f"CNNConfig: {len(self.widths)} stages halve the image "
                f"{len(self.widths) - 1} times; image_size={self.image_size} must be divisible "
                f"by {2 ** (len(self.widths) - 1)}."
            )

    def convs(self) -> list[tuple[int, int, int]]:
        """(I, O, output side) of every convolution, in order."""
        out, side, cin = [], self.image_size, self.channels
        for s, width in enumerate(self.widths):
            if s:
                side //= 2
            for _ in range(self.convs_per_stage):
                out.append((cin, width, side))
                cin = width
        return out


class CNN(nnx.Module):
    """Image classifier: stages of 3x3 convolutions, average pools, a linear head.

    Args:
      config: a `CNNConfig` (or a mapping / ConfigDict of its fields).
      rngs: NNX rngs (`params` stream).
    """

    def __init__(self, config: CNNConfig | Mapping[str, Any], *, rngs: nnx.Rngs):
        cfg = CNNConfig.from_config(config)
        self.config = cfg
        k = cfg.kernel_size
        he = jax.nn.initializers.he_normal(in_axis=(0, 1, 2), out_axis=3)
        self.kernels_kkIO = nnx.List(
            [nnx.Param(he(rngs.params(), (k, k, i, o), jnp.float32)) for i, o, _ in cfg.convs()]
        )
        self.biases_O = nnx.List(
            [nnx.Param(jnp.zeros((o,), jnp.float32)) for _, o, _ in cfg.convs()]
        )
        self.norms = nnx.List([Norm(o, "layernorm") for _, o, _ in cfg.convs()])
        C_last, C = cfg.widths[-1], cfg.num_classes
        # zero-initialized head, as the ViT's: logits start uniform
        self.head_w_DC = nnx.Param(jnp.zeros((C_last, C), jnp.float32))
        self.head_b_C = nnx.Param(jnp.zeros((C,), jnp.float32))

    def features(self, images_BHWC, *, deterministic=True, dropout_rng=None) -> jnp.ndarray:
        """Globally average-pooled last-stage features p_BD (float32), D = widths[-1]."""
        del deterministic, dropout_rng  # no dropout: the same call signature as ViT
        cfg = self.config
        dtype = compute_dtype(cfg.dtype)
        x = jnp.asarray(images_BHWC, dtype)
        i = 0
        for s in range(len(cfg.widths)):
            if s:
                B, H, W, C = x.shape
                x = x.reshape(B, H // 2, 2, W // 2, 2, C).mean(axis=(2, 4))
            for _ in range(cfg.convs_per_stage):
                x = jax.lax.conv_general_dilated(
                    x,
                    self.kernels_kkIO[i][...].astype(dtype),
                    window_strides=(1, 1),
                    padding="SAME",
                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                )
                x = x + self.biases_O[i][...].astype(dtype)[None, None, None, :]
                x = jax.nn.gelu(self.norms[i](x))
                i += 1
        return x.mean(axis=(1, 2)).astype(jnp.float32)

    def __call__(self, images_BHWC, *, deterministic=True, dropout_rng=None) -> jnp.ndarray:
        """Class logits_BC (float32) of images_BHWC (float, already normalized)."""
        p_BD = self.features(images_BHWC, deterministic=deterministic, dropout_rng=dropout_rng)
        return p_BD @ self.head_w_DC[...] + self.head_b_C[...][None, :]


def param_counts(model_config: Any) -> dict[str, int]:
    """Exact parameter counts of `CNN(model_config)`: {total, embedding, non_embedding}."""
    cfg = CNNConfig.from_config(model_config)
    k2 = cfg.kernel_size**2
    convs = sum(k2 * i * o + o + 2 * o for i, o, _ in cfg.convs())  # kernel, bias, LayerNorm
    total = convs + cfg.widths[-1] * cfg.num_classes + cfg.num_classes
    return {"total": total, "embedding": 0, "non_embedding": total}


def flops_per_example(model_config: Any) -> float:
    """Training FLOPs (forward + backward) per image: 3 x (2 k^2 I O per output pixel + head)."""
    cfg = CNNConfig.from_config(model_config)
    k2 = cfg.kernel_size**2
    forward = sum(2 * k2 * i * o * side * side for i, o, side in cfg.convs())
    forward += 2 * cfg.widths[-1] * cfg.num_classes
    return 3.0 * forward
