"""Shared pieces for the train tests: a tiny stand-in NNX LM, a train config, batches,
and the real LM's smoke config without bar, TensorBoard, MFU peak or budget evals."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from attn_jax import configs
from attn_jax.families import base as family_base
from attn_jax.train import mesh as mesh_lib
from attn_jax.train import optim
from attn_jax.train import step as step_lib
from attn_jax.train.state import create_train_state

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = {
    "train.progress_bar": False,
    "train.tensorboard": False,
    "train.report_mfu": False,
    "train.eval_at_tokens": (),
}


def smoke_config(overrides) -> ml_collections.ConfigDict:
    """experiments/lm.py:smoke with QUIET and then `overrides` applied."""
    config = configs.load_config(os.path.join(REPO, "experiments/lm.py:smoke"))
    return configs.apply_overrides(config, {**QUIET, **overrides})


class TinyLM(nnx.Module):
    """Embed -> tanh MLP -> vocab head; the DecoderLM call signature, no attention."""

    def __init__(self, vocab: int = 32, d: int = 16, *, rngs: nnx.Rngs):
        self.embed = nnx.Embed(vocab, d, rngs=rngs)
        self.hidden = nnx.Linear(d, 2 * d, rngs=rngs)
        self.head = nnx.Linear(2 * d, vocab, rngs=rngs)

    def __call__(self, inputs_BT, *, deterministic=True, dropout_rng=None):
        x_BTD = self.embed(inputs_BT)
        h_BTF = jnp.tanh(self.hidden(x_BTD))
        if not deterministic:
            keep_BTF = jax.random.bernoulli(dropout_rng, 0.9, h_BTF.shape)
            h_BTF = jnp.where(keep_BTF, h_BTF / 0.9, 0.0)
        return self.head(h_BTF).astype(jnp.float32)


def tiny_model_fn(rngs):
    return TinyLM(rngs=rngs)


def make_train_config():
    return ml_collections.ConfigDict(
        dict(
            batch_size=8,
            seq_len=8,
            steps=6,
            tokens=0,
            lr=3e-2,
            schedule="cosine",
            warmup_steps=2,
            min_lr_ratio=0.1,
            weight_decay=0.1,
            b1=0.9,
            b2=0.95,
            eps=1e-8,
            grad_clip=1.0,
            label_smoothing=0.0,
        )
    )


def make_batches(n, batch_size=8, seq_len=8, vocab=32, seed=0):
    """n deterministic batches of a learnable sequence (next = current + 1 mod V)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        start = rng.integers(0, vocab, size=(batch_size, 1))
        seq = (start + np.arange(seq_len + 1)[None, :]) % vocab
        out.append(
            {
                "inputs": seq[:, :-1].astype(np.int32),
                "targets": seq[:, 1:].astype(np.int32),
                "weights": np.ones((batch_size, seq_len), np.float32),
            }
        )
    return out


def token_loss(label_smoothing: float = 0.0):
    """The LM family's loss for a model taking `inputs` (what families.lm builds)."""

    def loss(model, batch, rng):
        logits = model(batch["inputs"], deterministic=rng is None, dropout_rng=rng)
        return family_base.classification_loss(
            logits, batch["targets"], batch["weights"], label_smoothing
        )

    return loss


def token_eval_sums(model, batch):
    logits = model(batch["inputs"], deterministic=True)
    return family_base.classification_sums(logits, batch["targets"], batch["weights"])


def setup_steps(model_fn, train_config, devices, fsdp=1, dropout=False, seed=0):
    """(state, CompiledSteps) for `model_fn` on a mesh over `devices`."""
    mesh = mesh_lib.make_mesh(devices, fsdp=fsdp)
    tx, sched = optim.make_optimizer(train_config, train_config.steps)
    graphdef, state, shardings = create_train_state(model_fn, tx, seed, mesh)
    steps = step_lib.CompiledSteps(
        step_lib.make_train_step(
            graphdef, tx, sched, token_loss(train_config.label_smoothing), dropout=dropout
        ),
        step_lib.make_eval_step(graphdef, token_eval_sums),
        shardings,
        mesh,
    )
    return state, steps


def run_steps(state, steps, batches):
    """Runs the jitted step over `batches` under the transfer guard; returns (state, losses)."""
    metrics_list = []
    for batch in batches:
        batch = mesh_lib.device_put_batch(batch, steps.batch_sharding)
        with jax.transfer_guard("disallow"):
            state, metrics = steps.train(state, batch)
        metrics_list.append(metrics)
    losses = [float(m["loss"]) for m in jax.device_get(metrics_list)]
    return state, losses
