"""Config validation: every registry choice is checked before any work starts.

`check_config(config, source)` compares each choice a config names (family,
size, kernel, score, position, norm, norm type, dtype, schedule, decay shape,
tokenizer, data name) with the keys of the registry that will serve it, and raises one
ValueError naming the field, the bad value, the valid keys and the experiment:

    config.model.kernel='flsh' is not one of: auto, blockwise, ... (experiments/lm.py).

It runs where configs are resolved: `configs.load_config` and
`configs.apply_overrides` (so the sweep checks every trial before its first
run), `attn_jax.main` after command-line overrides, and the top of
`train_and_evaluate` as the safety net: all before a tokenizer is trained or a
corpus is built. Fields a config does not have are not checked (a test
experiment may carry only a few), and LM-only checks (the model's choices and
`data.name`, which names an LM corpus) run only when the config names the "lm"
family; other families check their own fields where they build.

Data names: the packaged corpora (`attn_jax.data.BUILDERS`), any dataset
registered with tfds in this process (`tfds.list_builders` without community
datasets: offline, under a second), or one already prepared under
`<data root>/tfds/<name>`. A tfds dataset defined in a module that is imported
only later is therefore rejected here; prepare it first, or import its module
before loading the config.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any


def _kernels() -> Iterable[str]:
    from attn_jax.ops.kernels import KERNELS

    return KERNELS


def _scores() -> Iterable[str]:
    from attn_jax.ops.scores import SCORES

    return SCORES


def _positions() -> Iterable[str]:
    from attn_jax.models.lm import LM_POSITIONS

    return LM_POSITIONS


def _norms() -> Iterable[str]:
    from attn_jax.nn.block import NORM_PLACEMENTS

    return NORM_PLACEMENTS


def _norm_types() -> Iterable[str]:
    from attn_jax.nn.norm import NORM_TYPES

    return NORM_TYPES


def _dtypes() -> Iterable[str]:
    from attn_jax.models.lm import DTYPE_NAMES

    return DTYPE_NAMES


def _activations() -> Iterable[str]:
    from attn_jax.nn.mlp import ACTIVATIONS

    return ACTIVATIONS


def _sizes() -> Iterable[str]:
    from attn_jax.models import SIZES

    return SIZES


def _families() -> Iterable[str]:
    from attn_jax.families import FAMILIES

    return FAMILIES


def _schedules() -> Iterable[str]:
    from attn_jax.train.optim import SCHEDULES

    return SCHEDULES


def _decay_shapes() -> Iterable[str]:
    from attn_jax.train.optim import DECAY_SHAPES

    return DECAY_SHAPES


def _tokenizers() -> Iterable[str]:
    from attn_jax.data.tokenizers import TOKENIZERS

    return TOKENIZERS


# dotted config field -> (the registry's keys, checked only for LM configs)
CHOICES: dict[str, tuple[Callable[[], Iterable[str]], bool]] = {
    "family": (_families, False),
    "model.family": (_families, False),
    "model.size": (_sizes, True),
    "model.kernel": (_kernels, True),
    "model.score": (_scores, True),
    "model.position": (_positions, True),
    "model.norm": (_norms, True),
    "model.norm_type": (_norm_types, True),
    "model.dtype": (_dtypes, True),
    "model.activation": (_activations, True),
    "train.schedule": (_schedules, False),
    "train.decay_shape": (_decay_shapes, False),
    "data.tokenizer": (_tokenizers, False),
}


def _get(config: Any, dotted: str) -> tuple[bool, Any]:
    """(present, value) of a dotted field of a ConfigDict or nested mapping."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) and not hasattr(node, "keys"):
            return False, None
        if part not in node:
            return False, None
        node = node[part]
    return True, node


def _fail(field: str, value: Any, valid: Iterable[str], source: str, extra: str = "") -> None:
    where = f" ({source})" if source else ""
    raise ValueError(
        f"config.{field}={value!r} is not one of: {', '.join(sorted(valid))}{extra}{where}."
    )


def check_choice(field: str, value: Any, source: str = "") -> None:
    """Checks one CHOICES field (e.g. "data.tokenizer") before a config is assembled."""
    valid = list(CHOICES[field][0]())
    if value not in valid:
        _fail(field, value, valid, source)


def _is_lm(config: Any) -> bool:
    for field in ("family", "model.family"):
        present, value = _get(config, field)
        if present and value == "lm":
            return True
    return False


@functools.lru_cache(maxsize=1)
def _registered_tfds() -> frozenset[str]:
    import tensorflow_datasets as tfds

    # Community datasets would need the network; registered builders are in-process.
    return frozenset(tfds.list_builders(with_community_datasets=False))


def check_data_name(name: str, data_dir: str = "", source: str = "") -> None:
    """Raises unless `name` is a packaged corpus, a registered or a prepared tfds dataset."""
    from attn_jax.data.builders import BUILDERS
    from attn_jax.data.sources import data_root

    base = str(name).split(":")[0].split("/")[0]  # "lm1b/subwords8k:1.0.0" -> "lm1b"
    if base in BUILDERS or base in _registered_tfds():
        return
    prepared = Path(data_root(data_dir)) / "tfds" / base
    if prepared.is_dir():
        return
    _fail(
        "data.name",
        name,
        BUILDERS,
        source,
        extra=f", or a tfds dataset registered in this process or prepared in {prepared.parent}",
    )


def check_config(config: Any, source: str = "") -> None:
    """Checks every registry choice of `config`; raises ValueError naming the valid keys.

    Args:
      config: an experiment config (ConfigDict or nested mapping).
      source: where it came from (an experiment file), quoted in the message;
        default: the config's `experiment` field.

    Raises:
      ValueError: a choice that no registry serves, or a score the kernel cannot compute.
    """
    if not source:
        present, experiment = _get(config, "experiment")
        source = f"experiment {experiment!r}" if present else ""
    lm = _is_lm(config)
    for field, (_, lm_only) in CHOICES.items():
        present, value = _get(config, field)
        if not present or (lm_only and not lm):
            continue
        check_choice(field, value, source)
    _, kernel = _get(config, "model.kernel")
    present, score = _get(config, "model.score")
    from attn_jax.ops.kernels import KERNEL_SCORES

    if lm and present and kernel != "xla" and score not in KERNEL_SCORES:
        where = f" ({source})" if source else ""
        raise ValueError(
            f"config.model.score={score!r} needs config.model.kernel='xla' (kernel {kernel!r} "
            f"computes only {' and '.join(KERNEL_SCORES)}){where}."
        )
    present, name = _get(config, "data.name")
    if present and lm:  # the LM's corpora; other families read their own data
        _, data_dir = _get(config, "data.data_dir")
        check_data_name(name, data_dir or "", source)
    if lm and _get(config, "model")[0]:
        from attn_jax.models.lm import LMConfig

        LMConfig.from_config(config["model"])  # unknown fields and Literal choices
