"""The compute-optimal frontier implied by L(N, D) = E + A/N^alpha + B/D^beta.

Minimizing L subject to C = k N D (k = 6 for the 6ND convention; Hoffmann et al. 2022,
eq. 4 and appendix A) gives

  N*(C) = G (C/k)^a,   D*(C) = G^-1 (C/k)^b,
  G = (alpha A / (beta B))^(1/(alpha+beta)),  a = beta/(alpha+beta),  b = alpha/(alpha+beta).

The N exponent a has beta, the *data* exponent, on top: more data-hungry losses (larger
beta) push compute into parameters. Public notes often swap a and b; the tests check these
formulas against a direct numerical minimization of L along the IsoFLOP line.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from attn_jax.scaling import laws


def exponents(alpha: float, beta: float) -> tuple[float, float]:
    """(a, b): N* ~ C^a with a = beta/(alpha+beta), D* ~ C^b with b = alpha/(alpha+beta)."""
    s = alpha + beta
    return beta / s, alpha / s


def coefficient_G(p: Mapping[str, float]) -> float:
    """G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022, eq. 4)."""
    return float((p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / (p["alpha"] + p["beta"])))


def optimal_allocation(p: Mapping[str, float], C, k: float = 6.0):
    """(N*(C), D*(C)) for budget(s) C under the convention C = k N D."""
    C = np.asarray(C, np.float64)
    a, b = exponents(p["alpha"], p["beta"])
    G = coefficient_G(p)
    return G * (C / k) ** a, (C / k) ** b / G


def optimal_loss(p: Mapping[str, float], C, k: float = 6.0):
    """Predicted loss at the compute-optimal allocation of budget(s) C."""
    n_opt, d_opt = optimal_allocation(p, C, k)
    return laws.chinchilla(p, n_opt, d_opt)


def tokens_per_parameter(p: Mapping[str, float], C, k: float = 6.0):
    """D*/N* at budget(s) C (about 20 for Chinchilla's fit)."""
    n_opt, d_opt = optimal_allocation(p, C, k)
    return d_opt / n_opt


def derived(p: Mapping[str, float], budgets=(), k: float = 6.0) -> dict[str, float]:
    """Every derived quantity of a Chinchilla fit as a flat dict (the bootstrap's targets).

    Args:
      p: {"E", "A", "B", "alpha", "beta"}.
      budgets: FLOP budgets at which to report N*, D*, D*/N* and the optimal loss.
      k: FLOPs per parameter per token (6 for 6ND).
    """
    a, b = exponents(p["alpha"], p["beta"])
    out = {**{n: float(p[n]) for n in ("E", "A", "B", "alpha", "beta")}}
    out.update(a=a, b=b, G=coefficient_G(p))
    for C in budgets:
        n_opt, d_opt = optimal_allocation(p, C, k)
        tag = f"{C:.3g}"
        out[f"N_opt@{tag}"] = float(n_opt)
        out[f"D_opt@{tag}"] = float(d_opt)
        out[f"tokens_per_param@{tag}"] = float(d_opt / n_opt)
        out[f"loss_opt@{tag}"] = float(laws.chinchilla(p, n_opt, d_opt))
    return out
