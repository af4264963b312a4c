"""The seq2seq family on the toy pair task: the pairs contract, batches, loss, sizes, training."""

import json
import os

import jax
import numpy as np
import pytest
from flax import nnx

from attn_jax import families
from attn_jax.data import pairs
from attn_jax.families import base
from attn_jax.families import seq2seq as s2s
from attn_jax.train.loop import train_and_evaluate

pytestmark = pytest.mark.usefixtures("fast_compile")


def _config(**train):
    train = {
        "batch_size": 16,
        "steps": 4,
        "warmup_steps": 1,
        "progress_bar": False,
        "tensorboard": False,
        "report_mfu": False,
        "checkpoint_every": 0,
        "num_devices": 1,
        **train,
    }
    return s2s.base_config(
        "toy",
        "toy",
        model=dict(vocab_size=13, max_len=16, position="rope"),
        data_fields=dict(max_src_len=6, max_tgt_len=6, toy_sizes=(400, 40, 24), toy_lengths=(1, 6)),
        **train,
    )


def test_toy_pairs_meet_the_contract():
    data = pairs.load_pair_data(s2s.data_config("toy", toy_sizes=(50, 10, 10)))
    assert data is pairs.load_pair_data(s2s.data_config("toy", toy_sizes=(50, 10, 10)))
    other = pairs.load_pair_data(s2s.data_config("toy", toy_sizes=(50, 10, 10), toy_seed=1))
    assert other.splits["train"] != data.splits["train"]
    assert sorted(data.splits) == ["test", "train", "validation"]
    src, tgt = data.splits["train"]
    assert len(src) == len(tgt) == 50
    assert all(t == s[::-1] for s, t in zip(src, tgt, strict=True))
    ids = data.tokenizer.encode(src[0])
    assert ids.dtype == np.int32
    assert ids.min() >= pairs.N_SPECIAL
    assert ids.max() < data.tokenizer.vocab_size
    specials = [pairs.BOS, *ids, pairs.EOS, pairs.PAD]
    assert data.tokenizer.decode(specials) == src[0]
    assert data.score(["12", "3"], ["12", "4"]) == {"exact_match": 0.5}
    with pytest.raises(ValueError, match="bible"):
        pairs.load_pair_data(s2s.data_config("toys"))


def test_batches_add_bos_eos_drop_long_train_pairs_and_truncate_eval_ones():
    tok = pairs.CharTokenizer("0123456789")
    arrays, over = s2s.pair_arrays(tok, ["12", "1234"], ["21", "4321"], 3, 3, drop_long=True)
    assert over == 1  # "1234" is over max 3: dropped
    assert len(arrays["src"]) == 1
    a, b, e = 4, 5, pairs.EOS  # ids of "1" and "2"
    np.testing.assert_array_equal(arrays["src"][0], [a, b, e, 0])
    assert arrays["src_len"][0] == 3
    np.testing.assert_array_equal(arrays["tgt_in"][0], [pairs.BOS, b, a, 0])
    np.testing.assert_array_equal(arrays["tgt_out"][0], [b, a, e, 0])
    np.testing.assert_array_equal(arrays["weights"][0], [1, 1, 1, 0])
    arrays, over = s2s.pair_arrays(tok, ["12", "1234"], ["21", "4321"], 3, 3, drop_long=False)
    assert over == 1
    assert len(arrays["src"]) == 2
    np.testing.assert_array_equal(arrays["tgt_out"][1], [7, 6, 5, e])  # "432" then EOS


def test_loss_counts_target_tokens_with_eos_and_eval_agrees():
    config = _config(label_smoothing=0.1)
    family = families.get_family(config)
    model = family.model(nnx.Rngs(0))
    train_iter, eval_batches = family.data(batch_size=16, seed=0)
    batch = next(train_iter)
    objective, metrics = nnx.jit(lambda m, b: family.loss(m, b, None))(model, batch)
    assert float(metrics["count"]) == float(batch["weights"].sum())
    assert float(metrics["count"]) == float(np.sum(batch["src_len"] - 1) + len(batch["src"]))
    assert float(objective) != pytest.approx(float(metrics["loss"]), abs=1e-6)  # smoothed
    sums = nnx.jit(family.eval_sums)(model, batch)
    final = family.eval_finalize({k: float(v) for k, v in sums.items()})
    assert final["loss"] == pytest.approx(float(metrics["loss"]), rel=1e-5)
    assert final["count"] == float(metrics["count"])
    evals = eval_batches()
    assert len(eval_batches()) == len(evals) == 3
    assert sum(float(b["valid"].sum()) for b in evals) == 40  # the validation pairs
    sizes = family.sizes(nnx.state(model, nnx.Param))
    assert sizes == s2s.counts(config)
    assert sizes["params_total"] == base.count_params(nnx.state(model, nnx.Param))


def test_learned_positions_need_room_and_vocab_must_cover_the_tokenizer():
    config = _config()
    config.model.position = "learned"
    config.model.max_len = 6
    with pytest.raises(ValueError, match="max_len"):
        families.get_family(config)
    config = _config()
    config.model.vocab_size = 8
    family = families.get_family(config)
    with pytest.raises(ValueError, match="vocab_size"):
        family.data(batch_size=16, seed=0)


def test_train_and_evaluate_learns_the_toy_task(tmp_path):
    """End to end through the loop: the loss falls and decode_eval reports exact match."""
    config = _config(steps=120, lr=5e-3, warmup_steps=10, log_every=20, batch_size=32)
    config.decode.beam_size = 2
    record = train_and_evaluate(config, str(tmp_path))
    assert record["status"] == "done"
    with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert record["eval"]["decoded"] == 24
    assert 0.0 <= record["eval"]["exact_match"] <= 1.0
    assert record["eval"]["loss"] < losses[0]
    jax.clear_caches()
