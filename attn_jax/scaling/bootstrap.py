"""Uncertainty: bootstrap over runs, and leave-the-largest-out validation.

The bootstrap resamples *runs* (not points) with replacement: one run can contribute
several points (evals at several budgets), and those points are not independent. A
resample is passed to the refit as per-point multiplicities (weights), which for a summed
objective is exactly the same as duplicating the points, and cheaper.

For Approach 3 each resample is refit from the full-data optimum plus the `top_k`
(default 1) best grid starts on the resample, chosen among the 64 grid starts that are best
on the full data: the full-data optimum is
almost always in the resample's basin, and the grid starts guard against the rare
resample whose optimum moved. Checked on the 240 Chinchilla points (200 resamples): the
anchored refits and refits that rescore all 4500 grid starts and optimize the best 16 on
every resample give the same SEs to 3 digits (alpha 0.0142, beta 0.0213, a 0.0195; the
anchored ones in 6 s, the full ones in 153 s), so the anchor does not shrink the intervals;
`full_multistart=True` runs the full version. The coverage of the resulting intervals on
replicate sweeps from a known law is tested in tests/scaling/test_scaling_coverage.py.

Approach 1 (`bootstrap_approach1`) resamples runs' learning curves; Approach 2 and the
single-variable fits resample runs through `bootstrap` (see report.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

from attn_jax.scaling import approach3, approaches, frontier


@dataclasses.dataclass
class Bootstrap:
    """Bootstrap samples and their summaries.

    Attributes:
      samples: name -> [R] values, one per successful resample.
      n_resamples: resamples drawn; n_failed: resamples whose refit raised.
      level: the central interval's coverage (e.g. 0.95).
    """

    samples: dict[str, np.ndarray]
    n_resamples: int
    n_failed: int
    level: float

    def se(self, name: str) -> float:
        return float(np.std(self.samples[name], ddof=1))

    def interval(self, name: str) -> tuple[float, float]:
        q = 100 * (1 - self.level) / 2
        lo, hi = np.percentile(self.samples[name], [q, 100 - q])
        return float(lo), float(hi)

    def summary(self) -> dict[str, dict[str, float]]:
        """name -> {mean, se, lo, hi} (percentile interval at `level`)."""
        out = {}
        for name, v in self.samples.items():
            lo, hi = self.interval(name)
            out[name] = {"mean": float(np.mean(v)), "se": self.se(name), "lo": lo, "hi": hi}
        return out


def resample_weights(groups, n_resamples: int, seed: int = 0) -> np.ndarray:
    """Per-point multiplicities [R, P] from resampling groups (runs) with replacement."""
    groups = np.asarray(groups)
    uniq, inv = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, uniq.shape[0], size=(n_resamples, uniq.shape[0]))
    counts_RG = np.stack([np.bincount(d, minlength=uniq.shape[0]) for d in draws])
    return counts_RG[:, inv].astype(np.float64)


def bootstrap(
    fit_fn: Callable[[np.ndarray], Mapping[str, float]],
    groups,
    n_resamples: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> Bootstrap:
    """Runs `fit_fn(weights_P) -> {name: value}` on `n_resamples` run-resamples.

    Args:
      fit_fn: refits with per-point multiplicities and returns scalars to summarize.
      groups: run id per point; runs are what gets resampled.
      n_resamples: number of resamples.
      seed: numpy seed.
      level: percentile interval coverage.
    """
    samples: dict[str, list[float]] = {}
    failed = 0
    with approach3.single_threaded_blas():
        for w in resample_weights(groups, n_resamples, seed):
            try:
                out = fit_fn(w)
            except (ValueError, np.linalg.LinAlgError):
                failed += 1  # e.g. a resample with too few distinct sizes for Approach 2
                continue
            for k, v in out.items():
                samples.setdefault(k, []).append(float(v))
    if not samples:
        raise ValueError(f"all {n_resamples} bootstrap refits failed; too few runs?")
    return Bootstrap({k: np.array(v) for k, v in samples.items()}, n_resamples, failed, level)


def bootstrap_approach3(
    N,
    D,
    L,
    groups=None,
    *,
    n_resamples: int = 200,
    seed: int = 0,
    level: float = 0.95,
    init=None,
    top_k: int = 1,
    n_candidates: int = 64,
    budgets=(),
    k_flops: float = 6.0,
    full_multistart: bool = False,
    delta: float = approach3.HUBER_DELTA,
) -> Bootstrap:
    """Bootstrap of every Chinchilla parameter and derived quantity (frontier.derived).

    Args:
      N, D, L: the data, one entry per point.
      groups: run id per point (None: every point is its own run).
      n_resamples, seed, level: as `bootstrap`.
      init: the full-data optimum (params dict); fitted here when None.
      top_k: grid starts per resample, in addition to `init`.
      n_candidates: grid starts (best on the full data) from which each resample's
        `top_k` are chosen.
      budgets: FLOP budgets for the derived N*, D*, tokens/param and loss.
      k_flops: FLOPs per parameter-token for the frontier (6 for 6ND).
      full_multistart: refit every resample as a fresh fit (score all grid starts, optimize
        the best 16, no `init`); about 25x slower, same SEs on the Chinchilla points.
      delta: Huber delta on log loss (as `fit_approach3`).
    """
    N, D, L = (np.asarray(x, np.float64) for x in (N, D, L))
    groups = np.arange(N.shape[0]) if groups is None else np.asarray(groups)
    if init is None:
        init = approach3.fit_approach3(N, D, L, diagnose=False, delta=delta).params
    # Scoring all 4500 grid starts per resample would cost more than the refits: score them
    # once on the full data, keep the best `n_candidates`, and rank only those per resample.
    logs = [np.log(x) for x in (N, D, L)]
    candidates = approach3.select_starts(*logs, top_k=n_candidates, delta=delta)

    def fit_fn(w):
        if full_multistart:
            fit = approach3.fit_approach3(N, D, L, top_k=16, weights=w, diagnose=False, delta=delta)
        else:
            fit = approach3.fit_approach3(
                N, D, L, init=init, grid=candidates, top_k=top_k, weights=w, diagnose=False,
                delta=delta,
            )  # fmt: skip
        return frontier.derived(fit.params, budgets, k_flops)

    return bootstrap(fit_fn, groups, n_resamples, seed, level)


def bootstrap_approach1(
    curves, *, n_resamples: int = 200, seed: int = 0, level: float = 0.95, k=None
) -> Bootstrap:
    """Bootstrap of Approach 1's exponents (a, b), resampling runs' learning curves.

    A run drawn twice adds nothing to a lower envelope, so each resample is the envelope of
    the distinct runs it drew; resamples left with one size fail (and are counted).
    """
    curves = list(curves)

    def fit_fn(w):
        picked = [c for c, wi in zip(curves, w) if wi > 0]
        f = approaches.approach1(picked, k=k)
        return {"a": f.a, "b": f.b}

    return bootstrap(fit_fn, np.arange(len(curves)), n_resamples, seed, level)


def leave_largest_out(
    N, D, L, *, top_k: int = 16, delta: float = approach3.HUBER_DELTA
) -> dict[str, float]:
    """Fits Approach 3 without the largest model size and scores it on that size.

    The fit takes every point (seeds included). The score is against the held-out
    size's loss at each budget: the mean over the points that share its (N, D),
    i.e. over seeds, since the law predicts an expected loss, not one seed's draw.
    With one seed per point that is each point itself.

    Returns:
      {"N_held_out", "n_held_out" (held-out budgets), "n_held_out_points",
       "mean_abs_rel_error", "max_abs_rel_error", "rmse_log_loss", "seed_rel_sd"
       (the held-out losses' relative sd across seeds; None with one seed)} on
      the held-out size, plus the fit's parameters as "fit_<name>".
    """
    N, D, L = (np.asarray(x, np.float64) for x in (N, D, L))
    held = N >= N.max() * (1 - 1e-9)
    if held.all():
        raise ValueError("leave-largest-out needs at least two model sizes")
    fit = approach3.fit_approach3(
        N[~held], D[~held], L[~held], top_k=top_k, diagnose=False, delta=delta
    )
    budgets, which = np.unique(D[held], return_inverse=True)
    groups = [L[held][which == i] for i in range(budgets.shape[0])]
    observed = np.array([g.mean() for g in groups])
    # Seed-to-seed spread of the held-out losses (relative sd, mean over the budgets
    # with two or more seeds): a miss within it is noise, one far beyond it is the law.
    sds = [g.std(ddof=1) / g.mean() for g in groups if g.shape[0] > 1]
    pred = fit.predict(np.full(budgets.shape, N.max()), budgets)
    rel = (pred - observed) / observed
    return {
        "N_held_out": float(N.max()),
        "n_held_out": int(budgets.shape[0]),
        "n_held_out_points": int(held.sum()),
        "mean_abs_rel_error": float(np.mean(np.abs(rel))),
        "max_abs_rel_error": float(np.max(np.abs(rel))),
        "rmse_log_loss": float(np.sqrt(np.mean((np.log(pred) - np.log(observed)) ** 2))),
        "seed_rel_sd": float(np.mean(sds)) if sds else None,
        **{f"fit_{k}": float(v) for k, v in fit.params.items()},
    }
