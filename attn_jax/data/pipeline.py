"""Language-model batches: a checkpointable train iterator and a fixed eval set.

A split's documents are joined ("\\n\\n") into one token stream. Training reads windows
of T+1 tokens (inputs = window[:-1], targets = window[1:]) with grain: element j of
the infinite stream is window `perm_e[j mod n]` of epoch `e = j // n`, with a fresh
permutation and a fresh offset `shift_e` in [0, T) each epoch, so epochs see new window
boundaries. Both are pure functions of (seed, e), hence element j, and therefore batch
i, is a pure function of (seed, i, process_index): the iterator state is just the next
batch index, and a resumed run sees exactly the batches it would have seen.

Multi-host: `batch_size` is the GLOBAL batch. Process p of P takes stream elements
j = p, p + P, p + 2P, ... and batches them by batch_size // P, so global batch i is
the same set of windows whatever P is.

Eval: the held-out stream cut into non-overlapping windows (window k predicts tokens
kT+1..(k+1)T); when there are more than eval_batches * batch_size of them an evenly
spaced subset is kept, so every held-out work is represented. Padding rows of the last
batch carry weight 0. Every call returns the same batches.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import grain
import ml_collections
import numpy as np

from attn_jax.data import builders, sources, tokenizers

Batch = dict[str, np.ndarray]
_DOC_SEPARATOR = "\n\n"


def default_data_config() -> ml_collections.ConfigDict:
    """The data section of an LM experiment (config.data).

    Fields:
      name: "shakespeare" | "austen" | any registered tfds dataset name.
      tokenizer: "byte" (vocab 256) | "sentencepiece" (trained on train_split).
      sp_vocab_size: SentencePiece vocabulary size.
      data_dir: data root; "" means $ATTN_JAX_DATA, else `<repo>/.data`.
      text_key: the text feature of a tfds dataset ("/" for nested).
      train_split, eval_split: split names.
      eval_batches: how many global batches the fixed eval set holds at most.
    """
    return ml_collections.ConfigDict(
        dict(
            name="shakespeare",
            tokenizer="byte",
            sp_vocab_size=1024,
            data_dir="",
            text_key="text",
            train_split="train",
            eval_split="validation",
            eval_batches=16,
        )
    )


def get_tokens(data_config, split: str) -> np.ndarray:
    """The token stream of one split (documents joined by a blank line), cached."""
    return _tokens(
        data_config.name,
        split,
        data_config.tokenizer,
        int(data_config.sp_vocab_size),
        str(sources.data_root(data_config.data_dir)),
        data_config.text_key,
        data_config.train_split,
    )


@functools.lru_cache(maxsize=8)
def _tokens(name, split, tokenizer, sp_vocab_size, root, text_key, train_split) -> np.ndarray:
    config = ml_collections.ConfigDict(
        dict(
            name=name,
            tokenizer=tokenizer,
            sp_vocab_size=sp_vocab_size,
            data_dir=root,
            text_key=text_key,
            train_split=train_split,
        )
    )

    def text_of(s):
        return _DOC_SEPARATOR.join(
            builders.load_documents(name, s, root=Path(root), text_key=text_key)
        )

    tok = tokenizers.get_tokenizer(config, training_text=lambda: text_of(train_split))
    ids = tok.encode(text_of(split))
    ids = ids.astype(
        np.uint8 if tok.vocab_size <= 256 else np.uint16 if tok.vocab_size <= 65536 else np.int32
    )
    ids.setflags(write=False)
    return ids


def _window_batch(windows: np.ndarray) -> Batch:
    """Windows [B, T+1] -> {"inputs", "targets", "weights"} [B, T], contiguous."""
    windows = windows.astype(np.int32)
    inputs_BT = np.ascontiguousarray(windows[:, :-1])
    targets_BT = np.ascontiguousarray(windows[:, 1:])
    return {
        "inputs": inputs_BT,
        "targets": targets_BT,
        "weights": np.ones_like(inputs_BT, np.float32),
    }


class _TrainBatches:
    """grain source: element i is this process' rows of global batch i (see module doc).

    Rows are gathered with one vectorised index rather than a grain `batch` of single
    windows: ~50x less Python per batch, which matters when a small model's step on CPU
    takes milliseconds.
    """

    def __init__(self, tokens, seq_len, seed, local_batch, process_index, process_count):
        self._tokens, self._seq_len, self._seed = tokens, seq_len, seed
        self._local, self._p, self._P = local_batch, process_index, process_count
        # Room for any shift in [0, T) and the extra target token.
        self._n = len(tokens) // seq_len - 1
        if self._n < 1:
            raise ValueError(
                f"Training split has {len(tokens)} tokens, too few for windows of {seq_len}."
            )
        self._offsets = np.arange(seq_len + 1)
        self._plans = {}

    def __len__(self) -> int:
        return sys.maxsize

    def _plan(self, epoch: int):
        """(permutation of the n windows, boundary shift) of one epoch; a pure function."""
        if epoch not in self._plans:
            rng = np.random.default_rng([self._seed, epoch])
            plan = rng.permutation(self._n), int(rng.integers(self._seq_len))
            self._plans = {epoch: plan, **{e: p for e, p in self._plans.items() if e > epoch - 2}}
        return self._plans[epoch]

    def starts(self, i: int) -> np.ndarray:
        """Start offsets of this process' windows in global batch i."""
        j = (int(i) * self._local + np.arange(self._local)) * self._P + self._p
        epochs, r = np.divmod(j, self._n)
        out = np.empty(self._local, np.int64)
        for e in np.unique(epochs):  # at most a few epochs per batch
            perm, shift = self._plan(int(e))
            sel = epochs == e
            out[sel] = shift + perm[r[sel]] * self._seq_len
        return out

    def __getitem__(self, i: int) -> np.ndarray:
        return self._tokens[self.starts(i)[:, None] + self._offsets[None, :]]


class LMTrainIterator:
    """Yields train batches; `get_state()`/`set_state()` make resumption exact.

    The state is a JSON-serializable dict holding the grain iterator state (the next
    batch index) and the arguments it is valid for; `set_state` refuses a state from a
    different stream. It is the same on every process, so any process may save it.
    """

    def __init__(self, dataset: grain.MapDataset, meta: dict):
        self._dataset, self._meta = dataset, dict(meta)
        self._it = iter(dataset.to_iter_dataset(grain.ReadOptions(num_threads=0)))

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        return _window_batch(next(self._it))

    def get_state(self) -> dict:
        """JSON-serializable position of the iterator (save it in the checkpoint)."""
        return {**self._meta, "grain": dict(self._it.get_state())}

    def set_state(self, state: dict) -> None:
        """Restores a position saved by `get_state`, possibly in another process."""
        for key, value in self._meta.items():
            if state.get(key) != value:
                raise ValueError(
                    f"Data iterator state was saved with {key}={state.get(key)!r}, "
                    f"this run has {key}={value!r}; cannot resume the same batches."
                )
        self._it.set_state(dict(state["grain"]))


def make_train_iter(
    tokens: np.ndarray,
    *,
    batch_size: int,
    seq_len: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
) -> LMTrainIterator:
    """The checkpointable train iterator over one token stream (see module doc)."""
    local = _local_batch(batch_size, process_index, process_count)
    source = _TrainBatches(tokens, seq_len, seed, local, process_index, process_count)
    ds = grain.MapDataset.source(source)
    # Not the process index or count: global batch i is the same set of windows for any
    # process count, so one state (saved by any process) restores every process.
    meta = dict(
        seed=int(seed), batch_size=int(batch_size), seq_len=int(seq_len), num_tokens=len(tokens)
    )
    return LMTrainIterator(ds, meta)


def make_eval_batches(
    tokens: np.ndarray,
    *,
    batch_size: int,
    seq_len: int,
    max_batches: int,
    process_index: int = 0,
    process_count: int = 1,
) -> list[Batch]:
    """A fixed list of held-out batches of non-overlapping windows (see module doc)."""
    local = _local_batch(batch_size, process_index, process_count)
    available = (len(tokens) - 1) // seq_len
    if available < 1:
        raise ValueError(
            f"Eval split has {len(tokens)} tokens, too few for one window of {seq_len}."
        )
    cap = max(1, int(max_batches)) * batch_size
    count = min(available, cap)
    # Evenly spaced when capped, so the subset spans every held-out work.
    picks = (np.arange(count) * available) // count
    num_batches = -(-count // batch_size)
    starts = np.full(num_batches * batch_size, -1, np.int64)
    starts[:count] = picks * seq_len
    offsets = np.arange(seq_len + 1)
    batches = []
    for i in range(num_batches):
        rows = starts[i * batch_size : (i + 1) * batch_size][process_index::process_count]
        assert len(rows) == local
        windows = tokens[np.maximum(rows, 0)[:, None] + offsets[None, :]]
        batch = _window_batch(windows)
        batch["weights"] *= (rows >= 0).astype(np.float32)[:, None]  # padding rows count 0
        for array in batch.values():
            array.setflags(write=False)
        batches.append(batch)
    return batches


def make_lm_data(
    data_config,
    *,
    batch_size: int,
    seq_len: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
) -> tuple[LMTrainIterator, Callable[[], list[Batch]]]:
    """Train iterator and eval batches for a language model.

    Args:
      data_config: see `default_data_config()`.
      batch_size: GLOBAL batch size; each process yields batch_size // process_count rows.
      seq_len: T, tokens per row.
      seed: data order seed.
      process_index: this process (jax.process_index()).
      process_count: number of processes (jax.process_count()).

    Returns:
      (train_iter, eval_batches_fn). train_iter yields {"inputs": int32[B,T],
      "targets": int32[B,T], "weights": float32[B,T]} forever and has
      get_state()/set_state(). eval_batches_fn() returns the same list of such
      batches on every call (built on first call, then cached).
    """
    _local_batch(batch_size, process_index, process_count)
    train = get_tokens(data_config, data_config.train_split)
    train_iter = make_train_iter(
        train,
        batch_size=batch_size,
        seq_len=seq_len,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
    )

    @functools.cache
    def eval_batches_fn() -> list[Batch]:
        return make_eval_batches(
            get_tokens(data_config, data_config.eval_split),
            batch_size=batch_size,
            seq_len=seq_len,
            max_batches=data_config.eval_batches,
            process_index=process_index,
            process_count=process_count,
        )

    return train_iter, eval_batches_fn


def _local_batch(batch_size: int, process_index: int, process_count: int) -> int:
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(f"Bad process_index={process_index} for process_count={process_count}.")
    if batch_size < 1 or batch_size % process_count:
        raise ValueError(
            f"Global batch_size={batch_size} must be a positive multiple of "
            f"process_count={process_count}."
        )
    return batch_size // process_count
