"""Decoder-only Transformer language model (GPT-style; Radford et al. 2018/2019).

Dimension key: B batch, T sequence length, D model width, V vocabulary, L layers.

`LMConfig` names every architectural choice; `SIZES` is the sweep table;
`DecoderLM(config, rngs=...)` maps int tokens_BT to float32 logits_BTV.
Decoding through the KV cache lives in `attn_jax.models.generate`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import nnx

from attn_jax.nn import ABSOLUTE_POSITIONS, POSITIONS, Block, Embed, Norm, dropout

# Sweep sizes: d_model / num_layers = 32..64, head_dim 16..64, d_ff = 4 d_model. 3xs is
# two layers of width 96: at the demo budgets neither two layers of width 64 nor one
# of width 96 beat the one-layer 4xs at both budgets; this one sits between 4xs and 2xs.
# Non-embedding parameters (pre-norm LayerNorm, RoPE, MHA) are in the comments;
# `attn_jax.models.flops.param_counts` gives exact figures for any config.
# "s" is the reference shape of shared/PERFORMANCE.md (the 10-minute Shakespeare model).
SIZES: dict[str, dict[str, int]] = {
    # 7xs, 3.5xs and 3.25xs: with 6xs..4xs, the one-layer ladder of sweeps/demo.py (one
    # depth, so no 1 -> 2 layer kink in L(N)); 7xs is the one size narrower than 32 per layer.
    "7xs": dict(d_model=20, num_layers=1, num_heads=1, d_ff=80),  # 4.92k
    "6xs": dict(d_model=32, num_layers=1, num_heads=2, d_ff=128),  # 12.5k
    "5xs": dict(d_model=48, num_layers=1, num_heads=3, d_ff=192),  # 27.9k
    "4xs": dict(d_model=64, num_layers=1, num_heads=4, d_ff=256),  # 49.5k
    "3.5xs": dict(d_model=96, num_layers=1, num_heads=6, d_ff=384),  # 111k
    "3.25xs": dict(d_model=128, num_layers=1, num_heads=8, d_ff=512),  # 197k
    "3xs": dict(d_model=96, num_layers=2, num_heads=3, d_ff=384),  # 222k
    "2xs": dict(d_model=128, num_layers=2, num_heads=4, d_ff=512),  # 394k
    # 1x192, 1x256: the one-layer ladder carried past 3.25xs (sweeps/mechanisms.py), so
    # that one depth spans 1.8 decades of N (wider per layer than the rest of the table).
    "1x192": dict(d_model=192, num_layers=1, num_heads=12, d_ff=768),  # 443k
    "1x256": dict(d_model=256, num_layers=1, num_heads=16, d_ff=1024),  # 788k
    "xs": dict(d_model=192, num_layers=3, num_heads=4, d_ff=768),  # 1.33M
    "s": dict(d_model=256, num_layers=4, num_heads=4, d_ff=1024),  # 3.15M
    "m": dict(d_model=320, num_layers=5, num_heads=5, d_ff=1280),  # 6.15M
    "l": dict(d_model=384, num_layers=6, num_heads=6, d_ff=1536),  # 10.6M
    "xl": dict(d_model=512, num_layers=8, num_heads=8, d_ff=2048),  # 25.2M
}

LM_POSITIONS = tuple(dict.fromkeys(POSITIONS + ABSOLUTE_POSITIONS))
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# A model's `dtype` field: a name in DTYPES, or "auto" (bfloat16 matmuls on GPU and
# TPU, float32 on CPU; the experiments' default).
DTYPE_NAMES = (*DTYPES, "auto")
ACCELERATOR_PLATFORMS = ("gpu", "cuda", "rocm", "tpu")
Dtype = Literal["float32", "bfloat16", "auto"]


def compute_dtype(name: str, platform: str | None = None) -> Any:
    """The compute dtype a config's `dtype` names; "auto" resolves on the default backend.

    Mixed precision: parameters, norm statistics, softmax and loss stay float32
    whatever this returns (attn_jax.nn casts up where it matters).
    """
    if name == "auto":
        platform = platform or jax.default_backend()
        return jnp.bfloat16 if platform in ACCELERATOR_PLATFORMS else jnp.float32
    if name not in DTYPES:
        raise ValueError(f"Unknown dtype {name!r}; valid: {', '.join(DTYPE_NAMES)}.")
    return DTYPES[name]


# Typed choices, spelled out for readers and type checkers; tests/models/test_lm.py
# checks that each equals its registry (LM_POSITIONS, SCORES, KERNELS, ...).
Position = Literal["none", "rope", "alibi", "relative", "sinusoidal", "learned"]
Score = Literal["dot", "scaled_dot", "multiplicative", "additive"]
Kernel = Literal[
    "xla", "blockwise", "local", "block_sparse", "linear", "performer", "linformer", "auto", "cudnn"
]
Activation = Literal["gelu_tanh", "gelu_erf"]


def literal_choices(cls) -> dict[str, tuple]:
    """{field: allowed values} for every `Literal`-typed field of a dataclass."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: typing.get_args(hints[f.name])
        for f in dataclasses.fields(cls)
        if typing.get_origin(hints[f.name]) is Literal
    }


class ArchConfig:
    """What LMConfig, EncoderConfig and Seq2SeqConfig share (a mixin of frozen dataclasses).

    `Literal` fields are checked at construction; `kv_heads`, `head_size` and `ff_size`
    resolve the 0 = default fields; `from_config` builds from a ConfigDict or a
    mapping, ignoring `family`/`size` and naming unknown fields.
    """

    NAME = "model"  # in messages: "Unknown <NAME> config fields"

    def __post_init__(self):
        # Literal choices are enforced at run time too (tests keep them = the registries).
        for name, choices in literal_choices(type(self)).items():
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"{type(self).__name__}.{name}={getattr(self, name)!r} is not one of: "
                    f"{', '.join(sorted(choices))}."
                )

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def head_size(self) -> int:
        return self.head_dim or self.d_model // self.num_heads

    @property
    def ff_size(self) -> int:
        return self.d_ff or 4 * self.d_model

    @classmethod
    def from_config(cls, config: Any):
        """Builds from an instance, a ConfigDict or a mapping; ignores family/size.

        Unknown fields raise, naming the valid ones (a typo must not pass silently).
        """
        if isinstance(config, cls):
            return config
        items = dict(config.items() if hasattr(config, "items") else config)
        for ignored in ("family", "size"):
            items.pop(ignored, None)
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(items) - valid)
        if unknown:
            raise ValueError(f"Unknown {cls.NAME} config fields {unknown}; valid: {sorted(valid)}.")
        return cls(**items)


@dataclasses.dataclass(frozen=True)
class LMConfig(ArchConfig):
    """Architecture of a `DecoderLM` (the `config.model` fields, minus family/size).

    Attributes:
      vocab_size: V.
      d_model: D.
      num_layers: L.
      num_heads: N query heads.
      num_kv_heads: K key/value heads; 0 = N (MHA), 1 = MQA, else GQA.
      head_dim: H; 0 = D // N.
      d_ff: F; 0 = 4 D.
      max_len: longest sequence (learned-position table size; generate's limit).
      norm: "pre" (GPT-2) or "post" (Vaswani et al. 2017).
      norm_type: "layernorm" or "rmsnorm".
      position: relative ("rope", "alibi", "relative") or absolute ("sinusoidal",
        "learned") positions, or "none".
      score: attention score (`attn_jax.ops.scores.SCORES`).
      kernel: attention kernel (`attn_jax.ops.kernels.KERNELS`).
      window: causal sliding window size; 0 = full causal attention.
      num_features: Performer's random features M (kernel "performer"); 0 = the
        kernel's default (256). About H log H suffices (Choromanski et al. 2021).
      proj_len: Linformer's projected length R (kernel "linformer"); 0 = its default (64).
      sparse_block: block size of the Sparse Transformer's strided mask (`MaskSpec.block`;
        Child et al. 2019); 0 = none. A mask like `window`: "xla" applies it densely,
        "block_sparse" computes only the blocks it keeps (and counts only those FLOPs).
      sparse_stride: stride in blocks of that pattern (`MaskSpec.stride`); 0 = none.
      tie_embeddings: output head = token embedding transposed (Press & Wolf 2017).
      dropout: residual and embedding dropout.
      attn_dropout: attention-weight dropout.
      dtype: compute dtype ("float32", "bfloat16", or "auto": bfloat16 on GPU/TPU,
        float32 on CPU); parameters and logits stay float32.
      rope_base: RoPE frequency base.
      relative_buckets: T5 relative-bias buckets per layer.
      relative_max_distance: T5 bucket range.
      norm_eps: the norms' epsilon (GPT-2 1e-5; BERT and ViT 1e-12).
      bias: biases on the attention q/k/v and output projections and on both MLP
        layers (GPT-2, BERT and ViT have them); False = none.
      activation: the MLP's GELU: "gelu_tanh" (tanh approximation, GPT-2's
        "gelu_new") or "gelu_erf" (exact, BERT's and ViT's "gelu").
    """

    vocab_size: int = 256
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
    window: int = 0
    num_features: int = 0
    proj_len: int = 0
    sparse_block: int = 0
    sparse_stride: int = 0
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

    NAME = "LM"

    # Which kernel reads each option: set for another kernel, it would do nothing.
    KERNEL_OPTIONS = {"num_features": ("performer",), "proj_len": ("linformer",)}

    def __post_init__(self):
        super().__post_init__()
        for name in ("num_features", "proj_len", "sparse_block", "sparse_stride"):
            if getattr(self, name) < 0:
                raise ValueError(f"LMConfig.{name} must be >= 0, got {getattr(self, name)}.")
        for name, kernels in self.KERNEL_OPTIONS.items():
            value = getattr(self, name)
            if value and self.kernel not in kernels:
                raise ValueError(
                    f"LMConfig.{name}={value} is read by kernel {'/'.join(kernels)} only; "
                    f"kernel={self.kernel!r} would ignore it (set it to 0 or change the kernel)."
                )

    @property
    def kernel_options(self) -> dict[str, int]:
        """The kernel's init/call options that are set (num_features, proj_len)."""
        return {k: getattr(self, k) for k in ("num_features", "proj_len") if getattr(self, k)}


def lm_config(size: str, **overrides: Any) -> LMConfig:
    """An LMConfig of a SIZES entry with overrides, e.g. `lm_config("s", position="alibi")`."""
    if size not in SIZES:
        raise ValueError(f"Unknown size {size!r}; valid sizes: {list(SIZES)}.")
    return LMConfig(**{**SIZES[size], **overrides})


class DecoderLM(nnx.Module):
    """Causal Transformer LM: Embed -> L Blocks -> (final norm) -> head.

    Args:
      config: an `LMConfig` (or a mapping / ConfigDict of its fields).
      rngs: NNX rngs (`params` stream).
    """

    def __init__(self, config: LMConfig | Mapping[str, Any], *, rngs: nnx.Rngs):
        cfg = LMConfig.from_config(config)
        self.config = cfg
        dtype = compute_dtype(cfg.dtype)
        absolute = cfg.position if cfg.position in ABSOLUTE_POSITIONS else "none"
        relative = cfg.position if cfg.position in POSITIONS else "none"
        self.embed = Embed(
            cfg.vocab_size,
            cfg.d_model,
            position=absolute,
            max_len=cfg.max_len,
            rngs=rngs,
            dtype=dtype,
        )
        # GPT-2: residual output projections scaled by 1/sqrt(2L) at init.
        out_scale = 1.0 / math.sqrt(2 * cfg.num_layers)
        self.blocks = nnx.List(
            [
                Block(
                    cfg.d_model,
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
                    causal=True,
                    window=cfg.window,
                    sparse_block=cfg.sparse_block,
                    sparse_stride=cfg.sparse_stride,
                    kernel_options=cfg.kernel_options,
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
        # Post-norm blocks end in a norm already; pre-norm needs one before the head.
        self.final_norm = (
            Norm(cfg.d_model, cfg.norm_type, eps=cfg.norm_eps) if cfg.norm == "pre" else None
        )
        head_init = jax.nn.initializers.normal(cfg.d_model**-0.5)
        self.head = (
            None
            if cfg.tie_embeddings
            else nnx.Param(head_init(rngs.params(), (cfg.d_model, cfg.vocab_size), jnp.float32))
        )

    def init_cache(self, batch_size: int, max_len: int | None = None) -> list:
        """Empty KV caches, one per layer, of `max_len` (default config.max_len) positions."""
        max_len = max_len or self.config.max_len
        dtype = compute_dtype(self.config.dtype)
        return [b.attn.init_cache(batch_size, max_len, dtype) for b in self.blocks]

    def __call__(
        self,
        inputs_BT: jnp.ndarray,
        *,
        deterministic: bool = True,
        dropout_rng: jax.Array | None = None,
        positions_BT: jnp.ndarray | None = None,
        cache: list | None = None,
    ):
        """Next-token logits.

        Args:
          inputs_BT: int token ids.
          deterministic: no dropout when True.
          dropout_rng: PRNG key for dropout (needed when not deterministic and rates > 0).
          positions_BT: absolute positions (default: cache index + arange(T)).
          cache: per-layer KV caches from `init_cache` (incremental decoding).

        Returns:
          logits_BTV in float32, or (logits_BTV, new_cache) when `cache` is given.
        """
        T = inputs_BT.shape[1]
        if positions_BT is None:
            offset = cache[0].index if cache is not None else 0
            positions_BT = (jnp.arange(T, dtype=jnp.int32) + offset)[None, :]
        rngs = (
            [None] * (len(self.blocks) + 1)
            if dropout_rng is None
            else list(jax.random.split(dropout_rng, len(self.blocks) + 1))
        )
        x_BTD = self.embed(inputs_BT, positions_BT)
        x_BTD = dropout(x_BTD, self.config.dropout, rngs[-1], deterministic)
        new_cache = []
        for i, block in enumerate(self.blocks):
            out = block(
                x_BTD,
                positions_BT=positions_BT,
                cache=None if cache is None else cache[i],
                deterministic=deterministic,
                dropout_rng=rngs[i],
            )
            if cache is None:
                x_BTD = out
            else:
                x_BTD, layer_cache = out
                new_cache.append(layer_cache)
        if self.final_norm is not None:
            x_BTD = self.final_norm(x_BTD)
        if self.head is None:
            logits_BTV = self.embed.attend(x_BTD)
        else:
            w_DV = self.head[...].astype(x_BTD.dtype)
            logits_BTV = jnp.einsum("BTD,DV->BTV", x_BTD, w_DV, preferred_element_type=jnp.float32)
        logits_BTV = logits_BTV.astype(jnp.float32)
        return logits_BTV if cache is None else (logits_BTV, new_cache)
