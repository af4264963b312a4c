"""SCAN: the generated set, the interpretation, the standard splits, the tokenizer."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from attn_jax.data import scan

# (command, actions) from Lake & Baroni 2018 (paper and github.com/brendenlake/SCAN README,
# where LTURN/RTURN/JUMP/WALK are I_TURN_LEFT/I_TURN_RIGHT/I_JUMP/I_WALK).
KNOWN = [
    ("jump", "I_JUMP"),
    ("jump left", "I_TURN_LEFT I_JUMP"),
    (
        "jump around right",
        "I_TURN_RIGHT I_JUMP I_TURN_RIGHT I_JUMP I_TURN_RIGHT I_JUMP I_TURN_RIGHT I_JUMP",
    ),
    ("turn left twice", "I_TURN_LEFT I_TURN_LEFT"),
    ("jump thrice", "I_JUMP I_JUMP I_JUMP"),
    ("jump opposite left and walk thrice", "I_TURN_LEFT I_TURN_LEFT I_JUMP I_WALK I_WALK I_WALK"),
    (
        "jump opposite left after walk around left",
        "I_TURN_LEFT I_WALK I_TURN_LEFT I_WALK I_TURN_LEFT I_WALK I_TURN_LEFT I_WALK "
        "I_TURN_LEFT I_TURN_LEFT I_JUMP",
    ),
    ("jump twice after walk left", "I_TURN_LEFT I_WALK I_JUMP I_JUMP"),
    ("turn around right", "I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT"),
    ("turn opposite right", "I_TURN_RIGHT I_TURN_RIGHT"),
    ("look right", "I_TURN_RIGHT I_LOOK"),
    (
        "run opposite right thrice",
        "I_TURN_RIGHT I_TURN_RIGHT I_RUN " * 2 + "I_TURN_RIGHT I_TURN_RIGHT I_RUN",
    ),
]


def commands(pairs):
    return [c for c, _ in pairs]


@pytest.mark.parametrize(("command", "actions"), KNOWN)
def test_interpretation_of_known_commands(command, actions):
    assert scan.interpret(command) == actions
    assert dict(scan.all_pairs())[command] == actions


@pytest.mark.parametrize("bad", ["turn", "jump jump", "walk twice left", "a and b and c", "run up"])
def test_interpret_rejects_strings_outside_the_grammar(bad):
    with pytest.raises(ValueError, match="SCAN"):
        scan.interpret(bad)


def test_full_set_size_and_lengths():
    pairs = scan.all_pairs()
    assert len(pairs) == 20_910
    assert len(set(commands(pairs))) == 20_910
    lengths = [len(a.split()) for _, a in pairs]
    assert (min(lengths), max(lengths)) == (1, 48)
    assert max(len(c.split()) for c in commands(pairs)) == 9


def test_conjunctions_and_repetitions_compose_over_the_whole_set():
    """[[a and b]] = [[a]] [[b]], [[a after b]] = [[b]] [[a]], [[v twice]] = [[v]] [[v]]."""
    act = dict(scan.all_pairs())
    n_and = n_after = n_rep = 0
    for command, actions in act.items():
        if " and " in command:
            a, b = command.split(" and ")
            assert actions == f"{act[a]} {act[b]}"
            n_and += 1
        elif " after " in command:
            a, b = command.split(" after ")
            assert actions == f"{act[b]} {act[a]}"
            n_after += 1
        elif command.endswith((" twice", " thrice")):
            v, rep = command.rsplit(" ", 1)
            assert actions.split() == act[v].split() * {"twice": 2, "thrice": 3}[rep]
            n_rep += 1
    assert (n_and, n_after, n_rep) == (102**2, 102**2, 68)


@pytest.mark.parametrize("name", sorted(scan.PUBLISHED_SIZES))
def test_split_sizes_are_the_published_ones(name):
    halves = scan.split(name)
    assert (len(halves["train"]), len(halves["test"])) == scan.PUBLISHED_SIZES[name]
    for pairs in halves.values():  # every pair is the grammar's
        assert all(scan.interpret(c) == a for c, a in pairs)


@pytest.mark.parametrize("name", ["simple", "length"])
def test_simple_and_length_partition_the_set(name):
    halves = scan.split(name)
    train, test = set(commands(halves["train"])), set(commands(halves["test"]))
    assert not train & test
    assert train | test == set(commands(scan.all_pairs()))
    assert len(train) == len(halves["train"])  # no repeats


def test_length_split_criterion():
    halves = scan.split("length")
    assert max(len(a.split()) for _, a in halves["train"]) == 22
    assert min(len(a.split()) for _, a in halves["test"]) == 24


def test_simple_split_membership_is_seeded():
    a, b, c = scan.split("simple", 0), scan.split("simple", 0), scan.split("simple", 1)
    assert a == b
    assert set(commands(a["test"])) != set(commands(c["test"]))
    assert len(c["test"]) == 4_182


@pytest.mark.parametrize(
    ("name", "primitive", "copies"),
    [("addprim_jump", "jump", 1467), ("addprim_turn_left", "turn left", 2189)],
)
def test_add_primitive_splits(name, primitive, copies):
    halves = scan.split(name)
    has = lambda c: f" {primitive} " in f" {c} "
    counts = collections.Counter(commands(halves["train"]))
    # The primitive is in train only on its own, repeated to 10% of train.
    assert counts[primitive] == copies
    assert copies / len(halves["train"]) == pytest.approx(0.10, abs=1e-4)
    assert all(n == 1 for c, n in counts.items() if c != primitive)
    assert not any(has(c) for c in counts if c != primitive)
    # Test: every other command with the primitive, none seen in training.
    test = commands(halves["test"])
    assert all(has(c) for c in test)
    assert primitive not in test
    assert not set(test) & set(counts)
    assert set(test) | set(counts) == set(commands(scan.all_pairs()))


def test_turn_left_split_keeps_the_action_in_train():
    """Only the phrase "turn left" is held out; I_TURN_LEFT is trained through other commands."""
    train = scan.split("addprim_turn_left")["train"]
    assert "walk left" in commands(train)
    assert "turn opposite left" in commands(train)


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ValueError, match="config.data.split='jumps'.*addprim_jump"):
        scan.split("jumps")


def test_carve_validation_moves_whole_commands_and_keeps_the_primitive():
    train = scan.split("addprim_jump")["train"]
    rest, val = scan.carve_validation(train, 100, seed=3, keep=("jump",))
    assert len(val) == 100
    assert len(rest) == len(train) - 100
    assert not set(commands(val)) & set(commands(rest))
    assert commands(rest).count("jump") == 1467
    assert scan.carve_validation(train, 100, seed=3, keep=("jump",)) == (rest, val)
    assert scan.carve_validation(train, 100, seed=4, keep=("jump",))[1] != val
    small = [("jump", "I_JUMP")] * 5 + [("walk", "I_WALK"), ("run", "I_RUN"), ("look", "I_LOOK")]
    for seed in range(10):  # without `keep`, "jump" would be drawn about half the time
        rest, val = scan.carve_validation(small, 2, seed=seed, keep=("jump",))
        assert commands(rest).count("jump") == 5
    with pytest.raises(ValueError, match="validation_examples"):
        scan.carve_validation(train, 10**6, seed=0)


def test_tokenizer_round_trip_and_ids():
    tok = scan.WordTokenizer(offset=3)
    assert tok.vocab_size == 3 + 13 + 6
    for command, actions in scan.all_pairs()[::97]:
        for text in (command, actions):
            ids = tok.encode(text)
            assert ids.dtype == np.int32
            assert ids.min() >= 3
            assert ids.max() < tok.vocab_size
            assert tok.decode(ids) == text
    # specials (PAD, BOS, EOS) are dropped by decode
    assert tok.decode(np.r_[1, tok.encode("jump twice"), 2, 0, 0]) == "jump twice"
    with pytest.raises(ValueError, match="'hop' is not a SCAN word"):
        tok.encode("hop twice")


def test_pair_data_serves_the_contract():
    from attn_jax.data import pairs

    data = pairs.load_pair_data(
        pairs.default_pair_data_config("scan", split="addprim_jump", validation_examples=100)
    )
    assert set(data.splits) == {"train", "validation", "test"}
    train, val, test = (data.splits[k] for k in ("train", "validation", "test"))
    assert (len(train[0]), len(val[0]), len(test[0])) == (14_670 - 100, 100, 7_706)
    assert not set(val[0]) & set(train[0])
    assert train[0].count("jump") == 1467
    for src, tgt in (train, val, test):
        assert all(scan.interpret(c) == a for c, a in zip(src, tgt, strict=True))
    assert data.tokenizer.vocab_size == pairs.N_SPECIAL + 19
    assert data.score(test[1][:2], [test[1][0], "I_JUMP"]) == {"exact_match": 0.5}
