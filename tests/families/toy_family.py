"""A toy family in the examples unit, registered by the seam tests (not by attn_jax).

Softmax regression on Gaussian blobs: C classes in D dimensions, `size` picks the
input width. Everything a family provides is here in ~80 lines, so it is also the
smallest worked example of the protocol (attn_jax/families/base.py).
"""

from __future__ import annotations

import ml_collections
import numpy as np
from flax import nnx

from attn_jax import configs, families
from attn_jax.data.examples import ExampleIterator, eval_batches
from attn_jax.families import base

NAME = "toy_blobs"
SIZES = {"a": dict(width=4), "b": dict(width=8)}
CLASSES = 3
N_TRAIN, N_EVAL = 96, 50  # 50 eval examples in batches of 16: the last one is padded


def _blobs(width: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(123).normal(0, 3, (CLASSES, width))
    labels = rng.integers(0, CLASSES, n)
    x = centers[labels] + rng.normal(0, 1, (n, width))
    return {"x": x.astype(np.float32), "label": labels.astype(np.int32)}


def counts(config) -> dict:
    width = int(config.model.width)
    params = width * CLASSES + CLASSES
    return {
        "params_total": params,
        "params_embedding": 0,
        "params_non_embedding": params,
        "flops_per_unit": 6.0 * width * CLASSES,  # 2 DC forward, x3 for training
    }


def make(config) -> base.Family:
    width = int(config.model.width)

    def model(rngs):
        return nnx.Linear(width, CLASSES, rngs=rngs)

    def data(*, batch_size, seed, process_index=0, process_count=1):
        kw = dict(batch_size=batch_size, process_index=process_index, process_count=process_count)
        train = ExampleIterator(_blobs(width, N_TRAIN, 0), seed=seed, **kw)
        evals = eval_batches(_blobs(width, N_EVAL, 1), **kw)
        return train, lambda: evals

    def loss(model, batch, rng):
        del rng
        return base.classification_loss(model(batch["x"]), batch["label"], batch["valid"])

    def eval_sums(model, batch):
        return base.classification_sums(model(batch["x"]), batch["label"], batch["valid"])

    def sizes(params):
        out = counts(config)
        base.check_param_count(params, out["params_total"], "toy_family.counts")
        return out

    def decode_eval(model, final):  # a host-side metric, as BLEU would be
        batch = _blobs(width, N_EVAL, 1)
        pred = np.asarray(model(batch["x"])).argmax(-1)
        return {"host_accuracy": float((pred == batch["label"]).mean()), "final": float(final)}

    return base.Family(
        name=NAME,
        unit="examples",
        model=model,
        data=data,
        loss=loss,
        eval_sums=eval_sums,
        eval_finalize=base.classification_finalize,
        sizes=sizes,
        decode_eval=decode_eval,
    )


def register() -> None:
    families.register(NAME, "examples", make, counts=counts)


def get_config(arg=None) -> ml_collections.ConfigDict:
    """The toy experiment (tests/families/toy_experiment.py loads it by path)."""
    register()
    arg = configs.parse_arg(arg, size="a")
    config = ml_collections.ConfigDict()
    config.experiment = "toy"
    config.family = NAME
    config.seed = 0
    config.model = ml_collections.ConfigDict(dict(size=arg.size, **SIZES[arg.size]))
    config.data = ml_collections.ConfigDict(dict(name="blobs"))
    config.train = configs.train_config(
        unit="examples",
        batch_size=16,
        steps=0,
        examples=320,  # 20 steps of 16
        eval_at_examples=(160,),
        lr=0.1,
        warmup_steps=2,
        log_every=5,
        checkpoint_every=10,
        progress_bar=False,
        tensorboard=False,
        report_mfu=False,
        async_checkpoint=False,
    )
    return config
