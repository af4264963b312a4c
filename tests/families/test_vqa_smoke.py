"""The VQA family: tokenizer, image gathering, per-type eval, and experiments/vqa.py:smoke end to end."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax import configs, families
from attn_jax.families import vqa as vqa_family
from attn_jax.models.vqa import PAD_ID, UNK_ID
from attn_jax.train.loop import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = {
    "train.progress_bar": False,
    "train.tensorboard": False,
    "train.report_mfu": False,
    "train.async_checkpoint": False,
    "train.num_devices": 1,
}


@pytest.fixture
def smoke_config():
    config = configs.load_config(os.path.join(REPO, "experiments/vqa.py:smoke"))
    return configs.apply_overrides(config, QUIET)


def test_vocab_is_sorted_words_after_pad_and_unk():
    vocab = vqa_family.build_vocab(["Is there a circle?", "what color is the circle?"])
    assert vocab == ("a", "circle", "color", "is", "the", "there", "what")
    ids, lengths = vqa_family.encode(["is the circle teal?", "a"], vocab, 5)
    index = {w: i + 2 for i, w in enumerate(vocab)}
    np.testing.assert_array_equal(
        ids,
        [[index["is"], index["the"], index["circle"], UNK_ID, PAD_ID], [index["a"], 0, 0, 0, 0]],
    )
    np.testing.assert_array_equal(lengths, [4, 1])
    ids, lengths = vqa_family.encode(["a a a a a a a"], vocab, 3)  # truncated to max_len
    assert ids.shape == (1, 3)
    assert lengths[0] == 3


def test_batches_gather_their_images_by_image_id():
    rng = np.random.default_rng(0)
    table = rng.integers(0, 256, (5, 4, 4, 3)).astype(np.float32)
    mean, std = np.array([100.0, 110.0, 120.0]) / 255, np.array([0.2, 0.3, 0.4])
    train_tf, eval_tf = vqa_family.make_transforms(table, mean, std, flip=True)
    batch = {"image_id": np.array([3, 0, 3, 4], np.int32)}
    expected = (table[batch["image_id"]] / 255.0 - mean) / std
    np.testing.assert_allclose(eval_tf(batch, None)["image"], expected, rtol=1e-5, atol=1e-5)
    out = train_tf(batch, np.random.default_rng(1))["image"]
    for b in range(4):  # each row is its own image, mirrored or not
        assert np.allclose(out[b], expected[b], atol=1e-5) or np.allclose(
            out[b], expected[b][:, ::-1], atol=1e-5
        )


def test_per_type_accuracy_counts_only_real_rows_of_each_type():
    logits = jnp.eye(13)[jnp.array([4, 12, 0, 1, 1, 9])] * 5.0  # predicted answers
    batch = {
        "answer": jnp.array([4, 4, 0, 1, 2, 0]),  # right, wrong, right, right, wrong, (pad)
        "qtype": jnp.array([0, 0, 1, 2, 2, 1]),
        "valid": jnp.array([1, 1, 1, 1, 1, 0], jnp.float32),
    }
    sums = {k: float(v) for k, v in vqa_family.qtype_sums(logits, batch).items()}
    out = vqa_family.qtype_finalize(sums)
    assert out["count"] == 5
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["accuracy_yesno"] == pytest.approx(1 / 2)
    assert out["accuracy_shape"] == pytest.approx(1.0)
    assert out["accuracy_color"] == pytest.approx(1 / 2)


def test_smoke_data_and_loss_count_questions(smoke_config, fast_compile):
    family = families.get_family(smoke_config)
    train, evals = family.data(batch_size=32, seed=0)
    batch = next(train)
    assert batch["image"].shape == (32, 32, 32, 3)
    assert batch["question"].shape == (32, 10)
    assert (batch["length"] >= 1).all()
    n_eval = sum(float(b["valid"].sum()) for b in evals())
    assert n_eval == smoke_config.data.max_eval
    graphdef, state = nnx.split(family.model(nnx.Rngs(0)))
    loss = jax.jit(lambda st, b: family.loss(nnx.merge(graphdef, st), b, None))
    _, metrics = loss(state, batch)
    assert float(metrics["count"]) == 32
    assert float(metrics["loss"]) == pytest.approx(math.log(13), rel=1e-5)  # zero head


def test_smoke_trains_end_to_end(smoke_config, tmp_path, fast_compile):
    record = train_and_evaluate(smoke_config, str(tmp_path))
    assert record["status"] == "done"
    assert record["family"] == "vqa"
    assert record["unit"] == "examples"
    assert record["steps"] == 40
    assert record["examples_seen"] == record["units_seen"] == 40 * 32
    counts = vqa_family.counts(smoke_config)
    assert record["params_total"] == counts["params_total"]
    assert record["flops_per_unit"] == counts["flops_per_unit"]
    evals = record["eval"]
    assert evals["eval_examples"] == smoke_config.data.max_eval
    for key in ("accuracy", "accuracy_yesno", "accuracy_shape", "accuracy_color", "loss"):
        assert key in evals
        assert math.isfinite(evals[key])
    # it learned: below the uniform guess over 13 answers the zero head starts at
    assert evals["loss"] < math.log(13) - 0.5
    assert evals["accuracy"] > 0.3
