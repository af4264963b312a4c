"""The name-pattern tables that map Hugging Face tensors onto attn_jax parameters.

A table is a list of `Rule`s: an attn_jax parameter path (dots, "{i}" for the
layer index), the Hugging Face tensor name(s) it comes from, and the name of a
`TRANSFORMS` entry that turns those tensors into the parameter and back. The
same table drives both directions, so import and export cannot disagree:

    Rule("blocks.{i}.attn.w_qkv", ("h.{i}.attn.c_attn.weight",), "conv1d_in")
    Rule("blocks.{i}.attn.w_qkv", ("...query.weight", "...key.weight", "...value.weight"),
         "linear_in", concat_axis=1)          # three tensors, concatenated on ours' axis 1

Shapes (the model's, the letters of attn_jax/ops/attention.py): torch `Linear`
weights are [out, in], GPT-2's `Conv1D` weights [in, out]; attn_jax keeps
[in, out] with head axes split out (w_qkv [D, M, H], w_out [N, H, D]). Every
parameter of the model must be produced by exactly one rule and every tensor
of the file consumed by one (or named in the family's `ignore` patterns):
anything else is a `MappingError` naming the tensor.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


class MappingError(ValueError):
    """A checkpoint and a table (or a model and a table) do not fit; the message says how."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row of a table.

    Attributes:
      ours: attn_jax parameter path, e.g. "blocks.{i}.mlp.w_fc" ("{i}": per layer).
      hf: the Hugging Face tensor names (several: concatenated on `concat_axis`).
      transform: a key of `TRANSFORMS`, applied to each HF tensor.
      concat_axis: the axis of ours that several HF tensors are concatenated along
        (equal parts; None for one tensor).
    """

    ours: str
    hf: tuple[str, ...]
    transform: str = "same"
    concat_axis: int | None = None

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise ValueError(f"Unknown transform {self.transform!r}; valid: {sorted(TRANSFORMS)}.")
        if (len(self.hf) > 1) != (self.concat_axis is not None):
            raise ValueError(f"Rule {self.ours}: several hf names need a concat_axis, one none.")


# name -> (to_ours(hf_array, ours_shape, cfg), to_hf(ours_array, cfg)). ours_shape may hold
# one -1 (the concatenated axis of a several-tensor rule). cfg: the attn_jax model config.
Transform = tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]


def _patch_to_ours(x_DCpp, shape, cfg):
    # conv kernel [D, C, p, p] -> [(p, p, C), D]: attn_jax.models.vit.patchify's order
    return x_DCpp.transpose(2, 3, 1, 0).reshape(shape)


def _patch_to_hf(w_XD, cfg):
    p, C = cfg.patch_size, cfg.channels
    return w_XD.reshape(p, p, C, -1).transpose(3, 2, 0, 1)


TRANSFORMS: dict[str, Transform] = {
    # the same array
    "same": (lambda x, shape, cfg: x.reshape(shape), lambda y, cfg: y),
    # torch Linear [out, in] <-> ours [in, *out] (the out axis split into heads)
    "linear_in": (lambda x, shape, cfg: x.T.reshape(shape), lambda y, cfg: y.reshape(len(y), -1).T),
    # torch Linear [out, in] <-> ours [*in, out] (the in axis split into heads)
    "linear_out": (
        lambda x, shape, cfg: x.T.reshape(shape),
        lambda y, cfg: y.reshape(-1, y.shape[-1]).T,
    ),
    # GPT-2 Conv1D [in, out] <-> ours [in, *out]
    "conv1d_in": (lambda x, shape, cfg: x.reshape(shape), lambda y, cfg: y.reshape(len(y), -1)),
    # GPT-2 Conv1D [in, out] <-> ours [*in, out]
    "conv1d_out": (
        lambda x, shape, cfg: x.reshape(shape),
        lambda y, cfg: y.reshape(-1, y.shape[-1]),
    ),
    # a flat bias [M*H] <-> ours [M, H]
    "flat": (lambda x, shape, cfg: x.reshape(shape), lambda y, cfg: y.reshape(-1)),
    # HF's leading singleton axes: cls_token [1, 1, D], position_embeddings [1, T, D]
    "unsqueeze1": (lambda x, shape, cfg: x.reshape(shape), lambda y, cfg: y[None]),
    "unsqueeze2": (lambda x, shape, cfg: x.reshape(shape), lambda y, cfg: y[None, None]),
    # ViT's conv patch embedding [D, C, p, p] <-> ours [X, D]
    "patch_conv": (_patch_to_ours, _patch_to_hf),
}


def expand(table: Sequence[Rule], num_layers: int) -> list[Rule]:
    """The table with every "{i}" row repeated for layers 0..L-1."""
    out = []
    for rule in table:
        layers = range(num_layers) if "{i}" in rule.ours else [None]
        for i in layers:
            fill = (lambda s: s) if i is None else (lambda s, i=i: s.replace("{i}", str(i)))
            out.append(
                dataclasses.replace(rule, ours=fill(rule.ours), hf=tuple(map(fill, rule.hf)))
            )
    seen: dict[str, str] = {}
    for rule in out:
        for name in (rule.ours, *(f"hf:{h}" for h in rule.hf)):
            if name in seen:
                raise MappingError(f"The table maps {name} twice.")
            seen[name] = rule.ours
    return out


def flat_params(model) -> dict[str, Any]:
    """{dotted path: nnx.Param} of a model's parameters ("blocks.0.attn.w_qkv")."""
    from flax import nnx

    state = nnx.state(model, nnx.Param)
    return {".".join(map(str, path)): v for path, v in nnx.to_flat_state(state)}


def _check_covered(params: Mapping[str, Any], rules: Sequence[Rule], family: str) -> None:
    """Every parameter has a rule and every rule a parameter, or a MappingError naming them."""
    unmapped = sorted(set(params) - {r.ours for r in rules})
    if unmapped:
        raise MappingError(
            f"attn_jax parameter(s) {unmapped} have no Hugging Face {family} mapping: the model "
            f"uses an option the {family} format cannot hold (see attn_jax/hf/{family}.py)."
        )
    missing = sorted({r.ours for r in rules} - set(params))
    if missing:
        raise MappingError(f"The {family} table names parameters the model lacks: {missing}.")


def to_ours(
    tensors: Mapping[str, np.ndarray],
    model,
    rules: Sequence[Rule],
    family: str,
    *,
    ignore: Sequence[str] = (),
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The model's parameters from HF tensors.

    Args:
      tensors: {HF name: array} (already normalized: prefixes stripped, aliases merged).
      model: the attn_jax model (its parameter shapes are the targets).
      rules: the expanded table.
      family: for messages ("gpt2", "bert", "vit").
      ignore: regexes of HF names that carry nothing attn_jax models (buffers, unused heads).

    Returns:
      ({ours path: float32 array}, [ignored HF names]).
    """
    params = flat_params(model)
    _check_covered(params, rules, family)
    out, used = {}, set()
    for rule in rules:
        absent = [h for h in rule.hf if h not in tensors]
        if absent:
            raise MappingError(
                f"The {family} checkpoint has no tensor {absent[0]} (for attn_jax {rule.ours}); "
                "is it a checkpoint of this family, with the config.json beside it?"
            )
        to_ours_fn, _ = TRANSFORMS[rule.transform]
        shape = tuple(params[rule.ours].shape)
        if rule.concat_axis is None:
            parts = [np.asarray(tensors[rule.hf[0]])]
            piece = shape
        else:
            parts = [np.asarray(tensors[h]) for h in rule.hf]
            piece = tuple(-1 if a == rule.concat_axis else n for a, n in enumerate(shape))
        try:
            pieces = [to_ours_fn(p.astype(np.float32), piece, model.config) for p in parts]
        except ValueError as err:
            got = [tuple(p.shape) for p in parts]
            raise MappingError(
                f"{', '.join(rule.hf)} of shape {got} do not fit attn_jax {rule.ours} "
                f"{shape} ({err}); does config.json describe this checkpoint?"
            ) from None
        value = pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=rule.concat_axis)
        if value.shape != shape:
            raise MappingError(
                f"{', '.join(rule.hf)} give {value.shape} for attn_jax {rule.ours}, which is {shape}."
            )
        out[rule.ours] = value
        used.update(rule.hf)
    rest = sorted(set(tensors) - used)
    ignored = [n for n in rest if any(re.fullmatch(p, n) for p in ignore)]
    unknown = sorted(set(rest) - set(ignored))
    if unknown:
        raise MappingError(
            f"The {family} checkpoint has tensor(s) no attn_jax parameter takes: {unknown[:8]}"
            f"{' ...' if len(unknown) > 8 else ''} ({len(unknown)}); the model would silently "
            "differ from the checkpoint. Is config.json the one saved with these weights?"
        )
    return out, ignored


def to_hf(model, rules: Sequence[Rule], family: str) -> dict[str, np.ndarray]:
    """{HF name: float32 array} of a model's parameters (the inverse of `to_ours`)."""
    params = flat_params(model)
    _check_covered(params, rules, family)
    cfg = model.config
    out = {}
    for rule in rules:
        _, to_hf_fn = TRANSFORMS[rule.transform]
        value = np.asarray(params[rule.ours][...], np.float32)
        parts = (
            [value]
            if rule.concat_axis is None
            else np.split(value, len(rule.hf), axis=rule.concat_axis)
        )
        for name, part in zip(rule.hf, parts, strict=True):
            out[name] = np.ascontiguousarray(to_hf_fn(part, cfg))
    return out


def set_params(model, values: Mapping[str, np.ndarray]) -> None:
    """Writes {ours path: array} into the model's parameters (in place)."""
    import jax.numpy as jnp
    from flax import nnx

    state = nnx.state(model, nnx.Param)
    flat = [
        (path, v.replace(jnp.asarray(values[".".join(map(str, path))], v.dtype)))
        for path, v in nnx.to_flat_state(state)
    ]
    nnx.update(model, nnx.from_flat_state(flat))
