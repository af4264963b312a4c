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
    assert kept.N.shape == (240,)
    assert kept.L.max() < 3.45 < data.L.max()


def test_results_jsonl_conventions(tmp_path):
    recs = synthetic.run_records(approach3.HOFFMANN_2022, [1e6, 1e7], [1e15, 1e16, 1e17], embed=5e5)
    recs.append({**recs[0], "run_id": "bad", "status": "diverged"})
    path = _write(tmp_path, recs)
    d = records.load_records(path, include_midrun=True)
    assert d.N.shape == (6,)
    assert d.run_ids == ["run0", "run1"]
    np.testing.assert_array_equal(d.run, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(d.final, [False, False, True] * 2)
    np.testing.assert_allclose(d.C, 6 * d.N * d.D)
    assert d.k_flops == 6.0
    t = records.load_records(path, params="total", flops="analytic", include_midrun=True)
    np.testing.assert_allclose(t.N, d.N + 5e5)
    np.testing.assert_allclose(t.C, [1.1e15, 1.1e16, 1.1e17] * 2)
    assert len(d.curves) == 2
    assert d.curves[0]["loss"].shape == (3,)
    with pytest.raises(ValueError, match="valid"):
        records.load_records(path, flops="6ND")


def _cosine_run(run_id, n, end, evals, final_loss, best):
    """A cosine run's record: evals_at_budget [(tokens, loss)], the last at its end."""
    return {
        "run_id": run_id,
        "status": "done",
        "params_non_embedding": n,
        "params_total": n,
        "tokens_seen": end,
        "flops_per_token": 6.0 * n,
        "train_flops": 6.0 * n * end,
        "schedule": "cosine",
        "schedule_final": True,
        "eval": {"loss": final_loss},
        "best_eval_loss": best,
        "evals_at_budget": [
            {"tokens": t, "flops": 6.0 * n * t, "eval_loss": v, "step": t // 1024} for t, v in evals
        ],
    }


def test_only_schedule_final_points_unless_midrun_asked(tmp_path):
    # The demo's old trap: a 2^17-token eval mid-way through a 2^18 cosine run is not the
    # loss of a 2^17-token run, and (N, 2^18) appeared twice with different losses.
    recs = [
        _cosine_run("a17", 1e4, 2**17, [(2**16, 2.9), (2**17, 2.5)], 2.5, 2.5),
        _cosine_run("a18", 1e4, 2**18, [(2**16, 3.0), (2**17, 2.7), (2**18, 2.3)], 2.3, 2.29),
    ]
    path = _write(tmp_path, recs)
    d = records.load_records(path)
    np.testing.assert_array_equal(d.D, [2**17, 2**18])  # one end point per run
    np.testing.assert_array_equal(d.L, [2.5, 2.3])  # the final eval, not best_eval_loss
    assert d.final.all()
    m = records.load(path, include_midrun=True)
    np.testing.assert_array_equal(m.D, [2**16, 2**17, 2**16, 2**17, 2**18])
    np.testing.assert_array_equal(m.final, [False, True, False, False, True])
    assert m.subset(m.final).D.tolist() == [2**17, 2**18]
    assert [c["loss"].tolist() for c in m.curves] == [[2.9, 2.5], [3.0, 2.7, 2.3]]
    # The fit refuses mid-run points unless asked (the statistics side's check).
    with pytest.raises(ValueError, match="mid-run"):
        approach3.fit_approach3(m.N, m.D, m.L, final=m.final)


def test_wsd_branches_are_final_and_their_parent_is_not(tmp_path):
    parent = _cosine_run("p", 1e4, 2**18, [(2**17, 2.8)], 2.6, 2.6)
    parent.update(schedule="wsd", schedule_final=False)
    branches = []
    for tokens, start, loss in ((2**17, 102, 2.55), (2**18, 205, 2.35)):
        b = _cosine_run(f"b{tokens}", 1e4, tokens, [(2**17, 2.8)], loss, loss)
        b.update(schedule="wsd", parent_run_id="p", init_from_step=start)
        b["evals_at_budget"][0]["step"] = 128  # 2^17 tokens: inherited from the parent
        branches.append(b)
    path = _write(tmp_path, [parent, *branches])
    d = records.load_records(path)
    assert d.D.tolist() == [2**17, 2**18]
    assert d.L.tolist() == [2.55, 2.35]
    assert [d.run_ids[r] for r in d.run] == ["b131072", "b262144"]
    m = records.load_records(path, include_midrun=True)
    # The parent's eval at 2^17 once (not again per branch) and its stable-phase end.
    assert sorted(zip(m.D.tolist(), m.L.tolist(), m.final.tolist())) == [
        (2**17, 2.55, True),
        (2**17, 2.8, False),
        (2**18, 2.35, True),
        (2**18, 2.6, False),
    ]
    # A branch's curve is the from-scratch run's: the parent's evals, then its own end.
    # (a single-eval branch, 2^17 here, has no curve: curves have >= 2 evals)
    assert [c.get("parent_run_id") for c in m.curves] == [None, "p"]
    assert [c["loss"].tolist() for c in m.curves] == [[2.8, 2.6], [2.8, 2.35]]
    with pytest.raises(ValueError, match="include_midrun"):
        records.load_records(_write(tmp_path, [parent]))


def test_csv_final_column(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("N,D,loss,final\n1e6,1e8,3.0,true\n1e6,2e8,2.9,false\n")
    assert records.load_csv(path).final.tolist() == [True, False]
    assert records.from_arrays([1.0, 2.0], [3.0, 2.0], D=[1.0, 1.0]).final.tolist() == [True] * 2


def test_history_and_run_directories(tmp_path):
    rec = synthetic.run_records(approach3.HOFFMANN_2022, [1e6], [1e15])[0]
    run = tmp_path / "sweep" / "r0"
    run.mkdir(parents=True)
    lines = [{"step": i, "tokens": t, "eval_loss": 4.0 - i} for i, t in enumerate([1e6, 2e6, 4e6])]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{cut")
    (run / "summary.json").write_text(json.dumps({**rec, "history": "metrics.jsonl"}))
    d = records.load(tmp_path / "sweep")
    np.testing.assert_allclose(d.curves[0]["loss"], [4.0, 3.0, 2.0])
    (run / "summary.json").write_text(json.dumps({**rec, "status": "failed"}))
    with pytest.raises(ValueError, match="status 'done'"):
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


def test_moved_sweep_finds_its_histories_beside_the_records(tmp_path):
    # Records name metrics.jsonl by the absolute path they were written at; a sweep
    # directory that was moved (or committed, as results/demo) must keep its curves.
    rec = synthetic.run_records(approach3.HOFFMANN_2022, [1e6], [1e15])[0]
    rec = {**rec, "run_id": "r0", "history": "/gone/sweep/trials/r0/metrics.jsonl"}
    trial = tmp_path / "trials" / "r0"
    trial.mkdir(parents=True)
    lines = [{"step": i, "tokens": t, "eval_loss": 4.0 - i} for i, t in enumerate([1e6, 2e6, 4e6])]
    (trial / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (tmp_path / "results.jsonl").write_text(json.dumps(rec) + "\n")
    d = records.load(tmp_path / "results.jsonl")
    np.testing.assert_allclose(d.curves[0]["loss"], [4.0, 3.0, 2.0])
