"""Hugging Face interop: GPT-2, BERT and ViT checkpoints in and out, without torch.

    from attn_jax import hf
    model, fmt, ignored = hf.load_model("path/to/gpt2")   # DecoderLM with GPT-2's weights
    hf.save_model(model, "path/out")                       # config.json + model.safetensors

    python -m attn_jax.hf import --from DIR --family lm --workdir runs/gpt2
    python -m attn_jax.generate --workdir runs/gpt2 --prompt "Hello"
    python analysis/attention.py --workdir runs/gpt2 --text "Hello there" --out /tmp/att
    python -m attn_jax.hf export --workdir runs/gpt2 --to DIR2

| HF model (config model_type) | attn_jax family, model | table        |
|------------------------------|------------------------|--------------|
| GPT2LMHeadModel (gpt2)       | lm, DecoderLM          | hf/gpt2.py   |
| BertForMaskedLM (bert)       | mlm, Encoder           | hf/bert.py   |
| ViTForImageClassification (vit) | vit, ViT            | hf/vit.py    |

Each model's mapping is one table of name patterns and transforms
(attn_jax.hf.mapping: fused-qkv reshapes, torch Linear transposes, the conv
patch kernel, LayerNorm names), read in both directions; config.json is
translated field by field, and an option one side cannot hold is an error
naming it. Every parameter must come from a tensor and every tensor go to a
parameter, except the few a format names as carrying nothing attn_jax holds
(causal-mask buffers, BERT's pooler and NSP head), which import reports.
Files are read and written by attn_jax.hf.st_format (the safetensors format in
numpy; float16 and bfloat16 load as float32); PyTorch pickles are not read. An
LM's tokenizer.json is read by `tokenizers` (`pip install -e '.[hf]'`, no torch).
Tests against `transformers` itself (torch, test-only: `pip install -e
'.[hf-test]'`) are the slow ones in tests/hf/.
"""

from attn_jax.hf.checkpoint import FAMILY_FORMATS, FORMATS, load_model, save_model
from attn_jax.hf.mapping import MappingError, Rule

__all__ = ["FAMILY_FORMATS", "FORMATS", "MappingError", "Rule", "load_model", "save_model"]
