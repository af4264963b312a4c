"""The English-Spanish Bible: verse-aligned pairs read from two SWORD modules.

Sources: the Debian packages `sword-text-kjv` (King James Version, 1769 text, module
engKJV2006eb) and `sword-text-sparv` (Reina-Valera 1909, module spaRV1909eb), fetched
by `make data` (`fetch_sword`) into `<data_root>/debian/<package>/`. Both are zText
modules in the KJV versification, read here in pure Python (struct + zlib); the SWORD
library is never needed.

zText layout (checked against these files), per testament (`ot.*`, `nt.*`):
- `.bzs` block index: one (offset, compressed size, uncompressed size) record of 3
  uint32 LE per block; `.bzz` holds the zlib-compressed blocks (CompressType=ZIP),
  one per book (BlockType=BOOK) plus a block 0 for the testament heading.
- `.bzv` verse index: one (block uint32, offset uint32, size uint16) LE record of 10
  bytes per index entry, the offset into the uncompressed block. The entries are:
  0 an empty module-heading slot, 1 the testament heading, then for each book a book
  heading (its `<div type="book" osisID=...>` and title), then for each chapter a
  chapter heading (`<chapter osisID="Gen.1" .../>`) followed by one entry per verse.
  So the OT has 2 + 39 + 929 + 23,145 = 24,115 entries and the NT 2 + 27 + 260 +
  7,957 = 8,246: exactly the files' sizes / 10.

Both modules are OSIS (SourceType=OSIS). `osis_to_text` keeps the words of a verse:
it drops footnotes (`<note>` with its content), non-canonical titles, the KJV's
paragraph signs, stray USFM character markers (`\\nd`), and every tag (Strong's-number `<w>` wrappers, `<transChange>`,
`<divineName>`, `<q>`, line groups) while keeping the text inside them; canonical
Psalm superscriptions stay, as in printed Bibles.

Split: by whole books, so that no verse of a held-out book is trained on (a random
verse split would put half of each chapter's context in training). The held-out
books avoid the long synoptic parallels (Mark, Kings/Chronicles, Samuel) that would
let a model recall a near-identical training verse:
- validation: Ezekiel, Hebrews (1,576 verses, 5.1%);
- test: Joshua, Proverbs, Romans (2,006 verses, 6.4%): OT narrative, OT wisdom
  poetry and an NT letter;
- train: the other 61 books (27,502 verse pairs; RV1909 leaves 18 KJV verses empty,
  joined to a neighbour, so 31,084 of the 31,102 verses pair up).

`pair_data(data_config)` is the provider of the sequence-pair contract
(attn_jax.data.pairs): a SentencePiece vocabulary shared by both languages, trained on
the training books' English and Spanish only, and sacrebleu corpus BLEU and chrF as
the score. `dictionary_baseline` is the word-for-word reference point (IBM Model 1).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from attn_jax.data import sources

# --------------------------------------------------------------------------- versification

# The KJV versification: (OSIS id, name, verses in each chapter), 66 books, 1,189
# chapters, 31,102 verses. Transcribed from SWORD's canonical text table
# (CrossWire Bible Society, include/canon.h: `otbooks`, `ntbooks`, `vm`), the table a
# module with Versification=KJV is indexed by; `read_module` checks every chapter
# heading of the files against it.
_VM = {
    "Gen": "31 25 24 26 32 22 24 22 29 32 32 20 18 24 21 16 27 33 38 18 34 24 20 67 34 35 "
    "46 22 35 43 55 32 20 31 29 43 36 30 23 23 57 38 34 34 28 34 31 22 33 26",
    "Exod": "22 25 22 31 23 30 25 32 35 29 10 51 22 31 27 36 16 27 25 26 36 31 33 18 40 "
    "37 21 43 46 38 18 35 23 35 35 38 29 31 43 38",
    "Lev": "17 16 17 35 19 30 38 36 24 20 47 8 59 57 33 34 16 30 37 27 24 33 44 23 55 46 34",
    "Num": "54 34 51 49 31 27 89 26 23 36 35 16 33 45 41 50 13 32 22 29 35 41 30 25 18 65 "
    "23 31 40 16 54 42 56 29 34 13",
    "Deut": "46 37 29 49 33 25 26 20 29 22 32 32 18 29 23 22 20 22 21 20 23 30 25 22 19 "
    "19 26 68 29 20 30 52 29 12",
    "Josh": "18 24 17 24 15 27 26 35 27 43 23 24 33 15 63 10 18 28 51 9 45 34 16 33",
    "Judg": "36 23 31 24 31 40 25 35 57 18 40 15 25 20 20 31 13 31 30 48 25",
    "Ruth": "22 23 18 22",
    "1Sam": "28 36 21 22 12 21 17 22 27 27 15 25 23 52 35 23 58 30 24 42 15 23 29 22 44 "
    "25 12 25 11 31 13",
    "2Sam": "27 32 39 12 25 23 29 18 13 19 27 31 39 33 37 23 29 33 43 26 22 51 39 25",
    "1Kgs": "53 46 28 34 18 38 51 66 28 29 43 33 34 31 34 34 24 46 21 43 29 53",
    "2Kgs": "18 25 27 44 27 33 20 29 37 36 21 21 25 29 38 20 41 37 37 21 26 20 37 20 30",
    "1Chr": "54 55 24 43 26 81 40 40 44 14 47 40 14 17 29 43 27 17 19 8 30 19 32 31 31 32 34 21 30",
    "2Chr": "17 18 17 22 14 42 22 18 31 19 23 16 22 15 19 14 19 34 11 37 20 12 21 27 28 "
    "23 9 27 36 27 21 33 25 33 27 23",
    "Ezra": "11 70 13 24 17 22 28 36 15 44",
    "Neh": "11 20 32 23 19 19 73 18 38 39 36 47 31",
    "Esth": "22 23 15 17 14 14 10 17 32 3",
    "Job": "22 13 26 21 27 30 21 22 35 22 20 25 28 22 35 22 16 21 29 29 34 30 17 25 6 14 "
    "23 28 25 31 40 22 33 37 16 33 24 41 30 24 34 17",
    "Ps": "6 12 8 8 12 10 17 9 20 18 7 8 6 7 5 11 15 50 14 9 13 31 6 10 22 12 14 9 11 12 "
    "24 11 22 22 28 12 40 22 13 17 13 11 5 26 17 11 9 14 20 23 19 9 6 7 23 13 11 11 17 "
    "12 8 12 11 10 13 20 7 35 36 5 24 20 28 23 10 12 20 72 13 19 16 8 18 12 13 17 7 18 "
    "52 17 16 15 5 23 11 13 12 9 9 5 8 28 22 35 45 48 43 13 31 7 10 10 9 8 18 19 2 29 "
    "176 7 8 9 4 8 5 6 5 6 8 8 3 18 3 3 21 26 9 8 24 13 10 7 12 15 21 10 20 14 9 6",
    "Prov": "33 22 35 27 23 35 27 36 18 32 31 28 25 35 33 33 28 24 29 30 31 29 35 34 28 "
    "28 27 28 27 33 31",
    "Eccl": "18 26 22 16 20 12 29 17 18 20 10 14",
    "Song": "17 17 11 16 16 13 13 14",
    "Isa": "31 22 26 6 30 13 25 22 21 34 16 6 22 32 9 14 14 7 25 6 17 25 18 23 12 21 13 "
    "29 24 33 9 20 24 17 10 22 38 22 8 31 29 25 28 28 25 13 15 22 26 11 23 15 12 17 13 "
    "12 21 14 21 22 11 12 19 12 25 24",
    "Jer": "19 37 25 31 31 30 34 22 26 25 23 17 27 22 21 21 27 23 15 18 14 30 40 10 38 24 "
    "22 17 32 24 40 44 26 22 19 32 21 28 18 16 18 22 13 30 5 28 7 47 39 46 64 34",
    "Lam": "22 22 66 22 22",
    "Ezek": "28 10 27 17 17 14 27 18 11 22 25 28 23 23 8 63 24 32 14 49 32 31 49 27 17 21 "
    "36 26 21 26 18 32 33 31 15 38 28 23 29 49 26 20 27 31 25 24 23 35",
    "Dan": "21 49 30 37 31 28 28 27 27 21 45 13",
    "Hos": "11 23 5 19 15 11 16 14 17 15 12 14 16 9",
    "Joel": "20 32 21",
    "Amos": "15 16 15 13 27 14 17 14 15",
    "Obad": "21",
    "Jonah": "17 10 10 11",
    "Mic": "16 13 12 13 15 16 20",
    "Nah": "15 13 19",
    "Hab": "17 20 19",
    "Zeph": "18 15 20",
    "Hag": "15 23",
    "Zech": "21 13 10 14 11 15 14 23 17 12 17 14 9 21",
    "Mal": "14 17 18 6",
    "Matt": "25 23 17 25 48 34 29 34 38 42 30 50 58 36 39 28 27 35 30 34 46 46 39 51 46 75 66 20",
    "Mark": "45 28 35 41 43 56 37 38 50 52 33 44 37 72 47 20",
    "Luke": "80 52 38 44 39 49 50 56 62 42 54 59 35 35 32 31 37 43 48 47 38 71 56 53",
    "John": "51 25 36 54 47 71 53 59 41 42 57 50 38 31 27 33 26 40 42 31 25",
    "Acts": "26 47 26 37 42 15 60 40 43 48 30 25 52 28 41 40 34 28 41 38 40 30 35 27 27 32 44 31",
    "Rom": "32 29 31 25 21 23 25 39 33 21 36 21 14 23 33 27",
    "1Cor": "31 16 23 21 13 20 40 13 27 33 34 31 13 40 58 24",
    "2Cor": "24 17 18 18 21 18 16 24 15 18 33 21 14",
    "Gal": "24 21 29 31 26 18",
    "Eph": "23 22 21 32 33 24",
    "Phil": "30 30 21 23",
    "Col": "29 23 25 18",
    "1Thess": "10 20 13 18 28",
    "2Thess": "12 17 18",
    "1Tim": "20 15 16 16 25 21",
    "2Tim": "18 26 17 22",
    "Titus": "16 15 15",
    "Phlm": "25",
    "Heb": "14 18 19 16 14 20 28 13 28 39 40 29 25",
    "Jas": "27 26 18 17 20",
    "1Pet": "25 25 22 19 14",
    "2Pet": "21 22 18",
    "1John": "10 29 24 21 21",
    "2John": "13",
    "3John": "14",
    "Jude": "25",
    "Rev": "20 29 22 11 14 17 17 13 21 11 19 17 18 20 8 21 18 24 21 15 27 21",
}
VERSES: dict[str, tuple[int, ...]] = {b: tuple(map(int, v.split())) for b, v in _VM.items()}
BOOKS = tuple(VERSES)
OT_BOOKS, NT_BOOKS = BOOKS[:39], BOOKS[39:]

# The fixed held-out books (module docstring); everything else trains.
HELD_OUT = {"validation": ("Ezek", "Heb"), "test": ("Josh", "Prov", "Rom")}
SPLITS = ("train", "validation", "test")

# Debian package -> the SWORD module inside it (and its language).
MODULES = {"en": ("sword-text-kjv", "engKJV2006eb"), "es": ("sword-text-sparv", "spaRV1909eb")}
_SWORD = "usr/share/sword"


@dataclasses.dataclass(frozen=True)
class Verse:
    """A verse reference in the KJV versification."""

    book: str
    chapter: int
    verse: int

    def __str__(self) -> str:
        return f"{self.book}.{self.chapter}.{self.verse}"


def verse_keys(books: Sequence[str] = BOOKS) -> list[Verse]:
    """Every verse of `books` in canonical order."""
    return [
        Verse(b, c + 1, v + 1) for b in books for c, n in enumerate(VERSES[b]) for v in range(n)
    ]


def split_of(book: str) -> str:
    """The split ("train", "validation" or "test") a book belongs to."""
    for split, books in HELD_OUT.items():
        if book in books:
            return split
    if book not in VERSES:
        raise ValueError(f"Unknown book {book!r}; valid: {', '.join(BOOKS)}.")
    return "train"


# --------------------------------------------------------------------------- files


MissingDataError = sources.MissingDataError


def module_dir(root: Path, lang: str) -> Path:
    """The zText folder of language `lang`'s module under `root`, or MissingDataError.

    The folder is the .conf's DataPath; the .conf must say CompressType=ZIP,
    SourceType=OSIS and Versification=KJV, the only layout `read_module` reads.
    """
    package, module = MODULES[lang]
    sword = Path(root) / "debian" / package / _SWORD
    conf_path = sword / "mods.d" / f"{module}.conf"
    if not conf_path.exists():
        raise MissingDataError(
            f"Bible module {module} ({package}) not found in {root}: run `make data` "
            f"(or `python -m attn_jax.data.fetch --data_dir {root}`)."
        )
    conf = dict(re.findall(r"^(\w+)=(.*?)\s*$", conf_path.read_text("utf-8"), re.M))
    wanted = {
        "ModDrv": "zText",
        "CompressType": "ZIP",
        "SourceType": "OSIS",
        "Versification": "KJV",
    }
    for key, value in wanted.items():
        # A .conf without Versification means KJV (SWORD's default).
        if conf.get(key, "KJV" if key == "Versification" else None) != value:
            raise ValueError(f"{conf_path}: {key}={conf.get(key)!r}; this reader needs {value}.")
    return sword / conf["DataPath"]


def fetch_sword(root: Path) -> dict[str, Path]:
    """Downloads (`apt-get download`) and unpacks both Bible packages under `root`.

    Does nothing for a package already unpacked. Returns {lang: module folder}.
    """
    from attn_jax.data import fetch  # local: fetch imports the builders

    out = {}
    for lang, (package, _) in MODULES.items():
        try:
            out[lang] = module_dir(root, lang)
            continue
        except MissingDataError:
            pass
        fetch.unpack_package(package, root)
        out[lang] = module_dir(root, lang)
    return out


def _entries(folder: Path, testament: str) -> list[str]:
    """Every index entry of one testament's zText files, as UTF-8 markup."""
    bzs = (folder / f"{testament}.bzs").read_bytes()
    bzv = (folder / f"{testament}.bzv").read_bytes()
    bzz = (folder / f"{testament}.bzz").read_bytes()
    blocks = []
    for offset, size, raw_size in struct.iter_unpack("<III", bzs):
        block = zlib.decompress(bzz[offset : offset + size])
        if len(block) != raw_size:
            raise ValueError(f"{folder}/{testament}.bzz: block at {offset} has the wrong size.")
        blocks.append(block)
    out = []
    for block, offset, size in struct.iter_unpack("<IIH", bzv):
        out.append(blocks[block][offset : offset + size].decode("utf-8") if size else "")
    return out


_CHAPTER = re.compile(r'<chapter\b[^>]*\bosisID="([^"]+)"')


def read_module(folder: Path) -> dict[Verse, str]:
    """{verse: OSIS markup} of a KJV-versification zText module, every verse present.

    Raises ValueError when the files' chapter headings disagree with `VERSES`.
    """
    out = {}
    for testament, books in (("ot", OT_BOOKS), ("nt", NT_BOOKS)):
        entries = _entries(Path(folder), testament)
        expected = 2 + len(books) + sum(len(VERSES[b]) + sum(VERSES[b]) for b in books)
        if len(entries) != expected:
            raise ValueError(
                f"{folder}/{testament}.bzv has {len(entries)} entries; the KJV "
                f"versification needs {expected}."
            )
        i = 2
        for book in books:
            i += 1  # the book heading
            for c, n in enumerate(VERSES[book], start=1):
                heading = _CHAPTER.search(entries[i])
                if heading is None or heading.group(1) != f"{book}.{c}":
                    raise ValueError(f"{folder}: entry {i} is not the heading of {book}.{c}.")
                for v in range(1, n + 1):
                    out[Verse(book, c, v)] = entries[i + v]
                i += n + 1
    return out


_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_TITLE = re.compile(r"<title\b(?![^>]*canonical=\"true\")[^>]*>.*?</title>", re.S)
_TAG = re.compile(r"<[^>]*>")
_USFM = re.compile(r"\\\+?[a-z]+\d*\*? ?")  # stray USFM markers, e.g. `\nd ` in 27 KJV verses
_BEFORE_PUNCT = re.compile(r" +([,.;:!?)])")


def osis_to_text(markup: str) -> str:
    """The words of one OSIS verse as plain text (see the module docstring)."""
    text = _NOTE.sub("", markup) if "<note" in markup else markup
    text = _TITLE.sub(" ", text) if "<title" in text else text
    text = _TAG.sub("", text)
    text = _USFM.sub("", text) if "\\" in text else text
    text = " ".join(text.replace("¶", " ").split())
    return _BEFORE_PUNCT.sub(r"\1", text) if " " in text else text


@functools.lru_cache(maxsize=4)
def _verse_pairs(root: str) -> tuple[tuple[Verse, str, str], ...]:
    texts = {lang: read_module(module_dir(Path(root), lang)) for lang in MODULES}
    out = []
    for key in verse_keys():
        en, es = osis_to_text(texts["en"][key]), osis_to_text(texts["es"][key])
        if en and es:
            out.append((key, en, es))
    return tuple(out)


def verse_pairs(root: Path | str | None = None) -> list[tuple[Verse, str, str]]:
    """[(verse, English, Spanish)] in canonical order: verses non-empty in both."""
    root = sources.data_root("") if root is None else Path(root)
    return list(_verse_pairs(str(Path(root).resolve())))


def split_pairs(
    root: Path | str | None = None, direction: str = "en-es"
) -> dict[str, tuple[list[str], list[str]]]:
    """{split: (sources, targets)} by the fixed book split; `direction` "en-es" | "es-en"."""
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown data.direction {direction!r}; valid: {', '.join(DIRECTIONS)}.")
    src, tgt = DIRECTIONS[direction]
    out = {s: ([], []) for s in SPLITS}
    for key, en, es in verse_pairs(root):
        text = {"en": en, "es": es}
        srcs, tgts = out[split_of(key.book)]
        srcs.append(text[src])
        tgts.append(text[tgt])
    return out


DIRECTIONS = {"en-es": ("en", "es"), "es-en": ("es", "en")}

# --------------------------------------------------------------------------- provider


def score(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """sacrebleu corpus BLEU (13a tokenization) and chrF, both 0-100."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references.")
    return {
        "bleu": float(sacrebleu.corpus_bleu(hypotheses, [references]).score),
        "chrf": float(sacrebleu.corpus_chrf(hypotheses, [references]).score),
    }


class SharedVocab:
    """A SentencePiece model over both languages, in the pair contract's id space.

    `train_sentencepiece` puts unk at 0, <s> at 1 and </s> at 2, so its pieces are
    already ids >= 3 = N_SPECIAL; with byte fallback no text ever maps to unk, and
    ids 0..2 serve as PAD, BOS, EOS. `decode` drops ids below 3.
    """

    def __init__(self, sp):
        self.sp = sp
        self.vocab_size = sp.vocab_size
        self.model_path = sp.model_path

    def encode(self, text: str) -> np.ndarray:
        ids = self.sp.encode(text)
        if ids.size and ids.min() < 3:
            raise ValueError(f"SentencePiece produced a reserved id for {text[:40]!r}.")
        return ids.astype(np.int32)

    def decode(self, ids) -> str:
        ids = np.asarray(ids).reshape(-1)
        return self.sp.decode(ids[ids >= 3])


def tokenizer(root: Path, vocab: int, train: tuple[list[str], list[str]]) -> SharedVocab:
    """The shared vocabulary, trained once on `train`'s two sides and cached.

    Cached as `<root>/tokenizers/bible-sp<vocab>-<key>.model`, keyed by the held-out
    books and the text of the training pairs, so a changed split or reader retrains.
    """
    from attn_jax.data import tokenizers

    digest = hashlib.sha1(repr(sorted(HELD_OUT.items())).encode())
    for side in train:
        for line in side:
            digest.update(line.encode("utf-8"))
            digest.update(b"\n")
    path = Path(root) / "tokenizers" / f"bible-sp{vocab}-{digest.hexdigest()[:10]}.model"
    if path.exists():
        return SharedVocab(tokenizers.SentencePieceTokenizer(path))
    lines = list(train[0]) + list(train[1])
    return SharedVocab(tokenizers.train_sentencepiece(lines, path, vocab_size=vocab))


def _spread(sources_, targets, n: int) -> tuple[list[str], list[str]]:
    """At most n pairs, evenly spaced over the split (so every held-out book appears)."""
    keep = np.unique(np.linspace(0, len(sources_) - 1, num=min(n, len(sources_))).astype(int))
    return [sources_[i] for i in keep], [targets[i] for i in keep]


def pair_data(data_config):
    """The Bible provider of attn_jax.data.pairs: splits "train", "validation", "test".

    Reads data_config.data_dir, .direction ("en-es" default | "es-en"),
    .sp_vocab_size (default 8000) and .max_pairs (default 0 = all; n > 0 keeps n
    evenly spaced pairs of each split, for smoke runs; the vocabulary is still
    trained on every training pair).
    """
    from attn_jax.data import pairs

    get = (
        data_config.get if hasattr(data_config, "get") else lambda k, d: getattr(data_config, k, d)
    )
    root = sources.data_root(get("data_dir", ""))
    direction = get("direction", "en-es")
    splits = split_pairs(root, direction)
    en_es = split_pairs(root, "en-es")["train"]
    vocab = tokenizer(root, int(get("sp_vocab_size", 8000)), en_es)
    if n := int(get("max_pairs", 0) or 0):
        splits = {k: _spread(src, tgt, n) for k, (src, tgt) in splits.items()}
    return pairs.PairData(tokenizer=vocab, splits=splits, score=score)


# --------------------------------------------------------------------------- baseline

_WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([,.;:!?)’])")


def words(text: str) -> list[str]:
    """Word and punctuation tokens (case kept): the baseline's units."""
    return _WORD.findall(text)


def ibm1(sources: Sequence[str], targets: Sequence[str], iterations: int = 5) -> dict[str, str]:
    """A word-for-word dictionary {source word: best target word} from IBM Model 1.

    Model 1 (Brown et al. 1993, "The Mathematics of Statistical Machine
    Translation", sec. 4.1) explains each target word f of a pair as generated by
    one source word e (or NULL), uniformly chosen, with probability t(f|e); EM
    re-estimates t from the expected alignment counts. Words are lowercased. The
    dictionary maps e to argmax_f t(f|e). Vectorised: one entry per (pair, target
    position, source word) co-occurrence, summed per target position with
    `np.add.reduceat` and per (e, f) with `np.bincount`.
    """
    e_vocab, f_vocab = {"<null>": 0}, {}
    es, fs, group = [], [], []
    for src, tgt in zip(sources, targets, strict=True):
        e = [0] + [e_vocab.setdefault(w, len(e_vocab)) for w in words(src.lower())]
        f = [f_vocab.setdefault(w, len(f_vocab)) for w in words(tgt.lower())]
        if not f:
            continue
        es.append(np.tile(np.asarray(e, np.int64), len(f)))
        fs.append(np.repeat(np.asarray(f, np.int64), len(e)))
        group.append(np.full(len(f), len(e)))
    e_all, f_all, sizes = np.concatenate(es), np.concatenate(fs), np.concatenate(group)
    pairs_, pair_of = np.unique(e_all * len(f_vocab) + f_all, return_inverse=True)
    del e_all, f_all
    pair_e = pairs_ // len(f_vocab)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    t = np.ones(len(pairs_))  # uniform t: the first E-step's posteriors are 1/(|e|+1)
    for _ in range(iterations):
        p = t[pair_of]
        p /= np.repeat(np.add.reduceat(p, starts), sizes)
        counts = np.bincount(pair_of, weights=p, minlength=len(pairs_))
        t = counts / np.bincount(pair_e, weights=counts)[pair_e]
    # argmax_f t(f|e) for each e: sort by (e, -t), keep each e's first row.
    order = np.lexsort((-t, pair_e))
    first = order[np.r_[True, pair_e[order][1:] != pair_e[order][:-1]]]
    e_words, f_words = list(e_vocab), list(f_vocab)
    return {e_words[pair_e[i]]: f_words[pairs_[i] % len(f_vocab)] for i in first if pair_e[i]}


def translate_words(text: str, dictionary: dict[str, str]) -> str:
    """Word-for-word translation: each word by its dictionary entry, case carried over.

    Unknown words (mostly names) and punctuation are copied.
    """
    out = []
    for w in words(text):
        f = dictionary.get(w.lower(), w)
        if w[:1].isupper():
            f = f[:1].upper() + f[1:]
        out.append(f)
    return _NO_SPACE_BEFORE.sub(r"\1", " ".join(out))


def dictionary_baseline(
    root: Path | str | None = None,
    direction: str = "en-es",
    split: str = "test",
    iterations: int = 5,
) -> dict[str, float]:
    """BLEU/chrF of the IBM Model 1 word-for-word translation of `split`, and of a copy.

    Returns {"bleu", "chrf", "copy_bleu", "copy_chrf", "dictionary_size", "verses"}.
    """
    splits = split_pairs(root, direction)
    dictionary = ibm1(*splits["train"], iterations=iterations)
    sources_, references = splits[split]
    metrics = score([translate_words(s, dictionary) for s in sources_], references)
    copy = score(list(sources_), references)
    metrics.update(copy_bleu=copy["bleu"], copy_chrf=copy["chrf"])
    metrics.update(dictionary_size=float(len(dictionary)), verses=float(len(references)))
    return metrics
