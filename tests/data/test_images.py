"""Image datasets: the IDX reader, the Fashion-MNIST loader (through its tfds builder), digits."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
from sklearn.datasets import load_digits

from attn_jax.data import fetch, images, sources


def _idx_bytes(a: np.ndarray) -> bytes:
    """A uint8 array in IDX format, written independently of the reader."""
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def _write_fake_fashion(root, n_train=5, n_test=3, seed=0):
    """A fake unpacked dataset-fashion-mnist under `root`; returns its arrays."""
    rng = np.random.default_rng(seed)
    folder = root / "debian" / images.FASHION_MNIST_DEB / images.FASHION_MNIST_DIR
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        prefix = {"train": "train", "test": "t10k"}[split]  # the package's names
        img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        lab = rng.integers(0, 10, size=(n,), dtype=np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(img)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(lab)))
        out[split] = (img, lab)
    return out


def test_read_idx_exact_values(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 7
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(a)))
    (tmp_path / "a").write_bytes(_idx_bytes(a))
    for name in ("a.gz", "a"):
        got = images.read_idx(tmp_path / name)
        assert got.dtype == np.uint8
        assert got.shape == (2, 3, 4)
        np.testing.assert_array_equal(got, a)


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    a = np.zeros((4, 2), np.uint8)
    (tmp_path / "bad").write_bytes(b"\x01" + _idx_bytes(a)[1:])
    with pytest.raises(ValueError, match="not an IDX file"):
        images.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(a)[:-1])
    with pytest.raises(ValueError, match="need 8 bytes"):
        images.read_idx(tmp_path / "short")


def test_fashion_mnist_fake_files_exact_and_built(tmp_path):
    fake = _write_fake_fashion(tmp_path)
    for split, (img, lab) in fake.items():
        d = images.load_images("fashion_mnist", split, root=tmp_path)
        assert d["image"].dtype == np.uint8
        assert d["image"].shape == (len(lab), 28, 28, 1)
        assert d["label"].dtype == np.int32
        np.testing.assert_array_equal(d["image"][..., 0], img)
        np.testing.assert_array_equal(d["label"], lab)
    assert (tmp_path / "tfds" / "attn_jax_fashion_mnist").is_dir()
    assert not (tmp_path / "images").exists()  # the old .npz cache is gone
    # The second load reads the built files: it still answers with the IDX files gone.
    for p in (tmp_path / "debian").rglob("*.gz"):
        p.unlink()
    again = images.load_images("fashion_mnist", "train", root=tmp_path)
    np.testing.assert_array_equal(again["image"][..., 0], fake["train"][0])
    np.testing.assert_array_equal(again["label"], fake["train"][1])


def test_missing_fashion_mnist_names_make_data(tmp_path):
    with pytest.raises(sources.MissingDataError, match="make data"):
        images.load_images("fashion_mnist", "train", root=tmp_path)


def test_fetch_does_nothing_when_present(tmp_path, monkeypatch):
    _write_fake_fashion(tmp_path)

    def no_download(*args):
        raise AssertionError("fetch_fashion_mnist downloaded although the files are there")

    monkeypatch.setattr(fetch, "_apt_download", no_download)
    assert images.fetch_fashion_mnist(tmp_path) == images.fashion_mnist_dir(tmp_path)


def test_unknown_name_or_split():
    with pytest.raises(ValueError, match="valid: fashion_mnist, digits"):
        images.load_images("cifar10", "train")
    with pytest.raises(ValueError, match="valid: train, test"):
        images.load_images("digits", "validation")


def test_digits_split_sizes_disjoint_and_deterministic():
    train, test = images.load_images("digits", "train"), images.load_images("digits", "test")
    assert train["image"].shape == (1438, 8, 8, 1)
    assert test["image"].shape == (359, 8, 8, 1)
    assert train["image"].dtype == np.uint8
    assert train["label"].dtype == np.int32
    for d in (train, test):
        assert set(np.unique(d["label"])) == set(range(10))
    assert train["image"].max() == 255
    assert train["image"].min() == 0
    split = images.digits_split(1797)
    assert not set(split["train"]) & set(split["test"])
    assert len(set(split["train"]) | set(split["test"])) == 1797
    again = images.load_images("digits", "test")
    np.testing.assert_array_equal(again["image"], test["image"])
    np.testing.assert_array_equal(again["label"], test["label"])
    # Every image is sklearn's, scaled 0..16 -> 0..255, with its own label.
    ref = load_digits()
    for j, i in enumerate(split["test"][:20]):
        np.testing.assert_array_equal(
            test["image"][j, ..., 0], np.rint(ref.images[i] * 255 / 16).astype(np.uint8)
        )
        assert test["label"][j] == ref.target[i]


# sha256 of the raw 28x28 uint8 bytes, measured on the Debian package's files
# (dataset-fashion-mnist 0.0~git20200523.55506a9-1) on 2026-12-02.
_FASHION_DIGESTS = {
    ("train", 0): (9, "5bd44e331a6d6998daf675700cd0c13dcd7af8ab954b7585124124da61459e7b"),
    ("train", 59999): (5, "489c477715bd5275b2646b28941db83e4ff26ece5302728fcb7632e1be5110ac"),
    ("test", 0): (9, "ffc7351ed0f8bae542820866086177fa4e0b366b97bf9d998dffdb8dbe138787"),
}


@pytest.mark.slow
def test_real_fashion_mnist(tmp_path):
    # A fresh root linking the fetched package: a cold tfds build from the IDX files,
    # then the read back (test_image_builders reads the `make data` build fast).
    real = images.fashion_mnist_dir(sources.data_root("")).parents[3]
    (tmp_path / "debian").mkdir()
    (tmp_path / "debian" / images.FASHION_MNIST_DEB).symlink_to(real)
    for split, n in (("train", 60000), ("test", 10000)):
        d = images.load_images("fashion_mnist", split, root=tmp_path)
        assert d["image"].shape == (n, 28, 28, 1)
        assert d["image"].dtype == np.uint8
        # The official splits are balanced: n / 10 of each class.
        np.testing.assert_array_equal(np.bincount(d["label"], minlength=10), [n // 10] * 10)
        for (s, i), (label, digest) in _FASHION_DIGESTS.items():
            if s == split:
                assert d["label"][i] == label
                assert hashlib.sha256(d["image"][i].tobytes()).hexdigest() == digest
    assert images.FASHION_MNIST_CLASSES[9] == "ankle boot"
