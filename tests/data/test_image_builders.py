"""The TF-free tfds image builders (attn_jax.data.image_builders): exact round trips."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from attn_jax.data import image_builders, images, sources, vqa

# sha256 of image 0 of each split's decoded PNG (uint8[64, 64, 3]), easy_vqa 1.0 wheel.
_VQA_DIGESTS = {
    ("train", 0): "e4c23ebcededfda7bf1b4e74aedd8aa96bce4e5ac544d61511e1c73f7680123c",
    ("test", 999): "41ce9265984504f8e5cd48e2aafb7d4491a635e770e4e7ad223b34358981f632",
}
# sha256 of the raw 28x28 uint8 bytes and the label, from the Debian package's IDX files
# (dataset-fashion-mnist 0.0~git20200523.55506a9-1), as in test_images.py.
_FASHION = {
    ("train", 0): (9, "5bd44e331a6d6998daf675700cd0c13dcd7af8ab954b7585124124da61459e7b"),
    ("train", 59999): (5, "489c477715bd5275b2646b28941db83e4ff26ece5302728fcb7632e1be5110ac"),
    ("test", 0): (9, "ffc7351ed0f8bae542820866086177fa4e0b366b97bf9d998dffdb8dbe138787"),
}


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_easy_vqa_slice_round_trip_exact(tmp_path):
    n = 12
    for split in vqa.SPLITS:
        got = image_builders.read_split("easy_vqa/images", split, tmp_path, limit=n)
        raw = vqa.read_images(split, limit=n)
        assert got["image"].shape == (n, 64, 64, 3)
        assert got["image"].dtype == np.uint8
        np.testing.assert_array_equal(got["image"], raw)
        np.testing.assert_array_equal(got["id"], np.arange(n))
        q = image_builders.read_split("easy_vqa/questions", split, tmp_path, limit=n)
        ref = vqa.parse_questions(split)
        keep = np.flatnonzero(ref["image_id"] < n)
        assert len(keep) > 3 * n  # every image has a few questions
        assert q["question"] == [ref["question"][j] for j in keep]
        np.testing.assert_array_equal(q["id"], keep)
        for key in ("answer", "image_id", "qtype"):
            np.testing.assert_array_equal(q[key], ref[key][keep])
        # The stored qtype is the answer's kind (vqa.QTYPES order).
        words = [vqa.ANSWERS[a] for a in q["answer"]]
        kinds = [0 if w in ("yes", "no") else 1 if w in vqa.SHAPES else 2 for w in words]
        np.testing.assert_array_equal(q["qtype"], kinds)
    assert _sha(got["image"][0]) != _VQA_DIGESTS[("train", 0)]  # got is test's slice
    train = image_builders.read_split("easy_vqa/images", "train", tmp_path, limit=n)
    assert _sha(train["image"][0]) == _VQA_DIGESTS[("train", 0)]
    assert "tensorflow" not in sys.modules


def test_fast_reader_equals_tfds_own_decoding(tmp_path):
    # read_split parses the tf.Example protos itself; tfds' decoder must agree on every record.
    n = 6
    for name in ("easy_vqa/images", "easy_vqa/questions"):
        got = image_builders.read_split(name, "train", tmp_path, limit=n)
        source = image_builders._builder(name, tmp_path, n).as_data_source(split="train")
        assert len(source) == len(got["id"])
        for i in range(len(source)):
            record = source[i]
            for key, value in record.items():
                mine = got[key][i]
                if isinstance(value, bytes):
                    assert mine == value.decode("utf-8")
                else:
                    np.testing.assert_array_equal(mine, value)


def test_records_keep_generation_order(tmp_path):
    # disable_shuffling: record k is question k of questions.json, not a hash order.
    q = image_builders.read_split("easy_vqa/questions", "test", tmp_path, limit=30)
    ref = vqa.read_questions("test")
    assert q["question"][:20] == [t[0] for t in ref[:20]]


def test_fashion_mnist_built_split_sizes_and_classes(tmp_path):
    from test_images import _write_fake_fashion

    fake = _write_fake_fashion(tmp_path, n_train=7, n_test=4)
    image_builders.build("fashion_mnist", tmp_path)
    assert image_builders.split_sizes("fashion_mnist", tmp_path) == {"train": 7, "test": 4}
    info = image_builders._builder("fashion_mnist", tmp_path, None).info
    assert info.features["label"].names == list(images.FASHION_MNIST_CLASSES)
    got = image_builders.read_split("fashion_mnist", "test", tmp_path)
    np.testing.assert_array_equal(got["image"][..., 0], fake["test"][0])
    np.testing.assert_array_equal(got["label"], fake["test"][1])
    assert "tensorflow" not in sys.modules


def test_missing_files_one_line_error_naming_make_data(tmp_path):
    with pytest.raises(sources.MissingDataError, match="make data") as err:
        image_builders.read_split("fashion_mnist", "train", tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "tfds").exists()  # checked before any build starts
    with pytest.raises(ValueError, match="valid: fashion_mnist, easy_vqa/images"):
        image_builders.build("cifar10", tmp_path)


def test_stale_int64_image_files_fail_loudly(tmp_path, monkeypatch):
    # Files written with another image encoding are refused, not misread.
    monkeypatch.setattr(image_builders.EasyVqa, "VERSION", tfds.core.Version("0.0.1"))
    old_info = image_builders.EasyVqa._info

    def int64_images(self):
        info = old_info(self)
        if self.builder_config.name == "images":
            info = tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "id": tfds.features.Scalar(dtype=np.int64),
                        "image": tfds.features.Tensor(shape=(64, 64, 3), dtype=np.uint8),
                    }
                ),
                disable_shuffling=True,
            )
        return info

    monkeypatch.setattr(image_builders.EasyVqa, "_info", int64_images)
    image_builders.build("easy_vqa/images", tmp_path, limit=2)
    # The reader itself expects raw bytes; read with tfds' features of the written files.
    monkeypatch.setattr(image_builders.EasyVqa, "_info", old_info)
    with pytest.raises(ValueError, match="delete them and rerun `make data`"):
        image_builders.read_split("easy_vqa/images", "train", tmp_path, limit=2)


def test_real_fashion_mnist_exact():
    # The data root `make data` fills (built there on first use otherwise).
    for split, n in (("train", 60000), ("test", 10000)):
        d = images.load_images("fashion_mnist", split)
        assert d["image"].shape == (n, 28, 28, 1)
        assert d["image"].dtype == np.uint8
        assert d["label"].dtype == np.int32
        np.testing.assert_array_equal(np.bincount(d["label"], minlength=10), [n // 10] * 10)
        for (s, i), (label, digest) in _FASHION.items():
            if s == split:
                assert d["label"][i] == label
                assert _sha(d["image"][i]) == digest


@pytest.mark.slow
def test_full_easy_vqa_build(tmp_path):
    counts = {}
    for name in ("easy_vqa/images", "easy_vqa/questions"):
        image_builders.build(name, tmp_path)
        counts[name] = image_builders.split_sizes(name, tmp_path)
    assert counts == {
        "easy_vqa/images": {"train": 4000, "test": 1000},
        "easy_vqa/questions": {"train": 38575, "test": 9673},
    }
    for split in vqa.SPLITS:
        d = vqa.load_vqa(split, tmp_path)
        np.testing.assert_array_equal(d["image"], vqa.read_images(split))
        ref = vqa.parse_questions(split)
        assert d["question"] == ref["question"]
        for key in ("answer", "image_id", "qtype"):
            np.testing.assert_array_equal(d[key], ref[key])
    for (split, i), digest in _VQA_DIGESTS.items():
        assert _sha(vqa.load_vqa(split, tmp_path)["image"][i]) == digest
