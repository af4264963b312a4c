"""BERT (`BertForMaskedLM`, Devlin et al. 2019) <-> `attn_jax.models.encoder.Encoder`.

BERT is post-norm, with learned absolute positions, token-type embeddings and a
LayerNorm on the summed embeddings, biases everywhere, exact GELU, LayerNorm
eps 1e-12 and the MLM head (transform dense + GELU + LayerNorm, then a decoder
tied to the token table with its own bias): `EncoderConfig(norm="post",
position="learned", type_vocab_size=2, embed_norm=True, bias=True,
activation="gelu_erf", norm_eps=1e-12)`. Its q, k and v are three torch
Linears [N H, D]: w_qkv [D, 3N, H] is their transposes concatenated. The
pooler and the next-sentence head (BertForPreTraining) have no attn_jax
counterpart: import reports them as ignored.
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
from attn_jax.models.encoder import Encoder, EncoderConfig
from attn_jax.models.flops import DENSE_KERNELS

_LAYER = "encoder.layer.{i}."


def table(cfg: EncoderConfig) -> list[Rule]:
    attn = _LAYER + "attention."
    rules = [
        Rule("embed.embedding", ("embeddings.word_embeddings.weight",)),
        Rule("embed.pos_table", ("embeddings.position_embeddings.weight",)),
        Rule("type_embedding", ("embeddings.token_type_embeddings.weight",)),
        Rule("embed_norm.scale", ("embeddings.LayerNorm.weight",)),
        Rule("embed_norm.bias", ("embeddings.LayerNorm.bias",)),
        Rule(
            "blocks.{i}.attn.w_qkv",
            tuple(f"{attn}self.{n}.weight" for n in ("query", "key", "value")),
            "linear_in",
            concat_axis=1,
        ),
        Rule(
            "blocks.{i}.attn.b_qkv",
            tuple(f"{attn}self.{n}.bias" for n in ("query", "key", "value")),
            "flat",
            concat_axis=0,
        ),
        Rule("blocks.{i}.attn.w_out", (attn + "output.dense.weight",), "linear_out"),
        Rule("blocks.{i}.attn.b_out", (attn + "output.dense.bias",)),
        Rule("blocks.{i}.attn_norm.scale", (attn + "output.LayerNorm.weight",)),
        Rule("blocks.{i}.attn_norm.bias", (attn + "output.LayerNorm.bias",)),
        Rule("blocks.{i}.mlp.w_fc", (_LAYER + "intermediate.dense.weight",), "linear_in"),
        Rule("blocks.{i}.mlp.b_fc", (_LAYER + "intermediate.dense.bias",)),
        Rule("blocks.{i}.mlp.w_proj", (_LAYER + "output.dense.weight",), "linear_in"),
        Rule("blocks.{i}.mlp.b_proj", (_LAYER + "output.dense.bias",)),
        Rule("blocks.{i}.mlp_norm.scale", (_LAYER + "output.LayerNorm.weight",)),
        Rule("blocks.{i}.mlp_norm.bias", (_LAYER + "output.LayerNorm.bias",)),
        Rule("head_w_DD", ("cls.predictions.transform.dense.weight",), "linear_in"),
        Rule("head_b_D", ("cls.predictions.transform.dense.bias",)),
        Rule("head_norm.scale", ("cls.predictions.transform.LayerNorm.weight",)),
        Rule("head_norm.bias", ("cls.predictions.transform.LayerNorm.bias",)),
        Rule("decoder_b_V", ("cls.predictions.bias",)),
    ]
    if not cfg.tie_embeddings:
        rules.append(Rule("decoder_DV", ("cls.predictions.decoder.weight",), "linear_in"))
    return rules


def from_hf_config(hf: Mapping[str, Any]) -> EncoderConfig:
    """The EncoderConfig that computes what this BertForMaskedLM config.json does."""
    require(hf, "model_type", "bert", None, "BERT")
    require(hf, "position_embedding_type", "absolute", "absolute", "BERT")
    require(hf, "is_decoder", False, False, "BERT")
    D, N = int(hf["hidden_size"]), int(hf["num_attention_heads"])
    if D % N:
        raise MappingError(f"BERT hidden_size={D} is not a multiple of num_attention_heads={N}.")
    return EncoderConfig(
        vocab_size=int(hf["vocab_size"]),
        d_model=D,
        num_layers=int(hf["num_hidden_layers"]),
        num_heads=N,
        d_ff=int(hf["intermediate_size"]),
        max_len=int(hf["max_position_embeddings"]),
        norm="post",
        norm_type="layernorm",
        position="learned",
        score="scaled_dot",
        kernel="xla",
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        dropout=float(hf.get("hidden_dropout_prob", 0.1)),
        attn_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
        norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
        bias=True,
        activation=activation_from_hf(hf.get("hidden_act", "gelu"), "BERT"),
        type_vocab_size=int(hf.get("type_vocab_size", 2)),
        embed_norm=True,
    )


def to_hf_config(cfg: EncoderConfig) -> dict:
    """config.json of the BertForMaskedLM that computes what `cfg` does."""
    check_exportable(
        cfg,
        "BERT",
        norm="post",
        norm_type="layernorm",
        position="learned",
        score="scaled_dot",
        kernel=DENSE_KERNELS,
        bias=True,
        embed_norm=True,
        num_kv_heads=(0, cfg.num_heads),
        head_dim=(0, cfg.d_model // cfg.num_heads),
    )
    if cfg.type_vocab_size < 1:
        raise MappingError("BERT needs EncoderConfig.type_vocab_size >= 1 (BERT's is 2).")
    return {
        "model_type": "bert",
        "architectures": ["BertForMaskedLM"],
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.ff_size,
        "max_position_embeddings": cfg.max_len,
        "type_vocab_size": cfg.type_vocab_size,
        "hidden_act": ACTIVATIONS_TO_HF[cfg.activation],
        "layer_norm_eps": cfg.norm_eps,
        "hidden_dropout_prob": cfg.dropout,
        "attention_probs_dropout_prob": cfg.attn_dropout,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": cfg.tie_embeddings,
        "is_decoder": False,
    }


def _ties(cfg: EncoderConfig) -> tuple[tuple[str, str], ...]:
    bias = (("cls.predictions.bias", "cls.predictions.decoder.bias"),)
    if cfg.tie_embeddings:
        return bias + (("embeddings.word_embeddings.weight", "cls.predictions.decoder.weight"),)
    return bias


FORMAT = Format(
    name="bert",
    family="mlm",
    model_type="bert",
    architecture="BertForMaskedLM",
    prefix="bert.",
    model_class=Encoder,
    config_class=EncoderConfig,
    from_hf_config=from_hf_config,
    to_hf_config=to_hf_config,
    table=table,
    # TF-era names of LayerNorm's parameters
    renames=((r"LayerNorm\.gamma$", "LayerNorm.weight"), (r"LayerNorm\.beta$", "LayerNorm.bias")),
    # a buffer, the pooler and the next-sentence head (BertForPreTraining)
    ignore=(r"embeddings\.position_ids", r"pooler\..*", r"cls\.seq_relationship\..*"),
    ties=_ties,
    head_names=(r"cls\..*",),
)
