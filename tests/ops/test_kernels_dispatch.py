"""Backend dispatch: the decision table (testable without a GPU/TPU) and the CPU path."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.ops.dispatch import auto_attention, choose_implementation
from attn_jax.ops.kernels import get_kernel
from attn_jax.ops.masks import MaskSpec

BF16, F32 = jnp.bfloat16, jnp.float32
CAUSAL = MaskSpec(causal=True)


@pytest.mark.parametrize(
    ("platform", "kwargs", "impl", "why"),
    [
        ("cpu", dict(dtype=F32, T=512, S=512, head_dim=64, spec=CAUSAL), "blockwise", "cpu"),
        ("gpu", dict(dtype=BF16, T=512, S=512, head_dim=64, spec=CAUSAL), "cudnn", "applies"),
        ("cuda", dict(dtype=F32, T=512, S=512, head_dim=64, spec=CAUSAL), "blockwise", "float16"),
        ("gpu", dict(dtype=BF16, T=512, S=512, head_dim=96 + 4, spec=CAUSAL), "blockwise", "% 8"),
        ("gpu", dict(dtype=BF16, T=512, S=512, head_dim=256, spec=CAUSAL), "blockwise", "<= 128"),
        (
            "gpu",
            dict(dtype=BF16, T=512, S=512, head_dim=64, spec=MaskSpec(block=16, stride=4)),
            "blockwise",
            "strided",
        ),
        (
            "gpu",
            dict(dtype=BF16, T=1, S=512, head_dim=64, spec=CAUSAL, q_offset_is_zero=False),
            "blockwise",
            "position 0",
        ),
        ("tpu", dict(dtype=BF16, T=512, S=512, head_dim=128, spec=CAUSAL), "pallas_tpu", "applies"),
        ("tpu", dict(dtype=BF16, T=500, S=512, head_dim=128, spec=CAUSAL), "blockwise", "128"),
        (
            "tpu",
            dict(dtype=BF16, T=512, S=512, head_dim=128, spec=MaskSpec(causal=True, window=64)),
            "blockwise",
            "window",
        ),
        (
            "tpu",
            dict(dtype=BF16, T=512, S=512, head_dim=128, spec=CAUSAL, has_kv_lengths=True),
            "blockwise",
            "key lengths",
        ),
    ],
)
def test_choose_implementation(platform, kwargs, impl, why):
    got, reason = choose_implementation(platform, **kwargs)
    assert got == impl
    assert why in reason.lower()


def test_cpu_fallback_equals_dense_and_logs(caplog):
    B, T, N, K, H = 1, 24, 4, 2, 8
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(0), 3)
    q = jax.random.normal(kq, (B, T, N, H))
    k = jax.random.normal(kk, (B, T, K, H))
    v = jax.random.normal(kv, (B, T, K, H))
    with caplog.at_level(logging.DEBUG, logger="attn_jax.ops.dispatch"):
        got = auto_attention(q, k, v, spec=CAUSAL, platform="cpu-test")
    want = get_kernel("xla")(q, k, v, spec=CAUSAL)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    assert "blockwise" in caplog.text
    assert get_kernel("cudnn") is get_kernel("auto")
