"""Data: TF-free tfds builders over packaged corpora, tokenizers, LM batch iterators.

Public entry points:
  default_data_config() -> ConfigDict            the config.data section
  make_lm_data(data_config, *, batch_size, seq_len, seed, process_index=0,
               process_count=1) -> (train_iter, eval_batches_fn)
  get_tokenizer(data_config) / vocab_size(data_config)
"""

from attn_jax.data.builders import BUILDERS, build, load_documents
from attn_jax.data.pipeline import (
    LMTrainIterator,
    default_data_config,
    get_tokens,
    make_eval_batches,
    make_lm_data,
    make_train_iter,
)
from attn_jax.data.sources import MissingDataError, data_root
from attn_jax.data.tokenizers import TOKENIZERS, get_tokenizer, vocab_size

__all__ = [
    "BUILDERS",
    "TOKENIZERS",
    "LMTrainIterator",
    "MissingDataError",
    "build",
    "data_root",
    "default_data_config",
    "get_tokenizer",
    "get_tokens",
    "load_documents",
    "make_eval_batches",
    "make_lm_data",
    "make_train_iter",
    "vocab_size",
]
