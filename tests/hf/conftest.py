"""Model tests compile many small graphs: XLA's optimizations off makes that cheap."""

import pytest


@pytest.fixture(autouse=True)
def _fast_compile(fast_compile):
    return
