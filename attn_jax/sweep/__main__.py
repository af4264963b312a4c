"""Entry point: `python -m attn_jax.sweep plan|run|status|results` (see attn_jax.sweep.cli)."""

import sys

from attn_jax.runtime import ensure_malloc_tunables
from attn_jax.sweep.cli import main

if __name__ == "__main__":
    # XLA:CPU's allocator settings must be in the environment at process start; the
    # inline trials run here and the local executor's workers inherit it.
    ensure_malloc_tunables()
    sys.exit(main())
