"""Attention score functions: logits from queries and keys.

Dimension key: B batch, T query length, S key length, N query heads, K key/value
heads, G = N/K query heads per key/value head, H head dim, A additive hidden width.

Every score is `fn(q_BTNH, k_BSKH, params, scale) -> logits_BNTS` (float32).
Query head n uses key/value head n // G (heads of one group are adjacent), which
covers multi-head (K = N), grouped-query (Ainslie et al. 2023) and multi-query
(Shazeer 2019, K = 1) attention with one einsum: "BTKGH,BSKH->BKGTS".

`scale=None` means the score's own default: 1/sqrt(H) for "scaled_dot"
(Vaswani et al. 2017), 1 for the others (as in their papers); a number always
multiplies the logits.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

F32 = jnp.float32


def _group(q_BTNH, k_BSKH):
    """Split query heads into groups: q_BTNH -> q_BTKGH; checks the head counts."""
    B, T, N, H = q_BTNH.shape
    Bk, _, K, Hk = k_BSKH.shape
    if Bk != B or Hk != H:
        raise ValueError(
            f"q {q_BTNH.shape} and k {k_BSKH.shape} must share batch and head dim (B..H)"
        )
    if N % K:
        raise ValueError(f"query heads N={N} must be a multiple of key/value heads K={K}")
    return q_BTNH.reshape(B, T, K, N // K, H)


def grouped_logits(q_BTNH, k_BSKH):
    """Raw dot products q.k per query head, float32 accumulation -> logits_BNTS."""
    B, T, N, _ = q_BTNH.shape
    S = k_BSKH.shape[1]
    q_BTKGH = _group(q_BTNH, k_BSKH)
    logits_BKGTS = jnp.einsum("BTKGH,BSKH->BKGTS", q_BTKGH, k_BSKH, preferred_element_type=F32)
    return logits_BKGTS.reshape(B, N, T, S)


def _scaled(logits_BNTS, scale):
    return logits_BNTS if scale is None else logits_BNTS * jnp.asarray(scale, F32)


def dot_score(q_BTNH, k_BSKH, params=None, scale=None):
    """Dot score q.k (Luong et al. 2015, "dot")."""
    del params
    return _scaled(grouped_logits(q_BTNH, k_BSKH), scale)


def scaled_dot_score(q_BTNH, k_BSKH, params=None, scale=None):
    """Scaled dot score q.k / sqrt(H) (Vaswani et al. 2017, eq. 1)."""
    del params
    if scale is None:
        scale = q_BTNH.shape[-1] ** -0.5
    return _scaled(grouped_logits(q_BTNH, k_BSKH), scale)


def _require(params, name: str, keys):
    """Fail with a fix when a parameterized score gets no (or the wrong) parameters."""
    if params is None or any(k not in params for k in keys):
        raise ValueError(
            f"score {name!r} needs score_params with keys {sorted(keys)}; "
            f"make them with init_score_params({name!r}, key, H, num_heads=N)"
        )


def _per_head(w, N: int):
    """Broadcast a parameter with a leading head axis of 1 or N to N heads."""
    if w.shape[0] not in (1, N):
        raise ValueError(f"score parameter has {w.shape[0]} heads, expected 1 or N={N}")
    return jnp.broadcast_to(w, (N,) + w.shape[1:])


def multiplicative_score(q_BTNH, k_BSKH, params, scale=None):
    """General/multiplicative score q^T W k (Luong et al. 2015, "general").

    Args:
      params: {"w_NHH": [N|1, H, H]} (one bilinear form per query head, or shared).
    """
    _require(params, "multiplicative", ["w_NHH"])
    N = q_BTNH.shape[2]
    w_NHI = _per_head(params["w_NHH"], N)
    qw_BTNH = jnp.einsum("BTNH,NHI->BTNI", q_BTNH, w_NHI, preferred_element_type=F32)
    return _scaled(grouped_logits(qw_BTNH.astype(q_BTNH.dtype), k_BSKH), scale)


def additive_score(q_BTNH, k_BSKH, params, scale=None):
    """Additive score v^T tanh(W_q q + W_k k + b) (Bahdanau et al. 2015, eq. 6 / App. A).

    Costs B*N*T*S*A memory for the tanh: fine for the sequence lengths where one
    would study this score, not for long contexts.

    Args:
      params: {"wq_NHA", "wk_NHA": [N|1, H, A], "b_NA": [N|1, A], "v_NA": [N|1, A]}.
    """
    _require(params, "additive", ["wq_NHA", "wk_NHA", "b_NA", "v_NA"])
    N, K = q_BTNH.shape[2], k_BSKH.shape[2]
    _group(q_BTNH, k_BSKH)  # shape checks
    wq_NHA, wk_NHA = _per_head(params["wq_NHA"], N), _per_head(params["wk_NHA"], N)
    b_NA, v_NA = _per_head(params["b_NA"], N), _per_head(params["v_NA"], N)
    # Query head n reads key/value head n // G: repeat keys to N heads in that order.
    k_BSNH = jnp.repeat(k_BSKH, N // K, axis=2)
    pq_BTNA = jnp.einsum("BTNH,NHA->BTNA", q_BTNH, wq_NHA, preferred_element_type=F32)
    pk_BSNA = jnp.einsum("BSNH,NHA->BSNA", k_BSNH, wk_NHA, preferred_element_type=F32)
    hidden_BNTSA = jnp.tanh(
        pq_BTNA.transpose(0, 2, 1, 3)[:, :, :, None, :]
        + pk_BSNA.transpose(0, 2, 1, 3)[:, :, None, :, :]
        + b_NA[None, :, None, None, :].astype(F32)
    )
    logits_BNTS = jnp.einsum("BNTSA,NA->BNTS", hidden_BNTSA, v_NA.astype(F32))
    return _scaled(logits_BNTS, scale)


ScoreFn = Callable[..., jax.Array]

SCORES: dict[str, ScoreFn] = {
    "dot": dot_score,
    "scaled_dot": scaled_dot_score,
    "multiplicative": multiplicative_score,
    "additive": additive_score,
}


def get_score(name: str | ScoreFn) -> ScoreFn:
    """Look up a score by registry key (a callable passes through)."""
    if callable(name):
        return name
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}; valid scores: {sorted(SCORES)}")
    return SCORES[name]


def init_score_params(
    name: str,
    key,
    H: int,
    *,
    num_heads: int = 1,
    hidden: int | None = None,
    dtype=jnp.float32,
) -> dict:
    """Parameters of a score (an empty dict for the parameter-free ones).

    Args:
      name: a key of SCORES.
      key: PRNG key.
      H: head dim.
      num_heads: N for per-head parameters, 1 for one set shared by all heads.
      hidden: additive hidden width A (default H).
      dtype: parameter dtype.

    Returns:
      dict of arrays, the `params` argument of the score.
    """
    if not isinstance(name, str):
        raise ValueError(f"init_score_params takes a registry key, got {name!r}")
    get_score(name)
    if name in ("dot", "scaled_dot"):
        return {}
    if name == "multiplicative":
        # Variance-preserving (LeCun) init: q^T W k then has the variance of q.k.
        w = jax.random.normal(key, (num_heads, H, H), dtype) * H**-0.5
        return {"w_NHH": w}
    A = H if hidden is None else hidden
    kq, kk, kv = jax.random.split(key, 3)
    return {
        "wq_NHA": jax.random.normal(kq, (num_heads, H, A), dtype) * H**-0.5,
        "wk_NHA": jax.random.normal(kk, (num_heads, H, A), dtype) * H**-0.5,
        "b_NA": jnp.zeros((num_heads, A), dtype),
        "v_NA": jax.random.normal(kv, (num_heads, A), dtype) * A**-0.5,
    }
