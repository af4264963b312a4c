"""A contrastive dual encoder (CLIP; Radford et al. 2021, "Learning Transferable Visual
Models From Natural Language Supervision").

Dimension key: B batch (image-caption pairs), H/W/C image height/width/channels, T
caption tokens, D tower width, E joint embedding width, V caption vocabulary, C
candidate captions (zero-shot classes).

    images_BHWC -> attn_jax.models.vit.ViT (patches -> L Blocks -> final norm -> pool
      -> its head, D -> E: the image projection) -> L2 normalise -> image_BE
    tokens_BT, lengths_B -> word embeddings + learned positions -> L_t non-causal
      `attn_jax.nn.Block`s (padded keys masked through `kv_lengths_B`) -> final norm
      -> masked mean (or last valid token) -> linear D_t -> E -> L2 normalise -> text_BE
    logits_BB = exp(min(log_scale, log 100)) * image_BE @ text_BE^T

The image tower is the ViT module itself; its classification head (D -> E, with a
bias) is the image projection, re-initialised with std D^-1/2 because ViT
zero-initialises its head and a zero projection has no direction to normalise.
The temperature is CLIP's: a learned log-parameterised logit scale initialised at
1/0.07 and clipped at 100 (applied as min(log_scale, log 100) in the forward pass,
so above the cap it carries no gradient, as the paper's clipping of the parameter).

`contrastive_loss` is the symmetric InfoNCE (Oord et al. 2018; CLIP's Figure 3):
the mean of the image->text and text->image cross-entropies over the batch, with
multi-positive targets when several pairs in a batch share a caption class (see
its docstring).

Counts (`param_counts`, `flops_per_example`) follow attn_jax.models.flops:
"embedding" = the ViT's position table and class token, the word table and the
caption position table; everything else (blocks, norms, projections, the logit
scale) is "non_embedding". Training FLOPs per pair = 3 x forward (Hoffmann et al.
2022, App. F): the ViT's count with its D -> E head, the text tower over all T
(padded) positions, and the B x B similarity matrix (2 B E per pair).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.models import flops as lm_flops
from attn_jax.models import vit as vit_model
from attn_jax.models.encoder import EncoderConfig
from attn_jax.models.lm import ArchConfig, Dtype, Kernel, Score, compute_dtype
from attn_jax.nn import Block, Embed, Norm, dropout
from attn_jax.ops.masks import MaskSpec

TEXT_POOLS = ("mean", "last")


@dataclasses.dataclass(frozen=True)
class CLIPConfig(ArchConfig):
    """Architecture of a `DualEncoder` (the `config.model` fields of experiments/clip.py).

    Attributes:
      image_size: H = W of the images.
      patch_size: p of the ViT; must divide image_size.
      channels: C of the images.
      d_model: D of the image tower.
      num_layers: L of the image tower.
      num_heads: N of the image tower.
      num_kv_heads: K of the image tower; 0 = N.
      head_dim: H of the image tower; 0 = D // N.
      d_ff: F of the image tower; 0 = 4 D.
      pool: image pooling, "cls" or "gap" (ViTConfig.pool).
      position: image positions, "learned" or "sincos2d" (ViTConfig.position).
      vocab_size: V of the captions (token 0 is padding).
      max_len: T, caption tokens (the learned caption position table's rows).
      text_d_model: D_t of the text tower.
      text_layers: L_t of the text tower.
      text_heads: N_t of the text tower.
      text_d_ff: F_t of the text tower; 0 = 4 D_t.
      text_pool: "mean" (masked mean over valid tokens) or "last" (the last valid token).
      embed_dim: E, the joint embedding width.
      norm: "pre" or "post" (both towers).
      norm_type: "layernorm" or "rmsnorm" (both towers).
      score: attention score (`attn_jax.ops.scores.SCORES`), both towers.
      kernel: attention kernel (`attn_jax.ops.kernels.KERNELS`), both towers.
      dropout: residual and embedding dropout.
      attn_dropout: attention-weight dropout.
      dtype: compute dtype; parameters, embeddings and logits stay float32.
      init_temperature: initial temperature tau; log_scale starts at log(1 / tau).
      max_scale: the clip of the logit scale exp(log_scale) (CLIP: 100).
    """

    image_size: int = 64
    patch_size: int = 8
    channels: int = 3
    d_model: int = 64
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 0
    head_dim: int = 0
    d_ff: int = 0
    pool: Literal["cls", "gap"] = "gap"
    position: Literal["learned", "sincos2d"] = "learned"
    vocab_size: int = 22
    max_len: int = 8
    text_d_model: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_d_ff: int = 0
    text_pool: Literal["mean", "last"] = "mean"
    embed_dim: int = 64
    norm: Literal["pre", "post"] = "pre"
    norm_type: Literal["layernorm", "rmsnorm"] = "layernorm"
    score: Score = "scaled_dot"
    kernel: Kernel = "xla"
    dropout: float = 0.0
    attn_dropout: float = 0.0
    dtype: Dtype = "auto"
    init_temperature: float = 0.07
    max_scale: float = 100.0

    NAME = "clip"

    def __post_init__(self):
        super().__post_init__()
        for name in ("vocab_size", "max_len", "embed_dim", "text_layers", "text_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"CLIPConfig.{name} must be >= 1, got {getattr(self, name)}.")
        if self.text_d_model % self.text_heads:
            raise ValueError(
                f"CLIPConfig.text_heads={self.text_heads} must divide "
                f"text_d_model={self.text_d_model}."
            )
        if not (self.init_temperature > 0 and 1.0 / self.init_temperature <= self.max_scale):
            raise ValueError(
                f"CLIPConfig.init_temperature={self.init_temperature} must be > 0 with "
                f"1 / init_temperature <= max_scale={self.max_scale}."
            )
        self.image_config()  # the ViT's own checks (patch size, sincos2d width)

    def image_config(self) -> vit_model.ViTConfig:
        """The image tower: a ViT whose head (D -> E) is the image projection."""
        return vit_model.ViTConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            channels=self.channels,
            num_classes=self.embed_dim,
            d_model=self.d_model,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            head_dim=self.head_dim,
            d_ff=self.d_ff,
            pool=self.pool,
            position=self.position,
            norm=self.norm,
            norm_type=self.norm_type,
            score=self.score,
            kernel=self.kernel,
            dropout=self.dropout,
            attn_dropout=self.attn_dropout,
            dtype=self.dtype,
        )

    def text_config(self) -> EncoderConfig:
        """The text tower's shape as an EncoderConfig (what attn_jax.models.flops counts)."""
        return EncoderConfig(
            vocab_size=self.vocab_size,
            d_model=self.text_d_model,
            num_layers=self.text_layers,
            num_heads=self.text_heads,
            d_ff=self.text_d_ff,
            max_len=self.max_len,
            norm=self.norm,
            norm_type=self.norm_type,
            position="learned",
            score=self.score,
            kernel=self.kernel,
            dropout=self.dropout,
            attn_dropout=self.attn_dropout,
            dtype=self.dtype,
        )


def l2_normalize(x_BE: jnp.ndarray) -> jnp.ndarray:
    """x / |x| in float32 (a floor on |x|^2 keeps the gradient finite at 0)."""
    x_BE = x_BE.astype(jnp.float32)
    return x_BE * jax.lax.rsqrt(jnp.maximum(jnp.sum(x_BE * x_BE, -1, keepdims=True), 1e-12))


def logit_scale(log_scale: jnp.ndarray, max_scale: float = 100.0) -> jnp.ndarray:
    """exp(log_scale) clipped at `max_scale` (CLIP); no gradient above the clip."""
    return jnp.exp(jnp.minimum(jnp.asarray(log_scale, jnp.float32), math.log(max_scale)))


def contrastive_loss(
    image_emb_BE: jnp.ndarray,
    text_emb_BE: jnp.ndarray,
    log_scale: jnp.ndarray,
    labels_B: jnp.ndarray | None = None,
    weights_B: jnp.ndarray | None = None,
    *,
    max_scale: float = 100.0,
    label_smoothing: float = 0.0,
) -> jnp.ndarray:
    """Symmetric InfoNCE: (CE(image -> text) + CE(text -> image)) / 2, means over the batch.

    logits_ij = s <image_i, text_j> with s = `logit_scale(log_scale, max_scale)`.
    Without `labels_B` pair i's positive is text i only (CLIP). With `labels_B`
    (a caption class per pair: easy-VQA has only 24 shape-colour captions, so a
    batch of 128 repeats them) every pair of the same class is a positive: row
    i's target is uniform over {j: labels_j = labels_i} (and likewise for the
    columns), the multi-positive form of supervised contrastive learning (Khosla
    et al. 2020). A one-hot target there would push an image away from a correct
    caption of its class that happens to sit in another row.

    Args:
      image_emb_BE: image embeddings (L2-normalised by the model).
      text_emb_BE: text embeddings of the same pairs.
      log_scale: the learned log logit scale (scalar).
      labels_B: caption class per pair (int), or None for distinct captions.
      weights_B: 1 for real pairs, 0 for padding (excluded as anchors and as
        candidates); None = all real.
      max_scale: the clip of exp(log_scale).
      label_smoothing: e mixes each target with a uniform distribution over the
        real candidates: (1 - e) target + e / n.

    Returns:
      The loss (float32 scalar), a mean over the real pairs of both directions.
    """
    B = image_emb_BE.shape[0]
    labels_B = jnp.arange(B) if labels_B is None else jnp.asarray(labels_B)
    w_B = jnp.ones((B,), jnp.float32) if weights_B is None else weights_B.astype(jnp.float32)
    real_B = w_B > 0
    logits_BB = logit_scale(log_scale, max_scale) * jnp.einsum(
        "IE,JE->IJ", image_emb_BE.astype(jnp.float32), text_emb_BE.astype(jnp.float32)
    )
    pair_BB = real_B[:, None] & real_B[None, :]
    positive_BB = (labels_B[:, None] == labels_B[None, :]) & pair_BB
    n = jnp.maximum(real_B.sum(), 1).astype(jnp.float32)

    def direction(logits_IJ, positive_IJ):
        # padding candidates get a logit far below any real one: exp underflows to 0
        logits_IJ = jnp.where(pair_BB, logits_IJ, -1e9)
        logp_IJ = jax.nn.log_softmax(logits_IJ, axis=-1)
        target_IJ = positive_IJ / jnp.maximum(positive_IJ.sum(-1, keepdims=True), 1)
        if label_smoothing:
            target_IJ = (1.0 - label_smoothing) * target_IJ + label_smoothing * pair_BB / n
        nll_I = -jnp.sum(jnp.where(pair_BB, target_IJ * logp_IJ, 0.0), axis=-1)
        return jnp.sum(nll_I * w_B) / jnp.maximum(w_B.sum(), 1.0)

    return 0.5 * (direction(logits_BB, positive_BB) + direction(logits_BB.T, positive_BB.T))


class TextTower(nnx.Module):
    """Captions -> unnormalised text_BE: Embed (+ learned positions) -> Blocks -> pool -> D_t -> E."""

    def __init__(self, cfg: CLIPConfig, *, rngs: nnx.Rngs):
        self.config = cfg
        tcfg = cfg.text_config()
        dtype = compute_dtype(cfg.dtype)
        D = tcfg.d_model
        self.embed = Embed(
            cfg.vocab_size, D, position="learned", max_len=cfg.max_len, rngs=rngs, dtype=dtype
        )
        out_scale = (2 * tcfg.num_layers) ** -0.5  # GPT-2's residual init, as in the ViT
        self.blocks = nnx.List(
            [
                Block(
                    D,
                    tcfg.num_heads,
                    tcfg.ff_size,
                    norm=cfg.norm,
                    norm_type=cfg.norm_type,
                    dropout=cfg.dropout,
                    rngs=rngs,
                    dtype=dtype,
                    out_init_scale=out_scale,
                    causal=False,
                    score=cfg.score,
                    position="none",
                    kernel=cfg.kernel,
                    max_len=cfg.max_len,
                    attn_dropout=cfg.attn_dropout,
                )
                for _ in range(tcfg.num_layers)
            ]
        )
        self.final_norm = Norm(D, cfg.norm_type) if cfg.norm == "pre" else None
        init = jax.nn.initializers.normal(D**-0.5)
        self.proj_DE = nnx.Param(init(rngs.params(), (D, cfg.embed_dim), jnp.float32))

    def __call__(self, tokens_BT, lengths_B, *, deterministic=True, dropout_rng=None):
        """Unnormalised embeddings of captions whose first lengths_B[b] tokens are real."""
        cfg = self.config
        L = len(self.blocks)
        rngs = (
            [None] * (L + 1) if dropout_rng is None else list(jax.random.split(dropout_rng, L + 1))
        )
        lengths_B = jnp.asarray(lengths_B, jnp.int32)
        x_BTD = dropout(self.embed(tokens_BT), cfg.dropout, rngs[-1], deterministic)
        for i, block in enumerate(self.blocks):
            x_BTD = block(
                x_BTD, kv_lengths_B=lengths_B, deterministic=deterministic, dropout_rng=rngs[i]
            )
        if self.final_norm is not None:
            x_BTD = self.final_norm(x_BTD)
        x_BTD = x_BTD.astype(jnp.float32)
        T = x_BTD.shape[1]
        if cfg.text_pool == "mean":
            valid_BT = (jnp.arange(T)[None, :] < lengths_B[:, None]).astype(jnp.float32)
            # where(), not a product: a padded row must not reach the pool even as inf/nan
            summed_BD = jnp.where(valid_BT[..., None] > 0, x_BTD, 0.0).sum(1)
            pooled_BD = summed_BD / jnp.maximum(valid_BT.sum(1), 1.0)[:, None]
        else:
            last_B = jnp.clip(lengths_B - 1, 0, T - 1)
            pooled_BD = jnp.take_along_axis(x_BTD, last_B[:, None, None], axis=1)[:, 0]
        return pooled_BD @ self.proj_DE[...]


class DualEncoder(nnx.Module):
    """CLIP: an image tower (a ViT) and a text tower into one L2-normalised space.

    Args:
      config: a `CLIPConfig` (or a mapping / ConfigDict of its fields).
      rngs: NNX rngs (`params` stream).
    """

    def __init__(self, config: CLIPConfig | Mapping[str, Any], *, rngs: nnx.Rngs):
        cfg = CLIPConfig.from_config(config)
        self.config = cfg
        self.image = vit_model.ViT(cfg.image_config(), rngs=rngs)
        # ViT zero-initialises its head (uniform logits); as a projection it needs a direction
        init = jax.nn.initializers.normal(cfg.d_model**-0.5)
        self.image.head_w_DC = nnx.Param(
            init(rngs.params(), (cfg.d_model, cfg.embed_dim), jnp.float32)
        )
        self.text = TextTower(cfg, rngs=rngs)
        self.log_scale = nnx.Param(jnp.asarray(math.log(1.0 / cfg.init_temperature), jnp.float32))

    def encode_images(self, images_BHWC, *, deterministic=True, dropout_rng=None):
        """image_BE: L2-normalised embeddings of (normalised, float) images."""
        out = self.image(images_BHWC, deterministic=deterministic, dropout_rng=dropout_rng)
        return l2_normalize(out)

    def encode_texts(self, tokens_BT, lengths_B, *, deterministic=True, dropout_rng=None):
        """text_BE: L2-normalised embeddings of captions (valid prefix lengths_B)."""
        out = self.text(tokens_BT, lengths_B, deterministic=deterministic, dropout_rng=dropout_rng)
        return l2_normalize(out)

    def scale(self) -> jnp.ndarray:
        """The logit scale exp(log_scale), clipped at config.max_scale."""
        return logit_scale(self.log_scale[...], self.config.max_scale)

    def __call__(self, images_BHWC, tokens_BT, lengths_B, *, deterministic=True, dropout_rng=None):
        """(image_BE, text_BE): the pairs' normalised embeddings (logits = scale() * I @ T^T)."""
        rngs = (None, None) if dropout_rng is None else tuple(jax.random.split(dropout_rng))
        image_BE = self.encode_images(images_BHWC, deterministic=deterministic, dropout_rng=rngs[0])
        text_BE = self.encode_texts(
            tokens_BT, lengths_B, deterministic=deterministic, dropout_rng=rngs[1]
        )
        return image_BE, text_BE


# ----------------------------------------------------------------------------- counts


def param_counts(model_config: Any) -> dict[str, int]:
    """Exact parameter counts of `DualEncoder(model_config)`: {total, embedding, non_embedding}."""
    cfg = CLIPConfig.from_config(model_config)
    image = vit_model.param_counts(cfg.image_config())
    tcfg = cfg.text_config()
    text_embedding = (cfg.vocab_size + cfg.max_len) * tcfg.d_model
    text_non_embedding = tcfg.num_layers * lm_flops.layer_params(tcfg)
    text_non_embedding += tcfg.d_model * cfg.embed_dim
    if cfg.norm == "pre":
        text_non_embedding += lm_flops.norm_params(tcfg)
    embedding = image["embedding"] + text_embedding
    non_embedding = image["non_embedding"] + text_non_embedding + 1  # + log_scale
    return {
        "total": embedding + non_embedding,
        "embedding": embedding,
        "non_embedding": non_embedding,
    }


def text_forward_flops(model_config: Any) -> float:
    """Forward FLOPs of the text tower per caption: T positions (padding included:
    it is computed) x L_t x (2 x the layer's matmul weights + the non-causal attention
    core), plus the D_t -> E projection of the pooled vector."""
    cfg = CLIPConfig.from_config(model_config)
    tcfg = cfg.text_config()
    D, N, K, H, F = tcfg.d_model, tcfg.num_heads, tcfg.kv_heads, tcfg.head_size, tcfg.ff_size
    T = cfg.max_len
    per_layer = D * (N + 2 * K) * H + N * H * D + 2 * D * F
    if cfg.score == "multiplicative":
        per_layer += N * H * H
    attn = lm_flops.attention_flops(
        cfg.kernel, T, num_heads=N, head_dim=H, kv_heads=K, spec=MaskSpec(causal=False)
    )
    if cfg.score == "additive":
        attn += 2 * (N + K) * H * H + 2 * N * H * T
    return float(T * tcfg.num_layers * (2 * per_layer + attn) + 2 * D * cfg.embed_dim)


def flops_per_example(model_config: Any, batch_size: int = 0) -> float:
    """Training FLOPs (forward + backward) per image-caption pair: 3 x forward.

    Forward = the ViT's forward with its D -> E head (`vit.flops_per_example` / 3)
    + `text_forward_flops` + 2 B E for the pair's row of the B x B similarity
    matrix (0 when `batch_size` is 0). Softmax, norms and the L2 normalisation
    are left out, as in attn_jax.models.flops.
    """
    cfg = CLIPConfig.from_config(model_config)
    image = vit_model.flops_per_example(cfg.image_config()) / 3.0
    similarity = 2.0 * batch_size * cfg.embed_dim
    return 3.0 * (image + text_forward_flops(cfg) + similarity)
