"""Tokenizers: exact round trips, registry errors, SentencePiece training and caching."""

import numpy as np
import pytest

from attn_jax.data import default_data_config, get_tokenizer, sources, vocab_size
from attn_jax.data.tokenizers import ByteTokenizer, train_sentencepiece

ODD_TEXT = "First Witch:\nWhen  shall we\tthree meet again?\n\n  Ça va — 日本語 123\n"


def test_byte_round_trip():
    tok = ByteTokenizer()
    ids = tok.encode(ODD_TEXT)
    assert ids.dtype == np.uint8
    assert len(ids) == len(ODD_TEXT.encode())
    assert tok.decode(ids) == ODD_TEXT
    assert tok.decode(list(ids.astype(np.int32))) == ODD_TEXT
    assert get_tokenizer(default_data_config()).vocab_size == 256
    assert vocab_size(default_data_config()) == 256


def test_unknown_tokenizer_names_the_valid_ones():
    config = default_data_config()
    config.tokenizer = "wordpiece"
    with pytest.raises(ValueError, match="valid: byte, sentencepiece"):
        get_tokenizer(config)
    with pytest.raises(ValueError, match="valid: byte, sentencepiece"):
        vocab_size(config)


@pytest.fixture(scope="module")
def small_text():
    docs = sources.shakespeare_documents("train")[:2]
    return "\n\n".join(text for _, text in docs)[:60_000]


def test_sentencepiece_trains_and_round_trips(tmp_path, small_text):
    tok = train_sentencepiece(small_text.splitlines(), tmp_path / "sp.model", vocab_size=400)
    assert tok.vocab_size == 400
    ids = tok.encode(small_text[:5000])
    assert ids.dtype == np.int32
    assert ids.max() < 400
    assert len(ids) < 5000 * 0.7  # subwords: fewer tokens than bytes
    assert tok.decode(ids) == small_text[:5000]
    assert tok.decode(tok.encode(ODD_TEXT)) == ODD_TEXT  # byte fallback, spaces kept


def test_sentencepiece_is_cached_in_data_dir(tmp_path, small_text):
    config = default_data_config()
    config.update(tokenizer="sentencepiece", sp_vocab_size=400, data_dir=str(tmp_path))
    calls = []

    def training_text():
        calls.append(1)
        return small_text

    tok = get_tokenizer(config, training_text=training_text)
    path = tmp_path / "tokenizers" / "shakespeare-train-sp400.model"
    assert tok.model_path == path
    assert path.exists()
    again = get_tokenizer(config, training_text=training_text)
    assert calls == [1], "the cached model must be reused, not retrained"
    assert again.encode(ODD_TEXT).tolist() == tok.encode(ODD_TEXT).tolist()
    assert vocab_size(config) == tok.vocab_size


def test_too_small_sentencepiece_vocab_is_explained(tmp_path):
    with pytest.raises(ValueError, match="sp_vocab_size=100 is too small"):
        train_sentencepiece(["to be or not to be"], tmp_path / "sp.model", vocab_size=100)
