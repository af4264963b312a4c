"""Interp tests compile many small graphs: XLA's optimizations off, except where a test asks."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _fast_compile(fast_compile):
    return


@pytest.fixture
def optimized(_fast_compile):
    """XLA's optimizations on for one test (bit-identity where fusion decisions are real)."""
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", True)
