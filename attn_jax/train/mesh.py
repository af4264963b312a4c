"""Device mesh, shardings and multi-host setup.

Axes: "data" (batch, data parallel) and "fsdp" (batch too, and parameters and
optimizer state sharded on their largest divisible dimension; Rajbhandari et
al. 2020, ZeRO-3). With fsdp=1 every parameter is replicated: plain data
parallelism. Batches are sharded over both axes together.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

BATCH_AXES = ("data", "fsdp")

_COORDINATOR_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")
# Seconds a process waits for the coordinator (and for every process to join):
# jax.distributed.initialize's own default. attn_jax.launch sets it from --init_timeout_s.
INIT_TIMEOUT_ENV = "ATTN_JAX_INIT_TIMEOUT_S"
# Set by `python -m attn_jax.launch` on a cluster: initialise and let jax detect the rest.
DISTRIBUTED_ENV = "ATTN_JAX_DISTRIBUTED"
DEFAULT_INIT_TIMEOUT_S = 300.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_initialized = False


class CoordinatorUnreachableError(ConnectionError):
    """A process of a multi-process run found nothing listening at the coordinator address."""


def split_address(address: str) -> tuple[str, int]:
    """Splits "host:port" (or "[v6]:port") into (host, port); raises naming the form."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(
            f"Coordinator address {address!r} must look like host:port, e.g. 127.0.0.1:12345."
        )
    return host.strip("[]"), int(port)


def wait_for_coordinator(address: str, timeout_s: float, *, process: str = "") -> float:
    """Blocks until something accepts TCP connections at `address`; returns the seconds left.

    jax.distributed.initialize aborts the whole process (a C++ check failure, no
    Python exception, no address in the message) when the coordinator never
    answers; probing first turns that into an error a person can act on.

    Raises:
      CoordinatorUnreachableError: nothing answered within `timeout_s`; the
        message names the address and what to check.
    """
    host, port = split_address(address)
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return max(deadline - time.monotonic(), 1.0)
        except OSError as err:  # refused, unreachable, timed out: retried until the deadline
            last = err
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    raise CoordinatorUnreachableError(
        f"{process or 'This process'} could not reach the JAX coordinator at {address} within "
        f"{timeout_s:g} s ({type(last).__name__}: {last}). Process 0 hosts the coordinator: "
        "check that it is running and that every process was given the same address and a "
        f"port it can reach; set {INIT_TIMEOUT_ENV} (attn_jax.launch --init_timeout_s) to "
        "wait longer."
    )


def maybe_initialize_distributed(enabled: bool = False) -> bool:
    """Calls `jax.distributed.initialize()` when a multi-host run asks for it.

    It is asked for by `enabled` (config.train.distributed), by
    ATTN_JAX_DISTRIBUTED=1, or by the environment naming a coordinator
    (JAX_COORDINATOR_ADDRESS, with JAX_NUM_PROCESSES and JAX_PROCESS_ID, as
    attn_jax.launch sets them; on Cloud TPU pods and SLURM jax detects these itself). A process other than 0 first waits up to
    ATTN_JAX_INIT_TIMEOUT_S seconds (default 300) for the coordinator to listen
    and raises `CoordinatorUnreachableError` naming the address if it never
    does. A loopback coordinator binds to loopback only. Must run before
    anything touches a device. Returns True if initialised.
    """
    global _initialized
    if _initialized:
        return True
    asked = enabled or os.environ.get(DISTRIBUTED_ENV) == "1"
    if not (asked or any(os.environ.get(k) for k in _COORDINATOR_ENV)):
        return False
    timeout_s = float(os.environ.get(INIT_TIMEOUT_ENV) or DEFAULT_INIT_TIMEOUT_S)
    kwargs = {}
    address = next((os.environ[k] for k in _COORDINATOR_ENV if os.environ.get(k)), None)
    if address:
        kwargs["coordinator_address"] = address
        if os.environ.get("JAX_NUM_PROCESSES"):
            kwargs["num_processes"] = int(os.environ["JAX_NUM_PROCESSES"])
        if os.environ.get("JAX_PROCESS_ID"):
            kwargs["process_id"] = int(os.environ["JAX_PROCESS_ID"])
        host, _ = split_address(address)
        if host in _LOOPBACK:  # one machine: nothing outside it can join (or connect)
            kwargs["coordinator_bind_address"] = address
        process_id = kwargs.get("process_id")
        if process_id:  # process 0 starts the coordinator itself
            who = f"Process {process_id} of {kwargs.get('num_processes', '?')}"
            timeout_s = wait_for_coordinator(address, timeout_s, process=who)
    logging.info("jax.distributed.initialize(%s), timeout %.0f s", kwargs, timeout_s)
    try:
        jax.distributed.initialize(**kwargs, initialization_timeout=max(int(timeout_s), 1))
    except ValueError as err:
        if address:
            raise
        raise ValueError(
            f"jax.distributed.initialize() found no cluster to join ({err}): this is not a "
            "SLURM, Open MPI or Cloud TPU pod job and JAX_COORDINATOR_ADDRESS is unset. On "
            "one machine run `python -m attn_jax.launch --processes N -- ...`; elsewhere set "
            "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID."
        ) from err
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


def process0_value(value: int) -> int:
    """Process 0's integer `value`, on every process; `value` itself in a one-process run.

    What a process decides from its own clock (a time limit reached, a time
    budget's step count) must be decided once in a multi-process run: two
    processes whose clocks disagree by a step would leave a collective one step
    apart and hang. This is a collective itself (every process must call it at
    the same step), so the loop calls it only at agreed steps.
    """
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.asarray(value, np.int32)))


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
