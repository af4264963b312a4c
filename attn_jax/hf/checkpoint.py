"""Hugging Face checkpoint directories <-> attn_jax models, through safetensors (no torch).

A directory as `save_pretrained` writes it: config.json and model.safetensors
(or shards named by model.safetensors.index.json). `load_model(dir)` picks the
`Format` from config.json's model_type, builds the attn_jax model its config
describes and fills every parameter through the format's table;
`save_model(model, dir)` writes the same two files back, under the head
model's names (GPT2LMHeadModel, BertForMaskedLM, ViTForImageClassification),
so `transformers` loads them with `from_pretrained(dir)`. The files are read and
written by attn_jax.hf.st_format (numpy only); float16/bfloat16 checkpoints load
as float32 parameters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from attn_jax.hf import bert, gpt2, st_format, vit
from attn_jax.hf import mapping as mapping_lib
from attn_jax.hf.formats import Format
from attn_jax.hf.mapping import MappingError

FORMATS: dict[str, Format] = {f.name: f for f in (gpt2.FORMAT, bert.FORMAT, vit.FORMAT)}
# attn_jax family -> the HF format its models are written as
FAMILY_FORMATS = {f.family: f.name for f in FORMATS.values()}
WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
INSTALL = "pip install -e '.[hf]'"


def read_config(directory: str) -> dict:
    """config.json of a checkpoint directory; a MappingError naming what is missing."""
    path = os.path.join(directory, "config.json")
    if not os.path.exists(path):
        raise MappingError(
            f"{directory} has no config.json: point --from at a save_pretrained directory."
        )
    with open(path) as f:
        return json.load(f)


def read_tensors(directory: str) -> dict[str, np.ndarray]:
    """{name: array} of model.safetensors or its shards (model.safetensors.index.json)."""
    index = os.path.join(directory, INDEX)
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.exists(os.path.join(directory, WEIGHTS)):
        files = [WEIGHTS]
    else:
        torch_only = any(n.endswith((".bin", ".pt", ".pth")) for n in os.listdir(directory))
        hint = (
            " It has PyTorch pickles only: re-save it with safe_serialization=True "
            "(torch is not needed here and pickles are not read)."
            if torch_only
            else ""
        )
        raise MappingError(f"{directory} has no {WEIGHTS} nor {INDEX}.{hint}")
    tensors: dict[str, np.ndarray] = {}
    for name in files:
        try:
            tensors.update(st_format.load_file(os.path.join(directory, name)))
        except st_format.SafetensorsError as err:
            raise MappingError(str(err)) from None
    return tensors


def format_for(hf_config: Mapping[str, Any], family: str | None = None) -> Format:
    """The Format of a config.json's model_type; `family` (if given) must agree."""
    model_type = hf_config.get("model_type")
    by_type = {f.model_type: f for f in FORMATS.values()}
    if model_type not in by_type:
        raise MappingError(
            f"config.json model_type={model_type!r} is not supported; supported: "
            f"{sorted(by_type)} (families {sorted(FAMILY_FORMATS)})."
        )
    fmt = by_type[model_type]
    if family is not None and family != fmt.family:
        raise MappingError(
            f"--family {family} does not fit model_type {model_type!r} (its family is "
            f"{fmt.family!r})."
        )
    return fmt


def format_of_model(model) -> Format:
    for fmt in FORMATS.values():
        if type(model) is fmt.model_class:
            return fmt
    raise MappingError(
        f"No Hugging Face format for {type(model).__name__}; supported: "
        f"{[f.model_class.__name__ for f in FORMATS.values()]}."
    )


def model_config(hf_config: Mapping[str, Any], family: str | None = None):
    """(Format, attn_jax model config) of a config.json."""
    fmt = format_for(hf_config, family)
    return fmt, fmt.from_hf_config(hf_config)


def load_model(directory: str, *, family: str | None = None, seed: int = 0):
    """The attn_jax model of a checkpoint directory, with its weights.

    Args:
      directory: config.json + model.safetensors (save_pretrained's layout).
      family: "lm", "mlm" or "vit" to insist on one (an error if config.json is another).
      seed: builds the model (every parameter is then overwritten).

    Returns:
      (model, fmt, ignored): the NNX model, its `Format`, and the checkpoint tensors
      that were left out on purpose (the format's `ignore` patterns).
    """
    from flax import nnx

    fmt, cfg = model_config(read_config(directory), family)
    tensors = fmt.normalize(read_tensors(directory), cfg)
    model = fmt.model_class(cfg, rngs=nnx.Rngs(seed))
    rules = mapping_lib.expand(fmt.table(cfg), cfg.num_layers)
    values, ignored = mapping_lib.to_ours(tensors, model, rules, fmt.name, ignore=fmt.ignore)
    mapping_lib.set_params(model, values)
    return model, fmt, ignored


def hf_tensors(model) -> tuple[dict, dict[str, np.ndarray]]:
    """(config.json dict, {HF name: float32 array}) of an attn_jax model."""
    fmt = format_of_model(model)
    hf_config = fmt.to_hf_config(model.config)
    rules = mapping_lib.expand(fmt.table(model.config), model.config.num_layers)
    return hf_config, fmt.hf_names(mapping_lib.to_hf(model, rules, fmt.name))


def save_model(model, directory: str) -> dict:
    """Writes config.json and model.safetensors of `model` to `directory`; returns the config."""
    hf_config, tensors = hf_tensors(model)
    os.makedirs(directory, exist_ok=True)
    # "pt": the metadata transformers reads to accept a file for its torch models
    st_format.save_file(tensors, os.path.join(directory, WEIGHTS), metadata={"format": "pt"})
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(hf_config, f, indent=1, sort_keys=True)
    return hf_config
