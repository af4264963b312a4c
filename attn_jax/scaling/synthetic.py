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


# A law with the demo's loss scale (byte-level LM, 2-3 nats/byte at 1e4-1e6 parameters and
# 1e5-1e9 tokens); its compute-optimal sizes fall inside DEMO_DESIGN's sizes.
DEMO_LAW = {"E": 1.0, "A": 30.0, "B": 120.0, "alpha": 0.35, "beta": 0.32}
# Seed-to-seed spread of small CPU LM eval losses: 0.5-1% relative; the middle of it.
REALISTIC_SIGMA = 0.0075


def isoflop_design(sizes, budgets, k: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """(N_P, D_P): every size at every budget with D = C / (k N), one final point each."""
    N_P = np.tile(np.asarray(sizes, np.float64), len(budgets))
    C_P = np.repeat(np.asarray(budgets, np.float64), len(sizes))
    return N_P, C_P / (k * N_P)


# The redesigned demo's shape: 6 sizes over 2 decades x 4 budgets over 1.5 decades.
DEMO_DESIGN = isoflop_design(np.logspace(4, 6, 6), np.logspace(12, 13.5, 4))


def replicate(p, N, D, *, sigma: float = REALISTIC_SIGMA, seed: int = 0) -> np.ndarray:
    """One replicate sweep's losses on design (N, D): the law times lognormal noise."""
    L = laws.chinchilla(p, np.asarray(N, np.float64), np.asarray(D, np.float64))
    return L * np.exp(sigma * np.random.default_rng(seed).standard_normal(L.shape))


def coverage(
    p,
    N,
    D,
    *,
    n_replicates: int = 100,
    n_resamples: int = 100,
    sigma: float = REALISTIC_SIGMA,
    level: float = 0.95,
    seed: int = 0,
    top_k: int = 8,
    names=("alpha", "beta", "a"),
    truth=None,
    delta: float | None = None,
) -> dict:
    """How often Approach 3's bootstrap intervals cover the true values of a known law.

    Each replicate draws losses on the design (`replicate`), fits Approach 3, bootstraps it
    (every point its own run) and records whether each interval holds the truth.

    Args:
      p: the law that generates the data.
      N, D: the design, one entry per run (schedule-final points).
      n_replicates, n_resamples: replicate sweeps, and bootstrap resamples per replicate.
      sigma: lognormal noise on each loss.
      level: the intervals' nominal coverage.
      seed: replicate r uses seed + r for its noise and its bootstrap.
      top_k: grid starts of each replicate's fit (plus the truth as a start).
      names: quantities to check (any key of frontier.derived).
      truth: values to check against (default: those of `p`); a wrong one must fail.
      delta: Huber delta of the fits (None: approach3.HUBER_DELTA, as published).

    Returns:
      {"coverage": {name: fraction}, "se": binomial SE of a fraction at `level`,
       "intervals": {name: [R, 2]}, "n_replicates", "n_resamples", "sigma", "level"}.
    """
    from attn_jax.scaling import approach3, bootstrap  # they import this module's users

    truth = {**frontier.derived(p), **(truth or {})}
    delta = approach3.HUBER_DELTA if delta is None else delta
    lo_hi = {n: [] for n in names}
    for r in range(n_replicates):
        L = replicate(p, N, D, sigma=sigma, seed=seed + r)
        fit = approach3.fit_approach3(N, D, L, init=p, top_k=top_k, diagnose=False, delta=delta)
        boot = bootstrap.bootstrap_approach3(
            N, D, L, init=fit.params, n_resamples=n_resamples, seed=seed + r, level=level,
            delta=delta,
        )  # fmt: skip
        for n in names:
            lo_hi[n].append(boot.interval(n))
    intervals = {n: np.array(v) for n, v in lo_hi.items()}
    covered = {
        n: float(np.mean((iv[:, 0] <= truth[n]) & (truth[n] <= iv[:, 1])))
        for n, iv in intervals.items()
    }
    return {
        "coverage": covered,
        "se": float(np.sqrt(level * (1 - level) / n_replicates)),
        "intervals": intervals,
        "n_replicates": n_replicates,
        "n_resamples": n_resamples,
        "sigma": sigma,
        "level": level,
    }


def final_run_records(
    p,
    N,
    D,
    *,
    sigma: float = REALISTIC_SIGMA,
    seed: int = 0,
    midrun_fractions=(0.25, 0.5),
    midrun_excess: float = 0.03,
) -> list[dict]:
    """Run records of a design of schedule-final runs: one run per (N, D) point.

    Each run ends at D tokens on a decayed schedule (`schedule_final`: True) with the law's
    loss times lognormal noise, and carries mid-run evals at `midrun_fractions` of D
    (`"final": false`) whose loss is `midrun_excess` above what the law gives a run of that
    length at its end: a mid-run eval sits above the end of a shorter schedule.
    """
    rng = np.random.default_rng(seed)
    recs = []
    for i, (n, d) in enumerate(zip(np.asarray(N, float), np.asarray(D, float))):
        evals = [
            {
                "tokens": f * d,
                "flops": 6.0 * n * f * d,
                "eval_loss": float(laws.chinchilla(p, n, f * d) * (1 + midrun_excess)),
                "final": False,
            }
            for f in midrun_fractions
        ]
        loss = float(laws.chinchilla(p, n, d) * np.exp(sigma * rng.standard_normal()))
        recs.append(
            {
                "run_id": f"run{i}_n{n:.3g}_d{d:.3g}",
                "status": "done",
                "params_non_embedding": float(n),
                "params_total": float(n),
                "params_embedding": 0.0,
                "tokens_seen": float(d),
                "flops_per_token": 6.0 * n,
                "train_flops": 6.0 * n * d,
                "train_flops_6nd": 6.0 * n * d,
                "schedule": "cosine",
                "schedule_final": True,
                "parent_run_id": None,
                "init_from_step": None,
                "eval": {"loss": loss},
                "best_eval_loss": loss,
                "evals_at_budget": evals + [{"tokens": d, "flops": 6.0 * n * d, "eval_loss": loss}],
            }
        )
    return recs
