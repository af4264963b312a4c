"""attn_jax.hf against transformers itself: random-weight models of odd shapes, no network.

Needs the test-only extra (`pip install -e '.[hf-test]'`: torch, transformers);
without it these tests fail, naming that command (they are not skipped: the
mapping would go unchecked against the reference). Every parameter, biases and
norms included, is drawn at random before saving, since HF's init (zero
biases, unit norms) would hide a mis-mapped bias or norm.
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from hf_helpers import HF_CONFIGS, build, param_arrays

from attn_jax import hf

pytestmark = pytest.mark.slow
TOL = 1e-4


@pytest.fixture(scope="module")
def tf():
    try:
        import torch
        import transformers
    except ModuleNotFoundError as err:
        pytest.fail(f"{err.name} is missing: pip install -e '.[hf-test]' (make test-all does)")
    torch.manual_seed(0)
    return torch, transformers


HF_CLASSES = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel"),
    "bert": ("BertConfig", "BertForMaskedLM"),
    "vit": ("ViTConfig", "ViTForImageClassification"),
}


def _hf_model(tf, name, **overrides):
    torch, transformers = tf
    config_cls, model_cls = (getattr(transformers, n) for n in HF_CLASSES[name])
    fields = {k: v for k, v in {**HF_CONFIGS[name], **overrides}.items() if k != "model_type"}
    model = model_cls(config_cls(**fields)).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            p.normal_(0.0, 0.3)
            if pname.endswith("LayerNorm.weight") or ".ln_" in pname or "layernorm" in pname:
                p.add_(1.0)
    return model


INPUTS = np.random.default_rng(0).integers(0, 1000, (2, 11))
TYPES = np.random.default_rng(1).integers(0, 3, (2, 11))
LENGTHS = np.array([11, 7])
IMAGES = np.random.default_rng(2).normal(size=(2, 12, 12, 3)).astype(np.float32)


def _hf_logits(tf, name, model):
    torch, _ = tf
    with torch.no_grad():
        if name == "gpt2":
            out = model(torch.tensor(INPUTS)).logits
        elif name == "bert":
            mask = (np.arange(11)[None] < LENGTHS[:, None]).astype(np.int64)
            out = model(
                torch.tensor(INPUTS),
                token_type_ids=torch.tensor(TYPES),
                attention_mask=torch.tensor(mask),
            ).logits
        else:
            out = model(torch.tensor(IMAGES.transpose(0, 3, 1, 2))).logits
    return out.numpy()


def _our_logits(name, model):
    if name == "gpt2":
        return np.asarray(model(jnp.asarray(INPUTS, jnp.int32)))
    if name == "bert":
        return np.asarray(
            model(
                jnp.asarray(INPUTS, jnp.int32),
                jnp.asarray(LENGTHS, jnp.int32),
                types_BT=jnp.asarray(TYPES, jnp.int32),
            )
        )
    return np.asarray(model(jnp.asarray(IMAGES)))


def _valid(name, logits):
    """BERT rows past a padded example's length mean nothing: compare the valid ones."""
    if name != "bert":
        return logits
    return np.concatenate([logits[b, :n] for b, n in enumerate(LENGTHS)])


@pytest.mark.parametrize("name", sorted(HF_CLASSES))
def test_transformers_checkpoint_loads_with_equal_logits(tf, name, tmp_path):
    reference = _hf_model(tf, name)
    reference.save_pretrained(str(tmp_path))
    model, fmt, _ = hf.load_model(str(tmp_path))
    assert fmt.name == name
    ours, theirs = _our_logits(name, model), _hf_logits(tf, name, reference)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(_valid(name, ours), _valid(name, theirs), atol=TOL, rtol=0)


@pytest.mark.parametrize("name", sorted(HF_CLASSES))
def test_attn_jax_to_transformers_to_attn_jax_is_exact(tf, name, tmp_path):
    """Our export loads in transformers (same logits) and its re-save imports bit-exactly."""
    _, transformers = tf
    fmt = hf.FORMATS[name]
    model = build(fmt, fmt.from_hf_config(HF_CONFIGS[name]), seed=3)
    hf.save_model(model, str(tmp_path / "ours"))
    model_cls = getattr(transformers, HF_CLASSES[name][1])
    loaded = model_cls.from_pretrained(str(tmp_path / "ours")).eval()
    np.testing.assert_allclose(
        _valid(name, _hf_logits(tf, name, loaded)),
        _valid(name, _our_logits(name, model)),
        atol=TOL,
        rtol=0,
    )
    loaded.save_pretrained(str(tmp_path / "theirs"))
    back, _, _ = hf.load_model(str(tmp_path / "theirs"))
    assert back.config == model.config
    want = param_arrays(model)
    for k, v in param_arrays(back).items():
        np.testing.assert_array_equal(v, want[k], err_msg=k)


def test_untied_gpt2_head(tf, tmp_path):
    reference = _hf_model(tf, "gpt2", tie_word_embeddings=False)
    reference.save_pretrained(str(tmp_path))
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["tie_word_embeddings"] is False
    model, _, _ = hf.load_model(str(tmp_path))
    assert not model.config.tie_embeddings
    np.testing.assert_allclose(
        _our_logits("gpt2", model), _hf_logits(tf, "gpt2", reference), atol=TOL, rtol=0
    )


def test_st_format_agrees_with_the_safetensors_package(tmp_path):
    import ml_dtypes
    import safetensors.numpy

    from attn_jax.hf import st_format

    tensors = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "i": np.arange(5, dtype=np.int64),
        "h": np.ones((2, 2), np.float16),
    }
    st_format.save_file(tensors, str(tmp_path / "ours"), {"format": "pt"})
    safetensors.numpy.save_file(tensors, str(tmp_path / "theirs"), {"format": "pt"})
    for path in ("ours", "theirs"):
        for reader in (st_format.load_file, safetensors.numpy.load_file):
            got = reader(str(tmp_path / path))
            for k, v in tensors.items():
                np.testing.assert_array_equal(got[k], v)
    bf16 = {"b": np.linspace(-3, 3, 7).astype(ml_dtypes.bfloat16)}
    st_format.save_file(bf16, str(tmp_path / "bf16"))
    with safetensors.safe_open(str(tmp_path / "bf16"), "pt") as f:
        import torch

        t = f.get_tensor("b")
        assert t.dtype == torch.bfloat16
        np.testing.assert_array_equal(t.float().numpy(), bf16["b"].astype(np.float32))
