"""Shared bits of the sweep tests: the fake experiment and sweep builders."""

import os

from attn_jax.sweep import Sweep, designs

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_EXPERIMENT = os.path.join(HERE, "fake_experiment.py")
FAKE_TRAINER = "attn_jax.sweep.testing:fake_train"
# Record fields every executor must reproduce exactly (not wall time, not paths).
DETERMINISTIC = (
    "run_id",
    "status",
    "final_train_loss",
    "best_eval_loss",
    "params_total",
    "params_non_embedding",
    "tokens_seen",
    "train_flops",
    "config",
)


def deterministic(records):
    return [{k: r[k] for k in DETERMINISTIC} for r in records]


def fake_sweep(sizes=("xs", "s", "m"), budgets=(32, 64), overrides=None, name="fake") -> Sweep:
    trials = designs.grid(list(sizes), list(budgets), overrides=overrides)
    return Sweep(name=name, experiment=f"{FAKE_EXPERIMENT}:smoke", trials=trials)


def write_spec(path, body: str) -> str:
    """Writes a sweep file over the fake experiment; `body` is get_sweep's return expr."""
    path.write_text(
        "from attn_jax.sweep import Sweep, Trial, designs\n"
        f"EXPERIMENT = {FAKE_EXPERIMENT + ':smoke'!r}\n\n"
        f"def get_sweep():\n    return {body}\n"
    )
    return str(path)


REPO = os.path.dirname(os.path.dirname(HERE))
