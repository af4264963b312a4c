"""Naive float64 NumPy references for attention tests (ops and kernels).

Deliberately written as plainly as possible (explicit head mapping, no einsum
tricks) and independent of attn_jax, so a test that agrees with it checks the
real code against the formulas.

Dimension key: B batch, T queries, S keys, N query heads, K kv heads, H head dim.
Query head n reads key/value head n // (N // K).

Import from a test in tests/ops as `from reference import reference_attention`
(pytest puts the test file's directory on sys.path).
"""

from __future__ import annotations

import math

import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _expand_kv(x_BSKH, N):
    """Repeat kv heads so head n holds kv head n // G: [B,S,K,H] -> [B,S,N,H]."""
    K = x_BSKH.shape[2]
    assert N % K == 0, (N, K)
    return np.repeat(x_BSKH, N // K, axis=2)


def reference_logits(q, k, scale=None):
    """logits[b,n,t,s] = scale * sum_h q[b,t,n,h] k[b,s,n//G,h] (scale default 1/sqrt(H))."""
    q, k = _f64(q), _f64(k)
    B, T, N, H = q.shape
    scale = 1.0 / math.sqrt(H) if scale is None else float(scale)
    kN = _expand_kv(k, N)
    return scale * np.einsum("btnh,bsnh->bnts", q, kN)


def _softmax_rows(logits, mask):
    """Masked softmax over the last axis; fully masked rows are zeros."""
    B, N, T, S = logits.shape
    weights = np.zeros_like(logits)
    for b, n, t in np.ndindex(B, N, T):
        allowed = mask[b, n, t]
        if not allowed.any():
            continue
        row = logits[b, n, t][allowed]
        e = np.exp(row - row.max())
        weights[b, n, t][allowed] = e / e.sum()
    return weights


def reference_attention(q, k, v, mask=None, bias=None, scale=None, logits=None):
    """Softmax attention in float64.

    Args:
      q: [B,T,N,H]; k, v: [B,S,K,H] with N % K == 0.
      mask: bool broadcastable to [B,N,T,S] (True = attend), None = all.
      bias: float broadcastable to [B,N,T,S], added to the logits.
      scale: logit scale, None = 1/sqrt(H).
      logits: precomputed [B,N,T,S] logits (other scores); replaces q.k.

    Returns:
      (out [B,T,N,H], weights [B,N,T,S]) as float64.
    """
    q, v = _f64(q), _f64(v)
    B, T, N, H = q.shape
    S = v.shape[1]
    logits = reference_logits(q, k, scale) if logits is None else _f64(logits).copy()
    if bias is not None:
        logits = logits + np.broadcast_to(_f64(bias), logits.shape)
    mask = np.ones((B, N, T, S), bool) if mask is None else np.broadcast_to(mask, (B, N, T, S))
    weights = _softmax_rows(logits, np.asarray(mask, bool))
    out = np.einsum("bnts,bsnh->btnh", weights, _expand_kv(v, N))
    return out, weights


def reference_attention_grad(q, k, v, dout, mask=None, bias=None, scale=None):
    """Analytic float64 backward of `reference_attention` (scaled dot score).

    With P = softmax(L), O = P V: dV = P^T dO, dP = dO V^T,
    dL = P * (dP - rowsum(dP * P)), dQ = scale dL K, dK = scale dL^T Q;
    kv-head gradients sum over the G query heads of the group.

    Returns:
      (dq [B,T,N,H], dk [B,S,K,H], dv [B,S,K,H], dlogits [B,N,T,S]); dlogits is
      also the gradient with respect to a full [B,N,T,S] bias.
    """
    q, k, v, dout = _f64(q), _f64(k), _f64(v), _f64(dout)
    B, T, N, H = q.shape
    K = k.shape[2]
    scale = 1.0 / math.sqrt(H) if scale is None else float(scale)
    _, P = reference_attention(q, k, v, mask, bias, scale)
    kN, vN = _expand_kv(k, N), _expand_kv(v, N)
    dvN = np.einsum("bnts,btnh->bsnh", P, dout)
    dP = np.einsum("btnh,bsnh->bnts", dout, vN)
    dL = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))
    dq = scale * np.einsum("bnts,bsnh->btnh", dL, kN)
    dkN = scale * np.einsum("bnts,btnh->bsnh", dL, q)
    G = N // K
    dk = dkN.reshape(B, -1, K, G, H).sum(axis=3)
    dv = dvN.reshape(B, -1, K, G, H).sum(axis=3)
    return dq, dk, dv, dL


def reference_sinusoidal(positions, D, base=10000.0):
    """PE[p, 2i] = sin(p / base^(2i/D)), PE[p, 2i+1] = cos(...), by loops."""
    positions = np.asarray(positions)
    out = np.zeros(positions.shape + (D,))
    for idx in np.ndindex(positions.shape):
        p = float(positions[idx])
        for i in range(D // 2):
            angle = p / base ** (2 * i / D)
            out[idx + (2 * i,)] = math.sin(angle)
            out[idx + (2 * i + 1,)] = math.cos(angle)
    return out


def reference_rope(x, positions, base=1e4):
    """Rotate pairs (x[i], x[i+H/2]) by p * base^(-2i/H); x [B,T,N,H], positions [B,T]."""
    x = _f64(x)
    B, T, N, H = x.shape
    out = np.empty_like(x)
    for b, t in np.ndindex(B, T):
        p = float(positions[b][t])
        for i in range(H // 2):
            c, s = math.cos(p * base ** (-2 * i / H)), math.sin(p * base ** (-2 * i / H))
            a, bb = x[b, t, :, i], x[b, t, :, i + H // 2]
            out[b, t, :, i] = a * c - bb * s
            out[b, t, :, i + H // 2] = bb * c + a * s
    return out


def reference_relative_bucket(rel, bidirectional=True, num_buckets=32, max_distance=128):
    """T5's _relative_position_bucket for one python int offset (key - query)."""
    ret = 0
    n = -rel
    if bidirectional:
        num_buckets //= 2
        if n < 0:
            ret += num_buckets
        n = abs(n)
    else:
        n = max(n, 0)
    max_exact = num_buckets // 2
    if n < max_exact:
        return ret + n
    val = max_exact + int(
        math.log(n / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    )
    return ret + min(val, num_buckets - 1)


def reference_t5_bias(table_RN, q_pos, k_pos, bidirectional=True, max_distance=128):
    """bias[n, t, s] = table[bucket(k_pos[s] - q_pos[t]), n] -> [N,T,S]."""
    table = _f64(table_RN)
    R, N = table.shape
    out = np.zeros((N, len(q_pos), len(k_pos)))
    for t, qp in enumerate(q_pos):
        for s, kp in enumerate(k_pos):
            r = reference_relative_bucket(int(kp) - int(qp), bidirectional, R, max_distance)
            out[:, t, s] = table[r]
    return out


def reference_alibi_bias(slopes, q_pos, k_pos):
    """bias[n, t, s] = -slopes[n] * |q_pos[t] - k_pos[s]|."""
    slopes = _f64(slopes)
    dist = np.abs(_f64(q_pos)[:, None] - _f64(k_pos)[None, :])
    return -slopes[:, None, None] * dist[None]


def random_score_params(name, N, H, A=None, seed=0):
    """float32 NumPy parameters for a score of attn_jax.ops.scores (no PRNG compiles)."""
    rng = np.random.default_rng(seed)
    A = H if A is None else A
    normal = lambda *shape: (rng.standard_normal(shape) / math.sqrt(shape[-2])).astype(np.float32)
    if name == "multiplicative":
        return {"w_NHH": normal(N, H, H)}
    if name == "additive":
        return {
            "wq_NHA": normal(N, H, A),
            "wk_NHA": normal(N, H, A),
            "b_NA": (0.1 * rng.standard_normal((N, A))).astype(np.float32),
            "v_NA": normal(N, A, 1)[..., 0],
        }
    return {}
