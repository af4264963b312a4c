"""A 2-layer attention-only LM trained on repeated random tokens grows an induction head (slow)."""

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx

from attn_jax.interp import induction
from attn_jax.nn import Attention, Embed, Norm

V, D, L, N, n, B = 64, 64, 2, 4, 16, 32


class AttentionOnlyLM(nnx.Module):
    """Embed -> L pre-norm causal RoPE attention layers with residuals -> tied head (no MLPs)."""

    def __init__(self, rngs):
        self.embed = Embed(V, D, rngs=rngs)
        self.norms = nnx.List([Norm(D) for _ in range(L)])
        self.layers = nnx.List(
            [Attention(D, N, causal=True, position="rope", rngs=rngs) for _ in range(L)]
        )
        self.final_norm = Norm(D)

    def __call__(self, tokens_BT):
        h_BTD = self.embed(tokens_BT)
        for norm, attn in zip(self.norms, self.layers):
            h_BTD = h_BTD + attn(norm(h_BTD))
        return self.embed.attend(self.final_norm(h_BTD))


def train(model, steps: int):
    graphdef, params = nnx.split(model)
    tx = optax.adam(3e-3)

    @jax.jit
    def step(params, opt, key):
        r_Bn = jax.random.randint(key, (B, n), 0, V)
        x_BT = jnp.concatenate([r_Bn, r_Bn], axis=1)

        def loss(p):  # next-token loss on the second copy, the predictable half
            logits = nnx.merge(graphdef, p)(x_BT[:, :-1])
            return optax.softmax_cross_entropy_with_integer_labels(
                logits[:, n:], x_BT[:, n + 1 :]
            ).mean()

        updates, opt = tx.update(jax.grad(loss)(params), opt, params)
        return optax.apply_updates(params, updates), opt

    opt = tx.init(params)
    for key in jax.random.split(jax.random.key(0), steps):
        params, opt = step(params, opt, key)
    return nnx.merge(graphdef, params)


@pytest.mark.slow
def test_induction_head_forms():
    # ~25 s on the 2-core CPU at load 7 (2026-12-02); scores 0.99 by step 200.
    model = AttentionOnlyLM(nnx.Rngs(0))
    before = induction.model_induction_scores(model, n=n, batch=8, vocab_size=V, seed=1)
    assert max(s.max() for s in before.values()) < 0.2
    trained = train(model, steps=300)
    after = induction.model_induction_scores(trained, n=n, batch=8, vocab_size=V, seed=1)
    assert after["layers.1"].max() > 0.5, after
