"""Weighted least squares on log loss for any law in `laws.LAWS`, from several starts.

minimize sum_i w_i (log f(x_i; theta) - log L_i)^2 with scipy's bounded trust-region
least squares. Positive parameters are optimized as logarithms (laws.Param.log), so A ~ 1e3
and alpha ~ 0.3 are on the same scale. Starts come from a small data-driven grid per law
(`_starts`): the exponent and offset on a grid, the scale solved in closed form.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import scipy.optimize

from attn_jax.scaling import approach3, laws


@dataclasses.dataclass
class WLSFit:
    """Result of `fit_wls`.

    Attributes:
      law: the law's registry name.
      params: fitted parameters by name.
      rss: weighted residual sum of squares of log loss at the optimum.
      n_points: points fitted.
      n_starts, n_agree: starts optimized, and how many reached the best rss (rel. 1e-6).
      at_bounds: parameters that ended at a bound.
    """

    law: str
    params: dict[str, float]
    rss: float
    n_points: int
    n_starts: int
    n_agree: int
    at_bounds: list[str]

    def predict(self, **inputs) -> np.ndarray:
        return laws.get_law(self.law)(self.params, **inputs)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _to_params(law: laws.Law, z) -> dict[str, float]:
    return {p.name: float(np.exp(v) if p.log else v) for p, v in zip(law.params, z)}


def _to_z(law: laws.Law, params) -> np.ndarray:
    return np.array([np.log(params[p.name]) if p.log else params[p.name] for p in law.params])


def _scale(y, offset, logx, expo):
    """Closed-form log-scale s of y = offset + s x^-expo, from the mean in logs."""
    return float(np.exp(np.mean(np.log(np.maximum(y - offset, 1e-12)) + expo * logx)))


def _starts(name: str, inputs: dict[str, np.ndarray], y: np.ndarray) -> list[dict[str, float]]:
    ymin = float(y.min())
    if name in ("power_offset", "saturating", "broken_power", "kaplan"):
        x = inputs["x"]
        lx = np.log(x)
    if name == "power_offset":
        return [
            {"E": E, "alpha": al, "A": _scale(y, E, lx, al)}
            for al, E in itertools.product((0.05, 0.2, 0.5, 1.0), (0.0, 0.5 * ymin, 0.9 * ymin))
        ]
    if name == "kaplan":
        slope, icpt = np.polyfit(lx, np.log(y), 1)
        alpha = max(-slope, 1e-3)
        return [{"alpha": alpha, "x_c": float(np.exp(icpt / alpha))}]
    if name == "saturating":
        out = []
        for b, c, d in itertools.product(
            (0.1, 0.3, 0.6), (0.0, 0.5 * ymin, 0.9 * ymin), (1e-3, 1.0)
        ):
            d_abs = d * float(x.min())
            out.append({"b": b, "c": c, "d": d_abs, "a": _scale(y, c, np.log(x + d_abs), b)})
        return out
    if name == "broken_power":
        q = np.quantile(lx, [0.3, 0.7])
        out = []
        for a, c0, c1, ld, f in itertools.product(
            (0.0, 0.5 * ymin), (0.1, 0.4), (-0.2, 0.3), q, (0.3, 1.0)
        ):
            out.append(
                {
                    "a": a,
                    "c0": c0,
                    "c1": c1,
                    "d1": float(np.exp(ld)),
                    "f1": f,
                    "b": _scale(y, a, lx, c0),
                }
            )
        return out
    lN, lD = np.log(inputs["N"]), np.log(inputs["D"])
    if name == "kaplan_nd":
        out = []
        for aN, aD in itertools.product((0.05, 0.1, 0.3), (0.05, 0.1, 0.3)):
            N_c = np.exp(np.mean(np.log(y) / aN + lN))
            D_c = np.exp(np.mean(np.log(y) / aD + lD) - np.log(2.0))
            out.append({"alpha_N": aN, "alpha_D": aD, "N_c": float(N_c), "D_c": float(D_c)})
        return out
    if name == "chinchilla":
        out = []
        for E, al, be in itertools.product((0.0, 0.5 * ymin), (0.2, 0.5), (0.2, 0.5)):
            A = _scale(0.5 * y, 0.5 * E, lN, al)
            B = _scale(0.5 * y, 0.5 * E, lD, be)
            out.append({"E": E, "alpha": al, "beta": be, "A": A, "B": B})
        return out
    raise ValueError(f"no starts for law {name!r}; valid: {sorted(laws.LAWS)}")


def fit_wls(name: str, y, *, weights=None, starts=None, **inputs) -> WLSFit:
    """Fits law `name` to losses `y` by weighted least squares on log loss.

    Args:
      name: a key of `laws.LAWS`.
      y: observed losses [P].
      weights: per-point weights (e.g. bootstrap multiplicities or 1/variance); None = 1.
      starts: list of params dicts to start from; None = the law's data-driven grid.
      **inputs: the law's inputs by name (x=..., or N=..., D=...), each [P].

    Returns:
      A `WLSFit` at the best of the starts.
    """
    law = laws.get_law(name)
    y = np.asarray(y, np.float64)
    inputs = {k: np.asarray(inputs[k], np.float64) for k in law.inputs}
    sw = np.sqrt(np.ones_like(y) if weights is None else np.asarray(weights, np.float64))
    logy = np.log(y)
    lo, hi = np.array([(p.lo, p.hi) for p in law.params]).T

    def residuals(z):
        pred = law.fn(_to_params(law, z), **inputs)
        return sw * (np.log(np.maximum(pred, 1e-300)) - logy)

    starts = _starts(name, inputs, y) if starts is None else starts
    results = []
    with approach3.single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
        for s in starts:
            z0 = np.clip(_to_z(law, s), lo + 1e-9, hi - 1e-9)
            if not np.all(np.isfinite(residuals(z0))):
                continue
            res = scipy.optimize.least_squares(residuals, z0, bounds=(lo, hi), x_scale="jac")
            results.append((2 * res.cost, res.x))
    if not results:
        raise ValueError(f"no start gave a finite {name!r} prediction on these data")
    costs = np.array([c for c, _ in results])
    best = int(np.argmin(costs))
    z = results[best][1]
    at = [p.name for p, v, a, b in zip(law.params, z, lo, hi) if v <= a + 1e-6 or v >= b - 1e-6]
    return WLSFit(
        law=name,
        params=_to_params(law, z),
        rss=float(costs[best]),
        n_points=int(y.shape[0]),
        n_starts=len(results),
        n_agree=int(np.sum(costs <= costs[best] * (1 + 1e-6) + 1e-15)),
        at_bounds=at,
    )
