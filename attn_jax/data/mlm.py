"""Masked-LM data: byte passages of Shakespeare and Austen, and BERT's masking.

Vocabulary (VOCAB_SIZE = 260): ids 0-3 are special tokens, PAD = 0, MASK = 1,
CLS = 2, SEP = 3; byte b is id b + 4 (BYTE_OFFSET). A passage of up to T - 2
bytes is [CLS] bytes [SEP] [PAD]...; its length counts CLS and SEP.

Works and splits. Pretraining reads the TRAINING works of the corpora named in
`data.corpora` (the 34 training plays of attn_jax.data.sources, the five
training novels; *Persuasion* and the four validation plays are never seen),
and of each only the first `head_fraction` (90%) of its bytes: the last 10% is
the test set of the "which work" task of analysis/mlm_downstream.py. The
held-out MLM loss is taken on the validation works (never seen by
pretraining): `eval_batches` x batch_size passages, evenly spaced over them.

Masking (Devlin et al. 2019, sec. 3.1): each byte position (never a special
token or padding) is selected with probability `mask_rate` (15%); a selected
position becomes [MASK] with probability 0.8, a uniformly random byte with 0.1
(never a special token) and is kept with 0.1. The loss is taken on the selected
positions only (weights = 1 there, 0 elsewhere); targets are the original ids.
Training batches are masked afresh by `attn_jax.data.examples.ExampleIterator`'s
transform rng (seeded by the seed and the batch index: a resumed run sees the
same masks); the eval set has one fixed masking (the same for every seed).
"""

from __future__ import annotations

import dataclasses
import functools

import ml_collections
import numpy as np

from attn_jax.data import examples, sources

PAD, MASK, CLS, SEP = 0, 1, 2, 3
SPECIAL_TOKENS = {"[PAD]": PAD, "[MASK]": MASK, "[CLS]": CLS, "[SEP]": SEP}
BYTE_OFFSET = 4
VOCAB_SIZE = 256 + BYTE_OFFSET
CORPORA = ("shakespeare", "austen")

Batch = dict[str, np.ndarray]


def default_data_config() -> ml_collections.ConfigDict:
    """config.data of experiments/mlm.py.

    Fields:
      corpora: comma list of CORPORA ("shakespeare,austen").
      data_dir: data root ("" = $ATTN_JAX_DATA, else <repo>/.data).
      head_fraction: pretrain on this leading fraction of each training work's bytes.
      mask_rate: fraction of byte positions selected for the loss (BERT: 0.15).
      mask_token_prob: of the selected, the fraction replaced by [MASK] (0.8).
      random_token_prob: of the selected, the fraction replaced by a random byte (0.1).
      eval_batches: held-out MLM eval set size in global batches (evenly spaced passages).
      max_works: use at most this many training works per corpus (0 = all; smoke tests).
    """
    return ml_collections.ConfigDict(
        dict(
            corpora="shakespeare,austen",
            data_dir="",
            head_fraction=0.9,
            mask_rate=0.15,
            mask_token_prob=0.8,
            random_token_prob=0.1,
            eval_batches=16,
            max_works=0,
        )
    )


# ----------------------------------------------------------------------------- text


def encode(text: str | bytes) -> np.ndarray:
    """Text (UTF-8) or bytes -> int32 ids (byte + BYTE_OFFSET)."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return np.frombuffer(raw, dtype=np.uint8).astype(np.int32) + BYTE_OFFSET


def decode(ids) -> str:
    """Ids -> text; special tokens are dropped, invalid UTF-8 replaced."""
    ids = np.asarray(ids).reshape(-1)
    raw = (ids[ids >= BYTE_OFFSET] - BYTE_OFFSET).astype(np.uint8).tobytes()
    return raw.decode("utf-8", errors="replace")


@dataclasses.dataclass(frozen=True)
class Work:
    """One work: its corpus ("shakespeare" | "austen"), id and UTF-8 bytes."""

    corpus: str
    work_id: str
    data: bytes

    def head(self, fraction: float) -> bytes:
        """The first `fraction` of the bytes (pretraining, and the downstream train split)."""
        return self.data[: int(len(self.data) * fraction)]

    def tail(self, fraction: float) -> bytes:
        """The bytes after `head(fraction)` (the "which work" task's test split)."""
        return self.data[int(len(self.data) * fraction) :]


def parse_corpora(corpora: str) -> tuple[str, ...]:
    """`"shakespeare,austen"` -> ("shakespeare", "austen"), each checked against CORPORA."""
    names = tuple(c.strip() for c in str(corpora).split(",") if c.strip())
    bad = [c for c in names if c not in CORPORA]
    if not names or bad:
        raise ValueError(
            f"config.data.corpora={corpora!r}: unknown corpus {bad or '(none)'}; "
            f"valid: a comma list of {', '.join(CORPORA)}."
        )
    return names


def load_works(corpora: str, split: str, data_dir: str = "", max_works: int = 0) -> list[Work]:
    """The works of `split` ("train" | "validation") of each corpus, sorted by corpus and id."""
    out = []
    for corpus in parse_corpora(corpora):
        if corpus == "shakespeare":
            docs = sources.shakespeare_documents(split)
        else:
            docs = sources.austen_documents(sources.data_root(data_dir), split)
        if max_works:
            docs = docs[: int(max_works)]
        out += [Work(corpus, i, text.encode("utf-8")) for i, text in docs]
    return out


# ----------------------------------------------------------------------------- passages


def chunk(data: bytes, size: int, *, min_size: int = 1) -> list[bytes]:
    """Consecutive non-overlapping pieces of `size` bytes; a last piece under min_size is dropped."""
    if size < 1:
        raise ValueError(f"Passage size {size} must be >= 1.")
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return [p for p in pieces if len(p) >= min_size]


def pack(pieces: list[bytes], seq_len: int) -> Batch:
    """[CLS] bytes [SEP] [PAD]... rows: {"tokens": int32[n, T], "lengths": int32[n]}.

    Each piece must hold at most seq_len - 2 bytes.
    """
    n = len(pieces)
    tokens = np.full((n, seq_len), PAD, np.int32)
    lengths = np.zeros((n,), np.int32)
    for i, piece in enumerate(pieces):
        if len(piece) > seq_len - 2:
            raise ValueError(f"A piece of {len(piece)} bytes does not fit seq_len={seq_len}.")
        ids = encode(piece)
        tokens[i, 0] = CLS
        tokens[i, 1 : 1 + len(ids)] = ids
        tokens[i, 1 + len(ids)] = SEP
        lengths[i] = len(ids) + 2
    return {"tokens": tokens, "lengths": lengths}


def passages(works: list[Work], seq_len: int, part: str = "all", fraction: float = 0.9) -> Batch:
    """Every work's `part` ("head", "tail" or "all") cut into seq_len - 2 byte passages, packed."""
    if part not in ("head", "tail", "all"):
        raise ValueError(f"Unknown part {part!r}; valid: head, tail, all.")
    pieces = []
    for w in works:
        data = w.data if part == "all" else getattr(w, part)(fraction)
        pieces += chunk(data, seq_len - 2, min_size=1)
    return pack(pieces, seq_len)


# ----------------------------------------------------------------------------- masking


def mask_tokens(
    tokens_BT: np.ndarray,
    lengths_B: np.ndarray,
    rng: np.random.Generator,
    *,
    rate: float = 0.15,
    mask_token_prob: float = 0.8,
    random_token_prob: float = 0.1,
) -> Batch:
    """BERT's masking of a batch (see the module docstring).

    Args:
      tokens_BT: int ids, specials and padding included.
      lengths_B: valid positions per row.
      rng: numpy Generator (the draws are a function of it alone).
      rate: selection probability of each byte position.
      mask_token_prob: P([MASK] | selected).
      random_token_prob: P(random byte | selected); the rest keep their byte.

    Returns:
      {"inputs": int32[B, T] masked ids, "targets": int32[B, T] original ids,
       "weights": float32[B, T] 1 at selected positions, "lengths": int32[B]}.
    """
    if not (0.0 < rate <= 1.0 and 0 <= mask_token_prob and 0 <= random_token_prob):
        raise ValueError(
            f"Bad masking rates: rate={rate}, mask={mask_token_prob}, random={random_token_prob}."
        )
    if mask_token_prob + random_token_prob > 1.0:
        raise ValueError("mask_token_prob + random_token_prob must be <= 1.")
    tokens_BT = np.asarray(tokens_BT, np.int32)
    lengths_B = np.asarray(lengths_B, np.int32)
    T = tokens_BT.shape[1]
    maskable_BT = (tokens_BT >= BYTE_OFFSET) & (np.arange(T)[None, :] < lengths_B[:, None])
    selected_BT = maskable_BT & (rng.random(tokens_BT.shape) < rate)
    action_BT = rng.random(tokens_BT.shape)
    random_ids_BT = rng.integers(BYTE_OFFSET, VOCAB_SIZE, tokens_BT.shape, dtype=np.int32)
    inputs_BT = tokens_BT.copy()
    to_mask = selected_BT & (action_BT < mask_token_prob)
    to_random = selected_BT & ~to_mask & (action_BT < mask_token_prob + random_token_prob)
    inputs_BT[to_mask] = MASK
    inputs_BT[to_random] = random_ids_BT[to_random]
    return {
        "inputs": inputs_BT,
        "targets": tokens_BT,
        "weights": selected_BT.astype(np.float32),
        "lengths": lengths_B,
    }


def masking_transform(data_config) -> examples.Transform:
    """ExampleIterator / eval_batches transform: {"tokens", "lengths"} -> a masked batch."""
    rate = float(data_config.mask_rate)
    mask_p, random_p = float(data_config.mask_token_prob), float(data_config.random_token_prob)

    def transform(batch: Batch, rng: np.random.Generator) -> Batch:
        out = mask_tokens(
            batch["tokens"],
            batch["lengths"],
            rng,
            rate=rate,
            mask_token_prob=mask_p,
            random_token_prob=random_p,
        )
        if "valid" in batch:
            out["valid"] = batch["valid"]
        return out

    return transform


# ----------------------------------------------------------------------------- family data


@functools.lru_cache(maxsize=4)
def _arrays(corpora, data_dir, max_works, seq_len, head_fraction, eval_n):
    train = passages(
        load_works(corpora, "train", data_dir, max_works), seq_len, "head", head_fraction
    )
    held = passages(load_works(corpora, "validation", data_dir, max_works), seq_len, "all")
    n = len(held["lengths"])
    if eval_n and n > eval_n:  # evenly spaced: every held-out work is represented
        keep = np.linspace(0, n - 1, eval_n).round().astype(np.int64)
        held = {k: v[keep] for k, v in held.items()}
    return train, held


def make_mlm_data(
    data_config,
    *,
    batch_size: int,
    seq_len: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
):
    """(train_iter, eval_batches_fn) of the MLM family.

    Args:
      data_config: config.data (`default_data_config`).
      batch_size: global batch size.
      seq_len: T, tokens per passage including [CLS] and [SEP].
      seed: run seed (passage order and masks).
      process_index, process_count: this host's rows of each global batch.

    Returns:
      An `ExampleIterator` over training passages (masked by its transform) and a
      function returning the fixed, fixed-masked held-out batches. Batches hold
      inputs, targets, weights (float32, 1 = masked), lengths and valid.
    """
    if seq_len < 3:
        raise ValueError(f"train.seq_len={seq_len} must be >= 3 ([CLS], a byte, [SEP]).")
    eval_n = int(data_config.eval_batches) * int(batch_size)
    train, held = _arrays(
        str(data_config.corpora),
        str(data_config.data_dir),
        int(data_config.get("max_works", 0)),
        int(seq_len),
        float(data_config.head_fraction),
        eval_n,
    )
    transform = masking_transform(data_config)
    train_iter = examples.ExampleIterator(
        train,
        batch_size=batch_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
        transform=transform,
    )
    fixed = examples.eval_batches(
        held,
        batch_size=batch_size,
        process_index=process_index,
        process_count=process_count,
        transform=transform,
        seed=0,  # one eval masking for every run and seed: losses compare across runs
    )
    return train_iter, lambda: fixed
