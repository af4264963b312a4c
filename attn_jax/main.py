"""Command-line entry: flags -> train_and_evaluate(config, workdir).

    python -m attn_jax.main --config experiments/lm.py:size=s --workdir runs/lm_s \
        --config.train.steps=100

The config file's `get_config(arg)` gets the text after the colon. The config is
locked, so an override naming a field that does not exist (a typo) is an error
before anything is built or compiled, and every registry choice (kernel, data
name, ...) is checked after the overrides (`attn_jax.validate`). Rerunning with
the same workdir resumes.
"""

from __future__ import annotations

import json
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from attn_jax import runtime, validate

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Experiment file and arg, e.g. experiments/lm.py:size=s.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (reused to resume).")
flags.mark_flags_as_required(["config", "workdir"])

_SHOWN = (
    "status",
    "steps",
    "unit",
    "units_seen",
    "final_train_loss",
    "best_eval_loss",
    "eval",
    "wall_seconds",
    "units_per_second",
    "mfu",
)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    # Overrides are applied by now: check every registry choice before any work.
    validate.check_config(_CONFIG.value, config_flags.get_config_filename(flags.FLAGS["config"]))
    from attn_jax.train.loop import train_and_evaluate  # imports JAX: after flag parsing

    record = train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    print(json.dumps({k: record.get(k) for k in _SHOWN}, indent=1))
    logging.info("Run record: %s/summary.json", _WORKDIR.value)
    return 1 if record["status"] == "diverged" else 0


def run() -> None:
    # The XLA:CPU allocator settings must be in place before the process starts.
    runtime.ensure_malloc_tunables()
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())
