"""Figures show the runs they were fitted to: every run in a CSV is on its figure, fitted
lines pass through their points, extrapolations do not stretch axes, ticks never collide."""

import json

import numpy as np
import pytest

from attn_jax.scaling import laws, plots, records, report, synthetic

P = synthetic.DEMO_LAW
DATA_ROLES = ("run", "curve", "optimum")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    recs = synthetic.final_run_records(P, *synthetic.DEMO_DESIGN, seed=0)
    sweep = tmp_path_factory.mktemp("sweep")
    (sweep / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = sweep / "fit"
    result = report.analyze(sweep, out, n_bootstrap=8, top_k=4, dpi=40)
    return out, result


def _plotted_points(fig) -> np.ndarray:
    """Every (x, y) drawn as a line vertex or a marker, on any axes of `fig`."""
    pts = []
    for ax in fig.axes:
        for line in ax.lines:
            pts.append(np.column_stack(line.get_data()).astype(float))
        for coll in ax.collections:
            off = np.asarray(coll.get_offsets(), float)
            if off.size:
                pts.append(off.reshape(-1, 2))
    return np.concatenate(pts) if pts else np.zeros((0, 2))


@pytest.mark.parametrize(
    "name", ["loss_vs_N", "loss_vs_C", "isoflop", "frontier", "residuals", "learning_curves"]
)
def test_every_run_in_the_csv_is_plotted(fitted, name):
    out, _ = fitted
    rows = plots.read_csv(out / f"{name}.csv")
    fig = plots.render_csv(out / f"{name}.csv")
    drawn = _plotted_points(fig)
    want = [(r[3], r[4]) for r in rows if r[2] in DATA_ROLES]
    assert want, f"{name}.csv has no data rows"
    for x, y in want:
        hit = np.isclose(drawn[:, 0], x, rtol=1e-6) & np.isclose(drawn[:, 1], y, rtol=1e-6)
        assert hit.any(), f"{name}: point ({x:.4g}, {y:.4g}) is in the CSV but not drawn"
    if name != "frontier":  # the frontier shows optima, the others every fitted run
        n_runs = sum(r[2] in ("run", "curve") for r in rows if r[0] == 0)
        assert n_runs >= 24, (name, n_runs)


def test_loss_vs_N_lines_pass_through_their_points():
    """Noise-free points on a token-budget grid lie on their budget's fitted line."""
    N = np.tile(np.logspace(4, 6, 6), 3)
    D = np.repeat([1e6, 1e7, 1e8], 6)
    data = records.from_arrays(N, laws.chinchilla(P, N, D), D=D)
    rows = plots.loss_vs_N_rows(data, P)
    series = {r[1] for r in rows}
    assert len(series) == 3
    for s in series:
        run = np.array([(r[3], r[4]) for r in rows if r[1] == s and r[2] == "run"])
        fit = np.array([(r[3], r[4]) for r in rows if r[1] == s and r[2] == "fit"])
        on_line = np.exp(np.interp(np.log(run[:, 0]), np.log(fit[:, 0]), np.log(fit[:, 1])))
        np.testing.assert_allclose(on_line, run[:, 1], rtol=2e-3, err_msg=s)


def test_extrapolation_is_labelled_and_does_not_stretch_the_axis(fitted):
    out, _ = fitted
    rows = plots.read_csv(out / "loss_vs_C.csv")
    run_x = [r[3] for r in rows if r[2] == "run"]
    run_y = [r[4] for r in rows if r[2] == "run"]
    extra = [r for r in rows if r[2] == "extrapolation"]
    assert extra
    assert max(r[3] for r in extra) > 5 * max(run_x)
    fig = plots.render_csv(out / "loss_vs_C.csv")
    ax = fig.axes[0]
    assert ax.get_xlim()[1] < 1.5 * max(run_x)  # the 10x extrapolation did not widen it
    assert ax.get_ylim()[0] > 0.5 * min(run_y)  # nor did E far below the data
    labels = ax.get_legend_handles_labels()[1]
    assert any("extrapolation" in lab for lab in labels), labels


def _overlaps(boxes):
    return [
        (i, j)
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j])
    ]


@pytest.mark.parametrize("span", [(2e5, 6e5), (1e5, 1e9), (3e4, 4e4)])
def test_tick_labels_never_overlap(span):
    """Learning curves over 2e5..6e5 tokens drew '3x10^5' over '4x10^5'."""
    D = np.geomspace(*span, 12)
    curves = [
        {"run_id": f"r{i}", "N": n, "D": D, "C": 6 * n * D, "loss": laws.chinchilla(P, n, D)}
        for i, n in enumerate((1e4, 1e5, 1e6))
    ]
    fig = plots.render("learning_curves", plots.curve_rows(curves))
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for axis in ("x", "y"):
            labels = plots.tick_labels(ax, axis)
            boxes = [lab.get_window_extent(renderer) for lab in labels]
            assert len(boxes) >= 2, (axis, [lab.get_text() for lab in labels])
            bad = _overlaps(boxes)
            assert not bad, [(labels[i].get_text(), labels[j].get_text()) for i, j in bad]


@pytest.mark.parametrize("name", ["loss_vs_N", "loss_vs_C", "isoflop", "frontier", "residuals"])
def test_fit_figures_have_no_overlapping_tick_labels(fitted, name):
    """The frontier's and loss-vs-C's log axes label minor ticks that collide untreated."""
    out, _ = fitted
    fig = plots.render_csv(out / f"{name}.csv")
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for axis in ("x", "y"):
            labels = plots.tick_labels(ax, axis)
            bad = _overlaps([lab.get_window_extent(renderer) for lab in labels])
            assert not bad, [(labels[i].get_text(), labels[j].get_text()) for i, j in bad]
