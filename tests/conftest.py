"""Test harness: 8 fake CPU devices, rank promotion raises, warnings are errors.

The device count must be set before JAX initialises its backend, so it is set
here at import time; tests that want one device use `jax.devices()[:1]`.
"""

import os

os.environ.setdefault("XLA_FLAGS", "")
if "--xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import pytest  # noqa: E402

# Silent broadcasting of a rank-1 against a rank-2 array is the commonest shape bug.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="session")
def devices8():
    devs = jax.devices()
    assert len(devs) >= 8, "conftest should have forced 8 host devices"
    return devs[:8]


@pytest.fixture
def float64():
    """Enable x64 inside one test (references in float64), restored afterwards."""
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", prev)


@pytest.fixture
def fast_compile():
    """XLA's optimizations off for one test: layer tests compile many small graphs."""
    prev = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", prev)
