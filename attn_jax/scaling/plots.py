"""Publication figures of a scaling fit: PNG (300 dpi) + SVG (text kept as text), and the
data behind each figure as CSV (columns: series, x, y, y_lo, y_hi).

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch),
so it runs headless and does not disturb a notebook's backend. Bands are bootstrap
percentile intervals of the fitted curve, computed pointwise over the resampled fits.
"""

from __future__ import annotations

import csv
import pathlib

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from attn_jax.scaling import frontier, laws

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.2,
    "svg.fonttype": "none",
}
SINGLE = (3.4, 2.6)  # inches: one column of a two-column paper
DOUBLE = (7.0, 2.6)
CMAP = "viridis"
LABEL = {
    "N": "parameters N",
    "D": "training tokens D",
    "C": "training compute C (FLOPs)",
    "L": "loss (nats/token)",
}


class Figures:
    """Writes figures into `out_dir`; `written` lists every file."""

    def __init__(self, out_dir, dpi: int = 300):
        self.dpi = dpi
        self.out = pathlib.Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.written: list[str] = []

    def new(self, size=SINGLE, ncols=1):
        with matplotlib.rc_context(STYLE):
            fig = Figure(figsize=size, layout="constrained")
            FigureCanvasAgg(fig)
            axes = fig.subplots(1, ncols)
        return fig, axes

    def save(self, fig, name: str, rows: list[tuple]):
        with matplotlib.rc_context(STYLE):
            for ext, kw in (("png", {"dpi": self.dpi}), ("svg", {})):
                path = self.out / f"{name}.{ext}"
                fig.savefig(path, **kw)
                # The layout is solved once (the first save); re-solving costs half a save.
                fig.set_layout_engine("none")
                self.written.append(str(path))
        path = self.out / f"{name}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["series", "x", "y", "y_lo", "y_hi"])
            for row in rows:
                w.writerow([row[0], *(("" if v is None else f"{v:.8g}") for v in row[1:])])
        self.written.append(str(path))


def _rows(series, x, y, lo=None, hi=None):
    lo = [None] * len(x) if lo is None else lo
    hi = [None] * len(x) if hi is None else hi
    return [(series, float(a), float(b), c, d) for a, b, c, d in zip(x, y, lo, hi)]


def _band(fn, boot_params, x, level=0.95):
    """Pointwise percentile band of fn(params, x) over bootstrap params."""
    if not boot_params:
        return None, None
    q = 100 * (1 - level) / 2
    curves = np.array([fn(p, x) for p in boot_params])
    lo, hi = np.nanpercentile(curves, [q, 100 - q], axis=0)
    return lo, hi


def _colors(C):
    logC = np.log10(C)
    norm = matplotlib.colors.Normalize(logC.min(), logC.max() + 1e-9)
    return matplotlib.colormaps[CMAP](norm(logC)), norm


def _colorbar(fig, ax, norm, label="log10 C (FLOPs)"):
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=CMAP)
    fig.colorbar(sm, ax=ax, label=label, pad=0.01, aspect=30)


def _loglog(ax, xlabel, ylabel=LABEL["L"], logy=True):
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
        if ylabel == LABEL["L"]:  # losses span < 1 decade: plain numbers, not 3x10^0
            fmt = matplotlib.ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5))
            ax.yaxis.set_major_formatter(fmt)
            ax.yaxis.set_minor_formatter(fmt)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def plot_all(figs: Figures, data, p, *, boot_params=(), a2=None, level=0.95):
    """Every figure of a Chinchilla fit, in the house STYLE; see `_plot_all`."""
    with matplotlib.rc_context(STYLE):
        _plot_all(figs, data, p, boot_params=boot_params, a2=a2, level=level)


def _plot_all(figs: Figures, data, p, *, boot_params=(), a2=None, level=0.95):
    """Every figure of a Chinchilla fit.

    Args:
      figs: where to write.
      data: records.ScalingData.
      p: fitted {"E", "A", "B", "alpha", "beta"}.
      boot_params: list of bootstrap params dicts (for bands); empty = no bands.
      a2: approaches.FrontierFit from Approach 2, or None.
      level: band coverage.
    """
    k = data.k_flops
    colors, norm = _colors(data.C)
    C_grid = np.logspace(np.log10(data.C.min()), np.log10(data.C.max()) + 1, 80)
    N_grid = np.logspace(np.log10(data.N.min()) - 0.3, np.log10(data.N.max()) + 0.5, 80)
    pct = f"{100 * level:.0f}%"

    # Loss vs N: data, the compute-optimal curve L(N*(C)), and the D -> infinity limit.
    fig, ax = figs.new()
    ax.scatter(data.N, data.L, c=colors, s=8, lw=0, label="runs")
    opt_N = lambda q, n: laws.chinchilla(q, n, _C_of_N(q, n, k) / (k * n))
    y = opt_N(p, N_grid)
    lo, hi = _band(opt_N, boot_params, N_grid, level)
    ax.plot(N_grid, y, color="k", label="compute-optimal L(N, D*(N))")
    if lo is not None:
        ax.fill_between(N_grid, lo, hi, color="k", alpha=0.15, lw=0, label=f"bootstrap {pct}")
    inf = lambda q, n: q["E"] + q["A"] * n ** -q["alpha"]
    ax.plot(N_grid, inf(p, N_grid), "--", color="0.4", lw=0.9, label="D → ∞: E + A/N^α")
    _loglog(ax, LABEL["N"])
    _colorbar(fig, ax, norm)
    ax.legend(loc="best")
    figs.save(
        fig,
        "loss_vs_N",
        _rows("data", data.N, data.L)
        + _rows("optimal", N_grid, y, lo, hi)
        + _rows("D_inf", N_grid, inf(p, N_grid)),
    )

    # Loss vs C: data and the compute-optimal loss L*(C) with its band.
    fig, ax = figs.new()
    ax.scatter(data.C, data.L, c=colors, s=8, lw=0, label="runs")
    opt_C = lambda q, c: frontier.optimal_loss(q, c, k)
    y = opt_C(p, C_grid)
    lo, hi = _band(opt_C, boot_params, C_grid, level)
    ax.plot(C_grid, y, color="k", label="L*(C), compute-optimal")
    if lo is not None:
        ax.fill_between(C_grid, lo, hi, color="k", alpha=0.15, lw=0, label=f"bootstrap {pct}")
    if p["E"] > 0.5 * np.min(data.L):  # an E the data cannot see would stretch the log axis
        ax.axhline(p["E"], color="0.5", lw=0.7, ls=":", label=f"E = {p['E']:.3g}")
    _loglog(ax, LABEL["C"])
    ax.legend(loc="best")
    figs.save(fig, "loss_vs_C", _rows("data", data.C, data.L) + _rows("optimal", C_grid, y, lo, hi))

    _plot_isoflop(figs, data, p, a2, k)
    _plot_frontier(figs, data, p, boot_params, a2, k, C_grid, level)
    _plot_residuals(figs, data, p, colors, norm)
    if data.curves:
        _plot_curves(figs, data.curves)


def _C_of_N(q, n, k):
    """The budget at which n is compute-optimal: invert N* = G (C/k)^a."""
    a, _ = frontier.exponents(q["alpha"], q["beta"])
    return k * (n / frontier.coefficient_G(q)) ** (1 / a)


def _plot_isoflop(figs, data, p, a2, k):
    from attn_jax.scaling import approaches

    rows = []
    fig, ax = figs.new()
    if a2 is not None:
        labels, budgets = approaches.group_budgets(data.C)
        cols, _ = _colors(budgets)
        for g, c in enumerate(budgets):
            sel = labels == g
            ax.scatter(data.N[sel], data.L[sel], color=cols[g], s=8, lw=0)
            rows += _rows(f"data C={c:.3g}", data.N[sel], data.L[sel])
            key = min(a2.parabolas, key=lambda b: abs(np.log(b / c)), default=None)
            if key is None or abs(np.log(key / c)) > 0.1:
                continue
            n = np.logspace(np.log10(data.N[sel].min()), np.log10(data.N[sel].max()), 50)
            y = np.polyval(a2.parabolas[key], np.log(n))
            ax.plot(n, y, color=cols[g], lw=0.9, label=f"C = {key:.2g}")
            rows += _rows(f"parabola C={key:.3g}", n, y)
        ax.scatter(
            a2.N_opt,
            a2.L_opt,
            marker="*",
            s=40,
            color="C3",
            zorder=3,
            label="IsoFLOP minima (Approach 2)",
        )
        rows += _rows("minima", a2.N_opt, a2.L_opt)
        for c, why in a2.refused.items():
            rows.append((f"refused C={c:.3g}: {why}", np.nan, np.nan, None, None))
    else:
        budgets = np.logspace(np.log10(data.C.min()), np.log10(data.C.max()), 5)
        cols, _ = _colors(budgets)
        for c, col in zip(budgets, cols):
            n = np.logspace(np.log10(data.N.min()), np.log10(data.N.max()), 60)
            y = laws.chinchilla(p, n, c / (k * n))
            ax.plot(n, y, color=col, lw=0.9, label=f"C = {c:.2g}")
            rows += _rows(f"approach3 C={c:.3g}", n, y)
        n_opt, d_opt = frontier.optimal_allocation(p, budgets, k)
        ax.scatter(
            n_opt,
            laws.chinchilla(p, n_opt, d_opt),
            marker="*",
            s=40,
            color="C3",
            zorder=3,
            label="minima (Approach 3)",
        )
    _loglog(ax, LABEL["N"])
    ax.legend(loc="best")
    figs.save(fig, "isoflop", rows)


def _plot_frontier(figs, data, p, boot_params, a2, k, C_grid, level):
    fig, (ax_n, ax_d) = figs.new(DOUBLE, ncols=2)
    rows = []
    a, b = frontier.exponents(p["alpha"], p["beta"])
    for ax, idx, name, expo in ((ax_n, 0, "N", a), (ax_d, 1, "D", b)):
        fn = lambda q, c, idx=idx: frontier.optimal_allocation(q, c, k)[idx]
        y = fn(p, C_grid)
        lo, hi = _band(fn, boot_params, C_grid, level)
        ax.plot(C_grid, y, color="k", label=f"Approach 3: {name}* ∝ C^{expo:.3f}")
        if lo is not None:
            ax.fill_between(
                C_grid, lo, hi, color="k", alpha=0.15, lw=0, label=f"bootstrap {100 * level:.0f}%"
            )
        rows += _rows(f"{name}_opt approach3", C_grid, y, lo, hi)
        if a2 is not None:
            pts = a2.N_opt if name == "N" else a2.D_opt
            e2 = a2.a if name == "N" else a2.b
            ax.scatter(
                a2.C, pts, marker="*", s=30, color="C3", zorder=3, label=f"Approach 2: ∝ C^{e2:.3f}"
            )
            rows += _rows(f"{name}_opt approach2", a2.C, pts)
        _loglog(ax, LABEL["C"], f"compute-optimal {LABEL[name]}")
        ax.legend(loc="upper left")
    figs.save(fig, "frontier", rows)


def _plot_residuals(figs, data, p, colors, norm):
    res = np.log(data.L) - np.log(laws.chinchilla(p, data.N, data.D))
    fig, (ax_n, ax_c) = figs.new(DOUBLE, ncols=2)
    for ax, x, name in ((ax_n, data.N, "N"), (ax_c, data.C, "C")):
        ax.scatter(x, res, c=colors, s=8, lw=0)
        ax.axhline(0.0, color="k", lw=0.7)
        _loglog(ax, LABEL[name], "residual log L − log L̂", logy=False)
    _colorbar(fig, ax_c, norm)
    figs.save(fig, "residuals", _rows("vs_N", data.N, res) + _rows("vs_C", data.C, res))


def _plot_curves(figs, curves):
    sizes = np.array([c["N"] for c in curves])
    cols, norm = _colors(sizes)
    fig, ax = figs.new()
    rows = []
    for c, col in zip(curves, cols):
        ax.plot(c["D"], c["loss"], color=col, lw=0.9)
        rows += _rows(f"N={c['N']:.4g} {c['run_id']}", c["D"], c["loss"])
    _loglog(ax, LABEL["D"])
    _colorbar(fig, ax, norm, "log10 N (parameters)")
    figs.save(fig, "learning_curves", rows)
