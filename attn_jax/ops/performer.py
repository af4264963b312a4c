"""Performer FAVOR+ attention (Choromanski et al. 2021, "Rethinking Attention with Performers").

Dimension key: B batch, T query length, S key length, N query heads, K kv heads,
G = N / K, H head dim, M random features, C chunk length, Q number of chunks,
U query rows and W key rows of a chunk.

exp(q . k) = E_w[phi(q) . phi(k)] with the positive random features
phi(x) = exp(W x - |x|^2 / 2) / sqrt(M) (Lemma 1, eq. 7), W's rows drawn as
blocks of orthogonal Gaussian directions with chi(H)-distributed norms (§2.4,
"ORFs"), which lowers the estimator's variance. Softmax attention with scale s is
exp((sqrt(s) q) . (sqrt(s) k)), so queries and keys are scaled by s^(1/2) first.
M (`num_features`) is the accuracy/cost knob; the estimator's relative variance
is (exp(|q + k|^2) - 1) / M (Lemma 2), so the error falls like M^-1/2 only where
the scaled |q + k|^2 is small (benchmarks/kernel_quality.py measures both regimes).

Stabilisation, exact and causal. exp(W x - |x|^2/2) overflows or underflows f32
at ordinary norms, so each row is stored as features in (0, 1] times a log-scale:
phi(x) = exp(a - m) * exp(m), m = max over features of a (the row's own max).
A query's exp(m) cancels between numerator and denominator of its own row. A
key's exp(m_s) differs from key to key, so it is kept as a weight and the sums
over keys are rescaled by a running maximum, as flash attention does: query t
divides by exp(r_t), r_t = max_{s <= t} m_s (causal: only its own keys), every
exponent is <= 0, and nothing but rounding separates the result from the
unstabilised formula. The 1/sqrt(M) factors cancel and are left out. (The
reference implementation shifts keys by a max over all positions, which lets
later keys change earlier outputs through underflow, and adds a 1e-6 floor that
swamps the features at ordinary norms; neither is done here.)

The causal form is chunked (ops/linear.py's layout): a masked C x C product
inside each chunk, and across chunks an exclusive scan of per-chunk states
sum_s exp(m_s - rho) phi(k_s) v_s^T [M, H] whose combine step rescales to the
larger of two maxima (`jax.lax.associative_scan`): never a T x S matrix.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attn_jax.ops.linear import check_spec
from attn_jax.ops.masks import padding_mask

# Log-scale of a padded key: exp(_NEG - r) is 0 for any real r, and _NEG - _NEG
# is 0, not the NaN that -inf would give when no key is valid yet.
_NEG = -1e30


def orthogonal_random_features(key, num_features: int, head_dim: int):
    """W [M, H]: stacked blocks of orthogonal rows with chi(H) norms (FAVOR+, §2.4)."""
    n_blocks = -(-num_features // head_dim)
    keys = jax.random.split(key, n_blocks + 1)
    blocks = []
    for b in range(n_blocks):
        g_HH = jax.random.normal(keys[b], (head_dim, head_dim), jnp.float32)
        q_HH, _ = jnp.linalg.qr(g_HH)
        blocks.append(q_HH.T)
    w_MH = jnp.concatenate(blocks, axis=0)[:num_features]
    # Row norms distributed like those of Gaussian vectors, so each row is marginally N(0, I).
    norms_M = jnp.linalg.norm(
        jax.random.normal(keys[-1], (num_features, head_dim), jnp.float32), axis=-1
    )
    return w_MH * norms_M[:, None]


def init_params(key, head_dim: int, num_features: int = 256):
    """Performer params: {"features_MH": W}."""
    return {"features_MH": orthogonal_random_features(key, num_features, head_dim)}


def favor_features(x_BTNH, w_MH):
    """Positive random features of each row as (phi_BTNM in (0, 1], logscale_BTN).

    phi * exp(logscale) = exp(W x - |x|^2 / 2), x already scaled by sqrt(scale);
    logscale is the row's own max over features, so it depends on no other row
    (held under stop_gradient: the attention output does not depend on it).
    """
    x = x_BTNH.astype(jnp.float32)
    a_BTNM = jnp.einsum("BTNH,MH->BTNM", x, w_MH) - 0.5 * jnp.sum(x * x, axis=-1, keepdims=True)
    m_BTN = jax.lax.stop_gradient(jnp.max(a_BTNM, axis=-1))
    return jnp.exp(a_BTNM - m_BTN[..., None]), m_BTN


def _divide(num, den):
    """num / den, and 0 where no key is visible (den == 0) instead of NaN."""
    ok = den > 0
    return jnp.where(ok[..., None], num / jnp.where(ok, den, 1.0)[..., None], 0.0)


def _full(phi_q, phi_k, m_BSK, v):
    """Non-causal: one rescaled state over all (valid) keys."""
    r_BK = jnp.max(m_BSK, axis=1)
    w_BSK = jnp.exp(m_BSK - r_BK[:, None])
    kv_BKFH = jnp.einsum("BSKF,BSK,BSKH->BKFH", phi_k, w_BSK, v)
    z_BKF = jnp.einsum("BSKF,BSK->BKF", phi_k, w_BSK)
    num = jnp.einsum("BTKGF,BKFH->BTKGH", phi_q, kv_BKFH)
    den = jnp.einsum("BTKGF,BKF->BTKG", phi_q, z_BKF)
    return _divide(num, den)


def _combine(left, right):
    """Associative sum of rescaled states (max, sum phi v^T, sum phi) along the chunk axis."""
    m1, kv1, z1 = left
    m2, kv2, z2 = right
    m = jnp.maximum(m1, m2)
    e1, e2 = jnp.exp(m1 - m), jnp.exp(m2 - m)
    return (
        m,
        kv1 * e1[..., None, None] + kv2 * e2[..., None, None],
        z1 * e1[..., None] + z2 * e2[..., None],
    )


def _causal(phi_q, phi_k, m_BTK, v, chunk: int):
    """Causal chunked form with a running max: query t uses only keys s <= t."""
    B, T, K, G, F = phi_q.shape
    H = v.shape[-1]
    C = min(chunk, T)
    Tp = -(-T // C) * C
    Q = Tp // C
    pad = [(0, 0), (0, Tp - T)]
    phi_q = jnp.pad(phi_q, pad + [(0, 0)] * 3).reshape(B, Q, C, K, G, F)
    phi_k = jnp.pad(phi_k, pad + [(0, 0)] * 2).reshape(B, Q, C, K, F)
    v = jnp.pad(v, pad + [(0, 0)] * 2).reshape(B, Q, C, K, H)
    m_BTK = jnp.pad(m_BTK, pad + [(0, 0)], constant_values=_NEG)
    # r_t = max_{s <= t} m_s: each query's own, causal, normaliser.
    r_BQUK = jax.lax.cummax(m_BTK, axis=1).reshape(B, Q, C, K)
    m_BQWK = m_BTK.reshape(B, Q, C, K)
    # Inside a chunk: the masked C x C kernel matrix, key weights exp(m_s - r_t) <= 1.
    tril_UW = jnp.tril(jnp.ones((C, C), jnp.bool_))
    log_w = m_BQWK.transpose(0, 1, 3, 2)[:, :, :, None, :] - r_BQUK.transpose(0, 1, 3, 2)[..., None]
    w_BQKUW = jnp.exp(jnp.where(tril_UW[None, None, None], log_w, -jnp.inf))
    a = jnp.einsum("BQUKGF,BQWKF->BQKGUW", phi_q, phi_k) * w_BQKUW[:, :, :, None]
    num = jnp.einsum("BQKGUW,BQWKH->BQUKGH", a, v)
    den = a.sum(-1).transpose(0, 1, 4, 2, 3)
    # Across chunks: per-chunk states scaled by the chunk's own max, then an
    # exclusive scan that rescales to the running max (exact, never overflows).
    rho_BQK = jnp.max(m_BQWK, axis=2)
    w_BQWK = jnp.exp(m_BQWK - rho_BQK[:, :, None])
    kv_BQKFH = jnp.einsum("BQWKF,BQWK,BQWKH->BQKFH", phi_k, w_BQWK, v)
    z_BQKF = jnp.einsum("BQWKF,BQWK->BQKF", phi_k, w_BQWK)
    m_inc, kv_inc, z_inc = jax.lax.associative_scan(_combine, (rho_BQK, kv_BQKFH, z_BQKF), axis=1)

    def shift(x, fill):
        return jnp.concatenate([jnp.full_like(x[:, :1], fill), x[:, :-1]], axis=1)

    m_prev, kv_prev, z_prev = shift(m_inc, _NEG), shift(kv_inc, 0.0), shift(z_inc, 0.0)
    # r_t >= every earlier chunk's max, so this factor is <= 1.
    f_BQUKG = jnp.exp(m_prev[:, :, None] - r_BQUK)[..., None]  # G as 1
    num = num + f_BQUKG[..., None] * jnp.einsum("BQUKGF,BQKFH->BQUKGH", phi_q, kv_prev)
    den = den + f_BQUKG * jnp.einsum("BQUKGF,BQKF->BQUKG", phi_q, z_prev)
    return _divide(num, den).reshape(B, Tp, K * G, H)[:, :T].reshape(B, T, K, G, H)


def favor_attention_features(
    phi_q_BTNF, phi_k_BSKF, logscale_BSK, v_BSKH, *, causal: bool, kv_lengths_B=None, chunk=64
):
    """Attention with weights phi(q_t) . phi(k_s) exp(logscale_s), exactly rescaled.

    Args:
      phi_q_BTNF: query features (any positive per-row scale: it cancels).
      phi_k_BSKF: key features in (0, 1].
      logscale_BSK: each key's log-scale (its features are phi_k * exp(logscale)).
      v_BSKH: values.
      causal: sum only over keys s <= t (requires T == S).
      kv_lengths_B: optional valid key lengths; padded keys take no weight.
      chunk: chunk length C of the causal form.

    Returns:
      out_BTNH (float32); rows that see no valid key are 0.
    """
    B, T, N, F = phi_q_BTNF.shape
    S, K, H = v_BSKH.shape[1:]
    phi_q = phi_q_BTNF.astype(jnp.float32).reshape(B, T, K, N // K, F)
    phi_k = phi_k_BSKF.astype(jnp.float32)
    v = v_BSKH.astype(jnp.float32)
    m_BSK = jax.lax.stop_gradient(logscale_BSK.astype(jnp.float32))
    if kv_lengths_B is not None:
        valid_BS1 = padding_mask(kv_lengths_B, S)[..., None]
        # where, not multiply: a padded key's value may be anything, even inf.
        phi_k = jnp.where(valid_BS1[..., None], phi_k, 0.0)
        v = jnp.where(valid_BS1[..., None], v, 0.0)
        m_BSK = jnp.where(valid_BS1, m_BSK, _NEG)
    if not causal:
        return _full(phi_q, phi_k, m_BSK, v).reshape(B, T, N, H)
    if T != S:
        raise ValueError(f"causal performer attention needs T == S, got T={T}, S={S}")
    return _causal(phi_q, phi_k, m_BSK, v, chunk).reshape(B, T, N, H)


def performer_attention(
    q_BTNH,
    k_BSKH,
    v_BSKH,
    *,
    spec=None,
    bias_fn=None,
    scale=None,
    q_offset=0,
    kv_lengths_B=None,
    params=None,
    num_features: int = 256,
    seed: int = 0,
    chunk: int = 64,
):
    """FAVOR+ approximation of softmax attention.

    Args:
      q_BTNH, k_BSKH, v_BSKH: queries, keys, values (N % K == 0).
      spec: None/full or causal MaskSpec; anything else raises ValueError.
      bias_fn: must be None.
      scale: softmax temperature approximated, default 1/sqrt(H).
      q_offset: must be 0.
      kv_lengths_B: optional key padding.
      params: {"features_MH": W} from `init_params`; if None, W is drawn from
        PRNGKey(seed) with `num_features` rows (fixed, so the call is deterministic).
      num_features: M when params is None.
      seed: PRNG seed when params is None.
      chunk: chunk length of the causal prefix sum.

    Returns:
      out_BTNH in q's dtype.
    """
    causal = check_spec(spec, bias_fn, "performer")
    if not (isinstance(q_offset, int) and q_offset == 0):
        raise ValueError("performer attention needs q_offset=0 (decode with the 'xla' kernel)")
    H = q_BTNH.shape[-1]
    if params is None:
        w_MH = orthogonal_random_features(jax.random.PRNGKey(seed), num_features, H)
    else:
        w_MH = params["features_MH"]
    scale = H**-0.5 if scale is None else scale
    root = jnp.float32(scale) ** 0.5
    phi_q, _ = favor_features(q_BTNH * root, w_MH)  # a query's own scale cancels
    phi_k, m_BSK = favor_features(k_BSKH * root, w_MH)
    out = favor_attention_features(
        phi_q, phi_k, m_BSK, v_BSKH, causal=causal, kv_lengths_B=kv_lengths_B, chunk=chunk
    )
    return out.astype(q_BTNH.dtype)
