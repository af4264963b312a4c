"""MLM data: BERT masking statistics, passages and splits, deterministic batches."""

import ml_collections
import numpy as np
import pytest

from attn_jax.data import mlm

RATE = 0.15


def _batch(B=400, T=128, seed=0):
    """Random byte passages of random lengths, packed [CLS] bytes [SEP] [PAD]..."""
    rng = np.random.default_rng(seed)
    pieces = [
        rng.integers(0, 256, rng.integers(1, T - 1)).astype(np.uint8).tobytes() for _ in range(B)
    ]
    return mlm.pack(pieces, T)


def _within(observed, p, n, k=5.0):
    se = np.sqrt(p * (1 - p) / n)
    return abs(observed - p) <= k * se, f"{observed:.4f} vs {p:.4f} +- {k} x {se:.4f}"


def test_masking_statistics_follow_bert():
    """15% of byte positions selected; of those 80% [MASK], 10% random byte, 10% kept."""
    packed = _batch()
    out = mlm.mask_tokens(packed["tokens"], packed["lengths"], np.random.default_rng(1), rate=RATE)
    tokens, inputs, weights = packed["tokens"], out["inputs"], out["weights"]
    maskable = tokens >= mlm.BYTE_OFFSET
    selected = weights == 1.0
    n = int(maskable.sum())
    ok, msg = _within(selected.sum() / n, RATE, n)
    assert ok, f"selection rate {msg}"
    m = int(selected.sum())
    as_mask = (inputs == mlm.MASK) & selected
    as_other = (inputs != tokens) & (inputs != mlm.MASK) & selected
    kept = (inputs == tokens) & selected
    # a random byte equals the original with probability 1/256
    for name, count, p in (
        ("[MASK]", as_mask.sum(), 0.8),
        ("random", as_other.sum(), 0.1 * 255 / 256),
        ("kept", kept.sum(), 0.1 + 0.1 / 256),
    ):
        ok, msg = _within(count / m, p, m)
        assert ok, f"{name} share {msg}"


def test_only_byte_positions_are_selected_and_weights_mark_them():
    packed = _batch(B=200, T=64, seed=3)
    out = mlm.mask_tokens(packed["tokens"], packed["lengths"], np.random.default_rng(0), rate=0.5)
    tokens, inputs, weights = packed["tokens"], out["inputs"], out["weights"]
    special_or_pad = tokens < mlm.BYTE_OFFSET
    assert special_or_pad.sum() > 0
    assert np.all(weights[special_or_pad] == 0.0), "a special token or padding was selected"
    assert set(np.unique(weights)) == {0.0, 1.0}
    # every position off the loss is left exactly as it was, specials included
    np.testing.assert_array_equal(inputs[weights == 0], tokens[weights == 0])
    np.testing.assert_array_equal(out["targets"], tokens)
    # random replacements are bytes, never a special token
    replaced = (inputs != tokens) & (inputs != mlm.MASK)
    assert replaced.sum() > 0
    assert np.all(inputs[replaced] >= mlm.BYTE_OFFSET)
    assert np.all(inputs < mlm.VOCAB_SIZE)


def test_masking_is_a_function_of_the_rng():
    packed = _batch(B=20)
    a = mlm.mask_tokens(packed["tokens"], packed["lengths"], np.random.default_rng(5))
    b = mlm.mask_tokens(packed["tokens"], packed["lengths"], np.random.default_rng(5))
    c = mlm.mask_tokens(packed["tokens"], packed["lengths"], np.random.default_rng(6))
    np.testing.assert_array_equal(a["inputs"], b["inputs"])
    assert not np.array_equal(a["weights"], c["weights"])


def test_pack_layout_and_round_trip():
    text = "Hark, Ophélia!"
    packed = mlm.pack(mlm.chunk(text.encode(), 5), 8)
    tokens, lengths = packed["tokens"], packed["lengths"]
    assert tokens.shape == (3, 8)  # 15 UTF-8 bytes (é is two) in pieces of 5
    assert np.all(tokens[:, 0] == mlm.CLS)
    for row, n in zip(tokens, lengths):
        assert row[n - 1] == mlm.SEP
        assert np.all(row[n:] == mlm.PAD)
        assert np.all(row[1 : n - 1] >= mlm.BYTE_OFFSET)
    assert mlm.decode(tokens) == text
    with pytest.raises(ValueError, match="does not fit"):
        mlm.pack([b"123456789"], 8)


def test_head_and_tail_partition_a_work_and_pretraining_reads_only_heads():
    work = mlm.Work("shakespeare", "w", bytes(range(256)) * 40)
    head, tail = work.head(0.9), work.tail(0.9)
    assert head + tail == work.data
    assert len(head) == int(0.9 * len(work.data))
    packed = mlm.passages([work], 34, "head", 0.9)
    read = b"".join(
        (row[1 : n - 1] - mlm.BYTE_OFFSET).astype(np.uint8).tobytes()
        for row, n in zip(packed["tokens"], packed["lengths"])
    )
    assert read == head


def _config(**overrides):
    config = mlm.default_data_config()
    config.update(dict(corpora="shakespeare", max_works=2, eval_batches=2, **overrides))
    return ml_collections.ConfigDict(config)


def test_family_data_resumes_and_eval_is_fixed():
    config = _config()
    it, eval_fn = mlm.make_mlm_data(config, batch_size=8, seq_len=48, seed=3)
    first = [next(it) for _ in range(3)]
    again, _ = mlm.make_mlm_data(config, batch_size=8, seq_len=48, seed=3)
    again.set_state({"batch": 2})
    resumed = next(again)
    for key in ("inputs", "targets", "weights", "lengths"):
        np.testing.assert_array_equal(resumed[key], first[2][key])
    assert not np.array_equal(first[0]["weights"], first[1]["weights"])
    e1, e2 = eval_fn(), eval_fn()
    assert len(e1) == 2
    for a, b in zip(e1, e2):
        np.testing.assert_array_equal(a["inputs"], b["inputs"])
    batch = first[0]
    assert batch["inputs"].shape == (8, 48)
    assert batch["weights"].dtype == np.float32


def test_validation_plays_are_never_pretraining_text():
    train = {w.work_id for w in mlm.load_works("shakespeare", "train")}
    held = {w.work_id for w in mlm.load_works("shakespeare", "validation")}
    assert held == {
        "a-midsummer-night-s-dream",
        "henry-iv-part-2",
        "macbeth",
        "the-merry-wives-of-windsor",
    }
    assert not train & held


@pytest.mark.slow
def test_persuasion_is_held_out_of_pretraining():
    """Needs the Austen corpus (`make data`)."""
    train = {w.work_id for w in mlm.load_works("austen", "train")}
    held = {w.work_id for w in mlm.load_works("austen", "validation")}
    assert held == {"persuasion"}
    assert "persuasion" not in train
    assert len(train) == 5


def test_bad_corpus_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: a comma list of shakespeare, austen"):
        mlm.parse_corpora("shakespeare,dickens")
