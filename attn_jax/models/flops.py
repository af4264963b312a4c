"""Analytic parameter counts and training FLOPs of the LM family.

Parameter counts mirror the modules in attn_jax.nn exactly (a test compares them
with the initialized model for every SIZES entry and many options), split as in
Kaplan et al. 2020: "embedding" = token embedding table + learned position table
+ an untied output head (the tables indexed by vocabulary or position);
"non_embedding" = everything else (attention, MLP, norms, score and bias params).

Training FLOPs per token follow Hoffmann et al. 2022 (Chinchilla), Appendix F,
which extends Kaplan et al. 2020, Table 1 with the attention-value product:

  forward = 2 * N_matmul + 4 * L * T * (N_heads * H)      per token
  training = 3 * forward   (backward = 2 x forward)
           = 6 * N_matmul + 12 * L * T * d_attn

N_matmul counts every weight that multiplies an activation: the q/k/v and output
projections, the MLP, the output head (tied or not; the embedding lookup is a
gather, no FLOPs), and a multiplicative score's H x H matrices. The attention term
is 2 T d_attn for q.k^T plus 2 T d_attn for weights.v, dense over the full T (the
Chinchilla convention: causal masking and kernels that skip blocks are not
credited). Softmax, norms and elementwise ops are left out, as in both papers.
That dense count is what "xla", "blockwise" and "auto"/"cudnn" are credited
with. Kernels that compute less are counted by what they compute
(`attention_flops`, per kernel; the table of attn_jax/ops/kernels.py): "local"
and "block_sparse" by the (query, key) pairs of their pattern, with causality
not credited as above (the causal window w counts 2w - 1 keys per query, which
is the strip the local kernel computes); "linear" and "performer" by their
feature maps and prefix-sum states; "linformer" by its R projected keys.
The additive score (Bahdanau) adds its projections (2 (N + K) H A per token) and
the per-pair v.tanh(...) reduction (2 N A T). Reference: D 256, L 4, N 4, F 1024,
T 256, V 256 tied -> 6 * 3,211,264 + 12 * 4 * 256 * 256 = 22,413,312 per token.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attn_jax.models.lm import LMConfig
from attn_jax.ops.masks import MaskSpec

_LINFORMER_PROJ_LEN = 64  # ops.linformer.init_params default
_PERFORMER_FEATURES = 256  # ops.performer.init_params default
_LINEAR_CHUNK = 64  # ops.linear / ops.performer chunk default
DENSE_KERNELS = ("xla", "blockwise", "auto", "cudnn")


def norm_params(cfg: Any) -> int:
    return cfg.d_model * (2 if cfg.norm_type == "layernorm" else 1)


def score_params(cfg: Any) -> int:
    N, H = cfg.num_heads, cfg.head_size
    if cfg.score == "multiplicative":
        return N * H * H
    if cfg.score == "additive":
        A = H  # init_score_params default hidden width
        return 2 * N * H * A + 2 * N * A
    return 0


def layer_params(cfg: Any) -> int:
    D, N, K, H, F = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.head_size, cfg.ff_size
    attn = D * (N + 2 * K) * H + N * H * D + score_params(cfg)
    if cfg.position == "relative":
        attn += cfg.relative_buckets * N
    if cfg.kernel == "linformer":  # learned key/value projections [R, max_len], R default 64
        attn += 2 * (getattr(cfg, "proj_len", 0) or _LINFORMER_PROJ_LEN) * cfg.max_len
    if getattr(cfg, "bias", False):  # b_qkv, b_out, b_fc, b_proj
        attn += (N + 2 * K) * H + D + F + D
    return attn + 2 * D * F + 2 * norm_params(cfg)


def param_counts(model_config: Any) -> dict[str, int]:
    """Exact parameter counts of the model `build_model(model_config)` makes.

    Args:
      model_config: `config.model` (ConfigDict), a mapping, or an `LMConfig`.

    Returns:
      {"total", "embedding", "non_embedding"} as ints.
    """
    cfg = LMConfig.from_config(model_config)
    D, V = cfg.d_model, cfg.vocab_size
    embedding = V * D
    if cfg.position == "learned":
        embedding += cfg.max_len * D
    if not cfg.tie_embeddings:
        embedding += D * V
    non_embedding = cfg.num_layers * layer_params(cfg)
    if cfg.norm == "pre":
        non_embedding += norm_params(cfg)
    return {
        "total": embedding + non_embedding,
        "embedding": embedding,
        "non_embedding": non_embedding,
    }


def matmul_params(model_config: Any) -> int:
    """N_matmul: weights multiplying activations, incl. the (tied or untied) output head."""
    cfg = LMConfig.from_config(model_config)
    D, N, K, H, F = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.head_size, cfg.ff_size
    per_layer = D * (N + 2 * K) * H + N * H * D + 2 * D * F
    if cfg.score == "multiplicative":
        per_layer += N * H * H
    return cfg.num_layers * per_layer + D * cfg.vocab_size


def _window_pairs(T: int, w: int) -> int:
    """(t, s) pairs with |t - s| < w in a T x T grid."""
    w = min(w, T)
    return T * (2 * w - 1) - w * (w - 1)


def pattern_pairs(spec: MaskSpec, T: int) -> int:
    """(query, key) pairs of a sparse pattern over T x T, causality not credited.

    `spec` with causal dropped: a sliding window counts |t - s| < w, a strided
    pattern its blocks. Counted by blocks when only block/stride are set (so long
    T costs (T / b)^2, not T^2), per position otherwise.
    """
    sym = MaskSpec(window=spec.window, block=spec.block, stride=spec.stride)
    if sym.is_full:
        return T * T
    if sym.block is None and sym.stride is None:
        return _window_pairs(T, sym.window)
    if sym.window is None:
        b = sym.block or 1
        nb = -(-T // b)
        size_b = np.minimum(b, T - b * np.arange(nb))
        d = np.arange(nb)[:, None] - np.arange(nb)[None, :]
        if sym.stride is None:
            allowed = d == 0
        else:
            allowed = (np.abs(d) < sym.stride) | (d % sym.stride == 0)
        return int(size_b @ allowed.astype(np.int64) @ size_b)
    return int(np.asarray(sym.dense(T, T)).sum())


def _kernelized_flops(T: int, N: int, K: int, H: int, F: int, causal: bool, chunk: int) -> float:
    """Forward FLOPs per token of linear attention with F features (ops/linear.py's einsums)."""
    flops = K * 2 * F * H + N * (2 * F * H + 2 * F)  # state phi_k v^T per kv head; its reads
    if causal:
        C = min(chunk, T)
        flops += N * (2 * C * F + 2 * C * H)  # the masked C x C block inside each chunk
    return float(flops)


def attention_flops(
    kernel: str,
    seq_len: int,
    *,
    num_heads: int,
    head_dim: int,
    kv_heads: int | None = None,
    spec: MaskSpec | None = None,
    num_features: int = _PERFORMER_FEATURES,
    proj_len: int = _LINFORMER_PROJ_LEN,
    chunk: int = _LINEAR_CHUNK,
) -> float:
    """Forward FLOPs per token of one attention layer's core, as `kernel` computes it.

    The part after the q/k/v projections and before the output projection
    (those are in N_matmul): q.k^T and weights.v for softmax kernels (2 FLOPs
    per multiply-add, softmax itself not counted), feature maps and states for
    kernelized ones. Training FLOPs are 3x this (backward = 2 x forward).

    | kernel                    | forward FLOPs per token                        |
    |---------------------------|------------------------------------------------|
    | xla, blockwise, auto      | 4 T N H (dense; causal masking not credited)   |
    | local, block_sparse       | 4 N H P / T, P = pairs of the pattern (`pattern_pairs`) |
    | linear                    | 2 F H K + N (2 F H + 2 F [+ 2 C (F + H) causal]), F = H |
    | performer                 | the same with F = M, + 2 M H (N + K) feature maps |
    | linformer                 | 4 N H R + 4 K H R (projecting k and v to R rows) |

    Args:
      kernel: a key of `attn_jax.ops.kernels.KERNELS`.
      seq_len: T (= S, self-attention).
      num_heads: N.
      head_dim: H.
      kv_heads: K (default N).
      spec: the mask; its window/block/stride make local/block_sparse sparse,
        its `causal` adds the chunked form of linear/performer.
      num_features: Performer's M.
      proj_len: Linformer's R.
      chunk: C of the causal linear/performer form.

    Returns:
      FLOPs per token (float).
    """
    T, N, H = seq_len, num_heads, head_dim
    K = kv_heads or N
    spec = MaskSpec() if spec is None else spec
    if kernel in DENSE_KERNELS:
        return 4.0 * T * N * H
    if kernel in ("local", "block_sparse"):
        return 4.0 * N * H * pattern_pairs(spec, T) / T
    if kernel == "linear":
        return _kernelized_flops(T, N, K, H, H, spec.causal, chunk)
    if kernel == "performer":
        maps = 2.0 * num_features * H * (N + K)
        return maps + _kernelized_flops(T, N, K, H, num_features, spec.causal, chunk)
    if kernel == "linformer":
        R = min(proj_len, T)
        return 4.0 * N * H * R + 4.0 * K * H * R
    valid = sorted((*DENSE_KERNELS, "local", "block_sparse", "linear", "performer", "linformer"))
    raise ValueError(f"no FLOP count for attention kernel {kernel!r}; counted kernels: {valid}")


def flops_per_token(model_config: Any, seq_len: int) -> float:
    """Analytic training FLOPs per token (forward + backward), attention included.

    6 * N_matmul + 3 * L * attention_flops (Hoffmann et al. 2022, App. F; Kaplan
    et al. 2020, Table 1): 12 * L * T * N * H for dense kernels, what the kernel
    computes for the others; see the module docstring for what is counted.

    Args:
      model_config: `config.model`, a mapping, or an `LMConfig`.
      seq_len: T, the training context length.

    Returns:
      FLOPs per trained token (float).
    """
    cfg = LMConfig.from_config(model_config)
    N, K, H, L = cfg.num_heads, cfg.kv_heads, cfg.head_size, cfg.num_layers
    spec = MaskSpec(
        causal=True,
        window=cfg.window or None,
        block=cfg.sparse_block or None,
        stride=cfg.sparse_stride or None,
    )
    attn = attention_flops(
        cfg.kernel,
        seq_len,
        num_heads=N,
        head_dim=H,
        kv_heads=K,
        spec=spec,
        num_features=cfg.num_features or _PERFORMER_FEATURES,
        proj_len=cfg.proj_len or _LINFORMER_PROJ_LEN,
    )
    forward = 2 * matmul_params(cfg) + L * attn
    if cfg.score == "additive":
        A = H
        forward += L * (2 * (N + K) * H * A + 2 * N * A * seq_len)
    return 3.0 * forward


def flops_6n(model_config: Any, *, params: str = "non_embedding") -> float:
    """The 6N approximation of training FLOPs per token (Kaplan et al. 2020, C = 6NBS).

    Args:
      model_config: `config.model`, a mapping, or an `LMConfig`.
      params: which count is N: "non_embedding" (Kaplan's choice, default) or "total".

    Returns:
      6 * N (float); multiply by tokens for `train_flops_6nd`.
    """
    return 6.0 * param_counts(model_config)[params]
