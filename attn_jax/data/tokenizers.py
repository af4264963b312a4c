"""Tokenizers: UTF-8 bytes (vocab 256, the default), a trained SentencePiece model, and
a Hugging Face tokenizer.json (the tokenizer of an imported checkpoint, attn_jax.hf).

The SentencePiece model is trained once on the training split of the configured corpus
(never on validation text) and cached as `<data_root>/tokenizers/<name>-<split>-sp<V>.model`.
It is configured to round-trip any text exactly: identity normalisation, no dummy
prefix, whitespace kept, and byte fallback for characters outside its vocabulary
(Kudo & Richardson 2018, https://arxiv.org/abs/1808.06226).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocab 256, no training, no unknowns."""

    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        """Text -> uint8 token ids."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Token ids -> text; invalid UTF-8 (a window cut mid-character) is replaced."""
        return np.asarray(ids, dtype=np.uint8).tobytes().decode("utf-8", errors="replace")


class SentencePieceTokenizer:
    """A trained SentencePiece model (unigram by default) with exact round trips."""

    def __init__(self, model_path: str | Path):
        import sentencepiece as spm  # local: only this tokenizer needs it

        self.model_path = Path(model_path)
        self._sp = spm.SentencePieceProcessor(model_file=str(model_path))
        self.vocab_size = int(self._sp.get_piece_size())

    def encode(self, text: str) -> np.ndarray:
        """Text -> int32 token ids."""
        return np.asarray(self._sp.encode(text), dtype=np.int32)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Token ids -> text."""
        return self._sp.decode([int(i) for i in np.asarray(ids).reshape(-1)])


class HFTokenizer:
    """A Hugging Face `tokenizer.json` (GPT-2's byte-level BPE, ...) read by `tokenizers`.

    `tokenizers` is Rust with Python bindings, no torch: the `hf` extra installs it.
    """

    def __init__(self, path: str | Path):
        try:
            from tokenizers import Tokenizer
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "A tokenizer.json needs the tokenizers package: pip install -e '.[hf]'."
            ) from None
        if not os.path.exists(path):
            raise FileNotFoundError(f"No tokenizer file {path} (data.tokenizer_path).")
        self.path = Path(path)
        self._tok = Tokenizer.from_file(str(path))
        self.vocab_size = int(self._tok.get_vocab_size())

    def encode(self, text: str) -> np.ndarray:
        """Text -> int32 token ids (no special tokens added)."""
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=np.int32)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Token ids -> text."""
        return self._tok.decode([int(i) for i in np.asarray(ids).reshape(-1)])


def train_sentencepiece(
    lines: Iterator[str] | Sequence[str],
    model_path: str | Path,
    *,
    vocab_size: int,
    model_type: str = "unigram",
    num_threads: int = 2,
) -> SentencePieceTokenizer:
    """Trains a SentencePiece model on `lines` and writes it atomically to `model_path`.

    Args:
      lines: training sentences (lines of the training split; newlines are encoded by
        byte fallback as one token each).
      model_path: destination `.model` file.
      vocab_size: number of pieces, >= 256 + 3 (the byte-fallback pieces and
        unk/bos/eos) plus the distinct characters of the text.
      model_type: "unigram" or "bpe".
      num_threads: trainer threads.

    Returns:
      The trained tokenizer.
    """
    import sentencepiece as spm

    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_path.parent) as tmp:
        prefix = os.path.join(tmp, "sp")
        try:
            _train(spm, lines, prefix, vocab_size, model_type, num_threads)
        except RuntimeError as e:
            if "smaller than required_chars" not in str(e):
                raise
            raise ValueError(
                f"sp_vocab_size={vocab_size} is too small for this text: it needs 259 "
                "byte-fallback and special pieces plus one per distinct character."
            ) from e
        os.replace(prefix + ".model", model_path)
    return SentencePieceTokenizer(model_path)


def _train(spm, lines, prefix, vocab_size, model_type, num_threads):
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([line for line in lines if line.strip()]),
        model_prefix=prefix,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        byte_fallback=True,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        split_digits=True,
        pad_id=-1,
        num_threads=num_threads,
        minloglevel=2,  # the trainer logs every EM round to stderr otherwise
    )


def _byte(data_config, training_text: Callable[[], str] | None) -> ByteTokenizer:
    del data_config, training_text
    return ByteTokenizer()


def _sentencepiece(data_config, training_text: Callable[[], str] | None):
    from attn_jax.data import sources

    root = sources.data_root(data_config.data_dir)
    name = data_config.name.replace("/", "_")
    path = (
        root
        / "tokenizers"
        / f"{name}-{data_config.train_split}-sp{data_config.sp_vocab_size}.model"
    )
    if path.exists():
        return SentencePieceTokenizer(path)
    if training_text is None:
        from attn_jax.data import builders

        docs = builders.load_documents(
            data_config.name, data_config.train_split, root=root, text_key=data_config.text_key
        )
        text = "\n".join(docs)
    else:
        text = training_text()
    return train_sentencepiece(text.splitlines(), path, vocab_size=data_config.sp_vocab_size)


def _hf(data_config, training_text: Callable[[], str] | None) -> HFTokenizer:
    del training_text
    return HFTokenizer(data_config.tokenizer_path)


TOKENIZERS = {"byte": _byte, "sentencepiece": _sentencepiece, "hf": _hf}


def get_tokenizer(data_config, *, training_text: Callable[[], str] | None = None):
    """The tokenizer a data config names (`data_config.tokenizer`).

    Args:
      data_config: a config with fields tokenizer, name, data_dir, train_split,
        text_key, sp_vocab_size (see `attn_jax.data.default_data_config`).
      training_text: optional callable giving the training text, to avoid reading the
        split twice; by default the split is loaded when a model must be trained.

    Returns:
      An object with `encode(str) -> np.ndarray`, `decode(ids) -> str`, `vocab_size`.
    """
    if data_config.tokenizer not in TOKENIZERS:
        raise ValueError(
            f"Unknown tokenizer {data_config.tokenizer!r}; valid: {', '.join(TOKENIZERS)}."
        )
    return TOKENIZERS[data_config.tokenizer](data_config, training_text)


def vocab_size(data_config) -> int:
    """Vocabulary size for a data config, without training or loading anything."""
    if data_config.tokenizer == "byte":
        return ByteTokenizer.vocab_size
    if data_config.tokenizer == "sentencepiece":
        return int(data_config.sp_vocab_size)
    if data_config.tokenizer == "hf":
        return HFTokenizer(data_config.tokenizer_path).vocab_size
    raise ValueError(
        f"Unknown tokenizer {data_config.tokenizer!r}; valid: {', '.join(TOKENIZERS)}."
    )
