"""analysis/data_efficiency.py reads run records only; sweeps/data_efficiency.py's design."""

import json
import os

import pytest

from attn_jax import configs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(rel):
    return configs.import_file(os.path.join(REPO, rel))


def _write(path, accs):
    """accs: (arch, n, seed) -> accuracy, written as finished sweep records."""
    lines = [
        json.dumps(
            {
                "status": "done",
                "eval": {"accuracy": a},
                "sweep": {"tags": {"arch": arch, "train_images": n, "seed": seed}},
            }
        )
        for (arch, n, seed), a in accs.items()
    ]
    lines.append(json.dumps({"status": "failed", "sweep": {"tags": {"arch": "vit"}}}))
    (path / "results.jsonl").write_text("\n".join(lines) + "\n")


def test_table_gap_and_crossover_come_from_the_records(tmp_path):
    cli = _load("analysis/data_efficiency.py")
    sizes = (1000, 3000, 10000, 30000)
    cnn = {1000: 0.70, 3000: 0.76, 10000: 0.80, 30000: 0.83}
    vit = {1000: 0.62, 3000: 0.72, 10000: 0.81, 30000: 0.86}  # crosses between 3k and 10k
    accs = {}
    for seed, jitter in ((0, -0.005), (1, 0.005)):
        for n in sizes:
            accs["vit", n, seed] = vit[n] + jitter
            accs["cnn", n, seed] = cnn[n] + jitter / 2
    _write(tmp_path, accs)
    out = cli.main([str(tmp_path), "--no-plots"])
    rows = {r["train_images"]: r for r in out["rows"]}
    assert rows[1000]["gap_pp"] == pytest.approx(-8.0)
    assert rows[30000]["vit"]["mean"] == pytest.approx(0.86)
    lo, hi = rows[1000]["gap_interval_pp"]
    assert lo < -8.0 < hi
    (cross,) = out["crossovers"]
    assert 3000 < cross["train_images"] < 10000
    assert cross["vit_better_after"]
    # log-linear interpolation: gap -4 at 3k, +1 at 10k -> 4/5 of the way in log n
    assert cross["train_images"] == pytest.approx(3000 * (10 / 3) ** 0.8, rel=1e-9)
    text = (tmp_path / "analysis" / "data_efficiency.md").read_text()
    assert "| 1,000 | 62.00 [" in text
    assert "Crossover near" in text


def test_no_crossover_is_said_and_a_missing_arch_is_an_error(tmp_path):
    cli = _load("analysis/data_efficiency.py")
    _write(
        tmp_path,
        {
            ("vit", 1000, 0): 0.5,
            ("cnn", 1000, 0): 0.6,
            ("vit", 3000, 0): 0.6,
            ("cnn", 3000, 0): 0.65,
        },
    )
    out = cli.main([str(tmp_path), "--no-plots"])
    assert out["crossovers"] == []
    assert out["gap_shrinks"]
    assert "stays behind" in (tmp_path / "analysis" / "data_efficiency.md").read_text()
    _write(tmp_path, {("vit", 1000, 0): 0.5})
    with pytest.raises(SystemExit, match="cnn"):
        cli.main([str(tmp_path), "--no-plots"])


def test_sweep_is_both_archs_at_every_size_with_one_budget():
    sweep = _load("sweeps/data_efficiency.py").get_sweep("seeds=0+1")
    assert len(sweep.trials) == 2 * 2 * 5
    by_arch = {}
    for t in sweep.trials:
        assert t.overrides["train.examples"] == 1000 * 128
        by_arch.setdefault(t.tags["arch"], set()).add(t.overrides["data.max_train"])
    assert by_arch == {
        "vit": {1000, 3000, 10000, 30000, 60000},
        "cnn": {1000, 3000, 10000, 30000, 60000},
    }
