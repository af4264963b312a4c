"""Chinchilla Approaches 1 and 2 (Hoffmann et al. 2022, sections 3.1 and 3.2).

Approach 1: the lower envelope of training curves (every eval of every run, mid-run evals
included: the envelope is read along the curves, as Hoffmann et al. did). At each compute C, the run with the
lowest loss is the compute-optimal size; fit N*(C) = G_N C^a and D*(C) = G_D C^b.

Approach 2: IsoFLOP profiles. For each FLOP budget, fit a parabola to loss against log N;
its vertex is N*(C), and D*(C) = C / (k N*) with k from the budget's own points (6 for
6ND). A budget whose parabola opens downward, or whose vertex is not strictly inside the
sizes sampled at that budget, is refused: extrapolating the vertex is exactly how IsoFLOP
fits go wrong. Refusals are recorded by budget (`Approach2Fit.refused`), or raise with
`on_bad="raise"`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from attn_jax.scaling import diagnostics


@dataclasses.dataclass
class FrontierFit:
    """N*(C) = G_N C^a and D*(C) = G_D C^b, from per-budget optima.

    Attributes:
      C, N_opt, D_opt, L_opt: the per-budget optima (accepted budgets only).
      a, G_N, b, G_D: the power laws fitted to them (least squares in log-log).
      refused: {budget C: reason} for budgets left out (Approach 2).
      parabolas: {budget C: (c2, c1, c0)} of L = c2 x^2 + c1 x + c0, x = ln N (Approach 2).
    """

    C: np.ndarray
    N_opt: np.ndarray
    D_opt: np.ndarray
    L_opt: np.ndarray
    a: float
    G_N: float
    b: float
    G_D: float
    refused: dict[float, str] = dataclasses.field(default_factory=dict)
    parabolas: dict[float, tuple[float, float, float]] = dataclasses.field(default_factory=dict)

    def N_star(self, C) -> np.ndarray:
        return self.G_N * np.asarray(C, np.float64) ** self.a

    def D_star(self, C) -> np.ndarray:
        return self.G_D * np.asarray(C, np.float64) ** self.b

    def to_dict(self) -> dict:
        return {
            "a": self.a,
            "G_N": self.G_N,
            "b": self.b,
            "G_D": self.G_D,
            "budgets": [
                {"C": float(c), "N_opt": float(n), "D_opt": float(d), "loss_opt": float(loss)}
                for c, n, d, loss in zip(self.C, self.N_opt, self.D_opt, self.L_opt)
            ],
            "refused": {f"{c:.4g}": r for c, r in self.refused.items()},
        }


def _power_law(C, y) -> tuple[float, float]:
    """(exponent, coefficient) of y = G C^e by least squares on logs."""
    e, logG = np.polyfit(np.log(C), np.log(y), 1)
    return float(e), float(np.exp(logG))


def group_budgets(C, rel_tol: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Groups points into FLOP budgets: sorted C split where log C jumps by > rel_tol.

    Returns:
      (labels [P] budget index per point, budgets [G] geometric mean C of each group).
    """
    logC = np.log(np.asarray(C, np.float64))
    order = np.argsort(logC)
    breaks = np.diff(logC[order]) > np.log1p(rel_tol)
    labels = np.empty(logC.shape[0], np.int64)
    labels[order] = np.concatenate([[0], np.cumsum(breaks)])
    budgets = np.array([np.exp(logC[labels == g].mean()) for g in range(labels.max() + 1)])
    return labels, budgets


def approach2(
    N,
    D,
    L,
    C,
    *,
    labels=None,
    weights=None,
    rel_tol: float = 0.1,
    min_points: int = 3,
    on_bad: str = "drop",
    final=None,
    allow_midrun: bool = False,
) -> FrontierFit:
    """Chinchilla Approach 2: per-budget parabolas in log N, their vertices, power laws.

    Args:
      N, D, L, C: parameters, tokens, loss and FLOPs per point.
      labels: budget index per point; None groups by `group_budgets(C, rel_tol)`.
      weights: per-point multiplicities (bootstrap); zero-weight points are left out.
      rel_tol: relative gap in C that separates budgets.
      min_points: distinct sizes a budget needs (a parabola needs 3).
      on_bad: "drop" records refused budgets in `.refused`; "raise" raises ValueError
        naming them.
      final: bool per point, True where the loss is at the end of its own schedule; a
        mid-run eval is not the loss of a run that length, so it is refused (None = all
        final).
      allow_midrun: fit mid-run points too.

    Returns:
      A `FrontierFit`. Raises ValueError if fewer than 2 budgets are accepted.
    """
    diagnostics.require_final(final, allow_midrun, "Approach 2")
    if on_bad not in ("drop", "raise"):
        raise ValueError(f"on_bad must be one of ['drop', 'raise'], got {on_bad!r}")
    N, D, L, C = (np.asarray(x, np.float64) for x in (N, D, L, C))
    if labels is None:
        labels, _ = group_budgets(C, rel_tol)
    labels = np.asarray(labels)
    weights = np.ones_like(N) if weights is None else np.asarray(weights, np.float64)
    rows, refused, parabolas = [], {}, {}
    for g in np.unique(labels):
        sel = (labels == g) & (weights > 0)
        if not sel.any():
            continue
        budget = float(np.exp(np.log(C[sel]).mean()))
        x = np.log(N[sel])
        if np.unique(x).shape[0] < min_points:
            refused[budget] = f"only {np.unique(x).shape[0]} sizes (< {min_points})"
            continue
        c2, c1, c0 = np.polyfit(x, L[sel], 2, w=np.sqrt(weights[sel]))
        parabolas[budget] = (float(c2), float(c1), float(c0))
        if c2 <= 0:
            refused[budget] = "loss is not convex in log N here (the parabola opens downward)"
            continue
        x_opt = -c1 / (2 * c2)
        if not x.min() < x_opt < x.max():
            refused[budget] = (
                f"the minimum N = {np.exp(x_opt):.3g} lies outside the sampled sizes "
                f"[{np.exp(x.min()):.3g}, {np.exp(x.max()):.3g}]"
            )
            continue
        k = float(np.median(C[sel] / (N[sel] * D[sel])))  # FLOPs per parameter-token
        n_opt = float(np.exp(x_opt))
        rows.append((budget, n_opt, budget / (k * n_opt), float(np.polyval([c2, c1, c0], x_opt))))
    if refused and on_bad == "raise":
        detail = "; ".join(f"C = {c:.3g}: {r}" for c, r in refused.items())
        raise ValueError(f"Approach 2 refuses {len(refused)} budget(s): {detail}")
    if len(rows) < 2:
        detail = "; ".join(f"C = {c:.3g}: {r}" for c, r in refused.items())
        raise ValueError(f"Approach 2 needs 2 usable budgets, got {len(rows)}. Refused: {detail}")
    C_opt, N_opt, D_opt, L_opt = (np.array(v) for v in zip(*rows))
    a, G_N = _power_law(C_opt, N_opt)
    b, G_D = _power_law(C_opt, D_opt)
    return FrontierFit(C_opt, N_opt, D_opt, L_opt, a, G_N, b, G_D, refused, parabolas)


def approach1(curves, *, n_grid: int = 50, k: float | None = None) -> FrontierFit:
    """Chinchilla Approach 1: the lower envelope of training curves (every eval of every run, mid-run evals
    included: the envelope is read along the curves, as Hoffmann et al. did).

        Args:
          curves: one dict per run with "N" (scalar), "C" and "loss" (arrays along training;
            "D" optional, else C / (6 N)).
          n_grid: log-spaced compute values at which the envelope is read.
          k: FLOPs per parameter-token for D* = C / (k N*); None = from the curves.

        Returns:
          A `FrontierFit` over the grid points where at least two runs overlap.
    """
    curves = [c for c in curves if len(c["C"]) >= 2]
    if len(curves) < 2 or len({float(c["N"]) for c in curves}) < 2:
        raise ValueError("Approach 1 needs training curves of at least two model sizes")
    logC = [np.log(np.asarray(c["C"], np.float64)) for c in curves]
    lo = min(x.min() for x in logC)
    hi = max(x.max() for x in logC)
    grid = np.linspace(lo, hi, n_grid)
    if k is None:
        ks = [np.asarray(c["C"]) / (c["N"] * np.asarray(c["D"])) for c in curves if "D" in c]
        k = float(np.median(np.concatenate(ks))) if ks else 6.0
    rows = []
    for x in grid:
        covering = [(i, lc) for i, lc in enumerate(logC) if lc.min() <= x <= lc.max()]
        # Two sizes, not two curves: WSD branches share their parent's evals, so at the
        # grid's edge one size's curves alone would "win" the envelope.
        if len({float(curves[i]["N"]) for i, _ in covering}) < 2:
            continue
        losses = [
            np.interp(x, lc[np.argsort(lc)], np.asarray(curves[i]["loss"])[np.argsort(lc)])
            for i, lc in covering
        ]
        best = covering[int(np.argmin(losses))][0]
        n_opt = float(curves[best]["N"])
        rows.append((np.exp(x), n_opt, np.exp(x) / (k * n_opt), float(np.min(losses))))
    if len(rows) < 2:
        raise ValueError("Approach 1: the training curves overlap in compute at < 2 points")
    C_opt, N_opt, D_opt, L_opt = (np.array(v) for v in zip(*rows))
    if np.unique(N_opt).shape[0] < 2:
        raise ValueError(
            f"Approach 1: one size (N = {N_opt[0]:.3g}) wins at every compute; no frontier"
        )
    a, G_N = _power_law(C_opt, N_opt)
    b, G_D = _power_law(C_opt, D_opt)
    return FrontierFit(C_opt, N_opt, D_opt, L_opt, a, G_N, b, G_D)
