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
- Local standard errors (Gauss-Newton: s^2 (J^T J)^-1 on log loss, s^2 the residual
  variance): an exponent or E whose relative SE exceeds MAX_REL_SE is not pinned by the
  data, even when the optimizer converged. Parameters at their bounds (alpha or beta at 0,
  E at its floor) and an E far below every observed loss with a large SE are named too.
  All of these make `identifiable` False and print one warning in plain words.
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
# A relative SE of 0.3 is a 95% interval of +-60%: the fit says little about that number.
MAX_REL_SE = 0.3


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
    local_se: dict[str, float] = dataclasses.field(default_factory=dict)

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
        if self.local_se:
            se = ", ".join(f"{k} {v:.2g}" for k, v in self.local_se.items())
            out.append(
                f"local standard errors (Gauss-Newton; a, b, e are log A, log B, log E): {se}"
            )
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


def local_se(jac_fn, theta, n_params: int) -> np.ndarray | None:
    """Gauss-Newton standard errors of theta: sqrt(diag(s^2 (J^T J)^-1)), or None if singular.

    `jac_fn(theta) -> (residuals [P], Jacobian [P, K])` of log loss. With fewer points than
    parameters + 1 there is no residual variance to scale by: returns None.
    """
    resid_P, J_PK = jac_fn(theta)
    dof = resid_P.shape[0] - n_params
    if dof < 1:
        return None
    s2 = float(np.sum(resid_P**2) / dof)
    try:
        cov = s2 * np.linalg.inv(J_PK.T @ J_PK)
    except np.linalg.LinAlgError:
        return None
    d = np.diag(cov)
    return np.where(d >= 0, np.sqrt(np.abs(d)), np.inf)


def _se_reasons(se: dict[str, float], theta, names, min_loss) -> list[str]:
    """Plain-words reasons from local SEs: exponents or E that the data do not pin."""
    value = dict(zip(names, (float(t) for t in theta)))
    out = []
    for n in ("alpha", "beta"):
        if n in se and n in value and se[n] > MAX_REL_SE * max(abs(value[n]), 1e-12):
            out.append(f"{n} = {value[n]:.3g} has a standard error of {se[n]:.2g}")
    if "e" in se and se["e"] > MAX_REL_SE:
        E = np.exp(value["e"])
        where = (
            f", far below every observed loss (lowest {min_loss:.3g})"
            if min_loss is not None and E < 0.5 * min_loss
            else ""
        )
        out.append(f"E = {E:.3g}{where} has a relative standard error of {se['e']:.2g}")
    return out


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
    jac_fn: Callable | None = None,
    min_loss: float | None = None,
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
      jac_fn: theta -> (log-loss residuals [P], Jacobian [P, K]) for local SEs; None = none.
      min_loss: the lowest observed loss (to say when E lies far below the data).
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
    hessian_pd, corr_ab = _curvature(grad_fn, theta, alpha_beta)
    dec_N = float(np.ptp(logN) / np.log(10))
    dec_D = float(np.ptp(logD) / np.log(10))
    corr_ND = float(np.corrcoef(logN, logD)[0, 1]) if min(dec_N, dec_D) > 0 else float("nan")
    se_arr = None if jac_fn is None else local_se(jac_fn, theta, len(names))
    se = {} if se_arr is None else {n: float(v) for n, v in zip(names, se_arr)}
    reasons = _reasons(dec_N, dec_D, corr_ND, hessian_pd, corr_ab, at, se, theta, names, min_loss)
    if reasons:
        warnings.append(
            "the law is not identifiable from these data: "
            + "; ".join(reasons)
            + ". Vary N and D independently (several sizes at each of several budgets, "
            "N and D each over a decade or more) and fit schedule-final points."
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
        local_se=se,
    )


def _curvature(grad_fn, theta, alpha_beta) -> tuple[bool, float]:
    """(Hessian positive definite, corr(alpha, beta) from its inverse; nan if not PD)."""
    H = hessian_fd(grad_fn, theta)
    eig = np.linalg.eigvalsh(H)
    hessian_pd = bool(eig.min() > 1e-12 * max(eig.max(), 1e-300))
    if not hessian_pd:
        return False, float("nan")
    ia, ib = alpha_beta
    cov = np.linalg.inv(H)
    return True, float(cov[ia, ib] / np.sqrt(cov[ia, ia] * cov[ib, ib]))


def require_final(final, allow_midrun: bool, what: str) -> None:
    """Raises unless every point is schedule-final (or `allow_midrun`).

    A loss read in the middle of a learning-rate schedule (a point on a longer run, or a
    WSD run before its decay) is higher than a run of that length reaches at its end, so a
    law fitted to it is biased towards data-hungry exponents.

    Args:
      final: bool per point (None: all schedule-final, e.g. a CSV or legacy records).
      allow_midrun: fit mid-run points anyway.
      what: the estimator's name, for the message.
    """
    if final is None or allow_midrun:
        return
    mid = np.flatnonzero(~np.asarray(final, bool))
    if mid.size:
        shown = ", ".join(str(i) for i in mid[:8]) + (", ..." if mid.size > 8 else "")
        raise ValueError(
            f"{what} got {mid.size} mid-run point(s) (final == False: points {shown}); their "
            "loss is read before the end of their own learning-rate schedule and biases the "
            "fit. Fit schedule-final points only (records.load_records does by default), or "
            "pass allow_midrun=True (analysis/fit.py --allow-midrun) to fit them anyway."
        )


def _reasons(dec_N, dec_D, corr_ND, hessian_pd, corr_ab, at, se, theta, names, min_loss):
    """Why the law is not identifiable from these data (empty: it is)."""
    reasons = []
    if dec_N < MIN_DECADES or dec_D < MIN_DECADES:
        reasons.append(f"N spans {dec_N:.2f} and D {dec_D:.2f} decades (< {MIN_DECADES})")
    if not np.isfinite(corr_ND) or abs(corr_ND) > MAX_INPUT_CORR:
        reasons.append(f"log N and log D move together (corr {corr_ND:+.3f})")
    if not hessian_pd:
        reasons.append("the objective is flat in some direction at the optimum")
    elif abs(corr_ab) > MAX_PARAM_CORR:
        reasons.append(f"alpha and beta trade off (corr {corr_ab:+.3f})")
    pinned = [n for n in at if n in ("alpha", "beta", "e")]
    if pinned:
        reasons.append(f"{', '.join(pinned)} ended at a bound, where the data did not hold it")
    reasons += _se_reasons(se, theta, names, min_loss)
    return reasons
