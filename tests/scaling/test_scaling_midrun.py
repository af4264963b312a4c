"""Mid-run evals are not the loss of a run that long: Approaches 2 and 3 refuse them."""

import json

import numpy as np
import pytest

from attn_jax.scaling import approach3, approaches, records, report, synthetic

P = synthetic.DEMO_LAW


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A demo-shaped sweep of schedule-final runs, each with two mid-run evals 3% high."""
    recs = synthetic.final_run_records(P, *synthetic.DEMO_DESIGN, seed=0, midrun_excess=0.03)
    path = tmp_path_factory.mktemp("sweep") / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def test_fits_refuse_midrun_points_unless_asked(sweep):
    mixed = records.load_records(sweep, include_midrun=True)
    assert (~mixed.final).sum() == 48
    assert mixed.final.sum() == 24
    args = (mixed.N, mixed.D, mixed.L)
    with pytest.raises(ValueError, match=r"Approach 3 got 48 mid-run point.*allow_midrun=True"):
        approach3.fit_approach3(*args, top_k=4, final=mixed.final)
    with pytest.raises(ValueError, match=r"Approach 2 got 48 mid-run point.*allow_midrun=True"):
        approaches.approach2(*args, mixed.C, final=mixed.final)
    # Asked for, the mid-run points are fitted.
    forced = approach3.fit_approach3(*args, top_k=4, final=mixed.final, allow_midrun=True)
    final = records.load_records(sweep)
    assert final.final.all()
    assert final.N.shape == (24,)
    clean = approach3.fit_approach3(final.N, final.D, final.L, top_k=4, final=final.final)
    assert abs(clean.params["beta"] - P["beta"]) < 0.03
    assert forced.n_points == 72
    assert clean.n_points == 24


def test_analyze_refuses_midrun_points_in_a_csv(tmp_path):
    N, D = synthetic.DEMO_DESIGN
    L = synthetic.replicate(P, N, D, seed=1)
    final = np.arange(N.shape[0]) % 5 != 0
    path = tmp_path / "points.csv"
    lines = ["N,D,loss,final"] + [f"{n},{d},{y},{f}" for n, d, y, f in zip(N, D, L, final)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"5 mid-run point.*--allow-midrun"):
        report.analyze(path, tmp_path / "fit", n_bootstrap=0, plots=False, top_k=4)
    out = report.analyze(
        path, tmp_path / "fit", n_bootstrap=0, plots=False, top_k=4, allow_midrun=True
    )
    assert out["n_midrun_points"] == 5
    assert out["n_points"] == 24


def test_analyze_default_fits_final_points_of_records(sweep, tmp_path):
    out = report.analyze(sweep, tmp_path / "fit", n_bootstrap=0, plots=False, top_k=4)
    assert out["n_points"] == 24
    assert out["n_midrun_points"] == 0
    assert out["approach1"]["input"].startswith("learning curves")  # Approach 1 reads curves


def test_legacy_records_still_fit(tmp_path):
    """Records from before `schedule_final` (nested evals_at_budget, no schedule fields):
    each run's end counts as final, its earlier evals as mid-run (fitted when asked)."""
    recs = synthetic.run_records(P, np.logspace(4, 6, 7), np.logspace(12, 13.5, 5), sigma=0.003)
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = report.analyze(path, tmp_path / "a", n_bootstrap=0, plots=False, top_k=4)
    assert out["n_points"] == 7
    assert out["n_midrun_points"] == 0
    assert not out["approach3"]["diagnostics"]["identifiable"]  # one budget: D = C / 6N
    out = report.analyze(
        path, tmp_path / "b", n_bootstrap=0, plots=False, top_k=4, allow_midrun=True
    )
    assert out["n_points"] == 35
    assert out["n_midrun_points"] == 28
    assert "a" in out["approach2"]
    assert "a" in out["approach1"]
