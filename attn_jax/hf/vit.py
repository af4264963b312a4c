"""ViT (`ViTForImageClassification`, Dosovitskiy et al. 2021) <-> `attn_jax.models.vit.ViT`.

HF's ViT embeds patches with a conv (kernel [D, C, p, p], stride p), prepends a
class token, adds learned positions, runs pre-norm blocks with biases, exact
GELU and LayerNorm eps 1e-12, and classifies token 0 after the final norm:
`ViTConfig(pool="cls", position="learned", norm="pre", bias=True,
activation="gelu_erf", norm_eps=1e-12)`. The conv kernel is patch_w_XD
[(p, p, C), D] transposed (attn_jax.models.vit.patchify's order); HF takes
pixel_values [B, C, H, W] where attn_jax takes images [B, H, W, C]. Names are
transformers v5's (vit.layers.N.attention.q_proj, mlp.fc1, ...); checkpoints
saved before v5 (vit.encoder.layer.N.attention.attention.query, ...) are
renamed on import. The pooler of a bare ViTModel is ignored.
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
from attn_jax.models.vit import ViT, ViTConfig

_LAYER = "layers.{i}."


def table(cfg: ViTConfig) -> list[Rule]:
    attn = _LAYER + "attention."
    rules = [
        Rule("patch_w_XD", ("embeddings.patch_embeddings.projection.weight",), "patch_conv"),
        Rule("patch_b_D", ("embeddings.patch_embeddings.projection.bias",)),
        Rule("cls_D", ("embeddings.cls_token",), "unsqueeze2"),
        Rule("pos_TD", ("embeddings.position_embeddings",), "unsqueeze1"),
        Rule("blocks.{i}.attn_norm.scale", (_LAYER + "layernorm_before.weight",)),
        Rule("blocks.{i}.attn_norm.bias", (_LAYER + "layernorm_before.bias",)),
        Rule(
            "blocks.{i}.attn.w_qkv",
            tuple(f"{attn}{n}_proj.weight" for n in "qkv"),
            "linear_in",
            concat_axis=1,
        ),
        Rule(
            "blocks.{i}.attn.b_qkv",
            tuple(f"{attn}{n}_proj.bias" for n in "qkv"),
            "flat",
            concat_axis=0,
        ),
        Rule("blocks.{i}.attn.w_out", (attn + "o_proj.weight",), "linear_out"),
        Rule("blocks.{i}.attn.b_out", (attn + "o_proj.bias",)),
        Rule("blocks.{i}.mlp_norm.scale", (_LAYER + "layernorm_after.weight",)),
        Rule("blocks.{i}.mlp_norm.bias", (_LAYER + "layernorm_after.bias",)),
        Rule("blocks.{i}.mlp.w_fc", (_LAYER + "mlp.fc1.weight",), "linear_in"),
        Rule("blocks.{i}.mlp.b_fc", (_LAYER + "mlp.fc1.bias",)),
        Rule("blocks.{i}.mlp.w_proj", (_LAYER + "mlp.fc2.weight",), "linear_in"),
        Rule("blocks.{i}.mlp.b_proj", (_LAYER + "mlp.fc2.bias",)),
        Rule("final_norm.scale", ("layernorm.weight",)),
        Rule("final_norm.bias", ("layernorm.bias",)),
    ]
    if cfg.num_classes:
        rules += [
            Rule("head_w_DC", ("classifier.weight",), "linear_in"),
            Rule("head_b_C", ("classifier.bias",)),
        ]
    return rules


def _num_labels(hf: Mapping[str, Any]) -> int:
    if "id2label" in hf:
        return len(hf["id2label"])
    return int(hf.get("num_labels", 2))


def from_hf_config(hf: Mapping[str, Any]) -> ViTConfig:
    """The ViTConfig that computes what this ViTForImageClassification config.json does."""
    require(hf, "model_type", "vit", None, "ViT")
    require(hf, "qkv_bias", True, True, "ViT")
    D, N = int(hf["hidden_size"]), int(hf["num_attention_heads"])
    if D % N:
        raise MappingError(f"ViT hidden_size={D} is not a multiple of num_attention_heads={N}.")
    return ViTConfig(
        image_size=int(hf["image_size"]),
        patch_size=int(hf["patch_size"]),
        channels=int(hf.get("num_channels", 3)),
        num_classes=_num_labels(hf),
        d_model=D,
        num_layers=int(hf["num_hidden_layers"]),
        num_heads=N,
        d_ff=int(hf["intermediate_size"]),
        pool="cls",
        position="learned",
        norm="pre",
        norm_type="layernorm",
        score="scaled_dot",
        kernel="xla",
        dropout=float(hf.get("hidden_dropout_prob", 0.0)),
        attn_dropout=float(hf.get("attention_probs_dropout_prob", 0.0)),
        norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
        bias=True,
        activation=activation_from_hf(hf.get("hidden_act", "gelu"), "ViT"),
    )


def to_hf_config(cfg: ViTConfig) -> dict:
    """config.json of the ViTForImageClassification that computes what `cfg` does."""
    check_exportable(
        cfg,
        "ViT",
        pool="cls",
        position="learned",
        norm="pre",
        norm_type="layernorm",
        score="scaled_dot",
        kernel=DENSE_KERNELS,
        bias=True,
        num_kv_heads=(0, cfg.num_heads),
        head_dim=(0, cfg.d_model // cfg.num_heads),
    )
    C = cfg.num_classes
    return {
        "model_type": "vit",
        "architectures": ["ViTForImageClassification"],
        "image_size": cfg.image_size,
        "patch_size": cfg.patch_size,
        "num_channels": cfg.channels,
        "hidden_size": cfg.d_model,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.ff_size,
        "hidden_act": ACTIVATIONS_TO_HF[cfg.activation],
        "layer_norm_eps": cfg.norm_eps,
        "hidden_dropout_prob": cfg.dropout,
        "attention_probs_dropout_prob": cfg.attn_dropout,
        "qkv_bias": True,
        "id2label": {str(c): f"LABEL_{c}" for c in range(C)},
        "label2id": {f"LABEL_{c}": c for c in range(C)},
    }


FORMAT = Format(
    name="vit",
    family="vit",
    model_type="vit",
    architecture="ViTForImageClassification",
    prefix="vit.",
    model_class=ViT,
    config_class=ViTConfig,
    from_hf_config=from_hf_config,
    to_hf_config=to_hf_config,
    table=table,
    # names before transformers v5
    renames=(
        (r"^encoder\.layer\.(\d+)\.", r"layers.\1."),
        (r"\.attention\.attention\.query\.", ".attention.q_proj."),
        (r"\.attention\.attention\.key\.", ".attention.k_proj."),
        (r"\.attention\.attention\.value\.", ".attention.v_proj."),
        (r"\.attention\.output\.dense\.", ".attention.o_proj."),
        (r"\.intermediate\.dense\.", ".mlp.fc1."),
        (r"^(layers\.\d+)\.output\.dense\.", r"\1.mlp.fc2."),
    ),
    ignore=(r"pooler\..*",),
    head_names=(r"classifier\..*",),
)
