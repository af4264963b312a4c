"""A tiny experiment for sweep tests, trained by attn_jax.sweep.testing.fake_train.

Its keys mirror experiments/lm.py where sweeps touch them (model.size,
train.tokens, train.lr, seed, train.eval_at_tokens). It registers its own
family, "fake" (as a user's experiment file may): tokens, no analytic counts,
so the sweep runs its trials in spec order.
"""

import ml_collections

from attn_jax import configs, families


def _no_loop_family(config):
    raise NotImplementedError(
        "The fake family is trained only by attn_jax.sweep.testing.fake_train."
    )


families.register("fake", "tokens", _no_loop_family)

SIZES = {
    "xs": dict(d_model=16, num_layers=1),
    "s": dict(d_model=32, num_layers=2),
    "m": dict(d_model=64, num_layers=2),
    "l": dict(d_model=128, num_layers=3),
}


def get_config(arg=None):
    arg = configs.parse_arg(arg, size="s", smoke=False)
    if arg.size not in SIZES:
        raise ValueError(f"Unknown size {arg.size!r}; valid: {', '.join(SIZES)}.")
    config = ml_collections.ConfigDict()
    config.experiment = "fake"
    config.family = "fake"
    config.seed = 0
    config.model = ml_collections.ConfigDict(dict(size=arg.size, **SIZES[arg.size]))
    config.train = ml_collections.ConfigDict(
        dict(steps=3 if arg.smoke else 5, tokens=0, batch_size=2, seq_len=8, lr=1e-3)
    )
    config.train.eval_at_tokens = ()
    # The WSD branch keys of experiments/lm.py (attn_jax.sweep.designs.wsd_branches).
    config.train.update(
        schedule="cosine", decay_fraction=0.2, keep_steps=(), init_from="", init_from_step=0
    )
    config.fake = ml_collections.ConfigDict(
        dict(
            step_seconds=0.0,
            crash_attempts=0,
            diverge=False,
            diverge_at_step=0,
            hard_exit=False,
            pause_at_step=0,
            notify_fifo="",
            pause_env="",
        )
    )
    return config
