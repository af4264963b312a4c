"""Train tests: fixtures over train_helpers, and a compilation cache shared by the
runs of one module (resume and divergence tests compile identical programs)."""

import jax
import pytest
from train_helpers import make_train_config, tiny_model_fn


@pytest.fixture(scope="session")
def compile_cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("jax_compile_cache"))


@pytest.fixture(scope="module", autouse=True)
def _persistent_compile_cache(compile_cache_dir):
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    old = {n: getattr(jax.config, n) for n in names}
    jax.config.update("jax_compilation_cache_dir", compile_cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield
    for name, value in old.items():
        jax.config.update(name, value)


@pytest.fixture
def train_config():
    return make_train_config()


@pytest.fixture
def model_fn():
    return tiny_model_fn
