"""Synthetic data from a known Chinchilla surface: for tests, benchmarks and sanity checks.

Noise is multiplicative (log-normal): log L_obs = log L + sigma * eps, as the Huber-on-log
objective assumes.
"""

from __future__ import annotations

import numpy as np

from attn_jax.scaling import frontier, laws


def grid_points(p, N, D, *, sigma: float = 0.0, seed: int = 0):
    """Every (N, D) pair of two grids: (N_P, D_P, L_P) with log-noise `sigma`."""
    N_P, D_P = (x.ravel() for x in np.meshgrid(np.asarray(N, float), np.asarray(D, float)))
    L_P = laws.chinchilla(p, N_P, D_P)
    if sigma:
        L_P = L_P * np.exp(sigma * np.random.default_rng(seed).standard_normal(L_P.shape))
    return N_P, D_P, L_P


def isoflop_points(
    p, budgets, *, n_sizes: int = 9, span: float = 1.0, offset: float = 0.0, k: float = 6.0
):
    """IsoFLOP profiles: for each budget, `n_sizes` sizes spanning +-`span` decades around
    10^offset times the true optimum N*(C), tokens D = C / (k N).

    Returns:
      (N_P, D_P, C_P, L_P) noise-free.
    """
    rows = []
    for C in budgets:
        n_opt, _ = frontier.optimal_allocation(p, C, k)
        N = n_opt * 10 ** (offset + np.linspace(-span, span, n_sizes))
        D = C / (k * N)
        rows.append((N, D, np.full_like(N, C), laws.chinchilla(p, N, D)))
    return tuple(np.concatenate(x) for x in zip(*rows))


def run_records(p, sizes, budgets, *, sigma: float = 0.0, seed: int = 0, embed: float = 0.0):
    """Run records (the results.jsonl schema) of runs of each size evaluated at each budget.

    Each run has `evals_at_budget` at every budget; its final record is its largest budget.
    `embed` adds embedding parameters (params_total = non_embedding + embed).
    """
    rng = np.random.default_rng(seed)
    recs = []
    for i, n in enumerate(sizes):
        evals = []
        for C in budgets:
            d = C / (6.0 * n)
            loss = float(laws.chinchilla(p, n, d) * np.exp(sigma * rng.standard_normal()))
            evals.append({"tokens": d, "flops": 1.1 * C, "eval_loss": loss})
        recs.append(
            {
                "run_id": f"run{i}",
                "status": "done",
                "params_non_embedding": float(n),
                "params_total": float(n + embed),
                "params_embedding": float(embed),
                "tokens_seen": evals[-1]["tokens"],
                "flops_per_token": 1.1 * 6.0 * n,
                "train_flops": evals[-1]["flops"],
                "train_flops_6nd": 6.0 * n * evals[-1]["tokens"],
                "best_eval_loss": evals[-1]["eval_loss"],
                "eval": {"loss": evals[-1]["eval_loss"]},
                "evals_at_budget": evals,
            }
        )
    return recs
