"""Scaling laws of several groups of runs (attention mechanisms), compared with intervals.

One sweep, several variants of the model (tagged in each run record's `sweep.tags`,
e.g. `mechanism`), the same sizes x budgets design for each. Per group:

- Chinchilla's Approach 3 fit L(N, D) = E + A / N^alpha + B / D^beta on the group's
  schedule-final points, with a bootstrap over its runs (`bootstrap.bootstrap_approach3`)
  and the leave-the-largest-size-out prediction check.
- The cost of a token as a function of N, from the records' analytic `flops_per_token`
  (attention counted as each kernel computes it, attn_jax.models.flops): along a ladder
  of one depth with a fixed head size, every term besides 6 N grows with the width d,
  i.e. with sqrt(N) (the output head 6 V d, dense attention 12 T d, a window's
  12 (2w - 1) d, the kernelized maps), so `TokenCost` fits fpt(N) = 6 N + kappa sqrt(N)
  + kappa0 and reports how well it matches the sizes run (to 1e-4 on sweeps/mechanisms.py).
- The compute-optimal frontier under that cost, L*(C) = min_N L(N, C / fpt(N)): with
  C = 6ND this is Hoffmann et al.'s closed form (frontier.py); with a per-kernel cost it
  is minimized numerically on a grid of N.

Between groups (`compare`): the differences of exponents with intervals (the groups'
bootstrap resamples are independent, so the i-th difference of their samples is a draw
of the difference), and where the frontiers cross: the compute at which a mechanism
with a cheaper token but a higher loss at a given (N, D) would overtake the reference,
where the fits say one exists (with the share of resample pairs that have a crossing).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from attn_jax.scaling import approach3, bootstrap, laws, records

EXPONENTS = ("alpha", "beta", "a")
DIFFERENCES = ("E", *EXPONENTS)  # what `compare` differences between groups
LAW_PARAMS = ("E", "A", "B", "alpha", "beta")
N_GRID = np.geomspace(1e2, 1e14, 1200)  # sizes searched for the frontier


def group_records(recs: Sequence[dict], tag: str = "mechanism") -> dict[str, list[dict]]:
    """Records by the value of their sweep tag `tag`, in order of first appearance."""
    groups: dict[str, list[dict]] = {}
    for rec in recs:
        value = ((rec.get("sweep") or {}).get("tags") or {}).get(tag)
        if value is not None:
            groups.setdefault(str(value), []).append(rec)
    return groups


@dataclasses.dataclass(frozen=True)
class TokenCost:
    """Training FLOPs per token of a ladder of sizes: fpt(N) = k N + kappa sqrt(N) + kappa0.

    The constant absorbs the part of N that grows like d rather than d^2 (norms, MQA's
    single k/v head), which makes sqrt(N) a slightly crooked measure of the width; it
    matters only at the smallest sizes, and the cost is never taken below k N.

    Attributes:
      kappa, kappa0: least-squares coefficients over the sizes run.
      k: FLOPs per parameter-token (6).
      max_rel_error: the worst relative error of the model on the sizes it was fitted to.
    """

    kappa: float
    kappa0: float = 0.0
    k: float = 6.0
    max_rel_error: float = 0.0

    def __call__(self, N):
        N = np.asarray(N, np.float64)
        return np.maximum(self.k * N + self.kappa * np.sqrt(N) + self.kappa0, self.k * N)


def fit_token_cost(N, fpt, k: float = 6.0) -> TokenCost:
    """`TokenCost` through the (N, flops per token) of the sizes run (one term if 2 sizes)."""
    N, fpt = np.asarray(N, np.float64), np.asarray(fpt, np.float64)
    cols = [np.sqrt(N), np.ones_like(N)] if N.shape[0] >= 3 else [np.sqrt(N)]
    coef, *_ = np.linalg.lstsq(np.stack(cols, 1), fpt - k * N, rcond=None)
    cost = TokenCost(float(coef[0]), float(coef[1]) if len(coef) > 1 else 0.0, k)
    rel = np.abs(cost(N) - fpt) / fpt
    return dataclasses.replace(cost, max_rel_error=float(rel.max()))


def frontier_loss(p: Mapping[str, float], C, cost: TokenCost, n_grid=N_GRID):
    """(L*(C), N*(C)): the least loss at compute C with D = C / fpt(N), over `n_grid`."""
    C = np.atleast_1d(np.asarray(C, np.float64))
    D_CN = C[:, None] / cost(n_grid)[None, :]
    L_CN = laws.chinchilla(p, n_grid[None, :], D_CN)
    best = np.argmin(L_CN, axis=1)
    return L_CN[np.arange(C.shape[0]), best], n_grid[best]


def crossings(C, diff) -> list[dict]:
    """Where `diff` (group minus reference loss on the grid C) changes sign, log-interpolated."""
    out = []
    for i in np.flatnonzero(np.sign(diff[:-1]) * np.sign(diff[1:]) < 0):
        t = diff[i] / (diff[i] - diff[i + 1])
        c = float(np.exp(np.log(C[i]) + t * (np.log(C[i + 1]) - np.log(C[i]))))
        out.append({"C": c, "group_better_after": bool(diff[i + 1] < 0)})
    return out


@dataclasses.dataclass
class GroupFit:
    """One group's data, fit, bootstrap, token cost and held-out check."""

    name: str
    data: records.ScalingData
    fit: approach3.Approach3Fit
    boot: bootstrap.Bootstrap
    cost: TokenCost
    held_out: dict | None

    def params_samples(self) -> list[dict[str, float]]:
        s = self.boot.samples
        return [{k: float(s[k][i]) for k in LAW_PARAMS} for i in range(len(s["alpha"]))]

    def summary(self) -> dict:
        return {
            "n_points": int(self.data.N.shape[0]),
            "sizes": sorted({float(n) for n in self.data.N}),
            "params": self.fit.params,
            "a": self.fit.frontier_exponents[0],
            "intervals": {
                k: v for k, v in self.boot.summary().items() if k in (*LAW_PARAMS, "a", "b")
            },
            "bootstrap": {"n_resamples": self.boot.n_resamples, "n_failed": self.boot.n_failed},
            "warnings": list(self.fit.diagnostics.warnings),
            "token_cost": dataclasses.asdict(self.cost),
            "held_out": self.held_out,
        }


def fit_group(
    name: str, data: records.ScalingData, *, n_resamples: int = 200, seed: int = 0
) -> GroupFit:
    """Approach 3 fit, bootstrap over runs, token cost and leave-largest-out of one group."""
    final = data.subset(data.final)
    if np.unique(final.N).shape[0] < 3:
        raise ValueError(
            f"group {name!r}: {np.unique(final.N).shape[0]} sizes with schedule-final points; "
            "a law in N needs at least 3"
        )
    fit = approach3.fit_approach3(final.N, final.D, final.L)
    boot = bootstrap.bootstrap_approach3(
        final.N, final.D, final.L, final.run, n_resamples=n_resamples, seed=seed, init=fit.params
    )
    sizes, idx = np.unique(final.N, return_index=True)
    cost = fit_token_cost(sizes, (final.C / final.D)[idx])
    held = bootstrap.leave_largest_out(final.N, final.D, final.L) if sizes.shape[0] >= 4 else None
    return GroupFit(name, final, fit, boot, cost, held)


def difference(a: bootstrap.Bootstrap, b: bootstrap.Bootstrap, name: str, level: float = 0.95):
    """{lo, hi, excludes_zero, n} of a's `name` minus b's, from independent resamples."""
    R = min(a.samples[name].shape[0], b.samples[name].shape[0])
    d = a.samples[name][:R] - b.samples[name][:R]
    q = 100 * (1 - level) / 2
    lo, hi = (float(x) for x in np.percentile(d, [q, 100 - q]))
    return {"lo": lo, "hi": hi, "excludes_zero": bool(lo > 0 or hi < 0), "n": int(R)}


def compare(
    fits: Mapping[str, GroupFit],
    *,
    reference: str,
    C_grid=None,
    level: float = 0.95,
    names: Sequence[str] = DIFFERENCES,
) -> dict:
    """Pairwise exponent differences, and each group's frontier against `reference`'s.

    Args:
      fits: group name -> GroupFit.
      reference: the group the frontiers are compared with (e.g. "softmax").
      C_grid: compute grid for the frontier crossings (default 1e9..1e24 FLOPs).
      level: interval coverage.
      names: fitted quantities whose differences are reported (E and the exponents).

    Returns:
      {"differences": {"g1-g2": {name: {diff, lo, hi, excludes_zero}}},
       "crossover": {group: {"crossings", "better_at_observed_max_C", "resample_share",
       "C_interval"}}, "reference"}.
    """
    if reference not in fits:
        raise ValueError(f"reference group {reference!r} not among {sorted(fits)}")
    C = np.geomspace(1e9, 1e24, 600) if C_grid is None else np.asarray(C_grid, np.float64)
    diffs = {}
    for g1, g2 in itertools.combinations(fits, 2):
        f1, f2 = fits[g1], fits[g2]
        row = {}
        for name in names:
            point = (
                f1.fit.frontier_exponents[0] - f2.fit.frontier_exponents[0]
                if name == "a"
                else f1.fit.params[name] - f2.fit.params[name]
            )
            row[name] = {"diff": float(point), **difference(f1.boot, f2.boot, name, level)}
        diffs[f"{g1}-{g2}"] = row
    ref = fits[reference]
    ref_L, _ = frontier_loss(ref.fit.params, C, ref.cost)
    # The reference's resampled frontiers, once for every group they are compared with.
    ref_sample_L = [frontier_loss(pr, C, ref.cost)[0] for pr in ref.params_samples()]
    crossover = {}
    for g, f in fits.items():
        if g == reference:
            continue
        L, _ = frontier_loss(f.fit.params, C, f.cost)
        found = crossings(C, L - ref_L)
        firsts = []
        samples = f.params_samples()
        for ps, pr_L in zip(samples, ref_sample_L, strict=False):
            cr = crossings(C, frontier_loss(ps, C, f.cost)[0] - pr_L)
            if cr:
                firsts.append(cr[0]["C"])
        R = min(len(samples), len(ref_sample_L))
        q = 100 * (1 - level) / 2
        crossover[g] = {
            "crossings": found,
            "better_at_observed_max_C": bool(
                (L - ref_L)[np.searchsorted(C, f.data.C.max())] < 0
                if f.data.C.max() < C[-1]
                else False
            ),
            "resample_share": len(firsts) / R if R else 0.0,
            "C_interval": [float(x) for x in np.percentile(firsts, [q, 100 - q])]
            if firsts
            else None,
        }
    return {"differences": diffs, "crossover": crossover, "reference": reference}
