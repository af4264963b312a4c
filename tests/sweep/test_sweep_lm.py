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


def test_demo_is_isoflop_profiles_of_wsd_branches():
    import numpy as np

    from attn_jax.models import flops

    trials = resolve(load_sweep("sweeps/demo.py"))
    by_id = {t.run_id: t for t in trials}
    branches = [t for t in trials if t.parent_run_id is not None]
    assert branches
    assert len(trials) == len(branches) + len({t.trial.tags["size"] for t in trials})
    profiles: dict[float, set[str]] = {}
    n_of, d_all, depths = {}, [], set()
    for t in trials:
        size = t.trial.tags["size"]
        assert t.config.model.size == size
        assert size in SIZES
        assert t.config.model.d_model == SIZES[size]["d_model"]
        assert t.config.train.schedule == "wsd"
        n_of[size] = flops.param_counts(t.config.model)["non_embedding"]
        depths.add(t.config.model.num_layers)
    for b in branches:
        parent = by_id[b.parent_run_id]
        assert parent.trial.tags["size"] == b.trial.tags["size"]
        assert parent.config.train.decay_fraction == 0.0
        assert b.config.train.decay_fraction == 0.2
        assert b.trial.branch_step in parent.config.train.keep_steps
        profiles.setdefault(b.trial.tags["flop_budget"], set()).add(b.trial.tags["size"])
        d_all.append(b.trial.tags["tokens"])
        # Long enough to leave a byte LM's early plateau (shorter runs sat off the law).
        per_step = b.config.train.batch_size * b.config.train.seq_len
        assert b.trial.tags["tokens"] >= 384 * per_step, b.trial.tags
        # D = C / (6 N), to a whole step
        c = 6 * n_of[b.trial.tags["size"]] * b.trial.tags["tokens"]
        assert abs(c / b.trial.tags["flop_budget"] - 1) < 0.05
    # The acceptance design: >= 3 budgets of >= 5 sizes (and a parabola's 3 at
    # every budget), N and D over 1.5 decades.
    assert sum(len(s) >= 5 for s in profiles.values()) >= 3
    assert all(len(s) >= 3 for s in profiles.values())
    assert np.log10(max(n_of.values()) / min(n_of.values())) >= 1.5
    assert np.log10(max(d_all) / min(d_all)) >= 1.5
    # One depth rule: a 1 -> 2 layer switch inside the ladder is a kink in L(N).
    assert len(depths) == 1


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
    with pytest.raises(SweepSpecError, match="unknown size 'xxxl'; valid sizes: .*6xs"):
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


def test_mechanisms_sweep_is_one_design_per_mechanism():
    from attn_jax.models import flops

    trials = resolve(load_sweep("sweeps/mechanisms.py"))
    # 6 mechanisms x 7 sizes x (1 stable + 4 branches), linear and Performer x 3 seeds
    assert len(trials) == 350
    by_mech: dict[str, list] = {}
    for t in trials:
        by_mech.setdefault(t.trial.tags["mechanism"], []).append(t)
    assert set(by_mech) == {"softmax", "local8", "local32", "linear", "performer", "mqa"}
    designs = set()
    for _mech, ts in by_mech.items():
        finals = [t for t in ts if t.parent_run_id is not None]
        seeds = sorted({t.trial.tags["seed"] for t in finals})
        assert seeds == list(range(3 if _mech in ("linear", "performer") else 1))
        # 7 sizes x 4 budgets per seed, each the end of its own schedule
        assert len(finals) == 28 * len(seeds)
        sizes_budgets = {(t.trial.tags["size"], t.trial.tags["tokens"]) for t in finals}
        assert len(sizes_budgets) == 28
        designs.add(tuple(sorted(sizes_budgets)))
    assert len(designs) == 1  # the same sizes x budgets for every mechanism
    # The kernel options reach the configs, and the FLOPs per token follow the kernel.
    fpt = {
        m: flops.flops_per_token(ts[0].config.model, ts[0].config.train.seq_len)
        for m, ts in by_mech.items()
    }
    model = {m: ts[0].config.model for m, ts in by_mech.items()}
    assert model["performer"].num_features == 64
    assert model["local8"].window == 8
    assert model["mqa"].num_kv_heads == 1
    assert model["softmax"].kernel == "xla"
    assert fpt["local8"] < fpt["local32"] < fpt["softmax"]
    assert fpt["mqa"] < fpt["softmax"]
    # Precision is pinned (the experiments' default "auto" would be bf16 on a TPU).
    assert {t.config.model.dtype for t in trials} == {"float32"}
    sub = load_sweep("sweeps/mechanisms.py:mechanisms=softmax+mqa")
    assert {t.tags["mechanism"] for t in sub.trials} == {"softmax", "mqa"}
    with pytest.raises(SweepSpecError, match="Unknown mechanism 'flash'"):
        load_sweep("sweeps/mechanisms.py:mechanisms=softmax+flash")
    # A staged run: max_seeds caps the seeds; seed 0's run ids do not depend on it.
    staged = resolve(load_sweep("sweeps/mechanisms.py:mechanisms=linear,max_seeds=1"))
    assert {t.trial.tags["seed"] for t in staged} == {0}
    assert {t.run_id for t in staged} == {
        t.run_id
        for t in trials
        if t.trial.tags["mechanism"] == "linear" and t.trial.tags["seed"] == 0
    }
    with pytest.raises(SweepSpecError, match="max_seeds"):
        load_sweep("sweeps/mechanisms.py:mechanisms=linear,max_seeds=-1")


def test_mechanisms_lr_grid_brackets_the_study_lr():
    """sweeps/mechanisms_lr.py: per mechanism and size, multiples of the study's LR
    around x1, each a WSD run to the study's second budget (its x1 point is the
    study's own 2^21 schedule-final point, run from scratch)."""
    from attn_jax import configs

    multiplier = configs.import_file("sweeps/mechanisms.py").LR_MULTIPLIER
    grid = resolve(load_sweep("sweeps/mechanisms_lr.py"))
    assert len(grid) == 2 * 3 * 4
    assert {t.trial.tags["mechanism"] for t in grid} == {"linear", "performer"}
    for mech in ("linear", "performer"):
        study = resolve(load_sweep(f"sweeps/mechanisms.py:mechanisms={mech}"))
        branch = next(
            t for t in study if t.trial.tags["size"] == "4xs" and t.trial.tags["tokens"] == 2**21
        )
        # the grid point at the study's multiplier is the study's own 2^21 point
        same = next(
            t
            for t in grid
            if t.trial.tags["mechanism"] == mech
            and t.trial.tags["size"] == "4xs"
            and t.trial.tags["lr_multiplier"] == multiplier[mech]
        )
        for key in ("train.lr", "train.tokens", "train.schedule", "train.decay_fraction"):
            assert same.config[key] == branch.config[key], (mech, key)
        assert same.config.model == branch.config.model
    with pytest.raises(SweepSpecError, match="Unknown mechanism"):
        load_sweep("sweeps/mechanisms_lr.py:mechanisms=flash")
