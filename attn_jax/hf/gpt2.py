"""GPT-2 (`GPT2LMHeadModel`, Radford et al. 2019) <-> `attn_jax.models.lm.DecoderLM`.

GPT-2 is a pre-norm decoder with learned absolute positions, biases on every
projection, tanh GELU ("gelu_new"), LayerNorm eps 1e-5 and the head tied to
the token table: `LMConfig(norm="pre", position="learned", bias=True,
activation="gelu_tanh", norm_eps=1e-5)`. Its `Conv1D` weights are already
[in, out]; c_attn fuses q, k and v as [D, 3 N H], which is w_qkv [D, 3N, H]
reshaped (q's N heads, then k's, then v's). Dropouts: resid_pdrop is
`dropout` (embd_pdrop is written equal to it), attn_pdrop `attn_dropout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attn_jax.hf.formats import (
    ACTIVATIONS_TO_HF,
    Format,
    activation_from_hf,
    check_exportable,
    require,
)
from attn_jax.hf.mapping import MappingError, Rule
from attn_jax.models.flops import DENSE_KERNELS
from attn_jax.models.lm import DecoderLM, LMConfig


def table(cfg: LMConfig) -> list[Rule]:
    rules = [
        Rule("embed.embedding", ("wte.weight",)),
        Rule("embed.pos_table", ("wpe.weight",)),
        Rule("blocks.{i}.attn_norm.scale", ("h.{i}.ln_1.weight",)),
        Rule("blocks.{i}.attn_norm.bias", ("h.{i}.ln_1.bias",)),
        Rule("blocks.{i}.attn.w_qkv", ("h.{i}.attn.c_attn.weight",), "conv1d_in"),
        Rule("blocks.{i}.attn.b_qkv", ("h.{i}.attn.c_attn.bias",), "flat"),
        Rule("blocks.{i}.attn.w_out", ("h.{i}.attn.c_proj.weight",), "conv1d_out"),
        Rule("blocks.{i}.attn.b_out", ("h.{i}.attn.c_proj.bias",)),
        Rule("blocks.{i}.mlp_norm.scale", ("h.{i}.ln_2.weight",)),
        Rule("blocks.{i}.mlp_norm.bias", ("h.{i}.ln_2.bias",)),
        Rule("blocks.{i}.mlp.w_fc", ("h.{i}.mlp.c_fc.weight",)),
        Rule("blocks.{i}.mlp.b_fc", ("h.{i}.mlp.c_fc.bias",)),
        Rule("blocks.{i}.mlp.w_proj", ("h.{i}.mlp.c_proj.weight",)),
        Rule("blocks.{i}.mlp.b_proj", ("h.{i}.mlp.c_proj.bias",)),
        Rule("final_norm.scale", ("ln_f.weight",)),
        Rule("final_norm.bias", ("ln_f.bias",)),
    ]
    if not cfg.tie_embeddings:  # lm_head [V, D] is a torch Linear
        rules.append(Rule("head", ("lm_head.weight",), "linear_in"))
    return rules


def from_hf_config(hf: Mapping[str, Any]) -> LMConfig:
    """The LMConfig that computes what this GPT2LMHeadModel config.json does."""
    for key, want, default in (
        ("model_type", "gpt2", None),
        ("scale_attn_weights", True, True),
        ("scale_attn_by_inverse_layer_idx", False, False),
        ("add_cross_attention", False, False),
    ):
        require(hf, key, want, default, "GPT-2")
    D, N = int(hf["n_embd"]), int(hf["n_head"])
    if D % N:
        raise MappingError(f"GPT-2 n_embd={D} is not a multiple of n_head={N}.")
    return LMConfig(
        vocab_size=int(hf["vocab_size"]),
        d_model=D,
        num_layers=int(hf["n_layer"]),
        num_heads=N,
        d_ff=int(hf.get("n_inner") or 4 * D),
        max_len=int(hf["n_positions"]),
        norm="pre",
        norm_type="layernorm",
        position="learned",
        score="scaled_dot",
        kernel="xla",
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        dropout=float(hf.get("resid_pdrop", 0.1)),
        attn_dropout=float(hf.get("attn_pdrop", 0.1)),
        norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),
        bias=True,
        activation=activation_from_hf(hf.get("activation_function", "gelu_new"), "GPT-2"),
    )


def to_hf_config(cfg: LMConfig) -> dict:
    """config.json of the GPT2LMHeadModel that computes what `cfg` does."""
    check_exportable(
        cfg,
        "GPT-2",
        norm="pre",
        norm_type="layernorm",
        position="learned",
        score="scaled_dot",
        kernel=DENSE_KERNELS,
        window=0,
        sparse_block=0,
        sparse_stride=0,
        bias=True,
        num_kv_heads=(0, cfg.num_heads),
        head_dim=(0, cfg.d_model // cfg.num_heads),
    )
    if cfg.d_model % cfg.num_heads:
        raise MappingError(
            f"GPT-2 needs d_model % num_heads == 0, got {cfg.d_model}, {cfg.num_heads}."
        )
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": cfg.vocab_size,
        "n_embd": cfg.d_model,
        "n_layer": cfg.num_layers,
        "n_head": cfg.num_heads,
        "n_inner": cfg.ff_size,
        "n_positions": cfg.max_len,
        "activation_function": ACTIVATIONS_TO_HF[cfg.activation],
        "layer_norm_epsilon": cfg.norm_eps,
        "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout,
        "attn_pdrop": cfg.attn_dropout,
        "tie_word_embeddings": cfg.tie_embeddings,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
    }


FORMAT = Format(
    name="gpt2",
    family="lm",
    model_type="gpt2",
    architecture="GPT2LMHeadModel",
    prefix="transformer.",
    model_class=DecoderLM,
    config_class=LMConfig,
    from_hf_config=from_hf_config,
    to_hf_config=to_hf_config,
    table=table,
    # the causal-mask buffers older checkpoints saved
    ignore=(r"h\.\d+\.attn\.(masked_)?bias",),
    ties=lambda cfg: (("wte.weight", "lm_head.weight"),) if cfg.tie_embeddings else (),
    head_names=(r"lm_head\..*",),
)
