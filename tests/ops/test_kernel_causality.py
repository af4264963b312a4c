"""Every kernel keeps its promises on forward values: no future, no padding.

For every kernel in `KERNELS` and every causal spec it accepts (found by tracing
it with `jax.eval_shape`: a kernel that raises ValueError for a spec is not a
case), changing the keys and values after position t changes no output at or
before t; for every kernel that takes `kv_lengths_B`, changing padded keys and
values changes no output. Forward values, not gradients: a stabiliser under
stop_gradient can leak the future into the values while every gradient test
passes. The replacements are large (|k| 40, |v| 100) and aimed where a
stabiliser would notice them: random, along the queries, along one coordinate,
and along the Performer's own first feature row. T = 64 with chunks and blocks
of 16, so chunked paths cross several chunks.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.ops import performer
from attn_jax.ops.kernels import KERNELS
from attn_jax.ops.masks import MaskSpec

B, T, N, K, H = 2, 64, 4, 2, 16
T0 = 40  # last unchanged position: inside the chunk 32..47, two chunks after it
# Options a kernel gets when its signature has them: several chunks/blocks per call.
OPTIONS = {"chunk": 16, "block_q": 16, "block_k": 16, "num_features": 32}
CAUSAL_SPECS = [
    MaskSpec(causal=True),
    MaskSpec(causal=True, window=16),
    MaskSpec(causal=True, block=8, stride=2),
    MaskSpec(causal=True, block=16),
]
ALL_SPECS = [MaskSpec(), MaskSpec(window=16), MaskSpec(block=8, stride=2), *CAUSAL_SPECS]
LENGTHS_B = np.array([37, 64], np.int32)


def _options(fn):
    names = inspect.signature(fn).parameters
    return {k: v for k, v in OPTIONS.items() if k in names}


def _accepts(name, spec, kv_lengths_B=None) -> bool:
    fn = KERNELS[name]
    q = jax.ShapeDtypeStruct((B, T, N, H), jnp.float32)
    kv = jax.ShapeDtypeStruct((B, T, K, H), jnp.float32)
    try:
        jax.eval_shape(
            lambda q, k, v: fn(q, k, v, spec=spec, kv_lengths_B=kv_lengths_B, **_options(fn)),
            q,
            kv,
            kv,
        )
    except ValueError:
        return False
    return True


# One name per function ("cudnn" is "auto" under another key).
NAMES = list({fn: name for name, fn in sorted(KERNELS.items(), reverse=True)}.values())
CAUSAL_CASES = [(n, s) for n in NAMES for s in CAUSAL_SPECS if _accepts(n, s)]
PADDING_CASES = [
    (n, s)
    for n in NAMES
    if "kv_lengths_B" in inspect.signature(KERNELS[n]).parameters
    for s in ALL_SPECS
    if _accepts(n, s, LENGTHS_B)
]


def _rows(x, norm):
    return norm * x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def _inputs():
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(0), 3)
    # |q|, |k| 4..8: large enough that an unstable exp shows.
    q = _rows(jax.random.normal(kq, (B, T, N, H)), jnp.linspace(4.0, 8.0, T)[None, :, None, None])
    k = _rows(jax.random.normal(kk, (B, T, K, H)), jnp.linspace(8.0, 4.0, T)[None, :, None, None])
    v = jax.random.normal(kv, (B, T, K, H))
    return q, k, v


def _replacements(q):
    """(name, k_BTKH, v_BTKH) to put where the kernel must not look."""
    kk, kv = jax.random.split(jax.random.PRNGKey(1))
    v_big = 100.0 * jax.random.normal(kv, (B, T, K, H))
    along_q = jnp.broadcast_to(q[:, T0 : T0 + 1, :K], (B, T, K, H))
    e0 = jnp.zeros((H,)).at[0].set(1.0)
    w0 = performer.orthogonal_random_features(jax.random.PRNGKey(0), OPTIONS["num_features"], H)[0]
    return [
        ("random", _rows(jax.random.normal(kk, (B, T, K, H)), 40.0), v_big),
        ("along the queries", _rows(along_q, 40.0), v_big),
        ("along a coordinate", jnp.broadcast_to(40.0 * e0, (B, T, K, H)), v_big),
        ("along a feature row", jnp.broadcast_to(_rows(w0, 40.0), (B, T, K, H)), v_big),
    ]


def _call_all(name, spec, q, k, v, changed_BT11, kv_lengths_B=None):
    """Outputs for the inputs and for each replacement, in one call (stacked on B)."""
    reps = _replacements(q)
    ks = [k] + [jnp.where(changed_BT11, k_new, k) for _, k_new, _ in reps]
    vs = [v] + [jnp.where(changed_BT11, v_new, v) for _, _, v_new in reps]
    lengths = None if kv_lengths_B is None else np.tile(kv_lengths_B, len(ks))
    fn = KERNELS[name]
    call = jax.jit(
        lambda q, k, v, lengths: fn(q, k, v, spec=spec, kv_lengths_B=lengths, **_options(fn))
    )
    out = call(jnp.concatenate([q] * len(ks)), jnp.concatenate(ks), jnp.concatenate(vs), lengths)
    outs = np.split(np.asarray(out), len(ks))
    return outs[0], [(label, o) for (label, _, _), o in zip(reps, outs[1:])]


def test_cases_cover_every_causal_kernel():
    """The discovery finds the kernels the issue names, so no case goes missing silently."""
    causal = {n for n, _ in CAUSAL_CASES}
    assert {"xla", "blockwise", "local", "block_sparse", "linear", "performer", "auto"} <= causal
    assert "linformer" not in causal
    assert "linformer" in {n for n, _ in PADDING_CASES}


@pytest.mark.parametrize(("name", "spec"), CAUSAL_CASES, ids=lambda x: str(x))
def test_future_keys_do_not_change_past_outputs(name, spec, fast_compile):
    q, k, v = _inputs()
    future_BT11 = jnp.broadcast_to((jnp.arange(T) > T0)[None, :, None, None], (B, T, 1, 1))
    base, outs = _call_all(name, spec, q, k, v, future_BT11)
    assert np.all(np.isfinite(base)), "outputs must be finite at |q|, |k| up to 8"
    for label, out in outs:
        np.testing.assert_allclose(
            out[:, : T0 + 1],
            base[:, : T0 + 1],
            rtol=1e-5,
            atol=1e-5,
            err_msg=f"{name} {spec}: keys/values after t={T0} ({label}) changed outputs at <= t",
        )


@pytest.mark.parametrize(("name", "spec"), PADDING_CASES, ids=lambda x: str(x))
def test_padded_keys_do_not_change_outputs(name, spec, fast_compile):
    q, k, v = _inputs()
    padded_BT11 = (jnp.arange(T)[None, :] >= jnp.asarray(LENGTHS_B)[:, None])[:, :, None, None]
    base, outs = _call_all(name, spec, q, k, v, padded_BT11, LENGTHS_B)
    assert np.all(np.isfinite(base))
    for label, out in outs:
        np.testing.assert_allclose(
            out,
            base,
            rtol=1e-5,
            atol=1e-5,
            err_msg=f"{name} {spec}: padded keys/values ({label}) changed outputs",
        )
