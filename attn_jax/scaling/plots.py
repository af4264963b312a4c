"""Figures of a scaling fit that show the runs it was fitted to, with the fit through them.

Every figure is drawn from its rows (panel, series, role, x, y, y_lo, y_hi), written beside
it as CSV, so `render_csv` redraws a figure from its CSV alone and a test can check that
every run in the CSV is on it. Roles: run (a fitted point), curve (a learning curve),
fit (the law where there are data), extrapolation (the law beyond them: dashed and
labelled), band (bootstrap percentile band), optimum (Approach 1/2 per-budget optima),
reference (zero residual, E), note (text). Axis limits come from runs, curves, optima and
in-range fits only: an extrapolation or a reference never stretches an axis. Colliding
tick labels are thinned after layout. PNG (300 dpi) + SVG (text as text), matplotlib's
object API on the Agg canvas (no pyplot): headless, and a notebook's backend is untouched.
"""

from __future__ import annotations

import csv
import dataclasses
import pathlib

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from attn_jax.scaling import approaches, frontier, laws

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 6,
    "legend.frameon": False,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.1,
    "svg.fonttype": "none",
}
SINGLE = (4.6, 2.6)  # inches: one column wide plus the legend beside it
DOUBLE = (7.0, 2.8)
CMAP = "viridis"
MAX_LEGEND_SERIES = 8
LABEL = {
    "N": "parameters N",
    "D": "training tokens D",
    "C": "training compute C (FLOPs)",
    "L": "loss (nats/token)",
    "R": "residual log L − log L̂",
}
COLUMNS = ("panel", "series", "role", "x", "y", "y_lo", "y_hi")
LIMIT_ROLES = ("run", "curve", "optimum", "fit")


@dataclasses.dataclass(frozen=True)
class Panel:
    xlabel: str
    ylabel: str
    logx: bool = True
    logy: bool = True
    title: str = ""


# name -> (figure size, panels). The CSV of a figure plus this table is the whole figure.
SPECS = {
    "loss_vs_N": (SINGLE, (Panel(LABEL["N"], LABEL["L"]),)),
    "loss_vs_C": (SINGLE, (Panel(LABEL["C"], LABEL["L"]),)),
    "isoflop": (SINGLE, (Panel(LABEL["N"], LABEL["L"], title="IsoFLOP profiles"),)),
    "frontier": (
        DOUBLE,
        (Panel(LABEL["C"], f"compute-optimal {LABEL['N']}"), Panel(LABEL["C"], LABEL["D"])),
    ),
    "residuals": (
        DOUBLE,
        (Panel(LABEL["N"], LABEL["R"], logy=False), Panel(LABEL["D"], LABEL["R"], logy=False)),
    ),
    "learning_curves": (SINGLE, (Panel(LABEL["D"], LABEL["L"], title="learning curves"),)),
}


def rows(series, x, y, role="run", panel=0, lo=None, hi=None) -> list[tuple]:
    """Rows of one series: (panel, series, role, x, y, y_lo, y_hi)."""
    lo, hi = ([None] * len(x) if v is None else v for v in (lo, hi))
    return [(panel, series, role, float(a), float(b), c, d) for a, b, c, d in zip(x, y, lo, hi)]


class Figures:
    """Writes figures into `out_dir`; `written` lists every file."""

    def __init__(self, out_dir, dpi: int = 300):
        self.dpi = dpi
        self.out = pathlib.Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.written: list[str] = []

    def save(self, name: str, fig_rows: list[tuple]):
        """Renders `fig_rows` as figure `name` and writes its PNG, SVG and CSV."""
        path = self.out / f"{name}.csv"
        write_csv(path, fig_rows)
        fig = render(name, fig_rows)
        with matplotlib.rc_context(STYLE):
            for ext, kw in (("png", {"dpi": self.dpi}), ("svg", {})):
                fig.savefig(self.out / f"{name}.{ext}", **kw)
                self.written.append(str(self.out / f"{name}.{ext}"))
        self.written.append(str(path))
        return fig


def write_csv(path, fig_rows):
    """Writes rows as CSV (COLUMNS); non-finite numbers as empty cells."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in fig_rows:
            num = (("" if v is None or not np.isfinite(v) else f"{v:.8g}") for v in r[3:])
            w.writerow([r[0], r[1], r[2], *num])


def read_csv(path) -> list[tuple]:
    """Rows of a figure's CSV (empty cells -> None; x, y of notes -> nan)."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            num = [None if r[c] == "" else float(r[c]) for c in COLUMNS[3:]]
            num[:2] = [np.nan if v is None else v for v in num[:2]]
            out.append((int(r["panel"]), r["series"], r["role"], *num))
    return out


def render_csv(path) -> Figure:
    """The figure of a CSV written by `Figures.save` (its name is the file's stem)."""
    return render(pathlib.Path(path).stem, read_csv(path))


def render(name: str, fig_rows: list[tuple]) -> Figure:
    """Draws figure `name` (a key of SPECS) from its rows; returns the laid-out Figure."""
    size, panels = SPECS[name]
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for i, (ax, panel) in enumerate(zip(axes, panels)):
            _draw_panel(ax, panel, [r for r in fig_rows if r[0] == i])
        fig.canvas.draw()  # solve the layout, then thin tick labels that collide
        for ax in axes:
            declutter_ticks(ax)
        fig.set_layout_engine("none")  # keep the solved layout through both saves
    return fig


def _series(panel_rows, role):
    out: dict[str, list[tuple]] = {}
    for r in panel_rows:
        if r[2] == role:
            out.setdefault(r[1], []).append(r)
    return out


def _draw_panel(ax, panel: Panel, panel_rows):
    data_series = {**_series(panel_rows, "run"), **_series(panel_rows, "curve")}
    order = list(dict.fromkeys(r[1] for r in panel_rows if r[2] in ("run", "curve")))
    cmap = matplotlib.colormaps[CMAP]
    color = {s: cmap(0.9 * i / max(len(order) - 1, 1)) for i, s in enumerate(order)}
    labelled = len(order) <= MAX_LEGEND_SERIES
    col = lambda s: color.get(s, "k")
    for s, rs in _series(panel_rows, "band").items():
        x, lo, hi = (np.array([r[k] for r in rs], float) for k in (3, 5, 6))
        ax.fill_between(x, lo, hi, color=col(s), alpha=0.15, lw=0, label="bootstrap band")
    for s, rs in _series(panel_rows, "fit").items():
        ax.plot([r[3] for r in rs], [r[4] for r in rs], color=col(s), lw=1.0,
                label=None if s in color else s)  # fmt: skip
    first = True
    for s, rs in _series(panel_rows, "extrapolation").items():
        ax.plot([r[3] for r in rs], [r[4] for r in rs], color=col(s), lw=0.9, ls="--",
                label="extrapolation (no data)" if first else None)  # fmt: skip
        first = False
    for s, rs in _series(panel_rows, "reference").items():
        ax.plot([r[3] for r in rs], [r[4] for r in rs], color="0.5", lw=0.7, ls=":", label=s)
    for s, rs in data_series.items():
        x, y, lab = [r[3] for r in rs], [r[4] for r in rs], s if labelled else None
        if rs[0][2] == "curve":
            ax.plot(x, y, color=col(s), lw=0.8, marker="o", ms=1.5, label=lab)
        else:
            ax.scatter(x, y, color=col(s), s=9, lw=0, zorder=3, label=lab)
    for j, (s, rs) in enumerate(_series(panel_rows, "optimum").items()):
        ax.scatter([r[3] for r in rs], [r[4] for r in rs], marker="*D^"[j % 3], s=30 if j == 0 else 6,
                   color=f"C{3 + j}", zorder=4, label=s)  # fmt: skip
    notes = [r[1] for r in panel_rows if r[2] == "note"]
    if notes:
        ax.text(0.01, 0.01, "\n".join(notes), transform=ax.transAxes, fontsize=5, va="bottom")
    _axes(ax, panel, [r for r in panel_rows if r[2] in LIMIT_ROLES])
    if ax.get_legend_handles_labels()[0]:
        # Outside the axes: a legend inside hides runs (constrained layout makes room).
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2)


def _limits(v, log: bool, pad=0.05):
    v = np.asarray(v, float)
    v = v[np.isfinite(v) & ((v > 0) if log else True)]
    if v.size == 0:
        return None
    lo, hi = (np.log10(v.min()), np.log10(v.max())) if log else (v.min(), v.max())
    span = hi - lo or (0.1 if log else max(abs(hi), 1e-3) * 0.1)
    lo, hi = lo - pad * span, hi + pad * span
    return (10**lo, 10**hi) if log else (lo, hi)


def _axes(ax, panel: Panel, limit_rows):
    for axis, log, k, label in (("x", panel.logx, 3, panel.xlabel), ("y", panel.logy, 4, panel.ylabel)):  # fmt: skip
        lim = _limits([r[k] for r in limit_rows], log)
        getattr(ax, f"set_{axis}scale")("log" if log else "linear")
        if lim is not None:
            getattr(ax, f"set_{axis}lim")(*lim)
        if log:
            # Losses and short spans: label minor ticks too, as plain numbers or a x 10^k.
            fmt = (
                matplotlib.ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5))
                if label == LABEL["L"]
                else matplotlib.ticker.LogFormatterSciNotation(
                    labelOnlyBase=False, minor_thresholds=(2, 0.5)
                )
            )
            axis_obj = getattr(ax, f"{axis}axis")
            axis_obj.set_major_formatter(fmt)
            axis_obj.set_minor_formatter(fmt)
        getattr(ax, f"set_{axis}label")(label)
    if panel.title:
        ax.set_title(panel.title)


def tick_labels(ax, axis: str):
    """The visible, non-empty tick labels of `axis` ("x" or "y"), major and minor."""
    a = ax.xaxis if axis == "x" else ax.yaxis
    ticks = a.get_major_ticks() + a.get_minor_ticks()
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    out = []
    for t in ticks:
        lab = t.label1
        if lab.get_visible() and lab.get_text() and lo <= t.get_loc() <= hi:
            out.append((t.get_loc(), lab))
    return [lab for _, lab in sorted(out, key=lambda p: p[0])]


def declutter_ticks(ax, gap_px: float = 2.0):
    """Hides tick labels that would overlap the previous kept one (left to right, bottom up)."""
    renderer = ax.figure.canvas.get_renderer()
    for axis in ("x", "y"):
        kept = None
        for lab in tick_labels(ax, axis):
            box = lab.get_window_extent(renderer).expanded(1.0, 1.0)
            if kept is not None:
                near = box.x0 < kept.x1 + gap_px if axis == "x" else box.y0 < kept.y1 + gap_px
                if near:
                    lab.set_visible(False)
                    continue
            kept = box


def _band(fn, boot_params, x, level=0.95):
    """Pointwise percentile band of fn(params, x) over bootstrap params."""
    if not boot_params:
        return None, None
    q = 100 * (1 - level) / 2
    curves = np.array([fn(p, x) for p in boot_params])
    lo, hi = np.nanpercentile(curves, [q, 100 - q], axis=0)
    return lo, hi


def _grid(lo, hi, n=50):
    return np.logspace(np.log10(lo), np.log10(hi), n)


def _groups_by(values, rel_tol=0.1):
    """[(label index array, geometric mean)] of points grouped where log values jump."""
    labels, centres = approaches.group_budgets(values, rel_tol)
    return [(np.flatnonzero(labels == g), c) for g, c in enumerate(centres)]


def plot_all(figs: Figures, data, p, *, boot_params=(), a2=None, a1=None, level=0.95):
    """Every figure of a Chinchilla fit `p` to `data` (records.ScalingData).

    Args:
      figs: where to write.
      data: the fitted points (and learning curves).
      p: fitted {"E", "A", "B", "alpha", "beta"}.
      boot_params: bootstrap params dicts (for bands); empty = no bands.
      a2, a1: approaches.FrontierFit of Approaches 2 and 1, or None.
      level: band coverage.
    """
    with matplotlib.rc_context(STYLE):
        figs.save("loss_vs_N", loss_vs_N_rows(data, p))
        figs.save("loss_vs_C", loss_vs_C_rows(data, p, boot_params, level))
        figs.save("isoflop", isoflop_rows(data, p, a2))
        figs.save("frontier", frontier_rows(data, p, boot_params, a2, a1, level))
        figs.save("residuals", residual_rows(data, p))
        if data.curves:
            figs.save("learning_curves", curve_rows(data.curves))


def _token_groups(data):
    """Groups for loss vs N: shared token budgets if the design has them, else bands of
    tokens per parameter half a decade wide."""
    groups = _groups_by(data.D)
    if sum(len(i) for i, _ in groups if len(i) >= 2) >= 0.75 * data.D.shape[0]:
        return [(i, f"D = {c:.3g}", lambda n, c=c: np.full_like(n, c)) for i, c in groups]
    band = np.floor(np.log10(data.D / data.N) * 2) / 2  # half-decade bins of log10(D/N)
    out = []
    for b in np.unique(band):
        idx = np.flatnonzero(band == b)
        r = float(np.exp(np.log(data.D[idx] / data.N[idx]).mean()))
        label = f"D/N {10**b:.3g}-{10 ** (b + 0.5):.3g}"
        out.append((idx, label, lambda n, r=r: r * n))
    return out


def loss_vs_N_rows(data, p):
    """Runs vs N, one line per token budget (or D/N band) of the law through its points."""
    out = []
    for idx, label, d_of_n in _token_groups(data):
        out += rows(label, data.N[idx], data.L[idx])
        if np.unique(data.N[idx]).shape[0] >= 2:
            n = _grid(data.N[idx].min(), data.N[idx].max())
            out += rows(label, n, laws.chinchilla(p, n, d_of_n(n)), role="fit")
    return out


def loss_vs_C_rows(data, p, boot_params=(), level=0.95):
    """Runs vs C by size, the fitted frontier L*(C) through their lower envelope."""
    k = data.k_flops
    out = []
    for idx, c in _groups_by(data.N):
        out += rows(f"N = {c:.3g}", data.C[idx], data.L[idx])
    fn = lambda q, c: frontier.optimal_loss(q, c, k)
    c_in = _grid(data.C.min(), data.C.max())
    lo, hi = _band(fn, boot_params, c_in, level)
    name = "L*(C), compute-optimal (Approach 3)"
    out += rows(name, c_in, fn(p, c_in), role="fit")
    if lo is not None:
        out += rows(name, c_in, fn(p, c_in), role="band", lo=lo, hi=hi)
    c_out = _grid(data.C.max(), 10 * data.C.max(), 20)
    out += rows(name, c_out, fn(p, c_out), role="extrapolation")
    e = np.array([p["E"], p["E"]])
    out += rows(f"E = {p['E']:.3g}", [data.C.min(), 10 * data.C.max()], e, role="reference")
    return out


def isoflop_rows(data, p, a2=None):
    """Runs at each FLOP budget with the law's profile L(N, C/(kN)) through them."""
    k = data.k_flops
    out = []
    for idx, c in _groups_by(data.C):
        label = f"C = {c:.2g}"
        out += rows(label, data.N[idx], data.L[idx])
        if np.unique(data.N[idx]).shape[0] >= 2:
            n = _grid(data.N[idx].min(), data.N[idx].max())
            out += rows(label, n, laws.chinchilla(p, n, c / (k * n)), role="fit")
    if a2 is not None:
        out += rows("IsoFLOP minima (Approach 2)", a2.N_opt, a2.L_opt, role="optimum")
        for c, why in a2.refused.items():
            out.append((0, f"refused C = {c:.2g}: {why}", "note", np.nan, np.nan, None, None))
    return out


def frontier_rows(data, p, boot_params=(), a2=None, a1=None, level=0.95):
    """N*(C) and D*(C): Approach 3's law (band) with Approach 1 and 2 optima."""
    k = data.k_flops
    a, b = frontier.exponents(p["alpha"], p["beta"])
    c_in, c_out = _grid(data.C.min(), data.C.max()), _grid(data.C.max(), 10 * data.C.max(), 20)
    out = []
    for panel, (name, expo) in enumerate((("N", a), ("D", b))):
        fn = lambda q, c, i=panel: frontier.optimal_allocation(q, c, k)[i]
        label = f"Approach 3: {name}* ∝ C^{expo:.3f}"
        lo, hi = _band(fn, boot_params, c_in, level)
        out += rows(label, c_in, fn(p, c_in), role="fit", panel=panel)
        if lo is not None:
            out += rows(label, c_in, fn(p, c_in), role="band", panel=panel, lo=lo, hi=hi)
        out += rows(label, c_out, fn(p, c_out), role="extrapolation", panel=panel)
        for tag, f in (("Approach 2", a2), ("Approach 1", a1)):
            if f is not None:
                e = f.a if name == "N" else f.b
                y = f.N_opt if name == "N" else f.D_opt
                out += rows(f"{tag}: ∝ C^{e:.3f}", f.C, y, role="optimum", panel=panel)
    return out


def residual_rows(data, p):
    """log residuals of every run against the law, by N and by D, coloured by budget."""
    res = np.log(data.L) - np.log(laws.chinchilla(p, data.N, data.D))
    out = []
    for panel, x in enumerate((data.N, data.D)):
        for idx, c in _groups_by(data.C):
            out += rows(f"C = {c:.2g}", x[idx], res[idx], panel=panel)
        out += rows("zero", [x.min(), x.max()], [0.0, 0.0], role="reference", panel=panel)
    return out


def curve_rows(curves):
    """Every eval of every learning curve, one series per run, in order of size."""
    out = []
    for c in sorted(curves, key=lambda c: c["N"]):
        out += rows(f"N = {c['N']:.3g} {c['run_id']}", c["D"], c["loss"], role="curve")
    return out
