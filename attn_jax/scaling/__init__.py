"""Scaling-law analysis over run records (never models or checkpoints).

  laws         power law with offset, Kaplan, Chinchilla, saturating (Zhai), broken (Caballero)
  approach3    Chinchilla Approach 3: Huber on log loss, LSE, L-BFGS-B from a grid, exact grad
  approaches   Approach 1 (lower envelope) and Approach 2 (IsoFLOP parabolas, with refusals)
  wls          weighted least squares on log loss for any law
  frontier     N*(C), D*(C), a = beta/(alpha+beta), tokens/param, loss at a budget
  bootstrap    bootstrap over runs (Approaches 1, 2, 3), leave-the-largest-out
  diagnostics  agreement across starts, bounds, gradient norm, local SEs, identifiability,
               and the refusal of mid-run points (`require_final`)
  records      results.jsonl / summary.json / CSV -> arrays; parameter and FLOP conventions
  plots, report   figures drawn from their CSV rows (PNG+SVG+CSV), fit.json and a
               one-page report.md (`report.analyze`)
  synthetic    data from a known surface, replicate sweeps and interval coverage

plots and report import matplotlib; import them explicitly.
"""

from attn_jax.scaling.approach3 import fit_approach3
from attn_jax.scaling.approaches import approach1, approach2
from attn_jax.scaling.bootstrap import bootstrap_approach3, leave_largest_out
from attn_jax.scaling.frontier import optimal_allocation
from attn_jax.scaling.laws import LAWS, get_law
from attn_jax.scaling.records import load
from attn_jax.scaling.wls import fit_wls

__all__ = [
    "LAWS",
    "approach1",
    "approach2",
    "bootstrap_approach3",
    "fit_approach3",
    "fit_wls",
    "get_law",
    "leave_largest_out",
    "load",
    "optimal_allocation",
]
