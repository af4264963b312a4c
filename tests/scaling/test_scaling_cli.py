"""analysis/fit.py end to end on a small synthetic sweep written to tmp_path."""

import json
import pathlib

import numpy as np

from attn_jax import configs
from attn_jax.scaling import approach3, synthetic

ROOT = pathlib.Path(__file__).parents[2]


def _cli():
    return configs.import_file(str(ROOT / "analysis" / "fit.py"))


def test_fit_cli_end_to_end(tmp_path, capsys):
    p = approach3.HOFFMANN_2022
    sizes = np.logspace(6.5, 8.5, 7)
    budgets = np.logspace(15.5, 17.5, 5)
    N = np.tile(sizes, len(budgets))
    D = np.repeat(budgets, len(sizes)) / (6 * N)
    recs = synthetic.final_run_records(p, N, D, sigma=0.003, seed=0)
    path = tmp_path / "sweep" / "results.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "fit"
    result = _cli().main(
        [str(path.parent), "--out", str(out), "--bootstrap", "6", "--starts", "4", "--dpi", "50"]
    )
    printed = capsys.readouterr().out
    tail = printed[printed.index("Allocation exponent a") :]
    for i in (1, 2, 3):
        assert f"Approach {i}" in tail, tail
    assert tail.count("a = ") >= 3, tail
    assert "Held out the largest size" in tail
    assert "% mean" in tail
    assert str(out / "loss_vs_N.png") in tail
    fit = json.loads((out / "fit.json").read_text())
    assert fit == json.loads(json.dumps(result))
    assert fit["n_points"] == 35
    assert fit["n_runs"] == 35
    assert fit["n_midrun_points"] == 0
    got = fit["approach3"]["params"]
    assert abs(got["alpha"] - p["alpha"]) < 0.1
    assert abs(got["beta"] - p["beta"]) < 0.1
    assert 0.0 < fit["approach3"]["derived"]["a"] < 1.0
    assert fit["bootstrap"]["summary"]["alpha"]["se"] > 0
    assert "a" in fit["approach2"]
    assert "a" in fit["approach1"]
    for name in ("loss_vs_N", "loss_vs_C", "isoflop", "frontier", "residuals", "learning_curves"):
        for ext in ("png", "svg", "csv"):
            assert (out / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    report = (out / "report.md").read_text()
    for section in ("The law", "three ways", "Prediction check", "What the diagnostics say"):
        assert section in report, section
    for key in ("approach1", "approach2", "approach3"):
        e = fit["exponents"][key]
        assert e["lo"] <= e["a"] <= e["hi"], (key, e)
