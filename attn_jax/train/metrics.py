"""Metric sinks (metrics.jsonl, TensorBoard via tensorboardX, a tqdm bar) and MFU.

MFU = analytic training FLOPs per second / peak. On CPU the peak is a large
f32 matmul measured once in this process; on GPU/TPU it is the datasheet
number for the device kind (dense bf16, the precision MFU is usually quoted
in; Chowdhery et al. 2022, appendix B).
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# Dense bf16 peak FLOP/s per chip, from vendor datasheets; matched by substring
# of `device.device_kind`, longest first.
DATASHEET_PEAK_FLOPS = {
    "TPU v2": 45e12,
    "TPU v3": 123e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v5": 459e12,
    "TPU v6 lite": 918e12,
    "TPU v6e": 918e12,
    "TPU7x": 2307e12,
    "H200": 989e12,
    "H100": 989e12,
    "GH200": 989e12,
    "B200": 2250e12,
    "A100": 312e12,
    "A10G": 70e12,
    "L40S": 362e12,
    "L4": 121e12,
    "V100": 125e12,
    "T4": 65e12,
}


@functools.cache
def measured_cpu_peak_flops(n: int = 2048, reps: int = 5, dtype: str = "float32") -> float:
    """Best-of-`reps` matmul FLOP/s of one CPU device, measured once per process and dtype.

    bfloat16 operands accumulate in float32, as the models' mixed-precision matmuls do.
    """
    device = jax.local_devices(backend="cpu")[0]
    a = jax.device_put(jnp.ones((n, n), dtype), device)
    matmul = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    matmul(a, a).block_until_ready()
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        matmul(a, a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def peak_flops_per_device(
    device: jax.Device | None = None, dtype: str = "float32"
) -> tuple[float, str]:
    """(peak FLOP/s, where it came from) for one device; on CPU measured in `dtype`.

    A CPU's bf16 peak (AVX512-BF16 / AMX) is several times its f32 one, so a
    mixed-precision run's MFU is against the bf16 matmul; accelerators use the
    datasheet's dense bf16 figure whatever the dtype.
    """
    device = device or jax.devices()[0]
    if device.platform == "cpu":
        name = "bf16" if jnp.dtype(dtype) == jnp.bfloat16 else "f32"
        return measured_cpu_peak_flops(dtype=jnp.dtype(dtype).name), f"measured {name} matmul"
    kind = device.device_kind
    for key in sorted(DATASHEET_PEAK_FLOPS, key=len, reverse=True):
        if key.lower() in kind.lower():
            return DATASHEET_PEAK_FLOPS[key], f"datasheet bf16 ({key})"
    return math.nan, f"unknown device kind {kind!r}"


def peak_flops(mesh_devices: list, dtype: str = "float32") -> tuple[float, str]:
    """Peak FLOP/s of the devices a run uses, for matmuls in `dtype`.

    Fake CPU devices (--xla_force_host_platform_device_count) share the same
    cores, so on CPU the peak is that of the host, not per fake device.
    """
    per, source = peak_flops_per_device(mesh_devices[0], dtype)
    if mesh_devices[0].platform == "cpu":
        return per, source
    return per * _chips(mesh_devices), source


def _chips(devices: list) -> int:
    """How many chips the devices are: the datasheet peak is per chip.

    TPU v2 and v3 show each of a chip's two TensorCores as a device, both at the
    chip's `coords` (a v2-8 is 8 devices on 4 chips); later TPUs and GPUs show one
    device per chip.
    """
    if devices[0].platform != "tpu":
        return len(devices)
    return len({(d.process_index, tuple(d.coords)) for d in devices})


def _to_python(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        value = value.item() if np.ndim(value) == 0 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Infinity; keep the file strictly valid
    return value


class MetricsWriter:
    """Writes metrics.jsonl lines and TensorBoard scalars (process 0 only)."""

    def __init__(self, workdir: str, *, tensorboard: bool = True):
        self.enabled = jax.process_index() == 0
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._file = open(self.path, "a") if self.enabled else None  # noqa: SIM115
        self._tb = None
        if self.enabled and tensorboard:
            from tensorboardX import SummaryWriter  # import late: slow, optional

            self._tb = SummaryWriter(os.path.join(workdir, "tb"))

    def write(self, step: int, kind: str, metrics: dict[str, Any]) -> None:
        """One line {"step", "kind" ("train"|"eval"), "time", **metrics}."""
        if not self.enabled:
            return
        row = {"step": int(step), "kind": kind, "time": time.time()}
        row.update({k: _to_python(v) for k, v in metrics.items()})
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in metrics.items():
                if isinstance(value, int | float | np.number) and math.isfinite(float(value)):
                    self._tb.add_scalar(f"{kind}/{key}", float(value), int(step))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


class ProgressBar:
    """tqdm bar over steps showing loss, tokens/s and MFU (process 0 only)."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True):
        self._bar = None
        if enabled and jax.process_index() == 0:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=1.0
            )

    def update(self, step: int, postfix: dict[str, Any] | None = None) -> None:
        if self._bar is None:
            return
        self._bar.update(step - self._bar.n)
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)

    def set_total(self, total: int) -> None:
        """A re-planned step count (train.time_budget_s)."""
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
