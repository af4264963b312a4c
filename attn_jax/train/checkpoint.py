"""Checkpoints through orbax's CheckpointManager (the `args=` API).

A checkpoint at step t holds two items: "state" (step, params, optimizer
state, rng; `ocp.args.StandardSave`) and "data" (the train iterator's position
and a fingerprint of the state; `ocp.args.JsonSave`). Restore walks the steps
newest first. A read that fails is retried a few times (network filesystems
drop reads); a checkpoint still unreadable after that, or whose arrays do not
match the fingerprint saved with them, is moved to
checkpoints_corrupt/<step>-<n> (never over an earlier one) with a warning and
the previous one is used. A checkpoint whose arrays have other shapes than the
model being trained is not corrupt: it raises `CheckpointMismatchError` and
nothing is moved. Half-written saves never appear as steps: orbax writes to a
temporary directory and renames it when complete. Whether a config fits the
workdir's checkpoints is checked earlier, from config.json (record.prepare_workdir).
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from attn_jax.train.state import TrainState

_SAVE_EVERYTHING = 1 << 62  # save_interval_steps that never fires: we decide when to save

# Pauses between reads of one checkpoint: 3 reads in all before it counts as corrupt.
RETRY_DELAYS_S = (0.5, 2.0)


class CheckpointMismatchError(ValueError):
    """A readable checkpoint holds arrays of another model or optimizer."""


def fingerprint(items: Any) -> list[float]:
    """Per-leaf sums of a pytree: a cheap check that a restore read what was saved.

    Float leaves are summed in float32 (compared with a tolerance: the reduction
    order may change with the mesh); integer leaves (step, rng) wrap exactly.
    """

    def leaf_sum(x):
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.integer):
            return jnp.sum(x.astype(jnp.uint32))
        return jnp.sum(x.astype(jnp.float32))

    sums = jax.device_get([leaf_sum(x) for x in jax.tree.leaves(items)])
    return [int(s) if np.issubdtype(s.dtype, np.integer) else float(s) for s in sums]


class Checkpointer:
    """Periodic / final saves, keep-last-k, restore from the newest good step.

    Args:
      directory: where step directories go (workdir/checkpoints).
      keep: how many recent checkpoints to keep (orbax max_to_keep).
      async_save: write in a background thread after copying arrays to host.
      retry_delays_s: seconds to wait before each re-read of a checkpoint that
        failed to read; its length is the number of retries (tests pass zeros).
      keep_steps: steps kept besides the latest `keep` (orbax CustomSteps).
      read_only: only read (another run's checkpoints, e.g. a branch's parent):
        nothing in `directory` is created, saved, deleted or quarantined.
    """

    def __init__(
        self,
        directory: str,
        *,
        keep: int = 3,
        async_save: bool = True,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
        keep_steps: Sequence[int] = (),
        read_only: bool = False,
    ):
        self.directory = os.path.abspath(directory)
        self.read_only = read_only
        self.retry_delays_s = tuple(float(d) for d in retry_delays_s)
        # keep_steps are kept besides the latest `keep` (a WSD parent's branch steps).
        keeps = [ocp.checkpoint_managers.LatestN(n=max(int(keep), 1))]
        if keep_steps:
            keeps.append(ocp.checkpoint_managers.CustomSteps(steps=[int(s) for s in keep_steps]))
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(keeps),
            save_interval_steps=_SAVE_EVERYTHING,
            create=not read_only,
            read_only=read_only,
            enable_async_checkpointing=async_save,
        )
        # Handlers named up front so that item_metadata can read shapes before a restore.
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "data": ocp.JsonCheckpointHandler(),
            },
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def restore_step(self, step: int, state: TrainState) -> tuple[TrainState, dict | None]:
        """Restores exactly `step` into `state`'s shardings.

        Read, retried and checked as in `restore_latest`, but a failure raises
        and nothing is quarantined (the caller asked for this step).
        """
        items, meta = self._read(step, _abstract(state))
        _check(step, items, meta)
        return state.replace_from_checkpoint(items), meta.get("extra")

    def save(self, step: int, state: TrainState, extra: dict | None = None) -> bool:
        """Saves `state` and `extra` (JSON: data iterator position, loop state) as `step`."""
        step = int(step)
        if step in self.manager.all_steps():
            return False
        items = state.checkpoint_items()
        meta = {"extra": extra, "fingerprint": fingerprint(items), "time": time.time()}
        return self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(items), data=ocp.args.JsonSave(meta)
            ),
            force=True,
        )

    def restore_latest(self, state: TrainState) -> tuple[TrainState, dict | None] | None:
        """Restores the newest readable checkpoint into `state`'s shardings.

        Args:
          state: a freshly initialised state; gives the tree structure, shapes,
            dtypes and shardings of the restored arrays (it is not modified).

        Returns:
          (restored_state, extra), or None when there is no good
          checkpoint (the run starts from scratch).

        Raises:
          CheckpointMismatchError: the newest readable checkpoint holds arrays
            of other shapes than `state` (another model or optimizer).
        """
        abstract = _abstract(state)
        self.manager.reload()
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                items, meta = self._read(step, abstract)
                _check(step, items, meta)
            except CheckpointMismatchError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure means "not usable"
                if self.read_only:  # another run's files: never moved, only skipped
                    warnings.warn(
                        f"Checkpoint step {step} in {self.directory} is unreadable or corrupt "
                        f"({type(err).__name__}: {str(err)[:200]}); reading the previous one "
                        "(left in place: this Checkpointer is read-only).",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                else:
                    self._quarantine(step, err)
                continue
            logging.info("Restored checkpoint at step %d from %s", step, self.directory)
            return state.replace_from_checkpoint(items), meta.get("extra")
        return None

    def _read(self, step: int, abstract: Any) -> tuple[dict, dict]:
        """Reads one step, retrying failed reads; raises the last error if all fail."""
        for attempt in range(len(self.retry_delays_s) + 1):
            try:
                _check_shapes(step, self.manager.item_metadata(step)["state"], abstract)
                restored = self.manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()
                    ),
                )
                return restored["state"], restored["data"]
            except CheckpointMismatchError:
                raise
            except Exception as err:  # noqa: BLE001 - retried; re-raised after the last try
                if attempt == len(self.retry_delays_s):
                    raise
                delay = self.retry_delays_s[attempt]
                logging.warning(
                    "Reading checkpoint step %d in %s failed (%s: %s); retry %d of %d in %.3g s.",
                    step,
                    self.directory,
                    type(err).__name__,
                    str(err)[:200],
                    attempt + 1,
                    len(self.retry_delays_s),
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _quarantine(self, step: int, err: BaseException) -> None:
        # Moved out of orbax's directory so a later save of the same step can succeed
        # and the bad files stay available for a post-mortem; numbered so that a
        # second bad checkpoint of the same step never replaces the first.
        src = os.path.join(self.directory, str(step))
        dst = free_path(os.path.join(os.path.dirname(self.directory), "checkpoints_corrupt"), step)
        if jax.process_index() == 0 and os.path.exists(src):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.move(src, dst)
        self.manager.reload()
        warnings.warn(
            f"Checkpoint step {step} in {self.directory} is unreadable or corrupt "
            f"({type(err).__name__}: {str(err)[:200]}); moved it to {dst} and falling "
            "back to the previous checkpoint.",
            RuntimeWarning,
            stacklevel=3,
        )

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _abstract(state: TrainState) -> Any:
    """The checkpoint items' shapes, dtypes and shardings: the target of a restore."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
        state.checkpoint_items(),
    )


def free_path(parent: str, stem: Any) -> str:
    """parent/<stem>-<n> for the smallest n >= 1 not already taken (a file, folder or link)."""
    n = 1
    while os.path.lexists(os.path.join(parent, f"{stem}-{n}")):
        n += 1
    return os.path.join(parent, f"{stem}-{n}")


def _shape_counts(tree: Any) -> collections.Counter:
    return collections.Counter(
        (tuple(x.shape), np.dtype(x.dtype).name) for x in jax.tree.leaves(tree)
    )


def _check_shapes(step: int, stored: Any, abstract: Any) -> None:
    # Compared as multisets of (shape, dtype): orbax's metadata tree names
    # containers differently from the live pytree, but a model of another shape
    # always changes the multiset.
    if stored is None:
        return
    have, want = _shape_counts(stored), _shape_counts(abstract)
    if have == want:
        return
    only_stored = sorted((have - want).elements())[:4]
    only_model = sorted((want - have).elements())[:4]
    raise CheckpointMismatchError(
        f"Checkpoint step {step} holds arrays of another model or optimizer than the "
        f"config builds (only in the checkpoint: {only_stored}; only in the model: "
        f"{only_model}). Use a new --workdir, rerun with the config that wrote it, or pass "
        "--config.train.restart=True to move the old run aside and start from scratch."
    )


def _check(step: int, items: dict, meta: dict) -> None:
    if int(np.asarray(jax.device_get(items["step"]))) != step:
        raise ValueError(f"state.step != directory step {step}")
    expected = meta.get("fingerprint")
    if expected is None:
        return
    got = fingerprint(items)
    same = len(got) == len(expected) and all(
        a == b if isinstance(a, int) else np.isclose(a, b, rtol=1e-5, atol=1e-6)
        for a, b in zip(got, expected)
    )
    if not same:
        raise ValueError("restored arrays do not match the fingerprint saved with them")
