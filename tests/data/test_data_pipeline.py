"""LM batches: shapes, determinism, exact resume, multi-host shards, the fixed eval set."""

import json

import numpy as np
import pytest

from attn_jax.data import (
    default_data_config,
    get_tokenizer,
    get_tokens,
    load_documents,
    make_eval_batches,
    make_lm_data,
    make_train_iter,
)

# A synthetic stream where token value == position, so each window names its start.
POSITIONS = np.arange(10_000, dtype=np.int32)
T = 16


def take(it, n):
    return [next(it) for _ in range(n)]


def starts(batch):
    return batch["inputs"][:, 0].tolist()


def test_batch_layout():
    batch = next(make_train_iter(POSITIONS, batch_size=4, seq_len=T, seed=0))
    assert {k: (v.dtype, v.shape) for k, v in batch.items()} == {
        "inputs": (np.int32, (4, T)),
        "targets": (np.int32, (4, T)),
        "weights": (np.float32, (4, T)),
    }
    np.testing.assert_array_equal(batch["targets"], batch["inputs"] + 1)  # contiguous windows
    assert (batch["weights"] == 1).all()


def test_same_seed_same_batches_other_seed_others():
    a = take(make_train_iter(POSITIONS, batch_size=4, seq_len=T, seed=1), 5)
    b = take(make_train_iter(POSITIONS, batch_size=4, seq_len=T, seed=1), 5)
    c = take(make_train_iter(POSITIONS, batch_size=4, seq_len=T, seed=2), 5)
    assert [starts(x) for x in a] == [starts(x) for x in b]
    assert [starts(x) for x in a] != [starts(x) for x in c]


@pytest.mark.parametrize("k", [0, 3, 700])  # 700 batches crosses epochs (n = 624 windows)
def test_resume_gives_the_same_next_batches(k):
    kwargs = dict(batch_size=4, seq_len=T, seed=3)
    uninterrupted = make_train_iter(POSITIONS, **kwargs)
    take(uninterrupted, k)
    expected = take(uninterrupted, 4)

    first = make_train_iter(POSITIONS, **kwargs)
    take(first, k)
    state = json.loads(json.dumps(first.get_state()))  # as a checkpoint would store it
    resumed = make_train_iter(POSITIONS, **kwargs)
    resumed.set_state(state)
    for want, got in zip(expected, take(resumed, 4)):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_state_from_another_stream_is_refused():
    state = make_train_iter(POSITIONS, batch_size=4, seq_len=T, seed=0).get_state()
    other = make_train_iter(POSITIONS, batch_size=8, seq_len=T, seed=0)
    with pytest.raises(ValueError, match="batch_size=4"):
        other.set_state(state)


def test_an_epoch_visits_every_window_once_with_new_boundaries():
    n = len(POSITIONS) // T - 1
    it = make_train_iter(POSITIONS, batch_size=n, seq_len=T, seed=0)
    epoch0, epoch1 = starts(next(it)), starts(next(it))
    for epoch in (epoch0, epoch1):
        assert len(set(epoch)) == n
        assert len({s % T for s in epoch}) == 1  # one shift per epoch
    assert epoch0 != epoch1


@pytest.mark.parametrize("count", [2, 4])
def test_process_shards_are_disjoint_and_make_the_global_batch(count):
    kwargs = dict(batch_size=8, seq_len=T, seed=5, process_count=count)
    whole = take(make_train_iter(POSITIONS, batch_size=8, seq_len=T, seed=5), 3)
    shards = [take(make_train_iter(POSITIONS, process_index=p, **kwargs), 3) for p in range(count)]
    for i in range(3):
        parts = [starts(shard[i]) for shard in shards]
        assert all(len(p) == 8 // count for p in parts)
        flat = sum(parts, [])
        assert len(set(flat)) == len(flat), "processes must not share windows"
        assert sorted(flat) == sorted(starts(whole[i]))


def test_one_saved_state_resumes_every_process():
    kwargs = dict(batch_size=8, seq_len=T, seed=5, process_count=2)
    saver = make_train_iter(POSITIONS, process_index=0, **kwargs)
    take(saver, 3)
    state = saver.get_state()
    for p in range(2):
        expected = take(make_train_iter(POSITIONS, process_index=p, **kwargs), 4)[3]
        resumed = make_train_iter(POSITIONS, process_index=p, **kwargs)
        resumed.set_state(state)
        assert starts(next(resumed)) == starts(expected)


def test_bad_process_arguments():
    with pytest.raises(ValueError, match="multiple of process_count=3"):
        make_train_iter(POSITIONS, batch_size=8, seq_len=T, seed=0, process_count=3)
    with pytest.raises(ValueError, match="too few"):
        make_train_iter(POSITIONS[:T], batch_size=8, seq_len=T, seed=0)


def test_eval_windows_are_fixed_non_overlapping_and_capped():
    capped = make_eval_batches(POSITIONS, batch_size=4, seq_len=T, max_batches=3)
    assert len(capped) == 3
    flat = sum((starts(b) for b in capped), [])
    assert flat == sorted(flat)
    assert len(set(flat)) == 12
    assert all(s % T == 0 for s in flat)
    assert min(np.diff(flat)) >= T
    assert flat[-1] > len(POSITIONS) * 0.8  # spread over the whole held-out stream
    again = make_eval_batches(POSITIONS, batch_size=4, seq_len=T, max_batches=3)
    assert [starts(b) for b in again] == [starts(b) for b in capped]


def test_eval_pads_the_last_batch_with_zero_weights():
    tokens = POSITIONS[: 10 * T + 1]  # exactly 10 windows
    batches = make_eval_batches(tokens, batch_size=4, seq_len=T, max_batches=16)
    assert len(batches) == 3
    assert [b["weights"][:, 0].tolist() for b in batches][-1] == [1, 1, 0, 0]
    assert sum(b["weights"].sum() for b in batches) == 10 * T
    shards = [
        make_eval_batches(
            tokens, batch_size=4, seq_len=T, max_batches=16, process_index=p, process_count=2
        )
        for p in range(2)
    ]
    for i, whole in enumerate(batches):
        rows = np.concatenate([shards[p][i]["weights"] for p in range(2)]).sum()
        assert rows == whole["weights"].sum()


def test_make_lm_data_on_shakespeare(tmp_path_factory):
    config = default_data_config()
    config.data_dir = str(tmp_path_factory.mktemp("data"))
    train_iter, eval_batches_fn = make_lm_data(config, batch_size=4, seq_len=64, seed=0)
    tok = get_tokenizer(config)
    train_text = "\n\n".join(load_documents("shakespeare", "train", root=config.data_dir))
    val_text = "\n\n".join(load_documents("shakespeare", "validation", root=config.data_dir))
    assert len(get_tokens(config, "train")) == len(train_text.encode())
    batch = next(train_iter)
    assert batch["inputs"].shape == (4, 64)
    assert tok.decode(batch["inputs"][0]) in train_text
    evals = eval_batches_fn()
    assert eval_batches_fn() is evals  # the same batches at every eval
    assert len(evals) == config.eval_batches
    window = tok.decode(np.concatenate([evals[0]["inputs"][0], evals[0]["targets"][0, -1:]]))
    assert val_text.startswith(window)  # the first eval window opens the held-out plays


@pytest.mark.slow
def test_make_lm_data_with_sentencepiece(tmp_path):
    """Trains the subword model on the 34 training plays (~20 s), then batches with it."""
    config = default_data_config()
    config.update(tokenizer="sentencepiece", sp_vocab_size=512, data_dir=str(tmp_path))
    train_iter, eval_batches_fn = make_lm_data(config, batch_size=4, seq_len=32, seed=0)
    tok = get_tokenizer(config)
    assert tok.vocab_size == 512
    batch = next(train_iter)
    assert batch["inputs"].max() < 512
    train_text = "\n\n".join(load_documents("shakespeare", "train", root=tmp_path))
    assert tok.decode(batch["inputs"][0]) in train_text
    val_tokens = get_tokens(config, "validation")
    assert len(val_tokens) < 0.6 * 476_874  # subwords: far fewer tokens than bytes
    assert eval_batches_fn()[0]["inputs"].max() < 512
