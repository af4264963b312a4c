"""The designs: grid, nested grid, IsoFLOP selection, LR grids."""

import pytest

from attn_jax.sweep import SweepSpecError, designs

PER_TOKEN = {"a": 1e3, "b": 4e3, "c": 1.6e4, "d": 6.4e4}


def test_grid_covers_sizes_budgets_seeds():
    trials = designs.grid(["a", "b"], [2e3, 1e3], seeds=(0, 1))
    assert len(trials) == 8
    points = {(t.tags["size"], t.tags["tokens"], t.tags["seed"]) for t in trials}
    assert len(points) == 8
    t = trials[0]
    assert t.arg == "size=a"
    assert t.overrides == {"train.tokens": 1000, "seed": 0}


def test_nested_grid_is_one_run_per_size_with_evals_at_each_budget():
    trials = designs.grid(["a", "b"], [4e3, 1e3, 2e3], nested=True)
    assert [t.tags["tokens"] for t in trials] == [4000, 4000]
    assert trials[0].overrides["train.eval_at_tokens"] == (1000, 2000, 4000)


def test_isoflop_keeps_sizes_within_tolerance():
    trials = designs.isoflop(
        [1e8], list(PER_TOKEN), 0.05, PER_TOKEN.__getitem__, tokens_per_step=1000
    )
    # a: 1e5 tokens = 100 steps, b: 25 steps, c: 6.25 -> 6 steps (4% off), d: 1.56 -> 2 (28% off)
    assert [t.tags["size"] for t in trials] == ["a", "b", "c"]
    for t in trials:
        assert t.overrides["train.tokens"] % 1000 == 0
        assert abs(t.tags["flops"] - 1e8) <= 0.05 * 1e8
        assert t.tags["flops"] == PER_TOKEN[t.tags["size"]] * t.tags["tokens"]


def test_isoflop_token_range_and_min_sizes():
    trials = designs.isoflop([1e8], list(PER_TOKEN), 0.3, PER_TOKEN.__getitem__, max_tokens=5e4)
    assert [t.tags["size"] for t in trials] == ["b", "c", "d"]
    with pytest.raises(SweepSpecError, match="budget 1e\\+08 FLOPs keeps 3 of sizes"):
        designs.isoflop(
            [1e8],
            list(PER_TOKEN),
            0.3,
            PER_TOKEN.__getitem__,
            max_tokens=5e4,
            min_sizes_per_budget=4,
        )
    with pytest.raises(SweepSpecError, match="keeps 0 of sizes"):
        designs.isoflop([1.0], ["d"], 0.01, PER_TOKEN.__getitem__, tokens_per_step=100)
    with pytest.raises(SweepSpecError, match="no size of \\['d'\\] lands within 1%"):
        designs.isoflop(
            [1.0], ["d"], 0.01, PER_TOKEN.__getitem__, tokens_per_step=100, min_sizes_per_budget=0
        )


def test_lr_grid_forms():
    same = designs.lr_grid(["a", "b"], [1e-3, 3e-3])
    assert [(t.tags["size"], t.overrides["train.lr"]) for t in same] == [
        ("a", 1e-3),
        ("a", 3e-3),
        ("b", 1e-3),
        ("b", 3e-3),
    ]
    per = designs.lr_grid(["a", "b"], {"a": [1e-2], "b": [1e-3, 2e-3]}, overrides={"x": 1})
    assert [t.overrides for t in per] == [
        {"x": 1, "train.lr": 1e-2},
        {"x": 1, "train.lr": 1e-3},
        {"x": 1, "train.lr": 2e-3},
    ]
    scaled = designs.lr_grid(["a"], lambda size: [0.5, 1.0])
    assert len(scaled) == 2
    with pytest.raises(SweepSpecError, match="no learning rates given for size 'b'"):
        designs.lr_grid(["a", "b"], {"a": [1e-3]})


def test_best_lr_picks_the_lowest_loss_per_size():
    records = [
        {"status": "done", "best_eval_loss": 2.0, "sweep": {"tags": {"size": "a", "lr": 1e-3}}},
        {"status": "done", "best_eval_loss": 1.5, "sweep": {"tags": {"size": "a", "lr": 3e-3}}},
        {
            "status": "diverged",
            "best_eval_loss": None,
            "sweep": {"tags": {"size": "a", "lr": 1e-2}},
        },
        {"status": "done", "best_eval_loss": 1.0, "sweep": {"tags": {"size": "b", "lr": 1e-3}}},
    ]
    assert designs.best_lr(records) == {"a": 3e-3, "b": 1e-3}
