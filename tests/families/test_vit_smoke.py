"""The ViT family: augmentation and mixup promises, and experiments/vit.py:smoke end to end."""

import math
import os

import jax
import numpy as np
import pytest
from flax import nnx

from attn_jax import configs, families
from attn_jax.families import vit as vit_family
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
def smoke_config(monkeypatch):
    """experiments/vit.py:smoke with the family registered (as attn_jax will register it)."""
    monkeypatch.setitem(families.FAMILIES, "vit", None)  # restored after the test
    families.register(
        "vit", "examples", "attn_jax.families.vit:make", counts="attn_jax.families.vit:counts"
    )
    config = configs.load_config(os.path.join(REPO, "experiments/vit.py:smoke"))
    return configs.apply_overrides(config, QUIET)


def test_crop_keeps_content_and_shifts_by_at_most_the_padding():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (16, 8, 8, 1)).astype(np.uint8)  # no zero pixel
    out = vit_family._crop(images, 2, np.random.default_rng(1))
    assert out.shape == images.shape
    moved = 0
    for a, b in zip(images, out):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(np.roll(a, (dy, dx), (0, 1))[b > 0], b[b > 0])
        ]
        assert found, "a crop is the image shifted by at most the padding, zero-filled"
        moved += (0, 0) not in found
    assert moved > 0, "some crops must move the image"


def test_train_batches_are_seeded_and_eval_is_plain_normalization(smoke_config):
    family = families.get_family(smoke_config)
    train1, evals = family.data(batch_size=32, seed=3)
    train2, _ = family.data(batch_size=32, seed=3)
    b1, b2 = next(train1), next(train2)
    np.testing.assert_array_equal(b1["image"], b2["image"])
    assert b1["image"].dtype == np.float32
    batches = evals()
    n_eval = sum(float(b["valid"].sum()) for b in batches)
    assert n_eval == len(vit_family.load("digits", "test")["label"])
    # the train set's normalization: mean ~0, std ~1 over un-augmented train images
    raw = vit_family.load("digits", "train")["image"]
    _, eval_tf = vit_family.make_transforms(smoke_config.data, *vit_family._normalizer(raw))
    x = eval_tf({"image": raw}, None)["image"]
    assert abs(float(x.mean())) < 1e-4
    assert float(x.std()) == pytest.approx(1.0, abs=1e-3)


def test_mixup_objective_mixes_the_two_labels_and_reports_the_first(smoke_config):
    smoke_config.unlock()
    smoke_config.data.mixup = 0.4
    smoke_config.train.label_smoothing = 0.0
    family = families.get_family(smoke_config)
    batch = next(family.data(batch_size=32, seed=0)[0])
    assert {"mix", "label_b"} <= set(batch)
    assert 0 < batch["mix"].min() < batch["mix"].max() < 1
    model = family.model(nnx.Rngs(0))
    model.head_w_DC[...] = jax.random.normal(jax.random.key(1), model.head_w_DC[...].shape)
    objective, metrics = family.loss(model, batch, None)
    logits = np.asarray(model(batch["image"]), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    rows = np.arange(32)
    nll_a, nll_b = -logp[rows, batch["label"]], -logp[rows, batch["label_b"]]
    lam = batch["mix"]
    np.testing.assert_allclose(
        float(objective), np.mean(lam * nll_a + (1 - lam) * nll_b), rtol=1e-5
    )
    np.testing.assert_allclose(float(metrics["loss"]), nll_a.mean(), rtol=1e-5)
    assert float(metrics["count"]) == 32


def test_smoke_trains_end_to_end(smoke_config, tmp_path, fast_compile):
    record = train_and_evaluate(smoke_config, str(tmp_path))
    assert record["status"] == "done"
    assert record["family"] == "vit"
    assert record["unit"] == "examples"
    assert record["steps"] == 60
    assert record["examples_seen"] == record["units_seen"] == 60 * 32
    counts = vit_family.counts(smoke_config)
    assert record["params_total"] == counts["params_total"]
    assert record["flops_per_unit"] == counts["flops_per_unit"]
    evals = record["eval"]
    assert evals["eval_examples"] == len(vit_family.load("digits", "test")["label"])
    # it learned: below a uniform guess over the 10 digits (a zero-initialized head
    # starts exactly there), above chance (0.1)
    assert evals["loss"] < math.log(10) - 0.2
    assert evals["accuracy"] > 0.25
    assert os.path.isdir(os.path.join(str(tmp_path), "checkpoints"))
    # analysis/confusion.py on the same checkpoint: its matrix counts every test image
    # once and its diagonal is the run's own eval accuracy
    cli = configs.import_file(os.path.join(REPO, "analysis", "confusion.py"))
    out = cli.main(["--workdir", str(tmp_path), "--out", str(tmp_path / "analysis")])
    counts = np.array(out["confusion"])
    assert counts.sum() == evals["eval_examples"]
    assert out["top1"] == pytest.approx(evals["accuracy"], abs=1e-6)
    assert os.path.exists(tmp_path / "analysis" / "confusion.svg")
