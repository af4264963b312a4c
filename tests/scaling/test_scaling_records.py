"""Run records and CSVs -> arrays, with both parameter and FLOP conventions."""

import json
import pathlib

import numpy as np
import pytest

from attn_jax.scaling import approach3, records, synthetic

DATA = pathlib.Path(__file__).parents[1] / "data" / "chinchilla_svg_extracted.csv"


def _write(tmp_path, recs):
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def test_chinchilla_csv():
    data = records.load_csv(DATA)
    assert data.N.shape == (245,)
    np.testing.assert_allclose(data.C, 6 * data.N * data.D)
    kept = records.load_csv(DATA, drop_highest=5)
    assert kept.N.shape == (240,) and kept.L.max() < 3.45 < data.L.max()


def test_results_jsonl_conventions(tmp_path):
    recs = synthetic.run_records(approach3.HOFFMANN_2022, [1e6, 1e7], [1e15, 1e16, 1e17], embed=5e5)
    recs.append({**recs[0], "run_id": "bad", "status": "diverged"})
    path = _write(tmp_path, recs)
    d = records.load_records(path)
    assert d.N.shape == (6,) and d.run_ids == ["run0", "run1"]  # diverged run left out
    np.testing.assert_array_equal(d.run, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(d.C, 6 * d.N * d.D) and d.k_flops == 6.0
    t = records.load_records(path, params="total", flops="analytic")
    np.testing.assert_allclose(t.N, d.N + 5e5)
    np.testing.assert_allclose(t.C, [1.1e15, 1.1e16, 1.1e17] * 2)
    assert len(d.curves) == 2 and d.curves[0]["loss"].shape == (3,)
    with pytest.raises(ValueError, match="valid"):
        records.load_records(path, flops="6ND")


def test_history_and_run_directories(tmp_path):
    rec = synthetic.run_records(approach3.HOFFMANN_2022, [1e6], [1e15])[0]
    run = tmp_path / "sweep" / "r0"
    run.mkdir(parents=True)
    lines = [{"step": i, "tokens": t, "eval_loss": 4.0 - i} for i, t in enumerate([1e6, 2e6, 4e6])]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{cut")
    (run / "summary.json").write_text(json.dumps({**rec, "history": "metrics.jsonl"}))
    d = records.load(tmp_path / "sweep")
    np.testing.assert_allclose(d.curves[0]["loss"], [4.0, 3.0, 2.0])
    with pytest.raises(ValueError, match="status 'done'"):
        (run / "summary.json").write_text(json.dumps({**rec, "status": "failed"}))
        records.load(tmp_path / "sweep")


def test_read_history_of_the_training_loops_metrics(tmp_path):
    """metrics.jsonl as attn_jax.train writes it: eval rows are kind="eval" with "loss"."""
    rows = [
        {"step": 8, "kind": "train", "loss": 3.0, "tokens_seen": 1024},
        {"step": 8, "kind": "eval", "loss": 2.9, "tokens_seen": 1024},
        {"step": 16, "kind": "train", "loss": 2.5, "tokens_seen": 2048},
        {"step": 16, "kind": "eval", "loss": 2.4, "tokens_seen": 2048},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 24, "ki')
    hist = records.read_history(path)
    np.testing.assert_array_equal(hist["tokens"], [1024, 2048])
    np.testing.assert_array_equal(hist["loss"], [2.9, 2.4])  # train rows are not evals
