"""What a Hugging Face model format is to attn_jax: configs both ways, a table, tensor names.

A `Format` (one per model: attn_jax/hf/gpt2.py, bert.py, vit.py) holds
- `from_hf_config(hf_config) -> attn_jax config` and `to_hf_config(cfg) -> dict`
  (config.json), each raising a `MappingError` that names a field the other
  side cannot represent;
- `table(cfg) -> [Rule]` (attn_jax.hf.mapping), the one table of name patterns
  and transforms;
- `prefix`: the base model's prefix in a head model's file ("transformer.",
  "bert.", "vit."): files saved from the base model lack it, and import accepts
  both; export writes the head model's names (`architecture`);
- `renames`: (regex, replacement) applied to names on import, after the prefix
  is dropped (older checkpoints' names: LayerNorm gamma/beta, ViT's
  encoder.layer.* before transformers v5), and `ignore`: regexes of tensors that carry nothing an
  attn_jax model holds (buffers, a pooler, an NSP head), reported, not loaded;
- `ties(cfg)`: (kept, dropped) pairs of tensors that HF ties for this config
  (saved once or twice); on import a present duplicate must equal its partner.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from attn_jax.hf.mapping import MappingError, Rule

ACTIVATIONS_FROM_HF = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": None,  # another tanh form, not bit-equal to ours: refused
    "gelu": "gelu_erf",
}
ACTIVATIONS_TO_HF = {"gelu_tanh": "gelu_new", "gelu_erf": "gelu"}


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    family: str
    model_type: str
    architecture: str
    prefix: str
    config_class: type
    model_class: type
    from_hf_config: Callable[[Mapping[str, Any]], Any]
    to_hf_config: Callable[[Any], dict]
    table: Callable[[Any], list[Rule]]
    renames: tuple[tuple[str, str], ...] = ()
    ignore: tuple[str, ...] = ()
    ties: Callable[[Any], tuple[tuple[str, str], ...]] = lambda cfg: ()
    head_names: tuple[str, ...] = ()  # regexes of names outside the base model (no prefix)

    def normalize(self, tensors: Mapping[str, np.ndarray], cfg: Any) -> dict[str, np.ndarray]:
        """Names as the table spells them: renames applied, the base prefix dropped, ties merged."""
        out: dict[str, np.ndarray] = {}
        for name, value in tensors.items():
            if name.startswith(self.prefix):
                name = name[len(self.prefix) :]
            for pattern, repl in self.renames:
                name = re.sub(pattern, repl, name)
            if name in out:
                raise MappingError(f"The checkpoint holds {name} twice (with and without prefix).")
            out[name] = value
        for kept, dropped in self.ties(cfg):
            if dropped in out and kept in out:
                if not np.array_equal(out[kept], out[dropped]):
                    raise MappingError(
                        f"{dropped} differs from {kept}, which HF ties to it: untied weights "
                        f"are not a {self.architecture} this config describes."
                    )
                del out[dropped]
            elif dropped in out:
                out[kept] = out.pop(dropped)
        return out

    def hf_names(self, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Export: the base model's names get the prefix, the heads' keep theirs."""
        return {
            (n if any(re.fullmatch(p, n) for p in self.head_names) else self.prefix + n): v
            for n, v in tensors.items()
        }


def require(hf_config: Mapping[str, Any], key: str, expected: Any, default: Any, fmt: str) -> None:
    """A MappingError unless hf_config[key] (default `default`) == expected."""
    value = hf_config.get(key, default)
    if value != expected:
        raise MappingError(
            f"{fmt} config {key}={value!r} is not supported (attn_jax reproduces {expected!r} only)."
        )


def activation_from_hf(name: str, fmt: str) -> str:
    ours = ACTIVATIONS_FROM_HF.get(name)
    if ours is None:
        raise MappingError(
            f"{fmt} activation {name!r} has no exact attn_jax equivalent; supported: "
            f"{sorted(k for k, v in ACTIVATIONS_FROM_HF.items() if v)}."
        )
    return ours


def check_exportable(cfg: Any, fmt: str, **expected: Any) -> None:
    """A MappingError naming the first attn_jax config field that `fmt` cannot hold."""
    for field, want in expected.items():
        value = getattr(cfg, field)
        ok = value in want if isinstance(want, tuple) else value == want
        if not ok:
            raise MappingError(
                f"{type(cfg).__name__}.{field}={value!r} cannot be written as {fmt}: "
                f"it needs {field}={want!r}."
            )
