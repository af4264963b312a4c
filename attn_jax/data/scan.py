"""SCAN, generated from its grammar, with the four standard splits.

SCAN (Lake & Baroni 2018, "Generalization without systematicity", ICML) maps
navigation commands to action sequences. Its phrase-structure grammar (Fig. 6
of the paper), with D[1] / D[2] the two words of a D (a verb or "turn", then a
direction):

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> D[1] opposite D[2] | D[1] around D[2] | D | U
    D -> U left | U right | turn left | turn right
    U -> walk | look | run | jump

and its interpretation: [[jump]] = I_JUMP (walk, look, run alike), [[turn left]]
= I_TURN_LEFT, [[u left]] = I_TURN_LEFT [[u]], [[x opposite left]] =
I_TURN_LEFT I_TURN_LEFT [[x]], [[x around left]] = 4 x (I_TURN_LEFT [[x]])
("turn" alone means no action), [[v twice]] = [[v]] [[v]], [[s1 and s2]] =
[[s1]] [[s2]], [[s1 after s2]] = [[s2]] [[s1]]. That gives 34 V phrases, 102
S phrases and 102 + 2 * 102**2 = 20,910 commands, with actions of 1 to 48 steps.

Standard splits (github.com/brendenlake/SCAN; published train / test sizes,
reproduced exactly, see tests/data/test_scan.py):

- simple 16,728 / 4,182: a seeded random 80 / 20 split of the commands (the
  sizes are the published ones; which commands fall where depends on `seed`);
- length 16,990 / 3,920: train on action sequences of length <= 22, test on
  >= 24 (no command has exactly 23 actions, so the split covers all 20,910);
- addprim_jump 14,670 / 7,706: train on the 13,203 commands without "jump" and
  the bare command "jump" repeated 1,467 times; test on the other 7,706
  commands with "jump". The official README says the primitive is
  "over-represented to consist of 10% of the samples": 1,467 / 14,670 is
  exactly 10%, which is how the published size arises;
- addprim_turn_left 21,890 / 1,208: likewise, the 19,701 commands without the
  phrase "turn left" and "turn left" repeated 2,189 times (10% of 21,890); the
  test set is the 1,208 other commands with "turn left". Commands such as
  "turn opposite left" or "walk left" (which also emit I_TURN_LEFT) stay in
  train: the held-out unit is the phrase, not the action. This is why train
  (21,890) is larger than the whole set (20,910).

`pair_data(data_config)` serves a split as attn_jax.data.pairs.PairData (the
sequence-pair contract): splits "train", "validation" (a small seeded subset
of train's commands, removed from train, for the teacher-forced eval loss)
and "test"; a word-level tokenizer; score = exact match of whole sequences.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from attn_jax.data import pairs

VERBS = {"walk": "I_WALK", "look": "I_LOOK", "run": "I_RUN", "jump": "I_JUMP"}
TURNS = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}
COMMAND_WORDS = (*VERBS, "turn", *TURNS, "opposite", "around", "twice", "thrice", "and", "after")
ACTIONS = (*VERBS.values(), *TURNS.values())
REPEATS = {"twice": 2, "thrice": 3}
# The isolated primitive is this share of an add-primitive train set (official README).
PRIMITIVE_SHARE = 0.10
SIMPLE_TRAIN_FRACTION = 0.8
LENGTH_TRAIN_MAX, LENGTH_TEST_MIN = 22, 24

Pair = tuple[str, str]  # (command, actions), words separated by single spaces


def _interpret_v(words: Sequence[str]) -> list[str]:
    """Actions of a V phrase: "jump", "jump left", "turn around right", ..."""
    if len(words) == 1 and words[0] in VERBS:
        return [VERBS[words[0]]]
    if not 2 <= len(words) <= 3:
        raise ValueError(f"Not a SCAN V phrase: {' '.join(words)!r}.")
    head, *mid, direction = words
    if head not in (*VERBS, "turn") or direction not in TURNS:
        raise ValueError(f"Not a SCAN V phrase: {' '.join(words)!r}.")
    act = [VERBS[head]] if head in VERBS else []
    turn = TURNS[direction]
    if not mid:
        return [turn, *act]
    if mid[0] == "opposite":
        return [turn, turn, *act]
    if mid[0] == "around":
        return [turn, *act] * 4
    raise ValueError(f"Not a SCAN V phrase: {' '.join(words)!r}.")


def _interpret_s(words: Sequence[str]) -> list[str]:
    if words and words[-1] in REPEATS:
        return _interpret_v(words[:-1]) * REPEATS[words[-1]]
    return _interpret_v(words)


def interpret(command: str) -> str:
    """The action sequence of a SCAN command, e.g. "walk left" -> "I_TURN_LEFT I_WALK".

    Raises ValueError for a string the grammar does not generate.
    """
    words = command.split()
    conj = [i for i, w in enumerate(words) if w in ("and", "after")]
    if len(conj) > 1:
        raise ValueError(f"A SCAN command has at most one 'and'/'after': {command!r}.")
    if not conj:
        return " ".join(_interpret_s(words))
    i = conj[0]
    first, second = _interpret_s(words[:i]), _interpret_s(words[i + 1 :])
    return " ".join(first + second if words[i] == "and" else second + first)


def _v_phrases() -> list[str]:
    out = list(VERBS)
    for head, direction in itertools.product((*VERBS, "turn"), TURNS):
        out.append(f"{head} {direction}")
    for mod, head, direction in itertools.product(("opposite", "around"), (*VERBS, "turn"), TURNS):
        out.append(f"{head} {mod} {direction}")
    return out


@functools.cache
def all_pairs() -> tuple[Pair, ...]:
    """All 20,910 (command, actions) pairs, in a fixed order."""
    s_phrases = [f"{v}{r}" for v in _v_phrases() for r in ("", " twice", " thrice")]
    commands = list(s_phrases)
    for conj in ("and", "after"):
        commands += [f"{a} {conj} {b}" for a in s_phrases for b in s_phrases]
    return tuple((c, interpret(c)) for c in commands)


def _has_phrase(command: str, phrase: str) -> bool:
    return f" {phrase} " in f" {command} "


def _add_primitive(primitive: str) -> dict[str, list[Pair]]:
    """Train: commands without `primitive` + the bare primitive at 10%; test: the rest."""
    every = all_pairs()
    without = [p for p in every if not _has_phrase(p[0], primitive)]
    test = [p for p in every if _has_phrase(p[0], primitive) and p[0] != primitive]
    # n / (len(without) + n) = 10%  ->  n = len(without) / 9 (1,467 jumps, 2,189 turn lefts)
    copies = round(len(without) * PRIMITIVE_SHARE / (1 - PRIMITIVE_SHARE))
    return {"train": without + [(primitive, interpret(primitive))] * copies, "test": test}


def _simple(seed: int) -> dict[str, list[Pair]]:
    every = all_pairs()
    order = np.random.default_rng([seed, 0x5CA]).permutation(len(every))
    n_train = round(SIMPLE_TRAIN_FRACTION * len(every))
    return {
        "train": [every[i] for i in order[:n_train]],
        "test": [every[i] for i in order[n_train:]],
    }


def _length(seed: int) -> dict[str, list[Pair]]:
    del seed  # the length split is deterministic
    every = all_pairs()
    n_actions = [len(a.split()) for _, a in every]  # no command has 23 actions
    return {
        "train": [p for p, n in zip(every, n_actions, strict=True) if n <= LENGTH_TRAIN_MAX],
        "test": [p for p, n in zip(every, n_actions, strict=True) if n >= LENGTH_TEST_MIN],
    }


SPLITS: dict[str, Callable[[int], dict[str, list[Pair]]]] = {
    "simple": _simple,
    "length": _length,
    "addprim_jump": lambda seed: _add_primitive("jump"),
    "addprim_turn_left": lambda seed: _add_primitive("turn left"),
}
# Published (train, test) sizes, github.com/brendenlake/SCAN.
PUBLISHED_SIZES = {
    "simple": (16_728, 4_182),
    "length": (16_990, 3_920),
    "addprim_jump": (14_670, 7_706),
    "addprim_turn_left": (21_890, 1_208),
}


def split(name: str, seed: int = 0) -> dict[str, list[Pair]]:
    """{"train": pairs, "test": pairs} of standard split `name` (a SPLITS key)."""
    if name not in SPLITS:
        raise ValueError(
            f"Unknown SCAN split config.data.split={name!r}; valid: {', '.join(SPLITS)}."
        )
    return SPLITS[name](int(seed))


def carve_validation(
    train: Sequence[Pair], n: int, seed: int, keep: Sequence[str] = ()
) -> tuple[list[Pair], list[Pair]]:
    """Moves `n` distinct seeded commands (every copy of each) from `train` to validation.

    Commands in `keep` (an add-primitive split's bare primitive) stay in train.
    Returns (train, validation).
    """
    commands = sorted({c for c, _ in train} - set(keep))
    if not 0 <= n < len(commands):
        raise ValueError(
            f"config.data.validation_examples={n} must be in [0, {len(commands)}) for this split."
        )
    rng = np.random.default_rng([seed, 0x7A1])
    held = {commands[i] for i in rng.choice(len(commands), size=n, replace=False)}
    validation = [p for p in train if p[0] in held]
    return [p for p in train if p[0] not in held], validation


@dataclasses.dataclass(frozen=True)
class WordTokenizer:
    """Word-level tokenizer over SCAN's command and action words (ids >= N_SPECIAL)."""

    words: tuple[str, ...] = (*COMMAND_WORDS, *ACTIONS)
    offset: int = pairs.N_SPECIAL  # ids 0..2 are PAD, BOS, EOS

    @functools.cached_property
    def _ids(self) -> dict[str, int]:
        return {w: i + self.offset for i, w in enumerate(self.words)}

    @property
    def vocab_size(self) -> int:
        return len(self.words) + self.offset

    def encode(self, text: str) -> np.ndarray:
        try:
            return np.asarray([self._ids[w] for w in text.split()], np.int32)
        except KeyError as e:
            raise ValueError(
                f"{e.args[0]!r} is not a SCAN word (valid: {' '.join(self.words)})."
            ) from None

    def decode(self, ids) -> str:
        hi = self.offset + len(self.words)
        return " ".join(
            self.words[i - self.offset] for i in np.asarray(ids).tolist() if self.offset <= i < hi
        )


PRIMITIVES = {"addprim_jump": ("jump",), "addprim_turn_left": ("turn left",)}


def pair_data(data_config: Mapping):
    """The SCAN PairData of `data_config` (fields: split, split_seed, validation_examples).

    `split` is a SPLITS key; `split_seed` (default 0) seeds the simple split's
    membership and the validation carve-out, so every training seed of a sweep
    sees the same data; `validation_examples` (default 256) commands move from
    train to "validation".
    """
    name = data_config.get("split", "simple")
    seed = int(data_config.get("split_seed", 0))
    n_val = int(data_config.get("validation_examples", 256))
    halves = split(name, seed)
    train, validation = carve_validation(halves["train"], n_val, seed, PRIMITIVES.get(name, ()))

    def columns(ps):
        return [c for c, _ in ps], [a for _, a in ps]

    return pairs.PairData(
        tokenizer=WordTokenizer(),
        splits={
            "train": columns(train),
            "validation": columns(validation),
            "test": columns(halves["test"]),
        },
        score=pairs.exact_match,
    )
