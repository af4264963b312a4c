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
The additive score (Bahdanau) adds its projections (2 (N + K) H A per token) and
the per-pair v.tanh(...) reduction (2 N A T). Reference: D 256, L 4, N 4, F 1024,
T 256, V 256 tied -> 6 * 3,211,264 + 12 * 4 * 256 * 256 = 22,413,312 per token.
"""

from __future__ import annotations

from typing import Any

from attn_jax.models.lm import LMConfig

_LINFORMER_PROJ_LEN = 64  # ops.linformer.init_params default


def _norm_params(cfg: LMConfig) -> int:
    return cfg.d_model * (2 if cfg.norm_type == "layernorm" else 1)


def _score_params(cfg: LMConfig) -> int:
    N, H = cfg.num_heads, cfg.head_size
    if cfg.score == "multiplicative":
        return N * H * H
    if cfg.score == "additive":
        A = H  # init_score_params default hidden width
        return 2 * N * H * A + 2 * N * A
    return 0


def _layer_params(cfg: LMConfig) -> int:
    D, N, K, H, F = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.head_size, cfg.ff_size
    attn = D * (N + 2 * K) * H + N * H * D + _score_params(cfg)
    if cfg.position == "relative":
        attn += cfg.relative_buckets * N
    if cfg.kernel == "linformer":  # learned key/value projections [R, max_len], R = 64
        attn += 2 * _LINFORMER_PROJ_LEN * cfg.max_len
    return attn + 2 * D * F + 2 * _norm_params(cfg)


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
    non_embedding = cfg.num_layers * _layer_params(cfg)
    if cfg.norm == "pre":
        non_embedding += _norm_params(cfg)
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


def flops_per_token(model_config: Any, seq_len: int) -> float:
    """Analytic training FLOPs per token (forward + backward), attention included.

    6 * N_matmul + 12 * L * T * N * H (Hoffmann et al. 2022, App. F; Kaplan et al.
    2020, Table 1); see the module docstring for what is counted.

    Args:
      model_config: `config.model`, a mapping, or an `LMConfig`.
      seq_len: T, the training context length.

    Returns:
      FLOPs per trained token (float).
    """
    cfg = LMConfig.from_config(model_config)
    N, K, H, L = cfg.num_heads, cfg.kv_heads, cfg.head_size, cfg.num_layers
    forward = 2 * matmul_params(cfg) + 4 * L * seq_len * N * H
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
