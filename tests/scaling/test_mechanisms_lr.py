"""analysis/mechanisms_lr.py: the LR multiplier per mechanism, from run records only."""

import json
import os

import pytest

from attn_jax import configs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write(path, losses):
    """losses: (mechanism, size, multiplier) -> held-out loss, as finished sweep records."""
    lines = [
        json.dumps(
            {
                "status": "done",
                "eval": {"loss": loss},
                "sweep": {"tags": {"mechanism": m, "size": s, "lr_multiplier": x}},
            }
        )
        for (m, s, x), loss in losses.items()
    ]
    lines.append(json.dumps({"status": "failed", "sweep": {"tags": {"mechanism": "linear"}}}))
    (path / "results.jsonl").write_text("\n".join(lines) + "\n")


def test_the_mean_over_sizes_chooses_and_the_grid_edge_is_flagged(tmp_path):
    cli = configs.import_file(os.path.join(REPO, "analysis/mechanisms_lr.py"))
    mults = (0.25, 0.5, 1.0, 2.0)
    losses = {}
    for i, size in enumerate(("6xs", "4xs")):
        # linear: a bowl at x0.5 (6xs alone prefers x1: the mean decides)
        bowl = {0.25: 2.40, 0.5: 2.30, 1.0: 2.35, 2.0: 2.50}
        if size == "6xs":
            bowl = {0.25: 2.40, 0.5: 2.34, 1.0: 2.33, 2.0: 2.50}
        for x in mults:
            losses[("linear", size, x)] = bowl[x] - 0.1 * i
            # performer: still falling at the largest LR of the grid
            losses[("performer", size, x)] = 2.6 - 0.1 * mults.index(x) - 0.1 * i
    losses[("performer", "3.25xs", 1.0)] = 1.0  # a size missing LRs does not vote
    _write(tmp_path, losses)
    assert cli.main([str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    out = json.loads((tmp_path / "out" / "mechanisms_lr.json").read_text())["choices"]
    assert out["linear"]["best_multiplier"] == 0.5
    assert out["linear"]["best_per_size"] == {"6xs": 1.0, "4xs": 0.5}
    assert not out["linear"]["at_edge"]
    assert out["linear"]["gain_vs_1"] == pytest.approx((2.33 + 2.25) / 2 - (2.34 + 2.20) / 2)
    assert out["performer"]["best_multiplier"] == 2.0
    assert out["performer"]["at_edge"]
    assert out["performer"]["sizes"] == ["6xs", "4xs"]
    md = (tmp_path / "out" / "mechanisms_lr.md").read_text()
    assert "Chosen: x2 (at the grid's edge)" in md
    assert (tmp_path / "out" / "mechanisms_lr.png").exists()


def test_no_tagged_records_is_an_error(tmp_path):
    cli = configs.import_file(os.path.join(REPO, "analysis/mechanisms_lr.py"))
    (tmp_path / "results.jsonl").write_text(json.dumps({"status": "done"}) + "\n")
    with pytest.raises(SystemExit, match="no finished runs with mechanism and lr_multiplier"):
        cli.main([str(tmp_path)])
