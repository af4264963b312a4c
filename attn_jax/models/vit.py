"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words").

Dimension key: B batch, H/W image height/width, C channels (images) or classes
(logits), p patch side, P patches, X = p*p*C values per patch, T = P (+1 with a
class token) tokens, D model width, L layers.

    images_BHWC -> patchify -> patches_BPX -> linear X -> D -> (+ [CLS]) -> + positions
      -> L non-causal pre-norm `attn_jax.nn.Block`s -> final norm
      -> pool ("cls": token 0; "gap": mean over the patch tokens) -> linear D -> C = logits_BC

Positions: a learned [T, D] table (ViT's), or the fixed 2-D sine-cosine
embedding (Chen et al. 2021, MoCo v3; Beyer et al. 2022, "Better plain ViT
baselines"): for a patch at grid row y, column x, with omega_i = 1/10000^(i/(D/4)),
i < D/4: [sin(x omega), cos(x omega), sin(y omega), cos(y omega)]; the class
token gets zeros.

Counts (`param_counts`, `flops_per_example`) follow attn_jax.models.flops:
"embedding" = the learned position table and the class token (arrays indexed
by position); "non_embedding" = patch projection, blocks, final norm, head.
Training FLOPs = 3 x forward (Hoffmann et al. 2022, App. F): 2 x every
matmul weight at every position it multiplies, plus the attention core over T
tokens, non-causal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attn_jax.models import flops as lm_flops
from attn_jax.models.lm import Activation, ArchConfig, Dtype, Kernel, Score, compute_dtype
from attn_jax.nn import Block, Norm, dropout
from attn_jax.ops.masks import MaskSpec


@dataclasses.dataclass(frozen=True)
class ViTConfig(ArchConfig):
    """Architecture of a `ViT` (the `config.model` fields of experiments/vit.py).

    Attributes:
      image_size: H = W (square images).
      patch_size: p; must divide image_size.
      channels: C of the input images.
      num_classes: C of the logits.
      d_model: D.
      num_layers: L.
      num_heads: N.
      num_kv_heads: K; 0 = N.
      head_dim: H; 0 = D // N.
      d_ff: F; 0 = 4 D.
      pool: "cls" (a class token, ViT) or "gap" (mean of the patch tokens).
      position: "learned" (ViT) or "sincos2d" (fixed; needs D % 4 == 0).
      norm: "pre" or "post".
      norm_type: "layernorm" or "rmsnorm".
      score: attention score (`attn_jax.ops.scores.SCORES`).
      kernel: attention kernel (`attn_jax.ops.kernels.KERNELS`).
      dropout: residual and embedding dropout.
      attn_dropout: attention-weight dropout.
      dtype: compute dtype; parameters and logits stay float32.
      norm_eps: the norms' epsilon (GPT-2 1e-5; BERT and ViT 1e-12).
      bias: biases on the attention q/k/v and output projections and on both MLP
        layers (GPT-2, BERT and ViT have them); False = none.
      activation: the MLP's GELU: "gelu_tanh" (tanh approximation, GPT-2's
        "gelu_new") or "gelu_erf" (exact, BERT's and ViT's "gelu").
    """

    image_size: int = 28
    patch_size: int = 4
    channels: int = 1
    num_classes: int = 10
    d_model: int = 64
    num_layers: int = 6
    num_heads: int = 4
    num_kv_heads: int = 0
    head_dim: int = 0
    d_ff: int = 0
    pool: Literal["cls", "gap"] = "cls"
    position: Literal["learned", "sincos2d"] = "learned"
    norm: Literal["pre", "post"] = "pre"
    norm_type: Literal["layernorm", "rmsnorm"] = "layernorm"
    score: Score = "scaled_dot"
    kernel: Kernel = "xla"
    dropout: float = 0.0
    attn_dropout: float = 0.0
    dtype: Dtype = "auto"
    norm_eps: float = 1e-6
    bias: bool = False
    activation: Activation = "gelu_tanh"

    NAME = "vit"

    def __post_init__(self):
        super().__post_init__()
        if self.image_size % self.patch_size:
            raise ValueError(
                f"ViTConfig.patch_size={self.patch_size} must divide image_size={self.image_size}."
            )
        if self.position == "sincos2d" and self.d_model % 4:
            raise ValueError(
                f"ViTConfig.position='sincos2d' needs d_model % 4 == 0, got {self.d_model}."
            )

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid**2

    @property
    def patch_dim(self) -> int:
        return self.patch_size**2 * self.channels

    @property
    def num_tokens(self) -> int:
        return self.num_patches + (1 if self.pool == "cls" else 0)

    @property
    def max_len(self) -> int:  # read by lm_flops.layer_params (linformer) and Attention
        return self.num_tokens


def patchify(images_BHWC: jnp.ndarray, p: int) -> jnp.ndarray:
    """Non-overlapping p x p patches in row-major grid order: patches_BPX, X = (p, p, C)."""
    B, H, W, C = images_BHWC.shape
    if H % p or W % p:
        raise ValueError(f"patch size {p} must divide the image size {H}x{W}.")
    x = images_BHWC.reshape(B, H // p, p, W // p, p, C).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(patches_BPX: jnp.ndarray, p: int, height: int, width: int) -> jnp.ndarray:
    """The inverse of `patchify`: images_BHWC."""
    B, P, X = patches_BPX.shape
    gh, gw, C = height // p, width // p, X // (p * p)
    if gh * gw != P or p * p * C != X:
        raise ValueError(
            f"{P} patches of {X} values do not tile a {height}x{width} image with p={p}."
        )
    x = patches_BPX.reshape(B, gh, gw, p, p, C).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(B, height, width, C)


def sincos2d(grid: int, D: int) -> np.ndarray:
    """Fixed 2-D sine-cosine positions of a grid x grid patch grid, [grid*grid, D] float32."""
    if D % 4:
        raise ValueError(f"sincos2d positions need D % 4 == 0, got D={D}.")
    y, x = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    omega = 1.0 / 10000.0 ** (np.arange(D // 4) / (D // 4))
    xo = x.reshape(-1, 1) * omega[None]
    yo = y.reshape(-1, 1) * omega[None]
    return np.concatenate([np.sin(xo), np.cos(xo), np.sin(yo), np.cos(yo)], axis=1).astype(
        np.float32
    )


class ViT(nnx.Module):
    """Image classifier: patch embedding -> L non-causal Blocks -> pooled linear head.

    Args:
      config: a `ViTConfig` (or a mapping / ConfigDict of its fields).
      rngs: NNX rngs (`params` stream).
    """

    def __init__(self, config: ViTConfig | Mapping[str, Any], *, rngs: nnx.Rngs):
        cfg = ViTConfig.from_config(config)
        self.config = cfg
        dtype = compute_dtype(cfg.dtype)
        D, X, T = cfg.d_model, cfg.patch_dim, cfg.num_tokens
        self.patch_w_XD = nnx.Param(
            jax.nn.initializers.lecun_normal()(rngs.params(), (X, D), jnp.float32)
        )
        self.patch_b_D = nnx.Param(jnp.zeros((D,), jnp.float32))
        self.cls_D = nnx.Param(jnp.zeros((D,), jnp.float32)) if cfg.pool == "cls" else None
        if cfg.position == "learned":
            self.pos_TD = nnx.Param(0.02 * jax.random.normal(rngs.params(), (T, D), jnp.float32))
        else:
            table = sincos2d(cfg.grid, D)
            if cfg.pool == "cls":
                table = np.concatenate([np.zeros((1, D), np.float32), table])
            self.pos_TD = nnx.Variable(jnp.asarray(table))  # fixed: not a Param
        out_scale = (2 * cfg.num_layers) ** -0.5  # GPT-2's residual init, as in DecoderLM
        self.blocks = nnx.List(
            [
                Block(
                    D,
                    cfg.num_heads,
                    cfg.ff_size,
                    norm=cfg.norm,
                    norm_type=cfg.norm_type,
                    dropout=cfg.dropout,
                    rngs=rngs,
                    dtype=dtype,
                    out_init_scale=out_scale,
                    num_kv_heads=cfg.kv_heads,
                    head_dim=cfg.head_size,
                    causal=False,
                    score=cfg.score,
                    position="none",
                    kernel=cfg.kernel,
                    max_len=T,
                    attn_dropout=cfg.attn_dropout,
                    norm_eps=cfg.norm_eps,
                    bias=cfg.bias,
                    activation=cfg.activation,
                )
                for _ in range(cfg.num_layers)
            ]
        )
        self.final_norm = Norm(D, cfg.norm_type, eps=cfg.norm_eps) if cfg.norm == "pre" else None
        # zero-initialized head, as in ViT's fine-tuning recipe: logits start uniform;
        # none at num_classes 0 (an encoder read through `tokens`/`features`: orbax
        # cannot save zero-size arrays)
        C = cfg.num_classes
        self.head_w_DC = nnx.Param(jnp.zeros((D, C), jnp.float32)) if C else None
        self.head_b_C = nnx.Param(jnp.zeros((C,), jnp.float32)) if C else None

    def embed(self, images_BHWC: jnp.ndarray) -> jnp.ndarray:
        """Token embeddings x_BTD: projected patches (after [CLS]) plus positions."""
        cfg = self.config
        dtype = compute_dtype(cfg.dtype)
        patches_BPX = patchify(jnp.asarray(images_BHWC, dtype), cfg.patch_size)
        x_BPD = jnp.einsum("BPX,XD->BPD", patches_BPX, self.patch_w_XD[...].astype(dtype))
        x_BTD = x_BPD + self.patch_b_D[...].astype(dtype)[None, None, :]
        if self.cls_D is not None:
            cls_B1D = jnp.broadcast_to(
                self.cls_D[...].astype(dtype), (x_BTD.shape[0], 1, cfg.d_model)
            )
            x_BTD = jnp.concatenate([cls_B1D, x_BTD], axis=1)
        return x_BTD + self.pos_TD[...].astype(dtype)[None]

    def tokens(self, images_BHWC, *, deterministic=True, dropout_rng=None) -> jnp.ndarray:
        """The token stream x_BTD after the last block and the final norm (compute dtype)."""
        L = len(self.blocks)
        rngs = (
            [None] * (L + 1) if dropout_rng is None else list(jax.random.split(dropout_rng, L + 1))
        )
        x_BTD = dropout(self.embed(images_BHWC), self.config.dropout, rngs[-1], deterministic)
        for i, block in enumerate(self.blocks):
            x_BTD = block(x_BTD, deterministic=deterministic, dropout_rng=rngs[i])
        return x_BTD if self.final_norm is None else self.final_norm(x_BTD)

    def features(self, images_BHWC, *, deterministic=True, dropout_rng=None) -> jnp.ndarray:
        """Pooled features p_BD (float32) after the final norm."""
        x_BTD = self.tokens(images_BHWC, deterministic=deterministic, dropout_rng=dropout_rng)
        pooled_BD = x_BTD[:, 0] if self.config.pool == "cls" else x_BTD.mean(axis=1)
        return pooled_BD.astype(jnp.float32)

    def __call__(self, images_BHWC, *, deterministic=True, dropout_rng=None) -> jnp.ndarray:
        """Class logits_BC (float32) of images_BHWC (float, already normalized)."""
        if self.head_w_DC is None:
            raise ValueError("ViT with num_classes=0 has no head: read tokens() or features().")
        p_BD = self.features(images_BHWC, deterministic=deterministic, dropout_rng=dropout_rng)
        return p_BD @ self.head_w_DC[...] + self.head_b_C[...][None, :]


# ----------------------------------------------------------------------------- counts


def param_counts(model_config: Any) -> dict[str, int]:
    """Exact parameter counts of `ViT(model_config)`: {total, embedding, non_embedding}."""
    cfg = ViTConfig.from_config(model_config)
    D, X, C = cfg.d_model, cfg.patch_dim, cfg.num_classes
    embedding = (cfg.num_tokens * D if cfg.position == "learned" else 0) + (
        D if cfg.pool == "cls" else 0
    )
    non_embedding = X * D + D + cfg.num_layers * lm_flops.layer_params(cfg) + D * C + C
    if cfg.norm == "pre":
        non_embedding += lm_flops.norm_params(cfg)
    return {
        "total": embedding + non_embedding,
        "embedding": embedding,
        "non_embedding": non_embedding,
    }


def flops_per_example(model_config: Any) -> float:
    """Training FLOPs (forward + backward) per image: 3 x forward.

    Forward = 2 P X D (patch projection) + T x L x (2 per-layer matmul weights +
    attention_flops(kernel, T, non-causal)) + 2 D C (head); the additive score adds
    its projections and per-pair reduction as in attn_jax.models.flops.
    """
    cfg = ViTConfig.from_config(model_config)
    D, N, K, H, F, L = (
        cfg.d_model,
        cfg.num_heads,
        cfg.kv_heads,
        cfg.head_size,
        cfg.ff_size,
        cfg.num_layers,
    )
    T = cfg.num_tokens
    per_layer = D * (N + 2 * K) * H + N * H * D + 2 * D * F
    if cfg.score == "multiplicative":
        per_layer += N * H * H
    attn = lm_flops.attention_flops(
        cfg.kernel, T, num_heads=N, head_dim=H, kv_heads=K, spec=MaskSpec(causal=False)
    )
    if cfg.score == "additive":
        attn += 2 * (N + K) * H * H + 2 * N * H * T
    forward = 2 * cfg.num_patches * cfg.patch_dim * D + T * L * (2 * per_layer + attn)
    forward += 2 * D * cfg.num_classes
    return 3.0 * float(forward)
