"""The Bible reader, split, shared vocabulary and dictionary baseline (attn_jax.data.bible).

Fast tests read handmade zText modules written here from the layout the module
docstring documents; the `slow` ones read the real Debian packages (`make data`).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from attn_jax.data import bible, pairs, sources

CONF = """[{module}]
DataPath=./modules/texts/ztext/{module}/
ModDrv=zText
SourceType=OSIS
Encoding=UTF-8
CompressType=ZIP
BlockType=BOOK
Versification=KJV
"""


def write_module(root, lang, verses: dict[str, str]) -> None:
    """A zText module of `lang` under `root` with `verses` {"Gen.1.1": markup}; others empty.

    Layout: per testament, block 0 holds the testament heading, then one block per
    book; the index has an empty entry, the testament heading, then per book a book
    heading and per chapter a chapter heading followed by its verses.
    """
    package, module = bible.MODULES[lang]
    sword = root / "debian" / package / "usr/share/sword"
    folder = sword / "modules/texts/ztext" / module
    folder.mkdir(parents=True)
    (sword / "mods.d").mkdir()
    (sword / "mods.d" / f"{module}.conf").write_text(CONF.format(module=module))
    for testament, books in (("ot", bible.OT_BOOKS), ("nt", bible.NT_BOOKS)):
        blocks = [b"<milestone/>"]
        index = [(0, 0, 0), (0, 0, len(blocks[0]))]
        for book in books:
            block = bytearray()

            texts = [f'<div osisID="{book}" type="book"/><title>{book}</title>']
            for c, n in enumerate(bible.VERSES[book], start=1):
                texts.append(f'<chapter n="{c}" osisID="{book}.{c}" sID="{book}.{c}"/>')
                texts += [verses.get(f"{book}.{c}.{v}", "") for v in range(1, n + 1)]
            for text in texts:
                raw = text.encode("utf-8")
                index.append((len(blocks), len(block), len(raw)))
                block.extend(raw)
            blocks.append(bytes(block))
        bzs, bzz = bytearray(), bytearray()
        for block in blocks:
            packed = zlib.compress(block)
            bzs += struct.pack("<III", len(bzz), len(packed), len(block))
            bzz += packed
        (folder / f"{testament}.bzs").write_bytes(bytes(bzs))
        (folder / f"{testament}.bzz").write_bytes(bytes(bzz))
        (folder / f"{testament}.bzv").write_bytes(b"".join(struct.pack("<IIH", *e) for e in index))


EN = {
    "Gen.1.1": 'In the <w lemma="strong:H7225">beginning</w> <w lemma="strong:H0430">God</w>.',
    "Gen.50.26": "So Joseph died.",
    "Mal.4.6": 'Lest I come <note placement="foot">Or, <seg>utterly</seg></note>and smite.',
    "Matt.1.1": "The book.",
    "John.11.35": '<w lemma="strong:G2424">Jesus</w> <w lemma="strong:G1145">wept</w>.',
    "Rev.22.21": '¶ The grace <transChange type="added">be</transChange> with you all.',
    "Acts.19.41": "And when he had thus spoken, he dismissed the assembly.",
}
ES = {
    "Gen.1.1": '<w lemma="strong:H7225">EN el principio</w> crió Dios.',
    "Gen.50.26": "Y murió José.",
    "Mal.4.6": "No sea que yo venga.",
    "Matt.1.1": "LIBRO.",
    "John.11.35": "Y lloró Jesús.",
    "Rev.22.21": "La gracia sea con todos vosotros.",
}


@pytest.fixture
def fake_root(tmp_path):
    write_module(tmp_path, "en", EN)
    write_module(tmp_path, "es", ES)
    return tmp_path


def test_versification_table_has_the_published_totals():
    # The KJV: 66 books, 1,189 chapters, 23,145 OT + 7,957 NT = 31,102 verses.
    assert len(bible.BOOKS) == 66
    assert len(bible.OT_BOOKS) == 39
    assert sum(len(v) for v in bible.VERSES.values()) == 1189
    assert sum(sum(bible.VERSES[b]) for b in bible.OT_BOOKS) == 23145
    assert sum(sum(bible.VERSES[b]) for b in bible.NT_BOOKS) == 7957
    assert len(bible.verse_keys()) == 31102
    assert bible.VERSES["Ps"][118] == 176
    assert bible.VERSES["John"][10] == 57


def test_reader_finds_each_verse_at_its_reference(fake_root):
    en = bible.read_module(bible.module_dir(fake_root, "en"))
    assert len(en) == 31102
    assert en[bible.Verse("John", 11, 35)] == EN["John.11.35"]
    assert en[bible.Verse("Rev", 22, 21)] == EN["Rev.22.21"]
    assert en[bible.Verse("Gen", 50, 26)] == EN["Gen.50.26"]
    assert en[bible.Verse("Gen", 1, 2)] == ""


def test_pairs_are_aligned_and_need_both_sides(fake_root):
    got = {str(k): (e, s) for k, e, s in bible.verse_pairs(fake_root)}
    # Acts 19:41 is empty in Spanish (as in the real RV1909): no pair.
    assert sorted(got) == sorted(ES)
    assert got["Gen.1.1"] == ("In the beginning God.", "EN el principio crió Dios.")
    assert got["John.11.35"] == ("Jesus wept.", "Y lloró Jesús.")
    assert got["Mal.4.6"] == ("Lest I come and smite.", "No sea que yo venga.")
    assert got["Rev.22.21"][0] == "The grace be with you all."
    keys = [k for k, _, _ in bible.verse_pairs(fake_root)]
    assert keys == sorted(keys, key=bible.verse_keys().index)  # canonical order


def test_reader_rejects_a_module_off_the_kjv_versification(fake_root):
    folder = bible.module_dir(fake_root, "en")
    bzv = (folder / "nt.bzv").read_bytes()
    (folder / "nt.bzv").write_bytes(bzv[:-10])
    with pytest.raises(ValueError, match="KJV versification needs 8246"):
        bible.read_module(folder)
    # One verse too many in Matthew 1 shifts every later chapter heading.
    entries = list(struct.iter_unpack("<IIH", bzv))
    entries.insert(5, entries[5])
    (folder / "nt.bzv").write_bytes(b"".join(struct.pack("<IIH", *e) for e in entries[:-1]))
    with pytest.raises(ValueError, match="not the heading of Matt.2"):
        bible.read_module(folder)


def test_missing_modules_name_make_data(tmp_path):
    with pytest.raises(sources.MissingDataError, match=r"sword-text-kjv.*`make data`"):
        bible.verse_pairs(tmp_path)


def test_osis_to_text_keeps_words_only():
    markup = (
        '<div type="x-milestone" subType="x-preverse" sID="pv1"/><title canonical="true" '
        'type="psalm">A <w lemma="strong:H4210">Psalm</w> of David.</title> <w lemma="s:1">'
        'LORD</w>, <transChange type="added">how</transChange> the \\nd LORD<note placement='
        '"foot"><reference type="annotateRef">3.1 </reference>or, <seg>JEHOVAH</seg></note> '
        '¶ <title>Heading</title>is <q who="Jesus">near</q> !'
    )
    assert bible.osis_to_text(markup) == "A Psalm of David. LORD, how the LORD is near!"


def test_book_split_is_disjoint_and_whole():
    held = [b for books in bible.HELD_OUT.values() for b in books]
    assert len(held) == len(set(held))
    assert set(held) <= set(bible.BOOKS)
    by_split = {
        s: [k for k in bible.verse_keys() if bible.split_of(k.book) == s] for s in bible.SPLITS
    }
    assert sum(len(v) for v in by_split.values()) == 31102
    books = {s: {k.book for k in v} for s, v in by_split.items()}
    assert not books["train"] & books["test"]
    assert not books["train"] & books["validation"]
    assert not books["validation"] & books["test"]
    for split in ("validation", "test"):
        assert 0.05 <= len(by_split[split]) / 31102 <= 0.08
        assert books[split] & set(bible.OT_BOOKS)
        assert books[split] & set(bible.NT_BOOKS)
    with pytest.raises(ValueError, match="Unknown book 'Tob'"):
        bible.split_of("Tob")


def test_split_pairs_follow_the_direction(fake_root):
    en_es = bible.split_pairs(fake_root, "en-es")
    es_en = bible.split_pairs(fake_root, "es-en")
    assert en_es["train"] == (es_en["train"][1], es_en["train"][0])
    assert en_es["test"] == ([], [])  # no fake verse in Joshua, Proverbs or Romans
    assert "Jesus wept." in en_es["train"][0]
    with pytest.raises(ValueError, match="data.direction 'en-fr'"):
        bible.split_pairs(fake_root, "en-fr")


def test_ibm1_recovers_a_known_dictionary():
    # Target sentences are a fixed word map of the source, shuffled, and every pair
    # holds "the" -> "el": by co-occurrence every word's best match is "el"; Model
    # 1's EM explains "el" by "the" and frees the other words.
    rng = np.random.default_rng(0)
    lexicon = {f"w{i}": f"p{i}" for i in range(30)}
    src, tgt = [], []
    for _ in range(400):
        ws = ["the", *rng.choice(list(lexicon), size=rng.integers(2, 7), replace=False)]
        src.append(" ".join(ws))
        tgt.append(" ".join({"the": "el", **lexicon}[w] for w in rng.permutation(ws)))
    assert bible.ibm1(src, tgt, iterations=10) == {"the": "el", **lexicon}
    # Case carries over, unknown words and punctuation are copied.
    assert bible.translate_words("W1 w2 Zed, w3.", lexicon) == "P1 p2 Zed, p3."


def test_score_is_bleu_and_chrf():
    refs = ["Y lloró Jesús.", "La gracia sea con todos vosotros."]
    assert bible.score(refs, refs) == {"bleu": pytest.approx(100.0), "chrf": pytest.approx(100.0)}
    worse = bible.score(["Y Jesús.", "La gracia."], refs)
    assert 0 <= worse["bleu"] < 50
    assert 0 < worse["chrf"] < 100


class _FakeSP:
    vocab_size, model_path = 10, None

    def encode(self, text):
        return (
            np.asarray([3 + (ord(c) % 7) for c in text], np.int32)
            if text != "bad"
            else np.asarray([0])
        )

    def decode(self, ids):
        return ",".join(str(int(i)) for i in ids)


def test_shared_vocab_keeps_the_special_ids_free():
    vocab = bible.SharedVocab(_FakeSP())
    assert vocab.encode("abc").min() >= pairs.N_SPECIAL
    assert vocab.decode([pairs.BOS, 5, 6, pairs.EOS, pairs.PAD]) == "5,6"
    with pytest.raises(ValueError, match="reserved id"):
        vocab.encode("bad")


# ----------------------------------------------------------------- the real packages


@pytest.mark.slow
def test_real_modules_known_verses_and_counts():
    """Needs `make data` (sword-text-kjv, sword-text-sparv)."""
    got = {str(k): (e, s) for k, e, s in bible.verse_pairs()}
    assert got["Gen.1.1"] == (
        "In the beginning God created the heaven and the earth.",
        "EN el principio crió Dios los cielos y la tierra.",
    )
    assert got["John.11.35"] == ("Jesus wept.", "Y lloró Jesús.")
    assert got["Rev.22.21"] == (
        "The grace of our Lord Jesus Christ be with you all. Amen.",
        "La gracia de nuestro Señor Jesucristo sea con todos vosotros. Amén.",
    )
    # RV1909 leaves 18 KJV verses empty (joined to a neighbour), e.g. Jonah 1:17.
    assert len(got) == 31084
    assert "Jonah.1.17" not in got
    assert not any("<" in e + s or "\\" in e + s for e, s in got.values())
    sizes = {k: len(v[0]) for k, v in bible.split_pairs().items()}
    assert sizes == {"train": 27502, "validation": 1576, "test": 2006}


@pytest.mark.slow
def test_real_dictionary_baseline_beats_copying():
    m = bible.dictionary_baseline(split="test")
    assert m["verses"] == 2006
    assert m["bleu"] > 5 * max(m["copy_bleu"], 1.0)
    assert m["chrf"] > m["copy_chrf"] + 10


@pytest.mark.slow
def test_real_pair_data_tokenizer_round_trips():
    data = bible.pair_data(pairs.default_pair_data_config("bible", sp_vocab_size=8000))
    assert data.tokenizer.vocab_size == 8000
    for src, tgt in zip(*data.splits["test"], strict=True):
        for text in (src, tgt):
            ids = data.tokenizer.encode(text)
            assert ids.dtype == np.int32
            assert ids.min() >= pairs.N_SPECIAL
            assert data.tokenizer.decode(ids) == text
