"""Layer and model tests compile many small graphs: XLA's optimizations off makes that cheap."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _fast_compile():
    prev = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", prev)
