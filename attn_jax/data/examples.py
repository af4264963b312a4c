"""Batches of fixed-size examples held in memory: the examples-unit data path.

Families whose data is a table of equal-shaped examples (padded sequence pairs,
images, passages) share these two pieces:

- `ExampleIterator(arrays, batch_size=, seed=, ...)`: an endless, shuffled,
  checkpointable train iterator. Epoch e visits the examples in the order of
  `permutation(seed, e)`; each process takes its contiguous rows of every global
  batch; a `transform(batch, rng)` (augmentation, MLM masking) gets an rng
  seeded by (seed, global batch index), so a resumed run sees the same batches.
  State: {"batch": global batches served so far}.
- `eval_batches(arrays, batch_size=, ...)`: the whole eval set in order, the
  last batch padded with zero rows whose `valid` is 0 (every batch carries
  `valid`, float32[rows], 1 for real examples).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Batch = dict[str, np.ndarray]
Transform = Callable[[Batch, np.random.Generator], Batch]


def _check(arrays: Mapping[str, np.ndarray]) -> int:
    sizes = {k: len(v) for k, v in arrays.items()}
    if not sizes or len(set(sizes.values())) != 1:
        raise ValueError(f"Example arrays must be non-empty and of one length; got {sizes}.")
    return next(iter(sizes.values()))


def _local_rows(batch_size: int, process_index: int, process_count: int) -> slice:
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(f"Bad process_index={process_index} for process_count={process_count}.")
    if batch_size < 1 or batch_size % process_count:
        raise ValueError(
            f"Global batch_size={batch_size} must be a positive multiple of "
            f"process_count={process_count}."
        )
    local = batch_size // process_count
    return slice(process_index * local, (process_index + 1) * local)


class ExampleIterator:
    """Endless shuffled global batches of `arrays`; this process's rows of each."""

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        *,
        batch_size: int,
        seed: int,
        process_index: int = 0,
        process_count: int = 1,
        transform: Transform | None = None,
    ):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.n = _check(self.arrays)
        if batch_size > self.n:
            raise ValueError(f"batch_size={batch_size} is larger than the {self.n} examples.")
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.rows = _local_rows(batch_size, process_index, process_count)
        self.transform = transform
        self.per_epoch = self.n // self.batch_size  # the last partial batch is dropped
        self.batch = 0
        self._epoch, self._order = -1, None

    def _indices(self, batch: int) -> np.ndarray:
        epoch, i = divmod(batch, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        start = i * self.batch_size
        return self._order[start : start + self.batch_size][self.rows]

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        idx = self._indices(self.batch)
        out = {k: v[idx] for k, v in self.arrays.items()}
        if self.transform is not None:
            out = self.transform(out, np.random.default_rng([self.seed, 1 << 20, self.batch]))
        out.setdefault("valid", np.ones(len(idx), np.float32))
        self.batch += 1
        return out

    @property
    def epoch(self) -> float:
        """Epochs served so far (fractional)."""
        return self.batch / self.per_epoch

    def get_state(self) -> dict:
        return {"batch": int(self.batch)}

    def set_state(self, state: Mapping) -> None:
        self.batch = int(state["batch"])


def eval_batches(
    arrays: Mapping[str, np.ndarray],
    *,
    batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    max_batches: int = 0,
    transform: Transform | None = None,
    seed: int = 0,
) -> list[Batch]:
    """The eval set in order as global batches (this process's rows), padded at the end.

    Args:
      arrays: name -> [n, ...] arrays.
      batch_size: global batch size.
      max_batches: keep at most this many batches (0 = all).
      transform: applied to each batch with a fixed rng (seed, batch index), e.g. a
        fixed MLM masking of the eval set.

    Returns:
      Batches of `batch_size // process_count` rows with `valid` (1 = real example).
    """
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    n = _check(arrays)
    rows = _local_rows(batch_size, process_index, process_count)
    count = -(-n // batch_size)
    if max_batches:
        count = min(count, int(max_batches))
    out = []
    for b in range(count):
        idx = np.arange(b * batch_size, (b + 1) * batch_size)[rows]
        valid = (idx < n).astype(np.float32)
        idx = np.minimum(idx, n - 1)
        batch = {k: v[idx] for k, v in arrays.items()}
        if transform is not None:
            batch = transform(batch, np.random.default_rng([seed, 1 << 21, b]))
        for k, v in batch.items():  # padded rows are zeros (and carry no weight)
            if k != "valid" and v.shape[:1] == valid.shape:
                batch[k] = np.where(valid.reshape((-1,) + (1,) * (v.ndim - 1)) > 0, v, 0).astype(
                    v.dtype
                )
        batch["valid"] = valid * batch.get("valid", 1.0)
        out.append(batch)
    return out
