"""The CLIP family: captions, seeded caption sampling, the eval metrics against a numpy
reference, and experiments/clip.py:smoke end to end."""

import os

import jax
import numpy as np
import pytest
from flax import nnx

from attn_jax import configs, families
from attn_jax.data import vqa
from attn_jax.families import clip as clip_family
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
    config = configs.load_config(os.path.join(REPO, "experiments/clip.py:smoke"))
    return configs.apply_overrides(config, QUIET)


def _words(tokens_T):
    vocab = clip_family.vocabulary()
    return [vocab[t - 1] for t in tokens_T if t > 0]


def test_captions_name_the_shape_and_colour_and_fit_the_config():
    exp = configs.import_file(os.path.join(REPO, "experiments/clip.py"))
    assert (exp.VOCAB_SIZE, exp.MAX_LEN) == (
        clip_family.vocab_size(),
        clip_family.max_caption_len(),
    )
    assert clip_family.caption(0, 5 * 0 + 5) == f"a {vqa.COLORS[5]} {vqa.SHAPES[0]}"
    tokens_KCT, lengths_KC = clip_family.caption_table(exp.MAX_LEN)
    n_colors = len(vqa.COLORS)
    for k in range(len(clip_family.TEMPLATES)):
        for c in range(clip_family.num_classes()):
            words = _words(tokens_KCT[k, c])
            assert len(words) == lengths_KC[k, c]
            assert " ".join(words) == clip_family.caption(k, c)
            assert vqa.SHAPES[c // n_colors] in words
            assert vqa.COLORS[c % n_colors] in words
    # distinct classes have distinct canonical captions
    assert len({tuple(t) for t in tokens_KCT[0]}) == clip_family.num_classes()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        clip_family.tokenize(["a purple circle"], 8)


def test_train_captions_are_seeded_varied_and_describe_the_image(smoke_config):
    family = families.get_family(smoke_config)
    train1, evals = family.data(batch_size=32, seed=3)
    train2, _ = family.data(batch_size=32, seed=3)
    first = [next(train1) for _ in range(3)]
    b2 = next(train2)
    np.testing.assert_array_equal(first[0]["tokens"], b2["tokens"])
    np.testing.assert_array_equal(first[0]["image"], b2["image"])
    assert first[0]["image"].dtype == np.float32
    templates = set()
    n_colors = len(vqa.COLORS)
    for batch in first:
        for tokens_T, label in zip(batch["tokens"], batch["label"]):
            words = _words(tokens_T)
            assert vqa.SHAPES[label // n_colors] in words
            assert vqa.COLORS[label % n_colors] in words
            templates.add(len(words))
    assert len(templates) > 2, "training draws several templates"
    test = clip_family.load("test", int(smoke_config.data.max_eval))
    for batch in evals():
        real = batch["valid"] > 0
        np.testing.assert_array_equal(
            batch["tokens"][real], clip_family.caption_table(8)[0][0][batch["label"][real]]
        )
    assert sum(float(b["valid"].sum()) for b in evals()) == len(test["label"])


def test_eval_metrics_equal_a_numpy_reference(smoke_config):
    family = families.get_family(smoke_config)
    model = family.model(nnx.Rngs(0))
    B, C, n_colors = 12, clip_family.num_classes(), len(vqa.COLORS)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, C, B).astype(np.int32)
    tokens_KCT, lengths_KC = clip_family.caption_table(8)
    present = np.zeros((B, C), np.float32)
    present[:, [0, 5, 9, 13, 20]] = 1.0  # retrieval among a few captions only
    batch = {
        "image": rng.normal(size=(B, 64, 64, 3)).astype(np.float32),
        "label": labels,
        "tokens": tokens_KCT[0, labels],
        "lengths": lengths_KC[0, labels],
        "present": present,
        "valid": np.array([1.0] * 10 + [0.0] * 2, np.float32),
    }
    sums = jax.jit(family.eval_sums)(model, batch)
    got = family.eval_finalize({k: float(v) for k, v in sums.items()})
    img = np.asarray(jax.jit(lambda m, x: m.encode_images(x))(model, batch["image"]))
    txt = np.asarray(
        jax.jit(lambda m, t, n: m.encode_texts(t, n))(model, tokens_KCT[0], lengths_KC[0])
    )
    sims = img @ txt.T
    real = np.arange(B) < 10
    pred = sims.argmax(1)
    retrieved = np.where(present > 0, sims, -np.inf).argmax(1)
    assert got["count"] == 10
    np.testing.assert_allclose(got["zero_shot_accuracy"], np.mean((pred == labels)[real]))
    np.testing.assert_allclose(got["recall_at_1"], np.mean((retrieved == labels)[real]))
    np.testing.assert_allclose(
        got["shape_accuracy"], np.mean((pred // n_colors == labels // n_colors)[real])
    )
    np.testing.assert_allclose(
        got["color_accuracy"], np.mean((pred % n_colors == labels % n_colors)[real])
    )
    assert np.isfinite(got["loss"])
    assert got["loss"] > 0


def test_smoke_trains_end_to_end(smoke_config, tmp_path, fast_compile):
    record = train_and_evaluate(smoke_config, str(tmp_path))
    assert record["status"] == "done"
    assert record["family"] == "clip"
    assert record["unit"] == "examples"
    assert record["steps"] == 40
    assert record["examples_seen"] == record["units_seen"] == 40 * 32
    counts = clip_family.counts(smoke_config)
    assert record["params_total"] == counts["params_total"]
    assert record["flops_per_unit"] == counts["flops_per_unit"]
    evals = record["eval"]
    assert evals["eval_examples"] == 128
    for key in ("recall_at_1", "zero_shot_accuracy", "shape_accuracy", "color_accuracy"):
        assert 0.0 <= evals[key] <= 1.0
    # it learned something: colour, the easy attribute, beats chance (1/8) clearly
    assert evals["color_accuracy"] > 0.25
    assert record["final_train_loss"] < record["eval"]["loss"] + 1.0
