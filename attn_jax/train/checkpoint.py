"""Checkpoints through orbax's CheckpointManager (the `args=` API).

A checkpoint at step t holds two items: "state" (step, params, optimizer
state, rng; `ocp.args.StandardSave`) and "data" (the train iterator's position
and a fingerprint of the state; `ocp.args.JsonSave`). Restore walks the steps
newest first: a checkpoint that fails to read, or whose arrays do not match the
fingerprint saved with them, is moved aside with a warning and the previous
one is used. Half-written saves never appear as steps: orbax writes to a
temporary directory and renames it when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from attn_jax.train.state import TrainState

_SAVE_EVERYTHING = 1 << 62  # save_interval_steps that never fires: we decide when to save


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
    """

    def __init__(self, directory: str, *, keep: int = 3, async_save: bool = True):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max(int(keep), 1),
            save_interval_steps=_SAVE_EVERYTHING,
            create=True,
            enable_async_checkpointing=async_save,
        )
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "data")
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

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
        """
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
            state.checkpoint_items(),
        )
        self.manager.reload()
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                restored = self.manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()
                    ),
                )
                items, meta = restored["state"], restored["data"]
                _check(step, items, meta)
            except Exception as err:  # noqa: BLE001 - any failure means "not usable"
                self._quarantine(step, err)
                continue
            logging.info("Restored checkpoint at step %d from %s", step, self.directory)
            return state.replace_from_checkpoint(items), meta.get("extra")
        return None

    def _quarantine(self, step: int, err: BaseException) -> None:
        # Moved out of orbax's directory so a later save of the same step can succeed
        # and the bad files stay available for a post-mortem.
        src = os.path.join(self.directory, str(step))
        dst = os.path.join(os.path.dirname(self.directory), "checkpoints_corrupt", f"{step}")
        if jax.process_index() == 0 and os.path.exists(src):
            if os.path.exists(dst):
                shutil.rmtree(dst)
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
