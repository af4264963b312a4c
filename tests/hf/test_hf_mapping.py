"""The HF tables without torch: exact round trips, the names transformers uses, every error.

The reference names below are what transformers 5 writes with save_pretrained
for one layer of each model (GPT2LMHeadModel, BertForMaskedLM,
ViTForImageClassification; tied tensors left out, as it leaves them out);
tests/hf/test_hf_transformers.py checks the values against transformers itself.
"""

import dataclasses
import json
import os

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx
from hf_helpers import HF_CONFIGS, build, param_arrays

from attn_jax import hf
from attn_jax.hf import checkpoint, mapping, st_format
from attn_jax.hf.mapping import MappingError
from attn_jax.models.encoder import EncoderConfig
from attn_jax.models.lm import DecoderLM, LMConfig
from attn_jax.models.vit import ViTConfig


def _model(name, **hf_overrides):
    fmt = hf.FORMATS[name]
    cfg = fmt.from_hf_config({**HF_CONFIGS[name], **hf_overrides})
    return fmt, build(fmt, cfg)


@pytest.mark.parametrize("name", sorted(hf.FORMATS))
def test_export_then_import_is_exact(name, tmp_path):
    fmt, model = _model(name)
    hf.save_model(model, str(tmp_path))
    back, back_fmt, ignored = hf.load_model(str(tmp_path))
    assert back_fmt is fmt
    assert ignored == []
    assert back.config == model.config
    ours, theirs = param_arrays(model), param_arrays(back)
    assert sorted(ours) == sorted(theirs)
    for k in ours:
        np.testing.assert_array_equal(theirs[k], ours[k], err_msg=k)
    with open(tmp_path / "config.json") as f:
        assert fmt.from_hf_config(json.load(f)) == model.config


def test_untied_heads_round_trip(tmp_path):
    for name, flag in (
        ("gpt2", {"tie_word_embeddings": False}),
        ("bert", {"tie_word_embeddings": False}),
    ):
        fmt, model = _model(name, **flag)
        assert not model.config.tie_embeddings
        hf.save_model(model, str(tmp_path / name))
        back, _, _ = hf.load_model(str(tmp_path / name))
        head = "head" if name == "gpt2" else "decoder_DV"
        np.testing.assert_array_equal(param_arrays(back)[head], param_arrays(model)[head])


def _one_layer(name):
    over = {
        "gpt2": {"n_layer": 1},
        "bert": {"num_hidden_layers": 1},
        "vit": {"num_hidden_layers": 1},
    }
    return _model(name, **over[name])[1]


GPT2_NAMES = [
    "transformer.wte.weight",
    "transformer.wpe.weight",
    *(
        f"transformer.h.0.{n}"
        for n in (
            "ln_1.weight",
            "ln_1.bias",
            "attn.c_attn.weight",
            "attn.c_attn.bias",
            "attn.c_proj.weight",
            "attn.c_proj.bias",
            "ln_2.weight",
            "ln_2.bias",
            "mlp.c_fc.weight",
            "mlp.c_fc.bias",
            "mlp.c_proj.weight",
            "mlp.c_proj.bias",
        )
    ),
    "transformer.ln_f.weight",
    "transformer.ln_f.bias",
]
_BL = "bert.encoder.layer.0."
BERT_NAMES = [
    "bert.embeddings.word_embeddings.weight",
    "bert.embeddings.position_embeddings.weight",
    "bert.embeddings.token_type_embeddings.weight",
    "bert.embeddings.LayerNorm.weight",
    "bert.embeddings.LayerNorm.bias",
    *(
        _BL + n
        for n in (
            "attention.self.query.weight",
            "attention.self.query.bias",
            "attention.self.key.weight",
            "attention.self.key.bias",
            "attention.self.value.weight",
            "attention.self.value.bias",
            "attention.output.dense.weight",
            "attention.output.dense.bias",
            "attention.output.LayerNorm.weight",
            "attention.output.LayerNorm.bias",
            "intermediate.dense.weight",
            "intermediate.dense.bias",
            "output.dense.weight",
            "output.dense.bias",
            "output.LayerNorm.weight",
            "output.LayerNorm.bias",
        )
    ),
    "cls.predictions.bias",
    "cls.predictions.transform.dense.weight",
    "cls.predictions.transform.dense.bias",
    "cls.predictions.transform.LayerNorm.weight",
    "cls.predictions.transform.LayerNorm.bias",
]
VIT_NAMES = [
    "vit.embeddings.cls_token",
    "vit.embeddings.position_embeddings",
    "vit.embeddings.patch_embeddings.projection.weight",
    "vit.embeddings.patch_embeddings.projection.bias",
    *(
        f"vit.layers.0.{n}"
        for n in (
            "attention.q_proj.weight",
            "attention.q_proj.bias",
            "attention.k_proj.weight",
            "attention.k_proj.bias",
            "attention.v_proj.weight",
            "attention.v_proj.bias",
            "attention.o_proj.weight",
            "attention.o_proj.bias",
            "layernorm_before.weight",
            "layernorm_before.bias",
            "layernorm_after.weight",
            "layernorm_after.bias",
            "mlp.fc1.weight",
            "mlp.fc1.bias",
            "mlp.fc2.weight",
            "mlp.fc2.bias",
        )
    ),
    "vit.layernorm.weight",
    "vit.layernorm.bias",
    "classifier.weight",
    "classifier.bias",
]


@pytest.mark.parametrize(
    ("name", "expected"), [("gpt2", GPT2_NAMES), ("bert", BERT_NAMES), ("vit", VIT_NAMES)]
)
def test_exported_names_and_shapes_are_transformers(name, expected):
    _, tensors = checkpoint.hf_tensors(_one_layer(name))
    assert sorted(tensors) == sorted(expected)
    D, F = 72, 100
    shapes = {
        "gpt2": {
            "transformer.h.0.attn.c_attn.weight": (D, 3 * D),  # Conv1D: [in, out]
            "transformer.h.0.attn.c_attn.bias": (3 * D,),
            "transformer.h.0.attn.c_proj.weight": (D, D),
            "transformer.h.0.mlp.c_fc.weight": (D, F),
            "transformer.wpe.weight": (11, D),
        },
        "bert": {
            _BL + "attention.self.query.weight": (D, D),
            _BL + "intermediate.dense.weight": (F, D),  # Linear: [out, in]
            _BL + "output.dense.weight": (D, F),
            "bert.embeddings.token_type_embeddings.weight": (3, D),
        },
        "vit": {
            "vit.embeddings.patch_embeddings.projection.weight": (D, 3, 4, 4),
            "vit.embeddings.cls_token": (1, 1, D),
            "vit.embeddings.position_embeddings": (1, 10, D),
            "classifier.weight": (7, D),
            "vit.layers.0.mlp.fc1.weight": (F, D),
        },
    }[name]
    for key, shape in shapes.items():
        assert tensors[key].shape == shape, key


def test_gpt2_fused_qkv_is_q_then_k_then_v_head_major():
    """c_attn's columns [q heads | k heads | v heads], each head H contiguous values."""
    model = _one_layer("gpt2")
    _, tensors = checkpoint.hf_tensors(model)
    w_DMH = np.asarray(model.blocks[0].attn.w_qkv[...])
    c_attn = tensors["transformer.h.0.attn.c_attn.weight"]
    N, H = 6, 12
    for part in range(3):  # q, k, v
        for n in range(N):
            cols = c_attn[:, part * N * H + n * H : part * N * H + (n + 1) * H]
            np.testing.assert_array_equal(cols, w_DMH[:, part * N + n])


def test_vit_patch_kernel_acts_as_the_conv():
    """The exported [D, C, p, p] kernel applied as a stride-p conv = attn_jax's patch projection."""
    model = _one_layer("vit")
    _, tensors = checkpoint.hf_tensors(model)
    w_DCpp = tensors["vit.embeddings.patch_embeddings.projection.weight"]
    b_D = tensors["vit.embeddings.patch_embeddings.projection.bias"]
    img_BHWC = np.random.default_rng(0).normal(size=(2, 12, 12, 3)).astype(np.float32)
    grid = img_BHWC.reshape(2, 3, 4, 3, 4, 3)  # B, gy, py, gx, px, C
    conv_BPD = np.einsum("byixjc,dcij->byxd", grid, w_DCpp).reshape(2, 9, -1) + b_D
    x_BTD = np.asarray(model.embed(jnp.asarray(img_BHWC)))
    pos_TD = np.asarray(model.pos_TD[...])
    np.testing.assert_allclose(x_BTD[:, 1:] - pos_TD[1:], conv_BPD, atol=1e-5)


def test_a_parameter_without_a_rule_is_an_error_naming_it(tmp_path, monkeypatch):
    fmt, model = _model("gpt2")
    hf.save_model(model, str(tmp_path))
    table = fmt.table
    short = dataclasses.replace(
        fmt, table=lambda cfg: [r for r in table(cfg) if r.ours != "blocks.{i}.mlp.b_fc"]
    )
    monkeypatch.setitem(checkpoint.FORMATS, "gpt2", short)
    with pytest.raises(MappingError, match=r"blocks\.0\.mlp\.b_fc.*no Hugging Face gpt2 mapping"):
        hf.load_model(str(tmp_path))
    rules = mapping.expand(short.table(model.config), 3)
    with pytest.raises(MappingError, match=r"blocks\.0\.mlp\.b_fc"):
        mapping.to_hf(model, rules, "gpt2")


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        (
            LMConfig(vocab_size=50, d_model=24, num_layers=1, num_heads=2, position="learned"),
            "bias",
        ),
        (LMConfig(vocab_size=50, d_model=24, num_layers=1, num_heads=2, bias=True), "position"),
        (
            LMConfig(
                vocab_size=50,
                d_model=24,
                num_layers=1,
                num_heads=2,
                num_kv_heads=1,
                bias=True,
                position="learned",
            ),
            "num_kv_heads",
        ),
        (EncoderConfig(vocab_size=50, d_model=24, num_layers=1, num_heads=2, bias=True), "norm"),
        (ViTConfig(d_model=24, num_layers=1, num_heads=2, bias=True, pool="gap"), "pool"),
    ],
)
def test_an_option_the_format_cannot_hold_is_named(cfg, field):
    fmt = {LMConfig: hf.FORMATS["gpt2"], EncoderConfig: hf.FORMATS["bert"]}.get(
        type(cfg), hf.FORMATS["vit"]
    )
    with pytest.raises(MappingError, match=rf"\.{field}="):
        fmt.to_hf_config(cfg)


def _rewrite(directory, edit):
    path = os.path.join(directory, "model.safetensors")
    tensors = st_format.load_file(path)
    edit(tensors)
    st_format.save_file(tensors, path)


def test_file_errors_name_the_tensor(tmp_path):
    fmt, model = _model("gpt2")
    d = str(tmp_path)
    hf.save_model(model, d)
    _rewrite(d, lambda t: t.update({"transformer.h.0.attn.rotary.weight": np.zeros(3, np.float32)}))
    with pytest.raises(MappingError, match=r"h\.0\.attn\.rotary\.weight"):
        hf.load_model(d)
    hf.save_model(model, d)
    _rewrite(d, lambda t: t.pop("transformer.h.2.mlp.c_fc.bias"))
    with pytest.raises(
        MappingError, match=r"no tensor h\.2\.mlp\.c_fc\.bias .*blocks\.2\.mlp\.b_fc"
    ):
        hf.load_model(d)
    hf.save_model(model, d)
    _rewrite(d, lambda t: t.update({"transformer.wpe.weight": np.zeros((12, 72), np.float32)}))
    with pytest.raises(MappingError, match=r"wpe\.weight.*embed\.pos_table"):
        hf.load_model(d)
    hf.save_model(model, d)
    _rewrite(d, lambda t: t.update({"lm_head.weight": t["transformer.wte.weight"] + 1}))
    with pytest.raises(MappingError, match="lm_head.weight differs from wte.weight"):
        hf.load_model(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({**HF_CONFIGS["gpt2"], "model_type": "llama"}, f)
    with pytest.raises(MappingError, match="model_type='llama' is not supported"):
        hf.load_model(d)
    with pytest.raises(MappingError, match="--family mlm does not fit model_type 'gpt2'"):
        checkpoint.format_for(HF_CONFIGS["gpt2"], "mlm")
    os.remove(os.path.join(d, "model.safetensors"))
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(MappingError, match="PyTorch pickles only"):
        checkpoint.read_tensors(d)
    with pytest.raises(MappingError, match="activation 'relu'"):
        hf.FORMATS["gpt2"].from_hf_config({**HF_CONFIGS["gpt2"], "activation_function": "relu"})


def test_known_extras_are_ignored_and_reported_and_old_names_read(tmp_path):
    # GPT-2's causal-mask buffers, a tied lm_head copy, no "transformer." prefix
    fmt, model = _model("gpt2")
    d = str(tmp_path / "gpt2")
    hf.save_model(model, d)

    def old_gpt2(t):
        for k in list(t):
            t[k.removeprefix("transformer.")] = t.pop(k)
        t["h.1.attn.bias"] = np.tril(np.ones((1, 1, 11, 11), np.float32))
        t["lm_head.weight"] = t["wte.weight"]

    _rewrite(d, old_gpt2)
    back, _, ignored = hf.load_model(d)
    assert ignored == ["h.1.attn.bias"]
    np.testing.assert_array_equal(
        param_arrays(back)["embed.embedding"], param_arrays(model)["embed.embedding"]
    )
    # BERT: TF-era gamma/beta names, the pooler and the NSP head (BertForPreTraining)
    fmt, model = _model("bert")
    d = str(tmp_path / "bert")
    hf.save_model(model, d)

    def old_bert(t):
        for k in [k for k in t if k.endswith("LayerNorm.weight")]:
            t[k.replace("LayerNorm.weight", "LayerNorm.gamma")] = t.pop(k)
        t["bert.pooler.dense.weight"] = np.zeros((72, 72), np.float32)
        t["cls.seq_relationship.weight"] = np.zeros((2, 72), np.float32)
        t["cls.predictions.decoder.bias"] = t["cls.predictions.bias"]

    _rewrite(d, old_bert)
    back, _, ignored = hf.load_model(d)
    assert ignored == ["cls.seq_relationship.weight", "pooler.dense.weight"]
    for k, v in param_arrays(model).items():
        np.testing.assert_array_equal(param_arrays(back)[k], v, err_msg=k)
    # ViT: the names transformers wrote before v5
    fmt, model = _model("vit")
    d = str(tmp_path / "vit")
    hf.save_model(model, d)

    def old_vit(t):
        renames = {
            "attention.q_proj": "attention.attention.query",
            "attention.k_proj": "attention.attention.key",
            "attention.v_proj": "attention.attention.value",
            "attention.o_proj": "attention.output.dense",
            "mlp.fc1": "intermediate.dense",
            "mlp.fc2": "output.dense",
        }
        for k in [k for k in t if k.startswith("vit.layers.")]:
            new = k.replace("vit.layers.", "vit.encoder.layer.")
            for a, b in renames.items():
                new = new.replace(a, b)
            t[new] = t.pop(k)

    _rewrite(d, old_vit)
    back, _, _ = hf.load_model(d)
    for k, v in param_arrays(model).items():
        np.testing.assert_array_equal(param_arrays(back)[k], v, err_msg=k)


def test_options_reach_the_computation():
    """bias, activation and norm_eps each change the logits (a field that did nothing would not)."""
    base = dict(vocab_size=50, d_model=24, num_layers=1, num_heads=2, position="learned", max_len=8)
    tokens = jnp.arange(8, dtype=jnp.int32)[None] % 50
    ref_model = build(hf.FORMATS["gpt2"], LMConfig(**base, bias=True))
    ref = np.asarray(ref_model(tokens))
    params = param_arrays(ref_model)
    for change in (dict(activation="gelu_erf"), dict(norm_eps=0.5)):
        other = DecoderLM(LMConfig(**base, bias=True, **change), rngs=nnx.Rngs(0))
        mapping.set_params(other, params)
        assert not np.allclose(np.asarray(other(tokens)), ref, atol=1e-4), change
    zeroed = {
        k: (np.zeros_like(v) if k.rsplit(".", 1)[-1].startswith("b_") else v)
        for k, v in params.items()
    }
    mapping.set_params(ref_model, zeroed)
    assert not np.allclose(np.asarray(ref_model(tokens)), ref, atol=1e-4)


def test_st_format_round_trip_and_errors(tmp_path):
    tensors = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.linspace(-2, 2, 5).astype(ml_dtypes.bfloat16),
        "c": np.arange(4, dtype=np.int64),
        "d": np.zeros((0, 4), np.float16),
    }
    path = str(tmp_path / "x.safetensors")
    st_format.save_file(tensors, path, {"format": "pt"})
    back = st_format.load_file(path)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype, k
        assert back[k].shape == v.shape, k
        np.testing.assert_array_equal(back[k], v)
    raw = (tmp_path / "x.safetensors").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-3])
    with pytest.raises(st_format.SafetensorsError, match="offsets of"):
        st_format.load_file(str(tmp_path / "short"))
    (tmp_path / "junk").write_bytes(b"\x04" + b"\x00" * 7 + b"{{{{")
    with pytest.raises(st_format.SafetensorsError, match="not JSON"):
        st_format.load_file(str(tmp_path / "junk"))


@pytest.mark.parametrize("name", sorted(hf.FORMATS))
def test_param_counts_include_the_new_options(name):
    """Biases, the token-type table and the embedding norm are counted (analytic = real)."""
    from attn_jax.models import encoder, flops, vit

    counts = {"gpt2": flops.param_counts, "bert": encoder.param_counts, "vit": vit.param_counts}
    fmt = hf.FORMATS[name]
    cfg = fmt.from_hf_config(HF_CONFIGS[name])
    model = fmt.model_class(cfg, rngs=nnx.Rngs(0))
    real = sum(int(np.prod(v.shape)) for v in mapping.flat_params(model).values())
    assert counts[name](cfg)["total"] == real
