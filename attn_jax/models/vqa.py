"""Visual question answering: question tokens cross-attend to ViT patch tokens.

Dimension key: B batch, H/W image height/width, C channels, P image patches
(the context length S of cross-attention), T question tokens (padded to
`max_question_len`), D model width, V question vocabulary, A answers, L layers.

    images_BHWC -> ViT patch embedding + `image_layers` blocks + norm -> img_BPD
      (+ `context_registers` learned tokens -> the context img_BSD, S = P + R)
    question_BT -> word embedding + learned positions -> `question_layers`
      non-causal pre-norm Blocks (keys masked by lengths_B)
      -> `fusion_layers` Blocks: self-attention (masked) + cross-attention to
         img_BPD + MLP -> final norm
      -> pool ("mean": masked mean over the lengths_B real tokens; "first": token 0)
      -> linear D -> A = logits_BA

The image encoder is an `attn_jax.models.vit.ViT` (no class token, no head:
num_classes 0) whose token stream is read before pooling. The context registers
are image-independent keys and values (as the registers of Darcet et al. 2024, here
on the cross-attention side): softmax weights over the patches alone sum to one
whatever the patches hold, so a question word that finds nothing it names must
park its weight on some patch (the background does); a register is a place for
that weight that no image moves. In experiments/vqa.py they sped up learning
yes/no questions at a short budget and made no difference at the headline's.

Padded question tokens change nothing: they are masked as keys in every
self-attention and left out of the pool, and cross-attention is per query token.

`inputs` picks the model or one of its two baselines, all with one parameter
tree: "both"; "question" (the image is replaced by zeros, the normalized
image's mean, so it carries no information); "image" (the question is replaced
by the fixed one-token question [UNK_ID], length 1).

Counts (`param_counts`, `flops_per_example`) follow attn_jax.models.flops and
attn_jax.models.vit: "embedding" = the word table, the question position table
and the ViT's learned position table; training FLOPs = 3 x forward, 2 x every
matmul weight at every position it multiplies (padded question positions
included: they are computed) plus the dense attention cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.models import flops as lm_flops
from attn_jax.models import vit as vit_model
from attn_jax.models.lm import ArchConfig, Dtype, compute_dtype
from attn_jax.nn import Block, Embed, Norm, dropout
from attn_jax.ops.masks import MaskSpec

PAD_ID, UNK_ID = 0, 1  # reserved question ids; words start at 2
INPUTS = ("both", "question", "image")


@dataclasses.dataclass(frozen=True)
class VQAConfig(ArchConfig):
    """Architecture of a `VQA` model (the `config.model` fields of experiments/vqa.py).

    Attributes:
      image_size: H = W of the input images.
      patch_size: p of the ViT; must divide image_size.
      channels: C of the images.
      image_layers: L of the ViT image encoder.
      image_position: the ViT's positions, "learned" or "sincos2d".
      vocab_size: V, question ids including PAD_ID and UNK_ID.
      max_question_len: T, questions are padded (and truncated) to this many words.
      question_layers: self-attention blocks over the question alone.
      fusion_layers: blocks with cross-attention from the question to the patches.
      context_registers: R learned tokens appended to the patches as cross-attention
        context (0 = none).
      num_answers: A.
      d_model: D (image and question streams).
      num_heads: N.
      num_kv_heads: K; 0 = N.
      head_dim: H; 0 = D // N.
      d_ff: F; 0 = 4 D.
      pool: "mean" (masked mean of the question tokens) or "first" (token 0).
      inputs: "both", or a baseline with one input blanked: "question", "image".
      norm: "pre" or "post".
      norm_type: "layernorm" or "rmsnorm".
      score: attention score ("scaled_dot", "dot" or "multiplicative").
      kernel: a dense attention kernel (counted exactly): "xla", "blockwise", "auto", "cudnn".
      dropout: residual and embedding dropout.
      attn_dropout: attention-weight dropout ("xla" only).
      dtype: compute dtype; parameters and logits stay float32.
    """

    image_size: int = 64
    patch_size: int = 8
    channels: int = 3
    image_layers: int = 3
    image_position: Literal["learned", "sincos2d"] = "learned"
    vocab_size: int = 32
    max_question_len: int = 12
    question_layers: int = 1
    fusion_layers: int = 2
    context_registers: int = 0
    num_answers: int = 13
    d_model: int = 64
    num_heads: int = 4
    num_kv_heads: int = 0
    head_dim: int = 0
    d_ff: int = 0
    pool: Literal["mean", "first"] = "mean"
    inputs: Literal["both", "question", "image"] = "both"
    norm: Literal["pre", "post"] = "pre"
    norm_type: Literal["layernorm", "rmsnorm"] = "layernorm"
    score: Literal["scaled_dot", "dot", "multiplicative"] = "scaled_dot"
    kernel: Literal["xla", "blockwise", "auto", "cudnn"] = "xla"
    dropout: float = 0.0
    attn_dropout: float = 0.0
    dtype: Dtype = "auto"

    NAME = "vqa"

    def __post_init__(self):
        super().__post_init__()
        if self.vocab_size < 3:
            raise ValueError(
                f"VQAConfig.vocab_size={self.vocab_size} must be >= 3 (pad, unk, 1 word)."
            )
        if self.max_question_len < 1 or self.fusion_layers < 1:
            raise ValueError(
                "VQAConfig.max_question_len and fusion_layers must be >= 1, got "
                f"{self.max_question_len} and {self.fusion_layers}."
            )
        self.vit_config  # noqa: B018 -- validates patch_size / image_position now

    @property
    def vit_config(self) -> vit_model.ViTConfig:
        """The image encoder: a ViT without class token or head (its tokens are the output)."""
        return vit_model.ViTConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            channels=self.channels,
            num_classes=0,
            d_model=self.d_model,
            num_layers=self.image_layers,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            head_dim=self.head_dim,
            d_ff=self.d_ff,
            pool="gap",
            position=self.image_position,
            norm=self.norm,
            norm_type=self.norm_type,
            score=self.score,
            kernel=self.kernel,
            dropout=self.dropout,
            attn_dropout=self.attn_dropout,
            dtype=self.dtype,
        )

    @property
    def num_patches(self) -> int:
        return self.vit_config.num_patches

    @property
    def position(self) -> str:  # read by lm_flops.layer_params: question blocks add none
        return "none"

    @property
    def max_len(self) -> int:  # read by lm_flops.layer_params (linformer only)
        return self.max_question_len


def blank_question(batch: int, length: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The image-only baseline's question: [UNK_ID, PAD_ID, ...] of length 1, for every row."""
    ids_BT = jnp.zeros((batch, length), jnp.int32).at[:, 0].set(UNK_ID)
    return ids_BT, jnp.ones((batch,), jnp.int32)


class VQA(nnx.Module):
    """Answer logits from an image and a tokenized question (see the module docstring).

    Args:
      config: a `VQAConfig` (or a mapping / ConfigDict of its fields).
      rngs: NNX rngs (`params` stream).
    """

    def __init__(self, config: VQAConfig | Mapping[str, Any], *, rngs: nnx.Rngs):
        cfg = VQAConfig.from_config(config)
        self.config = cfg
        dtype = compute_dtype(cfg.dtype)
        D = cfg.d_model
        self.image_encoder = vit_model.ViT(cfg.vit_config, rngs=rngs)  # num_classes 0: no head
        R = cfg.context_registers
        self.registers_RD = (
            nnx.Param(0.02 * jax.random.normal(rngs.params(), (R, D), jnp.float32)) if R else None
        )
        self.embed = Embed(
            cfg.vocab_size,
            D,
            position="learned",
            max_len=cfg.max_question_len,
            rngs=rngs,
            dtype=dtype,
        )
        out_scale = (2 * (cfg.question_layers + cfg.fusion_layers)) ** -0.5

        def block(cross: bool) -> Block:
            return Block(
                D,
                cfg.num_heads,
                cfg.ff_size,
                norm=cfg.norm,
                norm_type=cfg.norm_type,
                dropout=cfg.dropout,
                cross_attention=cross,
                rngs=rngs,
                dtype=dtype,
                out_init_scale=out_scale,
                num_kv_heads=cfg.kv_heads,
                head_dim=cfg.head_size,
                causal=False,
                score=cfg.score,
                position="none",
                kernel=cfg.kernel,
                attn_dropout=cfg.attn_dropout,
            )

        self.question_blocks = nnx.List([block(False) for _ in range(cfg.question_layers)])
        self.fusion_blocks = nnx.List([block(True) for _ in range(cfg.fusion_layers)])
        self.final_norm = Norm(D, cfg.norm_type) if cfg.norm == "pre" else None
        # zero-initialized head (as the ViT's): the answers start uniform
        self.head_w_DA = nnx.Param(jnp.zeros((D, cfg.num_answers), jnp.float32))
        self.head_b_A = nnx.Param(jnp.zeros((cfg.num_answers,), jnp.float32))

    def image_tokens(self, images_BHWC, *, deterministic=True, dropout_rng=None) -> jnp.ndarray:
        """The cross-attention context: the ViT's token stream img_BPD after its final
        norm, then the `context_registers` learned tokens (img_BSD, S = P + R)."""
        img_BPD = self.image_encoder.tokens(
            images_BHWC, deterministic=deterministic, dropout_rng=dropout_rng
        )
        if self.registers_RD is None:
            return img_BPD
        B, _, D = img_BPD.shape
        R = self.registers_RD.shape[0]
        reg_BRD = jnp.broadcast_to(self.registers_RD[...].astype(img_BPD.dtype)[None], (B, R, D))
        return jnp.concatenate([img_BPD, reg_BRD], axis=1)

    def __call__(
        self,
        images_BHWC: jnp.ndarray,
        question_BT: jnp.ndarray,
        lengths_B: jnp.ndarray,
        *,
        deterministic: bool = True,
        dropout_rng: jax.Array | None = None,
    ) -> jnp.ndarray:
        """Answer logits_BA (float32).

        Args:
          images_BHWC: float images, already normalized.
          question_BT: int word ids, PAD_ID after each question's end.
          lengths_B: int real words per question (>= 1).
          deterministic: no dropout when True.
          dropout_rng: PRNG key for dropout.
        """
        cfg = self.config
        B, T = question_BT.shape
        if cfg.inputs == "question":
            images_BHWC = jnp.zeros_like(images_BHWC)
        elif cfg.inputs == "image":
            question_BT, lengths_B = blank_question(B, T)
        # >= 1: an eval batch's padding rows (length 0) must not attend to no key at all
        lengths_B = jnp.maximum(jnp.asarray(lengths_B, jnp.int32), 1)
        n_blocks = len(self.question_blocks) + len(self.fusion_blocks)
        rngs = (
            [None] * (n_blocks + 2)
            if dropout_rng is None
            else list(jax.random.split(dropout_rng, n_blocks + 2))
        )
        img_BPD = self.image_tokens(images_BHWC, deterministic=deterministic, dropout_rng=rngs[0])
        x_BTD = dropout(self.embed(question_BT), cfg.dropout, rngs[1], deterministic)
        for i, blk in enumerate(self.question_blocks):
            x_BTD = blk(
                x_BTD, kv_lengths_B=lengths_B, deterministic=deterministic, dropout_rng=rngs[2 + i]
            )
        for i, blk in enumerate(self.fusion_blocks, start=len(self.question_blocks)):
            x_BTD = blk(
                x_BTD,
                kv_lengths_B=lengths_B,
                context_BSD=img_BPD,
                deterministic=deterministic,
                dropout_rng=rngs[2 + i],
            )
        if self.final_norm is not None:
            x_BTD = self.final_norm(x_BTD)
        x_BTD = x_BTD.astype(jnp.float32)
        if cfg.pool == "first":
            pooled_BD = x_BTD[:, 0]
        else:
            real_BT = (jnp.arange(T)[None, :] < lengths_B[:, None]).astype(jnp.float32)
            total_BD = jnp.einsum("BTD,BT->BD", x_BTD, real_BT)
            pooled_BD = total_BD / jnp.maximum(real_BT.sum(axis=1), 1.0)[:, None]
        return pooled_BD @ self.head_w_DA[...] + self.head_b_A[...][None, :]


# ----------------------------------------------------------------------------- counts


def _cross_params(cfg: VQAConfig) -> int:
    """Parameters a cross-attention sublayer adds to a Block: its norm, q, kv, out, score."""
    D, N, K, H = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.head_size
    return (
        lm_flops.norm_params(cfg)
        + D * N * H
        + D * 2 * K * H
        + N * H * D
        + lm_flops.score_params(cfg)
    )


def param_counts(model_config: Any) -> dict[str, int]:
    """Exact parameter counts of `VQA(model_config)`: {total, embedding, non_embedding}."""
    cfg = VQAConfig.from_config(model_config)
    D, V, T, A = cfg.d_model, cfg.vocab_size, cfg.max_question_len, cfg.num_answers
    image = vit_model.param_counts(cfg.vit_config)  # its head is D x 0 + 0
    embedding = image["embedding"] + V * D + T * D
    layers = (cfg.question_layers + cfg.fusion_layers) * lm_flops.layer_params(cfg)
    non_embedding = image["non_embedding"] + layers + cfg.fusion_layers * _cross_params(cfg)
    non_embedding += D * A + A + (lm_flops.norm_params(cfg) if cfg.norm == "pre" else 0)
    non_embedding += cfg.context_registers * D
    return {
        "total": embedding + non_embedding,
        "embedding": embedding,
        "non_embedding": non_embedding,
    }


def flops_per_example(model_config: Any) -> float:
    """Training FLOPs (forward + backward) per question: 3 x forward.

    Forward = the ViT's forward over its patches (`vit.flops_per_example` / 3, head
    0) + T x (question_layers + fusion_layers) x (2 x self-attention and MLP
    weights + attention_flops(T)) + T x fusion_layers x (2 x cross q/out weights
    + attention_flops over the S = patches + registers context) + S x
    fusion_layers x 2 x the cross kv weights (every context token is projected)
    + 2 D A (head).
    """
    cfg = VQAConfig.from_config(model_config)
    D, N, K, H, F = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.head_size, cfg.ff_size
    T, S = cfg.max_question_len, cfg.num_patches + cfg.context_registers  # S: the context
    score = N * H * H if cfg.score == "multiplicative" else 0
    self_mm = D * (N + 2 * K) * H + N * H * D + 2 * D * F + score
    cross_q_mm = D * N * H + N * H * D + score
    spec = MaskSpec(causal=False)
    attn_T = lm_flops.attention_flops(cfg.kernel, T, num_heads=N, head_dim=H, kv_heads=K, spec=spec)
    attn_S = lm_flops.attention_flops(cfg.kernel, S, num_heads=N, head_dim=H, kv_heads=K, spec=spec)
    forward = vit_model.flops_per_example(cfg.vit_config) / 3.0
    forward += T * (cfg.question_layers + cfg.fusion_layers) * (2 * self_mm + attn_T)
    forward += cfg.fusion_layers * (T * (2 * cross_q_mm + attn_S) + S * 2 * D * 2 * K * H)
    forward += 2 * D * cfg.num_answers
    return 3.0 * float(forward)
