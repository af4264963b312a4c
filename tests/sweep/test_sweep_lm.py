"""The shipped sweeps resolve against the real LM experiment, and the smoke LM
gives the same records on every executor (the slow, end-to-end check)."""

import os

import pytest
from sweep_helpers import REPO, deterministic

from attn_jax.models import SIZES
from attn_jax.sweep import Sweep, SweepSpecError, Trial, load_sweep, resolve, run_sweep
from attn_jax.sweep.cli import main


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_demo_is_six_sizes_by_two_budgets():
    trials = resolve(load_sweep("sweeps/demo.py"))
    sizes = {t.trial.tags["size"] for t in trials}
    budgets = {t.trial.tags["tokens"] for t in trials}
    assert len(sizes) >= 6 and sizes <= set(SIZES)
    assert len(budgets) >= 2
    assert len(trials) == len(sizes) * len(budgets)
    for t in trials:
        assert t.config.model.size == t.trial.tags["size"]
        assert t.config.model.d_model == SIZES[t.trial.tags["size"]]["d_model"]


def test_lm_scaling_stages_resolve(capsys):
    lr = resolve(load_sweep("sweeps/lm_scaling.py:stage=lr"))
    by_size = {}
    for t in lr:
        by_size.setdefault(t.trial.tags["size"], []).append(t.config.train.lr)
    assert all(len(v) == 3 for v in by_size.values())
    # The guessed LR shrinks with width.
    middle = [sorted(v)[1] for v in by_size.values()]
    assert middle == sorted(middle, reverse=True)
    assert main(["plan", "sweeps/lm_scaling.py:stage=isoflop"]) == 0
    out = capsys.readouterr().out
    assert "lm_scaling_isoflop: 18 trials" in out
    with pytest.raises(SweepSpecError, match="run stage=lr first"):
        load_sweep("sweeps/lm_scaling.py:stage=isoflop,lr_from=/nonexistent")
    with pytest.raises(SweepSpecError, match="takes no arg"):
        load_sweep("sweeps/demo.py:stage=lr")


def test_unknown_lm_size_fails_before_training(tmp_path):
    sweep = Sweep("bad", "experiments/lm.py", [Trial("size=s"), Trial("size=xxxl")])
    with pytest.raises(SweepSpecError, match="unknown size 'xxxl'; valid sizes: 6xs"):
        run_sweep(sweep, str(tmp_path), progress=False)
    assert not os.path.exists(tmp_path / "trials")


def _smoke_sweep():
    trials = [
        Trial(
            overrides={"seed": seed, "train.progress_bar": False, "train.tensorboard": False},
            tags={"seed": seed},
        )
        for seed in (0, 1)
    ]
    return Sweep("smoke", "experiments/lm.py:smoke", trials)


@pytest.mark.slow
# ray.init forks (then execs) its daemons after the inline run started JAX here;
# JAX warns on any fork, but nothing JAX runs in those children.
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_smoke_lm_records_agree_across_executors(tmp_path):
    import ray

    records = {"inline": run_sweep(_smoke_sweep(), str(tmp_path / "inline"), progress=False)}
    records["local"] = run_sweep(
        _smoke_sweep(), str(tmp_path / "local"), executor="local", workers=2, progress=False
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        records["ray"] = run_sweep(
            _smoke_sweep(), str(tmp_path / "ray"), executor="ray", workers=2, progress=False
        )
    finally:
        ray.shutdown()
    assert [r["status"] for r in records["inline"]] == ["done", "done"]
    assert records["inline"][0]["evals_at_budget"]  # the smoke logs evals at budgets
    assert deterministic(records["local"]) == deterministic(records["inline"])
    assert deterministic(records["ray"]) == deterministic(records["inline"])
    for name in ("local", "ray"):
        got = [r["evals_at_budget"] for r in records[name]]
        assert got == [r["evals_at_budget"] for r in records["inline"]], name
