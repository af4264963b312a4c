"""Shared by tests/hf: small odd shapes of the three formats, and random parameters."""

import jax
import numpy as np
from flax import nnx

from attn_jax.hf import mapping

# Odd on purpose: 3 layers, width 72, 6 heads (H 12), F 100, vocabulary 1,000, 11 positions.
GPT2 = dict(
    model_type="gpt2",
    vocab_size=1000,
    n_embd=72,
    n_layer=3,
    n_head=6,
    n_inner=100,
    n_positions=11,
    resid_pdrop=0.0,
    embd_pdrop=0.0,
    attn_pdrop=0.0,
)
BERT = dict(
    model_type="bert",
    vocab_size=1000,
    hidden_size=72,
    num_hidden_layers=3,
    num_attention_heads=6,
    intermediate_size=100,
    max_position_embeddings=11,
    type_vocab_size=3,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
VIT = dict(
    model_type="vit",
    image_size=12,
    patch_size=4,
    num_channels=3,
    hidden_size=72,
    num_hidden_layers=3,
    num_attention_heads=6,
    intermediate_size=100,
    id2label={str(i): f"c{i}" for i in range(7)},
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
HF_CONFIGS = {"gpt2": GPT2, "bert": BERT, "vit": VIT}


def randomize(model, seed: int = 0, scale: float = 0.3) -> None:
    """Every parameter drawn afresh (biases and norms too: zeros and ones hide mapping bugs)."""
    params = mapping.flat_params(model)
    keys = jax.random.split(jax.random.key(seed), len(params))
    values = {
        name: np.asarray(scale * jax.random.normal(k, v.shape), np.float32)
        + (1.0 if name.endswith(".scale") else 0.0)
        for (name, v), k in zip(sorted(params.items()), keys, strict=True)
    }
    mapping.set_params(model, values)


def param_arrays(model) -> dict[str, np.ndarray]:
    return {k: np.asarray(v[...]) for k, v in mapping.flat_params(model).items()}


def build(fmt, cfg, seed: int = 0):
    model = fmt.model_class(cfg, rngs=nnx.Rngs(seed))
    randomize(model, seed)
    return model
