"""TrainState: everything a step changes, as one pytree of arrays.

The NNX model is split once (`nnx.split`) into a static graphdef and its
parameters; the hot loop is a pure `jax.jit` step over this state, and the
graphdef is merged back inside the step only at trace time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from attn_jax.train import mesh as mesh_lib


@flax.struct.dataclass
class TrainState:
    """Attributes:
    step: int32 scalar, optimizer steps taken.
    params: nnx.State of the model's nnx.Param variables.
    opt_state: the optax state over `params`.
    rng: uint32[2] raw PRNG key; step t uses fold_in(rng, t), so a resumed run
      draws the same dropout masks as an uninterrupted one.
    model_state: the model's non-Param variables (usually empty). Not
      checkpointed: it is rebuilt by init from the seed.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    model_state: Any = None

    def checkpoint_items(self) -> dict:
        """The part of the state that goes into a checkpoint."""
        return {
            "step": self.step,
            "params": self.params,
            "opt_state": self.opt_state,
            "rng": self.rng,
        }

    def replace_from_checkpoint(self, items: dict) -> TrainState:
        return self.replace(
            step=items["step"],
            params=items["params"],
            opt_state=items["opt_state"],
            rng=items["rng"],
        )


def split_model(model: nnx.Module):
    """(graphdef, params, model_state): the one place a model is split."""
    return nnx.split(model, nnx.Param, ...)


def init_state(model_fn, tx: optax.GradientTransformation, root: jax.Array) -> TrainState:
    """A fresh TrainState from the run's root key (params fold_in(root, 0), rngs fold_in(root, 1))."""
    model = model_fn(nnx.Rngs(params=jax.random.fold_in(root, 0), dropout=root))
    _, params, model_state = split_model(model)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        rng=jax.random.fold_in(root, 1),
        model_state=model_state,
    )


def create_train_state(
    model_fn: Callable[[nnx.Rngs], nnx.Module],
    tx: optax.GradientTransformation,
    seed: int,
    mesh: Mesh,
) -> tuple[nnx.GraphDef, TrainState, Any]:
    """Initialises model and optimizer directly into their shardings.

    Args:
      model_fn: builds the model from `nnx.Rngs` (e.g. `build_model(cfg, rngs=...)`).
      tx: the optimizer.
      seed: the run seed; parameters use fold_in(seed, 0), step rngs fold_in(seed, 1).
      mesh: the device mesh; params and optimizer state are sharded by
        `mesh_lib.param_shardings` (replicated unless the mesh has fsdp > 1).

    Returns:
      (graphdef, state, state_shardings).
    """
    root = jax.random.PRNGKey(seed)

    def init(root):
        return init_state(model_fn, tx, root)

    graphdef = nnx.graphdef(nnx.eval_shape(lambda: model_fn(nnx.Rngs(params=0, dropout=0))))
    abstract = jax.eval_shape(init, root)
    shardings = state_shardings(abstract, mesh)
    state = jax.jit(init, out_shardings=shardings)(root)
    return graphdef, state, shardings


def state_shardings(abstract_state: TrainState, mesh: Mesh):
    """Shardings of a TrainState: params and optimizer moments by fsdp, the rest replicated."""
    rep = mesh_lib.replicated(mesh)
    return TrainState(
        step=rep,
        params=mesh_lib.param_shardings(abstract_state.params, mesh),
        opt_state=mesh_lib.param_shardings(abstract_state.opt_state, mesh),
        rng=rep,
        model_state=jax.tree.map(lambda _: rep, abstract_state.model_state),
    )
