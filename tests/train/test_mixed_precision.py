"""bf16 mixed precision (model.dtype=bfloat16): bf16 matmuls, f32 master weights and
optimizer state, f32 softmax and loss; the held-out loss follows f32's."""

import jax
import jax.numpy as jnp
import pytest
from train_helpers import smoke_config

from attn_jax.train.loop import train_and_evaluate

STEPS = {"train.steps": 40, "train.log_every": 40, "train.checkpoint_every": 0}


def test_bf16_loss_follows_f32_and_weights_stay_f32(tmp_path):
    records = {}
    for dtype in ("float32", "bfloat16"):
        config = smoke_config({**STEPS, "model.dtype": dtype, "train.eval_at_tokens": ()})
        records[dtype] = train_and_evaluate(config, str(tmp_path / dtype))
    f32, bf16 = records["float32"]["eval"]["loss"], records["bfloat16"]["eval"]["loss"]
    assert records["float32"]["eval"]["loss"] < 5.0  # it learned something in 40 steps
    assert abs(bf16 - f32) < 0.02, (f32, bf16)


def _matmul_operands(config):
    """The operand types of every StableHLO dot_general of the model's forward pass."""
    from flax import nnx

    from attn_jax import families

    model = families.get_family(config).model(nnx.Rngs(params=0, dropout=0))
    tokens = jnp.zeros((2, 16), jnp.int32)
    graphdef, state = nnx.split(model)
    hlo = jax.jit(lambda st: nnx.merge(graphdef, st)(tokens, deterministic=True)).lower(state)
    dots = [line.rsplit(":", 1)[1] for line in hlo.as_text().splitlines() if "dot_general" in line]
    assert dots
    return [d.split("->")[0] for d in dots]


@pytest.mark.parametrize(
    ("platform", "expected"), [("cpu", "f32"), ("tpu", "bf16"), ("gpu", "bf16")]
)
def test_auto_dtype_is_bf16_on_accelerators_and_f32_on_cpu(monkeypatch, platform, expected):
    """The experiments' default model.dtype "auto" resolves on the default backend."""
    from attn_jax.models import lm
    from attn_jax.train import record

    monkeypatch.setattr(lm.jax, "default_backend", lambda: platform)
    config = smoke_config({})
    assert config.model.dtype == "auto"  # experiments/lm.py's default
    operands = _matmul_operands(config)
    other = {"f32": "bf16", "bf16": "f32"}[expected]
    assert all(expected in o and other not in o for o in operands), "\n".join(operands)
    assert (
        record.make_record(config, status="done")["compute_dtype"]
        == {
            "f32": "float32",
            "bf16": "bfloat16",
        }[expected]
    )
    with pytest.raises(ValueError, match="Unknown dtype 'float16'; valid: float32, bfloat16, auto"):
        lm.compute_dtype("float16")


def test_bf16_matmuls_on_f32_master_weights():
    from flax import nnx

    from attn_jax import families

    config = smoke_config({"model.dtype": "bfloat16"})
    fns = families.get_family(config)
    model = fns.model(nnx.Rngs(params=0, dropout=0))
    params = nnx.state(model, nnx.Param)
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype("float32")}
    tokens = jnp.zeros((2, 16), jnp.int32)
    graphdef, state = nnx.split(model)
    hlo = jax.jit(lambda st: nnx.merge(graphdef, st)(tokens, deterministic=True)).lower(state)
    # Every matmul (StableHLO dot_general: "(operand types) -> result") takes bf16
    # operands, the attention scores and the vocab head accumulating in f32.
    dots = [line.rsplit(":", 1)[1] for line in hlo.as_text().splitlines() if "dot_general" in line]
    assert dots
    operands = [d.split("->")[0] for d in dots]
    assert all("bf16" in o and "f32" not in o for o in operands), "\n".join(dots)
    logits = model(tokens, deterministic=True)
    assert logits.dtype == jnp.float32  # the loss is computed in f32
