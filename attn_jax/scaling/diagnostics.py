"""Diagnostics printed with every fit: what a reader needs to decide whether to trust it.

- Agreement across starts: how many optimized starts reach the best objective (within a
  relative 1e-6) and how far apart their parameters are. One start alone is a red flag.
- Parameters at bounds: an exponent pinned at 0 means the data do not pull it anywhere.
- Gradient norm at the optimum (projected on the bounds): a large one means an early stop.
- Identifiability of alpha and beta: N and D must each span a range and not move together
  (a sweep along one IsoFLOP line, or with D proportional to N, cannot separate them); the
  local curvature (finite differences of the exact gradient) gives the alpha-beta
  correlation, and |corr| > 0.99 or a non-positive-definite Hessian means they are not
  separately determined by these data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

AGREE_RTOL = 1e-6
MIN_DECADES = 0.5
MAX_INPUT_CORR = 0.98
MAX_PARAM_CORR = 0.99
MAX_GRAD = 1e-5


@dataclasses.dataclass
class Diagnostics:
    """Fit health. `warnings` holds one sentence per problem; empty means healthy."""

    n_starts: int
    n_agree: int
    spread: dict[str, float]
    at_bounds: list[str]
    grad_norm: float
    hessian_pd: bool
    corr_alpha_beta: float
    decades_N: float
    decades_D: float
    corr_logN_logD: float
    identifiable: bool
    warnings: list[str]

    def lines(self) -> list[str]:
        """Human-readable lines, printed under every fit."""
        spread = ", ".join(f"{k} {v:.2g}" for k, v in self.spread.items())
        out = [
            f"starts: {self.n_agree}/{self.n_starts} reach the best objective (spread: {spread})",
            f"parameters at bounds: {', '.join(self.at_bounds) or 'none'}",
            f"projected gradient norm at optimum: {self.grad_norm:.2e}",
            f"data spread: N {self.decades_N:.2f} decades, D {self.decades_D:.2f} decades, "
            f"corr(log N, log D) = {self.corr_logN_logD:+.3f}",
            f"corr(alpha, beta) from curvature: {self.corr_alpha_beta:+.3f}"
            f" (Hessian {'positive definite' if self.hessian_pd else 'NOT positive definite'})",
        ]
        out += [f"WARNING: {w}" for w in self.warnings]
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def projected_grad(theta, grad, bounds) -> np.ndarray:
    """Gradient with components that push against an active bound zeroed (as L-BFGS-B)."""
    lo, hi = np.array(bounds, np.float64).T
    g = np.array(grad, np.float64)
    g[(theta <= lo + 1e-10) & (g > 0)] = 0.0
    g[(theta >= hi - 1e-10) & (g < 0)] = 0.0
    return g


def hessian_fd(grad_fn: Callable[[np.ndarray], np.ndarray], theta, eps=1e-5) -> np.ndarray:
    """Symmetrized central-difference Hessian of an exact gradient."""
    k = theta.shape[0]
    H = np.zeros((k, k))
    for i in range(k):
        step = np.zeros(k)
        step[i] = eps
        H[i] = (grad_fn(theta + step) - grad_fn(theta - step)) / (2 * eps)
    return 0.5 * (H + H.T)


def diagnose(
    *,
    theta: np.ndarray,
    names: Sequence[str],
    bounds,
    finals: np.ndarray,
    values: np.ndarray,
    grad_fn: Callable[[np.ndarray], np.ndarray],
    logN: np.ndarray,
    logD: np.ndarray,
    alpha_beta: tuple[int, int] = (3, 4),
) -> Diagnostics:
    """Computes `Diagnostics` for a multi-start fit.

    Args:
      theta: the best optimum.
      names: names of theta's entries.
      bounds: (lo, hi) per entry.
      finals, values: where every optimized start ended, and its objective.
      grad_fn: exact gradient of the objective.
      logN, logD: the data's log sizes and log tokens.
      alpha_beta: indices of the two exponents in theta.
    """
    warnings = []
    best = float(np.min(values))
    agree = values <= best + AGREE_RTOL * max(abs(best), 1e-12)
    spread = {n: float(np.ptp(finals[agree, i])) for i, n in enumerate(names)}
    if len(values) > 1 and agree.sum() < 2:
        warnings.append(
            f"only 1 of {len(values)} starts reached the best objective; the optimum may be "
            "a lucky one: rerun with more starts (top_k=None runs the whole grid)"
        )
    lo, hi = np.array(bounds, np.float64).T
    at = [n for i, n in enumerate(names) if theta[i] <= lo[i] + 1e-6 or theta[i] >= hi[i] - 1e-6]
    if at:
        warnings.append(f"parameters at their bounds: {', '.join(at)}")
    g = projected_grad(theta, grad_fn(theta), bounds)
    grad_norm = float(np.linalg.norm(g))
    if grad_norm > MAX_GRAD:
        warnings.append(
            f"gradient norm {grad_norm:.1e} at the optimum: the optimizer stopped early"
        )

    H = hessian_fd(grad_fn, theta)
    eig = np.linalg.eigvalsh(H)
    hessian_pd = bool(eig.min() > 1e-12 * max(eig.max(), 1e-300))
    ia, ib = alpha_beta
    corr_ab = float("nan")
    if hessian_pd:
        cov = np.linalg.inv(H)
        corr_ab = float(cov[ia, ib] / np.sqrt(cov[ia, ia] * cov[ib, ib]))
    dec_N = float(np.ptp(logN) / np.log(10))
    dec_D = float(np.ptp(logD) / np.log(10))
    corr_ND = float(np.corrcoef(logN, logD)[0, 1]) if min(dec_N, dec_D) > 0 else float("nan")
    reasons = []
    if dec_N < MIN_DECADES or dec_D < MIN_DECADES:
        reasons.append(f"N spans {dec_N:.2f} and D {dec_D:.2f} decades (< {MIN_DECADES})")
    if not np.isfinite(corr_ND) or abs(corr_ND) > MAX_INPUT_CORR:
        reasons.append(f"log N and log D move together (corr {corr_ND:+.3f})")
    if not hessian_pd:
        reasons.append("the objective is flat in some direction at the optimum")
    elif abs(corr_ab) > MAX_PARAM_CORR:
        reasons.append(f"alpha and beta trade off (corr {corr_ab:+.3f})")
    if reasons:
        warnings.append(
            "alpha and beta are not identifiable from these data: "
            + "; ".join(reasons)
            + ". Vary N and D independently (several sizes at several token counts)."
        )
    return Diagnostics(
        n_starts=int(len(values)),
        n_agree=int(agree.sum()),
        spread=spread,
        at_bounds=at,
        grad_norm=grad_norm,
        hessian_pd=hessian_pd,
        corr_alpha_beta=corr_ab,
        decades_N=dec_N,
        decades_D=dec_D,
        corr_logN_logD=corr_ND,
        identifiable=not reasons,
        warnings=warnings,
    )
