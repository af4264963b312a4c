"""Per-head statistics of attention weights, and a head-type classification.

Dimension key: B batch, N heads, T queries, S keys, C coordinate axes.

Every measure takes weights_BNTS (rows sum to 1 over allowed keys; what
`attn_jax.interp.capture` records) and optional validity masks `q_valid_BT`
(padded queries excluded from the average) and `k_valid_BS` (padded keys). It
returns one value per head, [N] float64: the mean over the valid rows of every
example in the batch (NaN for a head with no row the measure is defined on).
Self-attention measures that name positions (previous token, diagonal) assume
query t and key t are the same token.

Head types (`classify_heads`), after the patterns of Clark et al. 2019 ("What
does BERT look at?": heads on the previous/next token, on [SEP]/delimiters,
broad heads), Voita et al. 2019 (positional heads) and Xiao et al. 2023
(attention sinks on the first token). The thresholds are ours, in THRESHOLDS:
  - "sink": the mean mass on the first token (or on the delimiter ids, when
    given) >= 0.5;
  - "positional": the mean mass on one fixed relative offset (previous token,
    same token, next token) >= 0.5; the offset is reported;
  - when both hold, the larger score wins;
  - "broad": otherwise, normalized entropy (entropy / log of the number of
    allowed keys, 1 = uniform) >= 0.8;
  - "content": the rest (attention that follows what the tokens are).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

THRESHOLDS = {"sink": 0.5, "positional": 0.5, "broad": 0.8}
# Relative offsets t - s of the positional scores: previous token, same token, next token.
OFFSETS = {"previous_token": 1, "diagonal": 0, "next_token": -1}
HEAD_TYPES = ("sink", "positional", "broad", "content")


def _weights(weights_BNTS) -> np.ndarray:
    w = np.asarray(weights_BNTS, np.float64)
    if w.ndim != 4:
        raise ValueError(f"weights must be [B, N, T, S], got shape {w.shape}.")
    return w


def _row_mask(w, q_valid_BT) -> np.ndarray:
    """float64 [B, 1, T]: 1 for the rows (queries) a measure averages over."""
    B, _, T, _ = w.shape
    if q_valid_BT is None:
        return np.ones((B, 1, T))
    q = np.asarray(q_valid_BT, bool)
    if q.shape != (B, T):
        raise ValueError(f"q_valid_BT has shape {q.shape}; the weights need {(B, T)}.")
    return q[:, None, :].astype(np.float64)


def _key_mask(w, k_valid_BS) -> np.ndarray:
    """bool [B, 1, 1, S]: the keys that count (all when k_valid_BS is None)."""
    B, _, _, S = w.shape
    if k_valid_BS is None:
        return np.ones((B, 1, 1, S), bool)
    k = np.asarray(k_valid_BS, bool)
    if k.shape != (B, S):
        raise ValueError(f"k_valid_BS has shape {k.shape}; the weights need {(B, S)}.")
    return k[:, None, None, :]


def _mean_rows(value_BNT, rows_BNT) -> np.ndarray:
    """Per-head mean of value over rows weighted by rows (0/1): [N], NaN when no row."""
    rows = np.broadcast_to(rows_BNT, value_BNT.shape)
    total = rows.sum(axis=(0, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            total > 0, (np.where(rows > 0, value_BNT, 0.0) * rows).sum(axis=(0, 2)) / total, np.nan
        )


def row_entropy(weights_BNTS) -> np.ndarray:
    """Entropy in nats of every row, [B, N, T] (0 log 0 = 0)."""
    w = _weights(weights_BNTS)
    logw = np.log(np.where(w > 0, w, 1.0))
    return -(w * logw).sum(-1)


def entropy(weights_BNTS, q_valid_BT=None) -> np.ndarray:
    """Mean entropy (nats) per head: log T for uniform rows over T keys, 0 for one-hot rows."""
    w = _weights(weights_BNTS)
    return _mean_rows(row_entropy(w), _row_mask(w, q_valid_BT))


def allowed_keys(weights_BNTS, k_valid_BS=None, causal: bool = False, q_offset: int = 0):
    """bool [B, 1, T, S]: the keys each query may attend to (valid, and causal if asked)."""
    w = _weights(weights_BNTS)
    T, S = w.shape[2], w.shape[3]
    allowed = np.broadcast_to(_key_mask(w, k_valid_BS), (w.shape[0], 1, T, S))
    if causal:
        allowed = allowed & (np.arange(S)[None, :] <= np.arange(T)[:, None] + q_offset)
    return allowed


def normalized_entropy(weights_BNTS, q_valid_BT=None, k_valid_BS=None, causal=False):
    """Mean of entropy / log(allowed keys) per head, over rows with >= 2 allowed keys (1 = uniform)."""
    w = _weights(weights_BNTS)
    n_allowed_B1T = allowed_keys(w, k_valid_BS, causal).sum(-1)
    rows = _row_mask(w, q_valid_BT) * (n_allowed_B1T >= 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = row_entropy(w) / np.log(np.maximum(n_allowed_B1T, 2))
    return _mean_rows(ratio, rows)


def offset_score(weights_BNTS, offset: int, q_valid_BT=None, k_valid_BS=None) -> np.ndarray:
    """Mean weight on key t - offset from query t, over rows where that key exists and is valid.

    offset 1: the previous-token score; 0: the diagonal; -1: the next token.
    """
    w = _weights(weights_BNTS)
    B, _, T, S = w.shape
    t = np.arange(T)
    s = t - offset
    has_key = (s >= 0) & (s < S)
    s_clip = np.clip(s, 0, S - 1)
    value_BNT = w[:, :, t, s_clip]
    k_ok_BT = _key_mask(w, k_valid_BS)[:, 0, 0, :][:, s_clip] & has_key[None, :]
    return _mean_rows(value_BNT, _row_mask(w, q_valid_BT) * k_ok_BT[:, None, :])


def previous_token_score(weights_BNTS, q_valid_BT=None, k_valid_BS=None) -> np.ndarray:
    """Mean weight on the previous token (1 for a pure previous-token head)."""
    return offset_score(weights_BNTS, 1, q_valid_BT, k_valid_BS)


def diagonal_score(weights_BNTS, q_valid_BT=None, k_valid_BS=None) -> np.ndarray:
    """Mean weight of each query on its own position (1 for the identity pattern)."""
    return offset_score(weights_BNTS, 0, q_valid_BT, k_valid_BS)


def key_mass(weights_BNTS, keys_BS, q_valid_BT=None) -> np.ndarray:
    """Mean attention mass on the keys where keys_BS is True, per head."""
    w = _weights(weights_BNTS)
    keys = np.asarray(keys_BS, bool)
    if keys.shape != (w.shape[0], w.shape[3]):
        raise ValueError(f"keys_BS has shape {keys.shape}; need {(w.shape[0], w.shape[3])}.")
    mass_BNT = (w * keys[:, None, None, :]).sum(-1)
    return _mean_rows(mass_BNT, _row_mask(w, q_valid_BT))


def first_token_score(weights_BNTS, q_valid_BT=None) -> np.ndarray:
    """Mean mass on key 0, the "attention sink" (Xiao et al. 2023): 1 for a pure sink head."""
    w = _weights(weights_BNTS)
    first_BS = np.zeros((w.shape[0], w.shape[3]), bool)
    first_BS[:, 0] = True
    return key_mass(w, first_BS, q_valid_BT)


def delimiter_score(weights_BNTS, tokens_BS, ids: Sequence[int], q_valid_BT=None):
    """Mean mass on keys whose token id is in `ids` (Clark et al. 2019's [SEP]/period heads)."""
    return key_mass(weights_BNTS, np.isin(np.asarray(tokens_BS), list(ids)), q_valid_BT)


def mean_attention_distance(
    weights_BNTS, q_coords_TC=None, k_coords_SC=None, q_valid_BT=None, k_valid_BS=None
) -> np.ndarray:
    """Mean distance between a query and the keys it attends to, weighted by attention.

    Distances are Euclidean between coordinates: token positions by default
    (q_coords = arange(T), k_coords = arange(S)), pixels for a ViT
    (`patch_coordinates`; Dosovitskiy et al. 2021, fig. 7). Each row is
    renormalized over the valid keys, so a [CLS] key excluded with k_valid
    does not count as distance 0.
    """
    w = _weights(weights_BNTS)
    T, S = w.shape[2], w.shape[3]
    qc = np.arange(T, dtype=np.float64)[:, None] if q_coords_TC is None else q_coords_TC
    kc = np.arange(S, dtype=np.float64)[:, None] if k_coords_SC is None else k_coords_SC
    qc, kc = np.asarray(qc, np.float64), np.asarray(kc, np.float64)
    if qc.ndim == 1:
        qc = qc[:, None]
    if kc.ndim == 1:
        kc = kc[:, None]
    dist_TS = np.sqrt(((qc[:, None, :] - kc[None, :, :]) ** 2).sum(-1))
    wk = np.where(_key_mask(w, k_valid_BS), w, 0.0)
    mass = wk.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist_BNT = np.nan_to_num(wk * dist_TS).sum(-1) / mass
    return _mean_rows(dist_BNT, _row_mask(w, q_valid_BT) * (mass > 0))


def patch_coordinates(grid: int, patch_size: int, cls_token: bool = True):
    """(coords_T2, valid_T) of a ViT's tokens: patch centres in pixels (row, col), [CLS] invalid.

    Patches are in `attn_jax.models.vit.patchify`'s row-major order, after the
    class token when there is one (its coordinates are 0 and valid_T False).
    """
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    coords = (np.stack([rows.reshape(-1), cols.reshape(-1)], axis=1) + 0.5) * patch_size
    valid = np.ones(grid * grid, bool)
    if cls_token:
        coords = np.concatenate([np.zeros((1, 2)), coords])
        valid = np.concatenate([[False], valid])
    return coords, valid


def head_stats(
    weights_BNTS,
    *,
    q_valid_BT=None,
    k_valid_BS=None,
    causal: bool = False,
    tokens_BS=None,
    delimiter_ids: Sequence[int] = (),
    q_coords_TC=None,
    k_coords_SC=None,
) -> dict[str, np.ndarray]:
    """Every per-head measure of one layer's self-attention weights, {name: [N]}.

    Keys: entropy, normalized_entropy, mean_distance, previous_token, diagonal,
    first_token, next_token unless `causal`, and delimiter when `tokens_BS` and
    `delimiter_ids` are given.
    """
    w = _weights(weights_BNTS)
    stats = {
        "entropy": entropy(w, q_valid_BT),
        "normalized_entropy": normalized_entropy(w, q_valid_BT, k_valid_BS, causal),
        "mean_distance": mean_attention_distance(
            w, q_coords_TC, k_coords_SC, q_valid_BT, k_valid_BS
        ),
        "first_token": first_token_score(w, q_valid_BT),
    }
    for name, offset in OFFSETS.items():
        if not (causal and offset < 0):  # a causal query never sees the next token
            stats[name] = offset_score(w, offset, q_valid_BT, k_valid_BS)
    if tokens_BS is not None and len(delimiter_ids):
        stats["delimiter"] = delimiter_score(w, tokens_BS, delimiter_ids, q_valid_BT)
    return stats


def classify_heads(stats: dict[str, np.ndarray], thresholds: dict | None = None) -> list[dict]:
    """One {"type", "score", "detail"} per head from `head_stats` (rules in the module docstring)."""
    th = {**THRESHOLDS, **(thresholds or {})}
    N = len(stats["entropy"])

    def val(name, n):
        x = stats.get(name)
        return -np.inf if x is None or np.isnan(x[n]) else float(x[n])

    out = []
    for n in range(N):
        sink_name = max(("first_token", "delimiter"), key=lambda k: val(k, n))
        pos_name = max((k for k in OFFSETS if k in stats), key=lambda k: val(k, n))
        sink, pos = val(sink_name, n), val(pos_name, n)
        if sink >= th["sink"] and sink >= pos:
            out.append({"type": "sink", "score": sink, "detail": sink_name})
        elif pos >= th["positional"]:
            out.append({"type": "positional", "score": pos, "detail": pos_name})
        elif val("normalized_entropy", n) >= th["broad"]:
            score = val("normalized_entropy", n)
            out.append({"type": "broad", "score": score, "detail": "normalized_entropy"})
        else:
            out.append({"type": "content", "score": val("entropy", n), "detail": "entropy"})
    return out
