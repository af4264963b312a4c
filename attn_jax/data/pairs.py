"""Sequence-pair data (source text -> target text): the contract every pair task meets.

A provider is `function(data_config) -> PairData`, registered in `PAIR_DATA` under
its `config.data.name` as "module:function" (imported only when a run needs it):
the tokenizer, the text splits and the task's score. The seq2seq family
(attn_jax.families.seq2seq) does the rest: ids, BOS/EOS, padding, batches.

    PAD, BOS, EOS = 0, 1, 2; a tokenizer maps text to ids >= N_SPECIAL and
    `.decode` ignores ids < N_SPECIAL; `.vocab_size` includes the specials.

config.data fields every provider accepts: `name`, `train_split`, `eval_split`
(teacher-forced eval loss), `decode_split` (decoded and scored at the end),
`max_src_len`, `max_tgt_len` (tokens, specials excluded), `decode_examples`
(0 = all), `data_dir`; providers add their own (the toy task: `toy_task`,
`toy_sizes`, `toy_lengths`, `toy_seed`).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

PAD, BOS, EOS = 0, 1, 2
N_SPECIAL = 3  # ids 0..2 are reserved; a tokenizer maps text to ids >= 3


@dataclasses.dataclass(frozen=True)
class PairData:
    """A pair task: tokenizer, aligned (sources, targets) per split, and its score.

    Attributes:
      tokenizer: `.encode(text) -> int32 ids` (all >= N_SPECIAL, no BOS/EOS),
        `.decode(ids) -> str` (ignores ids < N_SPECIAL), `.vocab_size` (specials included).
      splits: split name -> (sources, targets), aligned lists of strings.
      score: (hypotheses, references) -> {metric: value}.
    """

    tokenizer: Any
    splits: dict[str, tuple[list[str], list[str]]]
    score: Callable[[list[str], list[str]], dict[str, float]]


PAIR_DATA: dict[str, str] = {
    "toy": "attn_jax.data.pairs:toy_pair_data",
    "bible": "attn_jax.data.bible:pair_data",
    "scan": "attn_jax.data.scan:pair_data",
}

# Fields the family reads itself: they do not change what a provider returns.
FAMILY_FIELDS = (
    "train_split",
    "eval_split",
    "decode_split",
    "max_src_len",
    "max_tgt_len",
    "decode_examples",
    "eval_batches",
)


def default_pair_data_config(name: str = "toy", **overrides):
    """A config.data section with every contract field (ConfigDict)."""
    import ml_collections

    data = dict(
        name=name,
        train_split="train",
        eval_split="validation",
        decode_split="test",
        max_src_len=32,
        max_tgt_len=32,
        decode_examples=0,
        eval_batches=0,
        data_dir="",
    )
    data.update(overrides)
    return ml_collections.ConfigDict(data)


class CharTokenizer:
    """One id per character of a fixed alphabet, ids from N_SPECIAL up.

    Characters outside the alphabet raise on encode (a toy task has none).
    """

    def __init__(self, alphabet: str):
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"CharTokenizer alphabet has repeated characters: {alphabet!r}.")
        self.alphabet = alphabet
        self._ids = {c: i + N_SPECIAL for i, c in enumerate(alphabet)}
        self.vocab_size = N_SPECIAL + len(alphabet)

    def encode(self, text: str) -> np.ndarray:
        try:
            return np.asarray([self._ids[c] for c in text], np.int32)
        except KeyError as e:
            raise ValueError(f"Character {e.args[0]!r} is not in {self.alphabet!r}.") from None

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        ids = np.asarray(ids, np.int64).reshape(-1)
        return "".join(
            self.alphabet[i - N_SPECIAL] for i in ids if N_SPECIAL <= i < self.vocab_size
        )


def exact_match(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """{"exact_match": fraction of hypotheses equal to their reference (whitespace-stripped)}."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references.")
    hits = sum(h.strip() == r.strip() for h, r in zip(hyps, refs, strict=True))
    return {"exact_match": hits / max(len(refs), 1)}


TOY_TASKS: dict[str, Callable[[str], str]] = {
    "reverse": lambda s: s[::-1],
    "copy": lambda s: s,
    "sort": lambda s: "".join(sorted(s)),
}


def toy_pair_data(data_config) -> PairData:
    """Digit strings -> their reverse (or copy, sort): a task a tiny model learns in seconds.

    Optional config.data fields: `toy_task` ("reverse", "copy", "sort"),
    `toy_sizes` ((train, validation, test) examples, default (2000, 200, 200)),
    `toy_lengths` ((min, max) digits, default (1, 8)), `toy_seed` (0). Deterministic
    in them: split i draws from rng (toy_seed, i); the splits may share strings.
    """
    get = data_config.get if hasattr(data_config, "get") else dict(data_config).get
    task = get("toy_task", "reverse")
    if task not in TOY_TASKS:
        raise ValueError(f"config.data.toy_task={task!r} is not one of: {', '.join(TOY_TASKS)}.")
    sizes = tuple(int(n) for n in get("toy_sizes", (2000, 200, 200)))
    lo, hi = (int(n) for n in get("toy_lengths", (1, 8)))
    if len(sizes) != 3 or not 1 <= lo <= hi:
        raise ValueError(
            f"config.data.toy_sizes={sizes} needs 3 entries and toy_lengths=({lo}, {hi}) "
            "needs 1 <= min <= max."
        )
    fn = TOY_TASKS[task]
    splits = {}
    for i, (name, n) in enumerate(zip(("train", "validation", "test"), sizes, strict=True)):
        rng = np.random.default_rng([int(get("toy_seed", 0)), i])
        lengths = rng.integers(lo, hi + 1, size=n)
        sources = ["".join(map(str, rng.integers(0, 10, size=k))) for k in lengths]
        splits[name] = (sources, [fn(s) for s in sources])
    return PairData(tokenizer=CharTokenizer("0123456789"), splits=splits, score=exact_match)


def _hashable(value):
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


_CACHE: dict[tuple, PairData] = {}


def load_pair_data(data_config) -> PairData:
    """The PairData of `config.data.name`, built once per (name, provider fields).

    Raises:
      ValueError: an unknown name, naming the valid ones.
    """
    name = data_config["name"]
    if name not in PAIR_DATA:
        raise ValueError(
            f"config.data.name={name!r} is not one of: {', '.join(sorted(PAIR_DATA))}."
        )
    items = data_config.items() if hasattr(data_config, "items") else dict(data_config).items()
    key = tuple(sorted((k, _hashable(v)) for k, v in items if k not in FAMILY_FIELDS))
    if key not in _CACHE:
        module, _, fn = PAIR_DATA[name].partition(":")
        data = getattr(importlib.import_module(module), fn)(data_config)
        for split, (src, tgt) in data.splits.items():
            if len(src) != len(tgt):
                raise ValueError(
                    f"Pair data {name!r} split {split!r} has {len(src)} sources and "
                    f"{len(tgt)} targets."
                )
        _CACHE[key] = data
    return _CACHE[key]
