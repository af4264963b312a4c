"""The saturating law on a compute frontier: error vs training compute (Zhai et al. 2022).

Zhai et al. (2022, "Scaling Vision Transformers", sec. 2.1, eq. 1) fit
E = a (C + d)^-b + c to the error of the best model at each compute C: `c` is
the error compute cannot remove, `d` the compute offset below which the curve
flattens (a random classifier's error). Here:

- `frontier(C, E)`: the Pareto points, each with lower error than every point of
  less compute (the points a compute-optimal choice of size would reach).
- `fit_frontier(C, E)`: the law `laws.LAWS["saturating"]` fitted on the
  frontier by `wls.fit_wls` (least squares on log error), with a residual
  bootstrap for intervals of b, c and of the predicted error at the largest
  compute (coverage on replicates: tests/scaling/test_saturating.py), and a held-out check: refit without
  the largest-compute frontier point and predict it.

Inputs are numpy arrays; the run-record reading and the figures are in
analysis/vision_scaling.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from attn_jax.scaling import bootstrap, laws, wls

LAW = "saturating"


def frontier(C, E) -> np.ndarray:
    """Indices of the compute frontier, in increasing C: each point's E is below every
    point's of smaller or equal C (ties in C keep the lowest E)."""
    C, E = np.asarray(C, np.float64), np.asarray(E, np.float64)
    if C.shape != E.shape or C.ndim != 1 or not len(C):
        raise ValueError(f"C and E must be equal-length 1-D arrays, got {C.shape} and {E.shape}.")
    keep, best = [], np.inf
    for i in np.lexsort((E, C)):
        if E[i] < best:
            keep.append(int(i))
            best = E[i]
    return np.array(keep, dtype=np.int64)


@dataclasses.dataclass
class FrontierFit:
    """Result of `fit_frontier`.

    Attributes:
      params: the law's fitted parameters (a, b, c, d).
      fit: the `wls.WLSFit` on all frontier points.
      frontier_idx: indices (into the inputs) of the frontier points, increasing C.
      intervals: name -> {mean, se, lo, hi} from the residual bootstrap (b, c, and
        "E_at_max_C": the law's error at the largest compute); empty if not run.
      held_out: {C, observed, predicted, rel_error} of the largest-compute frontier
        point from a fit without it, or None with fewer than 5 frontier points.
    """

    params: dict[str, float]
    fit: wls.WLSFit
    frontier_idx: np.ndarray
    intervals: dict[str, dict[str, float]]
    held_out: dict[str, float] | None

    def predict(self, C) -> np.ndarray:
        return laws.get_law(LAW).fn(self.params, x=np.asarray(C, np.float64))


def _residual_bootstrap(fit, Cf, Ef, n_resamples, seed, level) -> bootstrap.Bootstrap:
    """Refits on the fitted curve plus resampled log residuals (the budgets are a fixed
    design, so points are not resampled: dropping 3 of 10 points leaves a 4-parameter
    law barely determined, and such intervals undercover). The residuals are scaled by
    sqrt(n / (n - 4)) for the degrees of freedom the fit used (Davison & Hinkley 1997,
    sec. 6.2.3)."""
    fn = laws.get_law(LAW).fn
    fitted = fn(fit.params, x=Cf)
    resid = np.log(Ef) - np.log(fitted)
    n = len(Ef)
    resid = (resid - resid.mean()) * np.sqrt(n / max(n - 4, 1))
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {"b": [], "c": [], "E_at_max_C": []}
    failed = 0
    for _ in range(n_resamples):
        y = fitted * np.exp(rng.choice(resid, n, replace=True))
        try:
            p = wls.fit_wls(LAW, y, x=Cf, starts=[fit.params]).params
        except ValueError:
            failed += 1
            continue
        samples["b"].append(p["b"])
        samples["c"].append(p["c"])
        samples["E_at_max_C"].append(float(fn(p, x=Cf[-1:])[0]))
    if not samples["b"]:
        raise ValueError(f"all {n_resamples} bootstrap refits failed")
    arrays = {k: np.array(v) for k, v in samples.items()}
    return bootstrap.Bootstrap(arrays, n_resamples, failed, level)


def fit_frontier(
    C, E, *, n_bootstrap: int = 200, seed: int = 0, level: float = 0.95
) -> FrontierFit:
    """Fits E = a (C + d)^-b + c on the compute frontier of (C, E).

    Args:
      C: training compute per point (FLOPs).
      E: error per point (e.g. 1 - test accuracy), in (0, 1].
      n_bootstrap: residual-bootstrap refits (0: no intervals).
      seed, level: the bootstrap's seed and interval coverage.

    Raises:
      ValueError: fewer than 4 frontier points (the law has 4 parameters), or E <= 0.
    """
    C, E = np.asarray(C, np.float64), np.asarray(E, np.float64)
    if np.any(E <= 0) or np.any(C <= 0):
        raise ValueError("fit_frontier needs C > 0 and E > 0 (log-error least squares).")
    idx = frontier(C, E)
    if len(idx) < 4:
        raise ValueError(
            f"the compute frontier has {len(idx)} points; the saturating law has 4 "
            "parameters: add sizes or budgets."
        )
    Cf, Ef = C[idx], E[idx]
    fit = wls.fit_wls(LAW, Ef, x=Cf)
    fn = laws.get_law(LAW).fn
    intervals = {}
    if n_bootstrap:
        intervals = _residual_bootstrap(fit, Cf, Ef, n_bootstrap, seed, level).summary()
    held_out = None
    if len(idx) >= 5:
        p = wls.fit_wls(LAW, Ef[:-1], x=Cf[:-1]).params
        pred = float(fn(p, x=Cf[-1:])[0])
        held_out = {
            "C": float(Cf[-1]),
            "observed": float(Ef[-1]),
            "predicted": pred,
            "rel_error": abs(pred - Ef[-1]) / Ef[-1],
        }
    return FrontierFit(fit.params, fit, idx, intervals, held_out)
