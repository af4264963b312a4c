"""Blockwise kernel memory: compiled forward+backward temporaries grow linearly in T.

Uses XLA's compiled memory analysis only (lower + compile, no execution), so it is cheap.
"""

import jax
import jax.numpy as jnp

from attn_jax.ops.kernels import get_kernel
from attn_jax.ops.masks import MaskSpec


def _temp_bytes(kernel: str, T: int, **opts) -> int:
    B, N, H = 1, 2, 16

    def loss(q, k, v):
        out = get_kernel(kernel)(q, k, v, spec=MaskSpec(causal=True), **opts)
        return jnp.sum(out * out)

    x = jax.ShapeDtypeStruct((B, T, N, H), jnp.float32)
    compiled = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(x, x, x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_blockwise_memory_grows_linearly_naive_quadratically():
    blocks = dict(block_q=128, block_k=128)
    flash = [_temp_bytes("blockwise", T, **blocks) for T in (1024, 2048)]
    naive = [_temp_bytes("xla", T) for T in (1024, 2048)]
    assert flash[1] <= 2.3 * flash[0], flash
    assert 3.5 * naive[0] <= naive[1] <= 4.5 * naive[0], naive
    assert flash[1] < naive[1] / 4, (flash, naive)
