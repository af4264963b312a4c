"""Encoder-decoder Transformer (Vaswani et al. 2017) over one shared vocabulary.

Dimension key: B batch, S source length, T target length, D model width,
V vocabulary, L layers.

The encoder is a stack of bidirectional self-attention blocks over the source
(padded keys masked through `kv_lengths_B`); the decoder a stack of causal
self-attention + cross-attention blocks (`attn_jax.nn.Block(cross_attention=
True)`), its cross-attention masked to the valid source positions. One token
table embeds source and target and, with `tie_embeddings`, is also the output
head (Vaswani et al. 2017, sec. 3.4; Press & Wolf 2017).

Positions: every scheme of `attn_jax.models.lm.LM_POSITIONS` works in both
stacks. Absolute ones ("sinusoidal", "learned": one table shared by encoder and
decoder, as the token table is) are added to sqrt(D) x the token embedding
(sec. 3.4); relative ones act inside
self-attention, where the encoder's are non-causal: RoPE is a rotation of q and
k (order-free), ALiBi uses |i - j| and the T5 bias (Raffel et al. 2020) its
bidirectional buckets when the attention is not causal
(tests/models/test_seq2seq.py checks each). Cross-attention carries no position.

Decoding: `encode` once, `init_cross_caches` once per source (the encoder's
keys/values projected for every decoder layer), then `decode` one token at a
time through `init_cache`'s self-attention caches (attn_jax.models.decode).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.models.lm import ArchConfig, Dtype, Kernel, Position, Score, compute_dtype
from attn_jax.nn import POSITIONS, Block, Embed, Norm, dropout
from attn_jax.ops import positions as pos_ops


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig(ArchConfig):
    """Architecture of an `EncoderDecoder` (the `config.model` fields, minus family/size).

    Defaults are the base Transformer's shape (Vaswani et al. 2017, Table 3) with
    post-norm; experiments override the sizes.

    Attributes:
      vocab_size: V, one vocabulary for source and target (ids 0..2 = PAD, BOS,
        EOS; attn_jax.data.pairs).
      d_model: D.
      enc_layers: encoder blocks.
      dec_layers: decoder blocks.
      num_heads: N query heads (self- and cross-attention).
      num_kv_heads: K key/value heads; 0 = N (MHA), 1 = MQA, else GQA.
      head_dim: H; 0 = D // N.
      d_ff: F; 0 = 4 D.
      max_len: longest source or target sequence (learned-position table size).
      norm: "post" (the original Transformer) or "pre" (Xiong et al. 2020; adds a
        final norm after each stack).
      norm_type: "layernorm" or "rmsnorm".
      position: "sinusoidal" (the original), "learned", "relative" (T5 buckets),
        "rope", "alibi" or "none".
      score: attention score (`attn_jax.ops.scores.SCORES`).
      kernel: attention kernel (`attn_jax.ops.kernels.KERNELS`), for the encoder's,
        the decoder's and the cross-attention; the encoder padding reaches every
        kernel as key lengths.
      tie_embeddings: output head = the shared token embedding transposed; else
        an untied [D, V] head (the source/target table stays shared).
      dropout: residual and embedding dropout (the original: 0.1).
      attn_dropout: attention-weight dropout.
      dtype: compute dtype; parameters and logits stay float32.
      rope_base: RoPE frequency base.
      relative_buckets: T5 relative-bias buckets per layer.
      relative_max_distance: T5 bucket range.
    """

    vocab_size: int = 256
    d_model: int = 512
    enc_layers: int = 6
    dec_layers: int = 6
    num_heads: int = 8
    num_kv_heads: int = 0
    head_dim: int = 0
    d_ff: int = 0
    max_len: int = 256
    norm: Literal["pre", "post"] = "post"
    norm_type: Literal["layernorm", "rmsnorm"] = "layernorm"
    position: Position = "sinusoidal"
    score: Score = "scaled_dot"
    kernel: Kernel = "xla"
    tie_embeddings: bool = True
    dropout: float = 0.0
    attn_dropout: float = 0.0
    dtype: Dtype = "auto"
    rope_base: float = 1e4
    relative_buckets: int = 32
    relative_max_distance: int = 128

    NAME = "seq2seq"

    def __post_init__(self):
        super().__post_init__()
        for name in ("vocab_size", "d_model", "enc_layers", "dec_layers", "num_heads", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"Seq2SeqConfig.{name} must be >= 1, got {getattr(self, name)}.")


class EncoderDecoder(nnx.Module):
    """Transformer encoder-decoder: shared Embed -> encoder / decoder stacks -> head.

    Args:
      config: a `Seq2SeqConfig` (or a mapping / ConfigDict of its fields).
      rngs: NNX rngs (`params` stream).
    """

    def __init__(self, config: Seq2SeqConfig | Any, *, rngs: nnx.Rngs):
        cfg = Seq2SeqConfig.from_config(config)
        self.config = cfg
        dtype = compute_dtype(cfg.dtype)
        relative = cfg.position if cfg.position in POSITIONS else "none"
        # Token table N(0, 1/D), scaled by sqrt(D) on lookup (Vaswani et al. 2017, sec.
        # 3.4): tokens at unit scale beside the unit-scale sinusoids, and a tied head
        # whose logits start O(1). Absolute positions are added here (not by Embed,
        # which would add them before the scaling).
        self.embed = Embed(
            cfg.vocab_size, cfg.d_model, rngs=rngs, init_std=cfg.d_model**-0.5, dtype=dtype
        )
        self.pos_table = (
            nnx.Param(pos_ops.init_learned_table(rngs.params(), cfg.max_len, cfg.d_model))
            if cfg.position == "learned"
            else None
        )
        self.dtype = dtype

        def stack(num_layers: int, causal: bool, sublayers: int):
            # Residual output projections scaled by 1/sqrt(sublayers * L) at init (GPT-2).
            return nnx.List(
                [
                    Block(
                        cfg.d_model,
                        cfg.num_heads,
                        cfg.ff_size,
                        norm=cfg.norm,
                        norm_type=cfg.norm_type,
                        dropout=cfg.dropout,
                        cross_attention=causal,
                        rngs=rngs,
                        dtype=dtype,
                        out_init_scale=1.0 / math.sqrt(sublayers * num_layers),
                        num_kv_heads=cfg.kv_heads,
                        head_dim=cfg.head_size,
                        causal=causal,
                        score=cfg.score,
                        position=relative,
                        kernel=cfg.kernel,
                        max_len=cfg.max_len,
                        rope_base=cfg.rope_base,
                        relative_buckets=cfg.relative_buckets,
                        relative_max_distance=cfg.relative_max_distance,
                        attn_dropout=cfg.attn_dropout,
                    )
                    for _ in range(num_layers)
                ]
            )

        self.encoder = stack(cfg.enc_layers, causal=False, sublayers=2)
        self.decoder = stack(cfg.dec_layers, causal=True, sublayers=3)
        # Post-norm blocks end in a norm already; pre-norm stacks need one at the end.
        pre = cfg.norm == "pre"
        self.enc_norm = Norm(cfg.d_model, cfg.norm_type) if pre else None
        self.dec_norm = Norm(cfg.d_model, cfg.norm_type) if pre else None
        head_init = jax.nn.initializers.normal(cfg.d_model**-0.5)
        self.head = (
            None
            if cfg.tie_embeddings
            else nnx.Param(head_init(rngs.params(), (cfg.d_model, cfg.vocab_size), jnp.float32))
        )

    def _embed(self, tokens_BT: jax.Array, positions_BT: jax.Array) -> jax.Array:
        """sqrt(D) * token embedding + absolute positions (sinusoidal or learned)."""
        x_BTD = self.embed(tokens_BT).astype(jnp.float32) * math.sqrt(self.config.d_model)
        if self.config.position == "sinusoidal":
            x_BTD = x_BTD + pos_ops.sinusoidal(positions_BT, self.config.d_model)
        elif self.pos_table is not None:
            x_BTD = x_BTD + pos_ops.learned_positions(self.pos_table[...], positions_BT)
        return x_BTD.astype(self.dtype)

    def _rngs(self, dropout_rng, n: int) -> list:
        return [None] * n if dropout_rng is None else list(jax.random.split(dropout_rng, n))

    def encode(
        self,
        src_BS: jax.Array,
        src_len_B: jax.Array,
        *,
        deterministic: bool = True,
        dropout_rng: jax.Array | None = None,
    ) -> jax.Array:
        """Bidirectional encoding of the source; padded keys (>= src_len) are masked.

        Args:
          src_BS: int source ids, padded after `src_len_B`.
          src_len_B: int valid source tokens per example (>= 1).
          deterministic: no dropout when True.
          dropout_rng: PRNG key for dropout.

        Returns:
          enc_BSD (rows at padded positions are computed but never attended to).
        """
        S = src_BS.shape[1]
        positions_BS = jnp.arange(S, dtype=jnp.int32)[None, :]
        rngs = self._rngs(dropout_rng, len(self.encoder) + 1)
        x_BSD = dropout(
            self._embed(src_BS, positions_BS), self.config.dropout, rngs[-1], deterministic
        )
        src_len_B = jnp.asarray(src_len_B, jnp.int32)
        for i, block in enumerate(self.encoder):
            x_BSD = block(
                x_BSD,
                kv_lengths_B=src_len_B,
                positions_BT=positions_BS,
                deterministic=deterministic,
                dropout_rng=rngs[i],
            )
        return x_BSD if self.enc_norm is None else self.enc_norm(x_BSD)

    def init_cache(self, batch_size: int, max_len: int | None = None) -> list:
        """Empty decoder self-attention KV caches, one per layer, of `max_len` positions."""
        max_len = max_len or self.config.max_len
        dtype = compute_dtype(self.config.dtype)
        return [b.attn.init_cache(batch_size, max_len, dtype) for b in self.decoder]

    def init_cross_caches(self, enc_BSD: jax.Array) -> list:
        """Cross-attention keys/values of `enc_BSD` for every decoder layer, computed once."""
        return [b.cross_attn.init_cross_cache(enc_BSD) for b in self.decoder]

    def decode(
        self,
        tgt_in_BT: jax.Array,
        enc_BSD: jax.Array | None,
        src_len_B: jax.Array,
        *,
        cache: list | None = None,
        cross_cache: list | None = None,
        deterministic: bool = True,
        dropout_rng: jax.Array | None = None,
    ):
        """Next-token logits of the target given the encoded source.

        Args:
          tgt_in_BT: int decoder inputs (BOS + target prefix).
          enc_BSD: `encode`'s output (unused when `cross_cache` is given).
          src_len_B: int valid source tokens per example (the cross-attention mask).
          cache: per-layer self-attention caches from `init_cache` (incremental decoding).
          cross_cache: per-layer cross caches from `init_cross_caches`.
          deterministic: no dropout when True.
          dropout_rng: PRNG key for dropout.

        Returns:
          logits_BTV in float32, or (logits_BTV, new_cache) when `cache` is given.
        """
        T = tgt_in_BT.shape[1]
        offset = cache[0].index if cache is not None else 0
        positions_BT = (jnp.arange(T, dtype=jnp.int32) + offset)[None, :]
        src_len_B = jnp.asarray(src_len_B, jnp.int32)
        rngs = self._rngs(dropout_rng, len(self.decoder) + 1)
        x_BTD = self._embed(tgt_in_BT, positions_BT)
        x_BTD = dropout(x_BTD, self.config.dropout, rngs[-1], deterministic)
        new_cache = []
        for i, block in enumerate(self.decoder):
            out = block(
                x_BTD,
                positions_BT=positions_BT,
                cache=None if cache is None else cache[i],
                context_BSD=enc_BSD if cross_cache is None else None,
                context_lengths_B=src_len_B,  # the encoder padding, for any kernel
                cross_cache=None if cross_cache is None else cross_cache[i],
                deterministic=deterministic,
                dropout_rng=rngs[i],
            )
            if cache is None:
                x_BTD = out
            else:
                x_BTD, layer_cache = out
                new_cache.append(layer_cache)
        if self.dec_norm is not None:
            x_BTD = self.dec_norm(x_BTD)
        if self.head is None:
            logits_BTV = self.embed.attend(x_BTD)
        else:
            w_DV = self.head[...].astype(x_BTD.dtype)
            logits_BTV = jnp.einsum("BTD,DV->BTV", x_BTD, w_DV, preferred_element_type=jnp.float32)
        logits_BTV = logits_BTV.astype(jnp.float32)
        return logits_BTV if cache is None else (logits_BTV, new_cache)

    def __call__(
        self,
        src_BS: jax.Array,
        src_len_B: jax.Array,
        tgt_in_BT: jax.Array,
        *,
        deterministic: bool = True,
        dropout_rng: jax.Array | None = None,
    ) -> jax.Array:
        """Teacher-forced logits_BTV (float32) of `tgt_in_BT` given the source."""
        enc_rng, dec_rng = (None, None) if dropout_rng is None else jax.random.split(dropout_rng)
        enc_BSD = self.encode(src_BS, src_len_B, deterministic=deterministic, dropout_rng=enc_rng)
        return self.decode(
            tgt_in_BT, enc_BSD, src_len_B, deterministic=deterministic, dropout_rng=dec_rng
        )
