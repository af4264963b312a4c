"""Device mesh, shardings and multi-host setup.

Axes: "data" (batch, data parallel) and "fsdp" (batch too, and parameters and
optimizer state sharded on their largest divisible dimension; Rajbhandari et
al. 2020, ZeRO-3). With fsdp=1 every parameter is replicated: plain data
parallelism. Batches are sharded over both axes together.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

BATCH_AXES = ("data", "fsdp")

_COORDINATOR_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")
_initialized = False


def maybe_initialize_distributed(enabled: bool = False) -> bool:
    """Calls `jax.distributed.initialize()` when a multi-host run asks for it.

    It is asked for by `enabled` (config.train.distributed) or by the environment
    naming a coordinator (JAX_COORDINATOR_ADDRESS, with JAX_NUM_PROCESSES and
    JAX_PROCESS_ID; on Cloud TPU pods and SLURM jax detects these itself).
    Must run before anything touches a device. Returns True if initialised.
    """
    global _initialized
    if _initialized:
        return True
    if not (enabled or any(os.environ.get(k) for k in _COORDINATOR_ENV)):
        return False
    kwargs = {}
    address = next((os.environ[k] for k in _COORDINATOR_ENV if os.environ.get(k)), None)
    if address:
        kwargs["coordinator_address"] = address
        if os.environ.get("JAX_NUM_PROCESSES"):
            kwargs["num_processes"] = int(os.environ["JAX_NUM_PROCESSES"])
        if os.environ.get("JAX_PROCESS_ID"):
            kwargs["process_id"] = int(os.environ["JAX_PROCESS_ID"])
    jax.distributed.initialize(**kwargs)
    _initialized = True
    logging.info(
        "jax.distributed: process %d of %d, %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.device_count(),
    )
    return True


def select_devices(num_devices: int = 0) -> list[jax.Device]:
    """The first `num_devices` of `jax.devices()` (config.train.num_devices; 0: all).

    A run on fewer devices than the host has (1 vs 8 comparisons, one GPU of
    several) is single-process: a multi-host run uses every device.
    """
    devices = jax.devices()
    num = int(num_devices or 0)
    if num == 0 or num == len(devices):
        return list(devices)
    if num < 0 or num > len(devices) or jax.process_count() > 1:
        raise ValueError(
            f"train.num_devices={num} must be 0 (all) or at most the {len(devices)} devices "
            f"here ({jax.process_count()} process(es); a multi-host run uses all of them)."
        )
    return list(devices[:num])


def make_mesh(devices: Sequence[jax.Device] | None = None, fsdp: int = 1) -> Mesh:
    """A ("data", "fsdp") mesh over `devices` (default: all devices).

    Args:
      devices: devices to use; defaults to `jax.devices()` (all hosts).
      fsdp: size of the fsdp axis; must divide the device count.
    """
    devices = list(jax.devices() if devices is None else devices)
    fsdp = max(int(fsdp), 1)
    if len(devices) % fsdp:
        raise ValueError(
            f"train.mesh_fsdp={fsdp} must divide the number of devices ({len(devices)})."
        )
    grid = np.asarray(devices, dtype=object).reshape(len(devices) // fsdp, fsdp)
    return Mesh(grid, ("data", "fsdp"))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over every mesh axis."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def _param_spec(shape: tuple[int, ...], fsdp: int) -> P:
    # Shard the largest dimension the fsdp axis divides; small or indivisible
    # arrays (norm gains, biases, scalars) stay replicated.
    if fsdp <= 1 or not shape:
        return P()
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
        if shape[dim] % fsdp == 0 and shape[dim] >= fsdp:
            spec = [None] * len(shape)
            spec[dim] = "fsdp"
            return P(*spec)
    return P()


def param_shardings(tree, mesh: Mesh):
    """NamedShardings for a pytree of arrays (or ShapeDtypeStructs) on `mesh`."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, _param_spec(np.shape(x), fsdp)), tree)


def global_batch_size(local_batch_size: int) -> int:
    return local_batch_size * jax.process_count()


def device_put_batch(batch: dict, sharding: NamedSharding) -> dict:
    """Assembles this host's part of the global batch into global jax.Arrays.

    Each host passes its own rows (batch_size / process_count of them); on a
    single host this is a plain sharded device_put.
    """

    def put(x):
        x = np.asarray(x)
        global_shape = (x.shape[0] * jax.process_count(), *x.shape[1:])
        return jax.make_array_from_process_local_data(sharding, x, global_shape)

    return {k: put(v) for k, v in batch.items()}
