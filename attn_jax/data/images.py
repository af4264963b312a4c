"""Small labelled image datasets for the Vision Transformer, read offline.

Two datasets, both as uint8 images `image_NHWC` and int32 labels `label_N`:

- "fashion_mnist": Zalando's Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747),
  70,000 28x28 greyscale images of 10 clothing classes, 60,000 train / 10,000 test.
  The files come from the Debian package `dataset-fashion-mnist`, which `make data`
  downloads (`apt-get download`, no root) and unpacks into
  `<root>/debian/dataset-fashion-mnist/` (`fetch_fashion_mnist`). They are in LeCun's
  IDX format (gzip'd), which `read_idx` parses with the standard library. They are
  written once as the TF-free tfds array_record dataset "attn_jax_fashion_mnist"
  (attn_jax.data.image_builders, under `<root>/tfds/`) by `make data` or on first use,
  and read back from it.
- "digits": scikit-learn's bundled UCI handwritten digits (`sklearn.datasets.load_digits`),
  1,797 8x8 images with values 0..16, scaled to 0..255. It has no official split, so
  a fixed seeded 80/20 split is drawn here ("train" 1,438 / "test" 359). It needs no
  download, which makes it the dataset for smoke runs and tests.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from attn_jax.data.sources import MissingDataError, data_root

FASHION_MNIST_DEB = "dataset-fashion-mnist"
FASHION_MNIST_DIR = "usr/share/datasets/fashion-mnist"
# IDX file prefix of each split, as the package names them.
FASHION_MNIST_FILES = {"train": "train", "test": "t10k"}
FASHION_MNIST_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
DIGITS_SEED = 0
DIGITS_TEST_FRACTION = 0.2
DATASETS = ("fashion_mnist", "digits")
SPLITS = ("train", "test")

# IDX type codes (third magic byte) -> numpy dtype; multi-byte values are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Reads one IDX file (gzip'd if its name ends in .gz) into an array of its shape.

    The format (http://yann.lecun.com/exdb/mnist/): a 4-byte magic `0 0 type ndim`,
    then `ndim` big-endian uint32 dimensions, then the values in C order.

    Raises:
      ValueError: the magic is wrong or the payload's length disagrees with the dims.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (magic bytes {raw[:4]!r}).")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    payload = raw[4 + 4 * ndim :]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(payload) != expected:
        raise ValueError(
            f"{path}: dims {dims} need {expected} bytes of data, the file has {len(payload)}."
        )
    return np.frombuffer(payload, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def fashion_mnist_dir(root: str | Path) -> Path:
    """The unpacked package's IDX folder under `root`, or MissingDataError naming `make data`."""
    folder = Path(root) / "debian" / FASHION_MNIST_DEB / FASHION_MNIST_DIR
    prefixes = FASHION_MNIST_FILES.values()
    names = [f"{p}-images-idx3-ubyte.gz" for p in prefixes]
    names += [f"{p}-labels-idx1-ubyte.gz" for p in prefixes]
    if not all((folder / n).exists() for n in names):
        raise MissingDataError(
            f"Fashion-MNIST ({FASHION_MNIST_DEB}) not found in {root}: run `make data` "
            f"(or `python -m attn_jax.data.fetch --data_dir {root}`)."
        )
    return folder


def fetch_fashion_mnist(root: str | Path) -> Path:
    """Downloads (`apt-get download`) and unpacks dataset-fashion-mnist under `root`.

    Does nothing when it is already unpacked. Returns the IDX folder.
    """
    from attn_jax.data import fetch  # local: fetch imports the builders

    try:
        return fashion_mnist_dir(root)
    except MissingDataError:
        pass
    fetch.unpack_package(FASHION_MNIST_DEB, root)
    return fashion_mnist_dir(root)


def read_fashion_mnist(folder: Path, split: str) -> dict[str, np.ndarray]:
    """One split straight from the IDX files: {"image": uint8[N, 28, 28, 1], "label": int32[N]}."""
    prefix = FASHION_MNIST_FILES[split]
    image_NHW = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    label_N = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    if image_NHW.ndim != 3 or label_N.shape != image_NHW.shape[:1]:
        raise ValueError(
            f"{folder}/{prefix}-*: images {image_NHW.shape} and labels {label_N.shape} "
            "do not pair up."
        )
    return {"image": image_NHW[..., None], "label": label_N.astype(np.int32)}


def _fashion_mnist(root: Path, split: str) -> dict[str, np.ndarray]:
    """One split, read back from the tfds array_record files (built on first use)."""
    from attn_jax.data import image_builders  # local: the builders import this module

    out = image_builders.read_split("fashion_mnist", split, root)
    return {"image": out["image"], "label": out["label"].astype(np.int32)}


def digits_split(n: int) -> dict[str, np.ndarray]:
    """{split: sorted example indices}: a fixed seeded 80/20 split of `n` examples."""
    perm = np.random.default_rng(DIGITS_SEED).permutation(n)
    n_test = int(n * DIGITS_TEST_FRACTION)
    return {"train": np.sort(perm[n_test:]), "test": np.sort(perm[:n_test])}


def _digits(split: str) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits  # local: only this dataset needs sklearn

    digits = load_digits()
    # 0..16 -> 0..255, rounded, so both datasets share the uint8 pixel convention.
    image_NHW = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    idx = digits_split(len(image_NHW))[split]
    return {"image": image_NHW[idx][..., None], "label": digits.target[idx].astype(np.int32)}


def load_images(name: str, split: str, root: str | Path | None = None) -> dict[str, np.ndarray]:
    """One split of an image dataset.

    Args:
      name: "fashion_mnist" or "digits".
      split: "train" or "test".
      root: data root (default `sources.data_root("")`); unused by "digits".

    Returns:
      {"image": uint8[N, H, W, C], "label": int32[N]}.

    Raises:
      ValueError: unknown name or split.
      MissingDataError: Fashion-MNIST has not been fetched (`make data`).
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown image dataset {name!r}; valid: {', '.join(DATASETS)}.")
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r} for {name}; valid: {', '.join(SPLITS)}.")
    if name == "digits":
        return _digits(split)
    return _fashion_mnist(Path(root) if root is not None else data_root(""), split)
