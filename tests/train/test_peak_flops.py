"""MFU's peak: datasheet figures are per chip, and TPU v2/v3 show two devices per chip."""

import math
import types

import jax
import pytest

from attn_jax.train import metrics


def _tpu(kind, coords, core, process=0):
    return types.SimpleNamespace(
        platform="tpu", device_kind=kind, coords=coords, core_on_chip=core, process_index=process
    )


def test_v2_8_counts_its_4_chips_not_8_cores():
    # A Colab TPU v2-8: 8 devices, a chip's two TensorCores at the same coords.
    devices = [_tpu("TPU v2", (x, y, 0), c) for x in (0, 1) for y in (0, 1) for c in (0, 1)]
    peak, source = metrics.peak_flops(devices)
    assert peak == pytest.approx(4 * 45e12)
    assert "TPU v2" in source


def test_one_device_per_chip_and_hosts_count_separately():
    # v4 and v5p (megacore) and v5e/v6e show one device per chip.
    v5e = [_tpu("TPU v5 lite", (x, 0, 0), 0) for x in range(4)]
    assert metrics.peak_flops(v5e)[0] == pytest.approx(4 * 197e12)
    # The same coords on two hosts of a pod slice are different chips.
    pod = [_tpu("TPU v4", (0, 0, z), 0, process=p) for p in (0, 1) for z in (0, 1)]
    assert metrics.peak_flops(pod)[0] == pytest.approx(4 * 275e12)
    gpus = [types.SimpleNamespace(platform="gpu", device_kind="NVIDIA H100 80GB HBM3")] * 2
    assert metrics.peak_flops(gpus)[0] == pytest.approx(2 * 989e12)


def test_cpu_peak_is_the_hosts_measured_matmul():
    peak, source = metrics.peak_flops(jax.devices("cpu"))
    assert math.isfinite(peak)
    assert peak > 0
    assert source == "measured f32 matmul"


def test_cpu_peak_is_measured_in_the_run_dtype(monkeypatch):
    """A bf16 run's MFU on CPU is against a bf16 matmul, not the f32 one."""
    measured = []

    def fake(n=2048, reps=5, dtype="float32"):
        measured.append(dtype)
        return {"float32": 3e11, "bfloat16": 1.7e12}[dtype]

    monkeypatch.setattr(metrics, "measured_cpu_peak_flops", fake)
    cpu = jax.devices("cpu")
    assert metrics.peak_flops(cpu) == (3e11, "measured f32 matmul")
    assert metrics.peak_flops(cpu, "bfloat16") == (1.7e12, "measured bf16 matmul")
    assert measured == ["float32", "bfloat16"]
    # Accelerators use the datasheet's bf16 figure whatever the dtype.
    v5e = [_tpu("TPU v5 lite", (0, 0, 0), 0)]
    assert metrics.peak_flops(v5e, "float32") == metrics.peak_flops(v5e, "bfloat16")
