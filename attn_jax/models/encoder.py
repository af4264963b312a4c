"""Bidirectional Transformer encoder with BERT's masked-LM head (Devlin et al. 2019).

Dimension key: B batch, T sequence length, D model width, V vocabulary, L layers.

`EncoderConfig` names every architectural choice (the same ones as `LMConfig`,
minus the causal window); `Encoder(config, rngs=...)` maps int tokens_BT and
valid lengths_B to features h_BTD, MLM logits_BTV and pooled p_BD:

    embed(tokens_BT) -> x_BTD -> encode(x_BTD, lengths_B) -> h_BTD  (= features)
    mlm_logits(h_BTD) -> logits_BTV                                 (= __call__)
    pool(h_BTD, lengths_B, "mean" | "cls") -> p_BD

Every block is `attn_jax.nn.Block` with causal=False; padded keys (t >=
lengths_B[b]) are masked through `kv_lengths_B`, so no valid position reads a
padded one (tests/models/test_encoder.py checks values and gradients).
Positions: absolute ("sinusoidal", "learned") in `Embed`; RoPE, ALiBi (|i - j|,
the symmetric form) and T5 buckets (bidirectional: separate buckets for keys
after the query) in `Attention`.

The MLM head is BERT's (its "transform" then a tied decoder): dense D -> D with
bias, GELU, a norm, then logits = h @ embedding^T + bias_V (an untied [D, V]
matrix when tie_embeddings is False). It runs on every position; the loss picks
the masked ones (attn_jax.families.mlm).

Counts (`param_counts`, `flops_per_position`, `flops_per_masked_token`) follow
attn_jax.models.flops: "embedding" = the token table, a learned position table,
a token-type table, an untied decoder and the decoder's bias_V (the arrays
indexed by vocabulary, position or type); "non_embedding" = the blocks, the
final norm, an embedding norm and the head's transform. Training FLOPs = 3 x forward (Hoffmann et al. 2022, App. F), with
the attention term of the kernel computed over all T positions, non-causal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.models import flops as lm_flops
from attn_jax.models.lm import Activation, ArchConfig, Dtype, Kernel, Position, Score, compute_dtype
from attn_jax.nn import ABSOLUTE_POSITIONS, POSITIONS, Block, Embed, Norm, dropout
from attn_jax.nn.mlp import ACTIVATIONS
from attn_jax.ops.masks import MaskSpec

POOLINGS = ("mean", "cls")


@dataclasses.dataclass(frozen=True)
class EncoderConfig(ArchConfig):
    """Architecture of an `Encoder` (the `config.model` fields of experiments/mlm.py).

    Attributes:
      vocab_size: V (attn_jax.data.mlm.VOCAB_SIZE: 256 bytes + 4 special tokens).
      d_model: D.
      num_layers: L.
      num_heads: N query heads.
      num_kv_heads: K key/value heads; 0 = N.
      head_dim: H; 0 = D // N.
      d_ff: F; 0 = 4 D.
      max_len: longest sequence (learned-position table size).
      norm: "pre" or "post" (BERT is post-norm; pre-norm trains more easily).
      norm_type: "layernorm" or "rmsnorm" (also the MLM head's norm).
      position: "sinusoidal", "learned", "rope", "alibi", "relative" or "none".
      score: attention score (`attn_jax.ops.scores.SCORES`).
      kernel: attention kernel (`attn_jax.ops.kernels.KERNELS`).
      tie_embeddings: MLM decoder = token embedding transposed (BERT does).
      dropout: residual and embedding dropout.
      attn_dropout: attention-weight dropout ("xla" kernel only).
      dtype: compute dtype; parameters and logits stay float32.
      rope_base: RoPE frequency base.
      relative_buckets: T5 relative-bias buckets per layer.
      relative_max_distance: T5 bucket range.
      norm_eps: the norms' epsilon (GPT-2 1e-5; BERT and ViT 1e-12).
      bias: biases on the attention q/k/v and output projections and on both MLP
        layers (GPT-2, BERT and ViT have them); False = none.
      activation: the MLP's and the MLM head's GELU: "gelu_tanh" (tanh approximation, GPT-2's
        "gelu_new") or "gelu_erf" (exact, BERT's and ViT's "gelu").
      type_vocab_size: rows of a token-type (segment) table added to the embeddings
        (BERT: 2); 0 = none. Token types default to 0 (one segment).
      embed_norm: a norm on the summed embeddings before the first block (BERT's).
    """

    vocab_size: int = 260
    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 0
    head_dim: int = 0
    d_ff: int = 0
    max_len: int = 1024
    norm: Literal["pre", "post"] = "pre"
    norm_type: Literal["layernorm", "rmsnorm"] = "layernorm"
    position: Position = "rope"
    score: Score = "scaled_dot"
    kernel: Kernel = "xla"
    tie_embeddings: bool = True
    dropout: float = 0.0
    attn_dropout: float = 0.0
    dtype: Dtype = "auto"
    rope_base: float = 1e4
    relative_buckets: int = 32
    relative_max_distance: int = 128
    norm_eps: float = 1e-6
    bias: bool = False
    activation: Activation = "gelu_tanh"
    type_vocab_size: int = 0
    embed_norm: bool = False

    NAME = "encoder"


class Encoder(nnx.Module):
    """Non-causal Transformer: Embed -> L Blocks -> (final norm), plus the MLM head.

    Args:
      config: an `EncoderConfig` (or a mapping / ConfigDict of its fields).
      rngs: NNX rngs (`params` stream).
    """

    def __init__(self, config: EncoderConfig | Mapping[str, Any], *, rngs: nnx.Rngs):
        cfg = EncoderConfig.from_config(config)
        self.config = cfg
        dtype = compute_dtype(cfg.dtype)
        D, V = cfg.d_model, cfg.vocab_size
        absolute = cfg.position if cfg.position in ABSOLUTE_POSITIONS else "none"
        relative = cfg.position if cfg.position in POSITIONS else "none"
        self.embed = Embed(V, D, position=absolute, max_len=cfg.max_len, rngs=rngs, dtype=dtype)
        self.type_embedding = (
            nnx.Param(
                0.02 * jax.random.normal(rngs.params(), (cfg.type_vocab_size, D), jnp.float32)
            )
            if cfg.type_vocab_size
            else None
        )
        self.embed_norm = Norm(D, cfg.norm_type, eps=cfg.norm_eps) if cfg.embed_norm else None
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
                    position=relative,
                    kernel=cfg.kernel,
                    max_len=cfg.max_len,
                    rope_base=cfg.rope_base,
                    relative_buckets=cfg.relative_buckets,
                    relative_max_distance=cfg.relative_max_distance,
                    attn_dropout=cfg.attn_dropout,
                    norm_eps=cfg.norm_eps,
                    bias=cfg.bias,
                    activation=cfg.activation,
                )
                for _ in range(cfg.num_layers)
            ]
        )
        eps = cfg.norm_eps
        self.final_norm = Norm(D, cfg.norm_type, eps=eps) if cfg.norm == "pre" else None
        init = jax.nn.initializers.normal(D**-0.5)
        # BERT's MLM transform (dense + GELU + norm) before the decoder.
        self.head_w_DD = nnx.Param(init(rngs.params(), (D, D), jnp.float32))
        self.head_b_D = nnx.Param(jnp.zeros((D,), jnp.float32))
        self.head_norm = Norm(D, cfg.norm_type, eps=eps)
        self.decoder_DV = (
            None if cfg.tie_embeddings else nnx.Param(init(rngs.params(), (D, V), jnp.float32))
        )
        self.decoder_b_V = nnx.Param(jnp.zeros((V,), jnp.float32))

    def embed_tokens(self, tokens_BT: jnp.ndarray, types_BT: jnp.ndarray | None = None):
        """Token (+ absolute position, + token type, then embed_norm) embeddings x_BTD.

        `encode`'s input. types_BT: int segment ids (default 0), read only with
        `type_vocab_size` > 0.
        """
        x_BTD = self.embed(tokens_BT)
        if self.type_embedding is not None:
            table = self.type_embedding[...]
            t_BTD = table[0][None, None] if types_BT is None else jnp.take(table, types_BT, axis=0)
            x_BTD = x_BTD + t_BTD.astype(x_BTD.dtype)
        elif types_BT is not None:
            raise ValueError("types_BT given to an encoder without type_vocab_size.")
        return x_BTD if self.embed_norm is None else self.embed_norm(x_BTD)

    def encode(
        self,
        x_BTD: jnp.ndarray,
        lengths_B: jnp.ndarray,
        *,
        deterministic: bool = True,
        dropout_rng: jax.Array | None = None,
    ) -> jnp.ndarray:
        """Blocks over embeddings x_BTD whose first lengths_B[b] positions are valid.

        Returns h_BTD (after the final norm). Rows t >= lengths_B[b] are computed
        but meaningless; no valid row depends on them.
        """
        L = len(self.blocks)
        rngs = (
            [None] * (L + 1) if dropout_rng is None else list(jax.random.split(dropout_rng, L + 1))
        )
        x_BTD = dropout(x_BTD, self.config.dropout, rngs[-1], deterministic)
        lengths_B = jnp.asarray(lengths_B, jnp.int32)
        for i, block in enumerate(self.blocks):
            x_BTD = block(
                x_BTD, kv_lengths_B=lengths_B, deterministic=deterministic, dropout_rng=rngs[i]
            )
        if self.final_norm is not None:
            x_BTD = self.final_norm(x_BTD)
        return x_BTD

    def features(
        self, tokens_BT, lengths_B, *, types_BT=None, deterministic=True, dropout_rng=None
    ):
        """Contextual features h_BTD of tokens_BT (valid prefix lengths_B; token types_BT)."""
        return self.encode(
            self.embed_tokens(tokens_BT, types_BT),
            lengths_B,
            deterministic=deterministic,
            dropout_rng=dropout_rng,
        )

    def mlm_logits(self, h_BTD: jnp.ndarray) -> jnp.ndarray:
        """BERT's MLM head on features: logits_BTV in float32."""
        dtype = h_BTD.dtype
        z_BTD = jnp.einsum("BTD,DE->BTE", h_BTD, self.head_w_DD[...].astype(dtype))
        z_BTD = ACTIVATIONS[self.config.activation](
            z_BTD + self.head_b_D[...].astype(dtype)[None, None, :]
        )
        z_BTD = self.head_norm(z_BTD)
        if self.decoder_DV is None:
            logits_BTV = self.embed.attend(z_BTD)
        else:
            w_DV = self.decoder_DV[...].astype(dtype)
            logits_BTV = jnp.einsum("BTD,DV->BTV", z_BTD, w_DV, preferred_element_type=jnp.float32)
        return logits_BTV.astype(jnp.float32) + self.decoder_b_V[...][None, None, :]

    def __call__(
        self, tokens_BT, lengths_B, *, types_BT=None, deterministic=True, dropout_rng=None
    ):
        """MLM logits_BTV of tokens_BT (the masked inputs) with valid lengths_B."""
        h_BTD = self.features(
            tokens_BT,
            lengths_B,
            types_BT=types_BT,
            deterministic=deterministic,
            dropout_rng=dropout_rng,
        )
        return self.mlm_logits(h_BTD)

    @staticmethod
    def pool(h_BTD: jnp.ndarray, lengths_B: jnp.ndarray, kind: str = "mean") -> jnp.ndarray:
        """A passage vector p_BD: the mean of h over valid positions, or position 0 ([CLS])."""
        if kind not in POOLINGS:
            raise ValueError(f"Unknown pooling {kind!r}; valid: {', '.join(POOLINGS)}.")
        if kind == "cls":
            return h_BTD[:, 0].astype(jnp.float32)
        return masked_sum(h_BTD, lengths_B) / jnp.maximum(lengths_B, 1)[:, None].astype(jnp.float32)


def masked_sum(h_BTD: jnp.ndarray, lengths_B: jnp.ndarray) -> jnp.ndarray:
    """Sum of h over each row's valid positions (t < lengths_B[b]), float32 [B, D]."""
    T = h_BTD.shape[1]
    valid_BT = jnp.arange(T, dtype=jnp.int32)[None, :] < jnp.asarray(lengths_B)[:, None]
    return jnp.einsum("BTD,BT->BD", h_BTD.astype(jnp.float32), valid_BT.astype(jnp.float32))


# ----------------------------------------------------------------------------- counts


def _head_transform_params(cfg: EncoderConfig) -> int:
    return cfg.d_model * cfg.d_model + cfg.d_model + lm_flops.norm_params(cfg)


def param_counts(model_config: Any) -> dict[str, int]:
    """Exact parameter counts of `Encoder(model_config)`: {total, embedding, non_embedding}."""
    cfg = EncoderConfig.from_config(model_config)
    D, V = cfg.d_model, cfg.vocab_size
    embedding = V * D + V + cfg.type_vocab_size * D  # token, type tables; decoder's bias_V
    if cfg.position == "learned":
        embedding += cfg.max_len * D
    if not cfg.tie_embeddings:
        embedding += D * V
    non_embedding = cfg.num_layers * lm_flops.layer_params(cfg) + _head_transform_params(cfg)
    non_embedding += lm_flops.norm_params(cfg) * ((cfg.norm == "pre") + cfg.embed_norm)
    return {
        "total": embedding + non_embedding,
        "embedding": embedding,
        "non_embedding": non_embedding,
    }


def matmul_params(model_config: Any) -> int:
    """Weights multiplying activations at every position: blocks, head transform, decoder."""
    cfg = EncoderConfig.from_config(model_config)
    D, N, K, H, F = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.head_size, cfg.ff_size
    per_layer = D * (N + 2 * K) * H + N * H * D + 2 * D * F
    if cfg.score == "multiplicative":
        per_layer += N * H * H
    return cfg.num_layers * per_layer + D * D + D * cfg.vocab_size


def flops_per_position(model_config: Any, seq_len: int) -> float:
    """Training FLOPs (forward + backward) per sequence position, all T positions computed.

    3 x (2 N_matmul + L x attention_flops(kernel, T, non-causal)); the additive
    score adds its projections and per-pair reduction as in attn_jax.models.flops.
    """
    cfg = EncoderConfig.from_config(model_config)
    N, K, H, L = cfg.num_heads, cfg.kv_heads, cfg.head_size, cfg.num_layers
    attn = lm_flops.attention_flops(
        cfg.kernel, seq_len, num_heads=N, head_dim=H, kv_heads=K, spec=MaskSpec(causal=False)
    )
    forward = 2 * matmul_params(cfg) + L * attn
    if cfg.score == "additive":
        A = H
        forward += L * (2 * (N + K) * H * A + 2 * N * A * seq_len)
    return 3.0 * forward


def flops_per_masked_token(model_config: Any, seq_len: int, mask_rate: float) -> float:
    """Training FLOPs per masked (loss-carrying) token: per-position FLOPs / mask_rate.

    Every position is computed while only the masked ones carry loss, so a planned
    step of B x T x mask_rate masked tokens costs B x T x `flops_per_position`.
    """
    if not 0.0 < mask_rate <= 1.0:
        raise ValueError(f"mask_rate={mask_rate} must be in (0, 1].")
    return flops_per_position(model_config, seq_len) / float(mask_rate)
