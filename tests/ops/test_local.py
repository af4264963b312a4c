"""Local attention: compiled forward+backward memory grows linearly in T (O(T w))."""

import jax
import jax.numpy as jnp

from attn_jax.ops.kernels import get_kernel
from attn_jax.ops.masks import MaskSpec


def _temp_bytes(T: int) -> int:
    x = jax.ShapeDtypeStruct((1, T, 2, 16), jnp.float32)

    def loss(q, k, v):
        out = get_kernel("local")(q, k, v, spec=MaskSpec(causal=True, window=64))
        return jnp.sum(out * out)

    compiled = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(x, x, x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_local_memory_is_linear_in_T():
    small, large = _temp_bytes(1024), _temp_bytes(2048)
    assert large <= 2.3 * small, (small, large)
