"""The encoder-decoder family: sequence pairs (translation, SCAN, the toy task).

Data (attn_jax.data.pairs): `load_pair_data(config.data)` gives text pairs; here
they become ids and padded arrays. The source is its ids + EOS, padded to
S = max_src_len + 1; the decoder reads BOS + target and predicts target + EOS,
both padded to T = max_tgt_len + 1 ({"src", "src_len", "tgt_in", "tgt_out",
"weights"}). Training pairs longer than the limits are dropped, eval and decode
pairs truncated (both counts are logged). The unit is the target token that
carries loss, EOS included: `count` = sum of the weights.

Sizes. Parameters: one token table (plus a learned position table shared by both
stacks), an untied head if any; per encoder layer `flops.layer_params`; per
decoder layer that plus cross-attention (q, kv, out projections, score params,
a norm); a final norm per stack under pre-norm. Training FLOPs per planned
target token (3 x forward, backward = 2 x forward; Kaplan et al. 2020,
Hoffmann et al. 2022 App. F, as attn_jax.models.flops): the padded lengths
S = max_src_len + 1 and T = max_tgt_len + 1 of every batch, the encoder's
FLOPs per source token amortized per target token by S / T:

  decoder, per target token:  2 (self + cross-q/out + MLP matmuls) + attention over T
                              (causal, not credited) + cross-attention over S
                              + 2 D V (the head)
  encoder, per source token:  2 (self + MLP matmuls) + attention over S
                              + 2 D 2K H per decoder layer (the cross keys/values)
  per target token:           3 (decoder + (S / T) encoder)

attention via `attn_jax.models.flops.attention_flops` (dense: 4 x len x N x H).
`config.train.seq_len` is the planned target tokens per example for the budget
(units per step = batch_size x seq_len); `base_config` sets it to T.
"""

from __future__ import annotations

import logging
from typing import Any

import ml_collections
import numpy as np

from attn_jax.families import base

# Encoder-decoder shapes: d_ff = 4 d_model, head_dim 16..64 (D / N).
SIZES: dict[str, dict[str, int]] = {
    "toy": dict(d_model=32, enc_layers=1, dec_layers=1, num_heads=2, d_ff=64),
    "xs": dict(d_model=128, enc_layers=2, dec_layers=2, num_heads=4, d_ff=512),
    "s": dict(d_model=256, enc_layers=3, dec_layers=3, num_heads=4, d_ff=1024),
    "m": dict(d_model=384, enc_layers=4, dec_layers=4, num_heads=6, d_ff=1536),
    "base": dict(d_model=512, enc_layers=6, dec_layers=6, num_heads=8, d_ff=2048),
}


# ---------------------------------------------------------------- config helpers
def model_config(size: str = "xs", **overrides) -> ml_collections.ConfigDict:
    """config.model: every `Seq2SeqConfig` field, a SIZES entry, then overrides."""
    import dataclasses

    from attn_jax.models.seq2seq import Seq2SeqConfig

    if size not in SIZES:
        raise ValueError(f"Unknown seq2seq size {size!r}; valid: {', '.join(SIZES)}.")
    model = {f.name: f.default for f in dataclasses.fields(Seq2SeqConfig)}
    model.update(size=size, **SIZES[size])
    unknown = sorted(set(overrides) - set(model))
    if unknown:
        raise ValueError(f"Unknown seq2seq model fields {unknown}; valid: {sorted(model)}.")
    model.update(overrides)
    return ml_collections.ConfigDict(model)


def data_config(name: str = "toy", **overrides) -> ml_collections.ConfigDict:
    """config.data: the pair-data contract's fields (attn_jax.data.pairs) plus overrides."""
    from attn_jax.data.pairs import default_pair_data_config

    return default_pair_data_config(name, **overrides)


def decode_config(**overrides) -> ml_collections.ConfigDict:
    """config.decode: greedy by default (beam_size 1); GNMT length penalty alpha.

    Fields: beam_size, length_penalty (alpha; Wu et al. 2016 use 0.6..0.7),
    batch_size (0 = train.batch_size), max_len (0 = max_tgt_len + 1).
    """
    decode = dict(beam_size=1, length_penalty=0.6, batch_size=0, max_len=0)
    decode.update(overrides)
    return ml_collections.ConfigDict(decode)


def base_config(
    data: str = "toy", size: str = "toy", *, model=None, data_fields=None, decode=None, **train
) -> ml_collections.ConfigDict:
    """A whole seq2seq experiment config (unlocked): model, data, decode, train.

    `train.seq_len` defaults to T = max_tgt_len + 1, so budgets count padded target tokens.
    """
    from attn_jax.configs import train_config

    config = ml_collections.ConfigDict()
    config.experiment = "seq2seq"
    config.family = "seq2seq"
    config.seed = 0
    config.data = data_config(data, **(data_fields or {}))
    config.model = model_config(size, **(model or {}))
    config.decode = decode_config(**(decode or {}))
    train.setdefault("seq_len", int(config.data.max_tgt_len) + 1)
    config.train = train_config("tokens", **train)
    return config


# ---------------------------------------------------------------- counts
def param_counts(cfg) -> dict[str, int]:
    """Exact parameter counts of `EncoderDecoder(cfg)`: {total, embedding, non_embedding}."""
    from attn_jax.models import flops

    D, V, N, K, H = cfg.d_model, cfg.vocab_size, cfg.num_heads, cfg.kv_heads, cfg.head_size
    embedding = V * D + (cfg.max_len * D if cfg.position == "learned" else 0)
    if not cfg.tie_embeddings:
        embedding += D * V
    layer = flops.layer_params(cfg)
    cross = D * N * H + D * 2 * K * H + N * H * D + flops.score_params(cfg) + flops.norm_params(cfg)
    non_embedding = cfg.enc_layers * layer + cfg.dec_layers * (layer + cross)
    if cfg.norm == "pre":
        non_embedding += 2 * flops.norm_params(cfg)
    return {
        "total": embedding + non_embedding,
        "embedding": embedding,
        "non_embedding": non_embedding,
    }


def flops_per_token(cfg, src_len: int, tgt_len: int) -> float:
    """Training FLOPs per target token at padded lengths S=src_len, T=tgt_len (module docstring)."""
    from attn_jax.models import flops
    from attn_jax.ops.masks import MaskSpec

    D, V, N, K, H, F = (
        cfg.d_model,
        cfg.vocab_size,
        cfg.num_heads,
        cfg.kv_heads,
        cfg.head_size,
        cfg.ff_size,
    )
    S, T = int(src_len), int(tgt_len)
    score = N * H * H if cfg.score == "multiplicative" else 0
    self_mm = D * (N + 2 * K) * H + N * H * D + score
    cross_q_out = D * N * H + N * H * D + score
    mlp = 2 * D * F

    def attn(length, causal):
        spec = MaskSpec(causal=causal)
        return flops.attention_flops(
            cfg.kernel, length, num_heads=N, head_dim=H, kv_heads=K, spec=spec
        )

    def additive(length):  # Bahdanau projections and the per-pair reduction (flops.py)
        return 2 * (N + K) * H * H + 2 * N * H * length if cfg.score == "additive" else 0

    enc = cfg.enc_layers * (2 * (self_mm + mlp) + attn(S, False) + additive(S))
    enc += cfg.dec_layers * 2 * D * 2 * K * H  # cross keys/values, once per source token
    dec = cfg.dec_layers * (
        2 * (self_mm + cross_q_out + mlp)
        + attn(T, True)
        + attn(S, False)
        + additive(T)
        + additive(S)
    )
    dec += 2 * D * V
    return 3.0 * (dec + enc * S / T)


def counts(config: ml_collections.ConfigDict) -> dict:
    """{params_total, params_embedding, params_non_embedding, flops_per_unit} of a config.

    From the config alone (no model built): what a sweep plans with; the family's
    `sizes(params)` returns the same numbers after checking them against the model.
    """
    from attn_jax.models.seq2seq import Seq2SeqConfig

    cfg = Seq2SeqConfig.from_config(config.model)
    c = param_counts(cfg)
    S, T = int(config.data.max_src_len) + 1, int(config.data.max_tgt_len) + 1
    return {
        "params_total": c["total"],
        "params_embedding": c["embedding"],
        "params_non_embedding": c["non_embedding"],
        "flops_per_unit": flops_per_token(cfg, S, T),
    }


# ---------------------------------------------------------------- arrays
def encode_sources(tokenizer, sources, max_src_len: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(src int32[n, S], src_len int32[n], truncated): ids + EOS, S = max_src_len + 1."""
    from attn_jax.data.pairs import EOS

    n, S = len(sources), max_src_len + 1
    src = np.zeros((n, S), np.int32)
    src_len = np.zeros((n,), np.int32)
    truncated = 0
    for i, text in enumerate(sources):
        ids = np.asarray(tokenizer.encode(text), np.int32)
        truncated += len(ids) > max_src_len
        ids = np.concatenate([ids[:max_src_len], [EOS]])
        src[i, : len(ids)], src_len[i] = ids, len(ids)
    return src, src_len, truncated


def pair_arrays(
    tokenizer, sources, targets, max_src_len: int, max_tgt_len: int, *, drop_long: bool
) -> tuple[dict[str, np.ndarray], int]:
    """The family's batch arrays of aligned pairs, and how many were over the limits.

    Pairs over max_src_len / max_tgt_len are dropped (`drop_long`, training) or
    truncated (eval, decode).
    """
    from attn_jax.data.pairs import BOS, EOS

    src_ids = [np.asarray(tokenizer.encode(s), np.int32) for s in sources]
    tgt_ids = [np.asarray(tokenizer.encode(t), np.int32) for t in targets]
    long = [
        len(s) > max_src_len or len(t) > max_tgt_len for s, t in zip(src_ids, tgt_ids, strict=True)
    ]
    if drop_long:
        src_ids = [s for s, x in zip(src_ids, long, strict=True) if not x]
        tgt_ids = [t for t, x in zip(tgt_ids, long, strict=True) if not x]
    n, S, T = len(src_ids), max_src_len + 1, max_tgt_len + 1
    arrays = {
        "src": np.zeros((n, S), np.int32),
        "src_len": np.zeros((n,), np.int32),
        "tgt_in": np.zeros((n, T), np.int32),
        "tgt_out": np.zeros((n, T), np.int32),
        "weights": np.zeros((n, T), np.float32),
    }
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True)):
        s, t = s[:max_src_len], t[:max_tgt_len]
        arrays["src"][i, : len(s) + 1] = np.append(s, EOS)
        arrays["src_len"][i] = len(s) + 1
        arrays["tgt_in"][i, : len(t) + 1] = np.concatenate([[BOS], t])
        arrays["tgt_out"][i, : len(t) + 1] = np.append(t, EOS)
        arrays["weights"][i, : len(t) + 1] = 1.0
    return arrays, int(sum(long))


def decode_texts(
    model,
    tokenizer,
    sources,
    *,
    max_src_len: int,
    max_len: int,
    beam_size: int = 1,
    length_penalty: float = 0.6,
    batch_size: int = 32,
) -> list[str]:
    """Decodes source texts to target texts: greedy (beam_size <= 1) or beam search.

    Batches of `batch_size` (at most the number of sources; the last batch
    padded), so a decode compiles once per call;
    sources over `max_src_len` tokens are truncated as in eval.
    """
    from attn_jax.data.examples import eval_batches
    from attn_jax.models import decode as decode_lib

    if not len(sources):
        return []
    src, src_len, _ = encode_sources(tokenizer, sources, max_src_len)
    batch_size = min(int(batch_size), len(sources))
    hyps: list[str] = []
    for batch in eval_batches({"src": src, "src_len": src_len}, batch_size=batch_size):
        if beam_size <= 1:
            out = decode_lib.greedy(model, batch["src"], batch["src_len"], max_len=max_len)
        else:
            out = decode_lib.beam_search(
                model,
                batch["src"],
                batch["src_len"],
                beam_size=beam_size,
                max_len=max_len,
                length_penalty=length_penalty,
            )
        rows = np.asarray(out)[batch["valid"] > 0]
        hyps += [tokenizer.decode(decode_lib.strip_eos(row)) for row in rows]
    return hyps


def _split(pairs, name: str, field: str):
    if name not in pairs.splits:
        raise ValueError(
            f"config.data.{field}={name!r} is not a split of this data; "
            f"valid: {', '.join(sorted(pairs.splits))}."
        )
    return pairs.splits[name]


def _pair_batches(
    p, dc, max_src: int, max_tgt: int, *, batch_size, seed, process_index=0, process_count=1
):
    """(train iterator, eval batches) of padded pairs: over-long training pairs dropped,
    eval pairs truncated (both counted in the log)."""
    from attn_jax.data.examples import ExampleIterator, eval_batches

    src, tgt = _split(p, dc.train_split, "train_split")
    train, dropped = pair_arrays(p.tokenizer, src, tgt, max_src, max_tgt, drop_long=True)
    if dropped:
        logging.info("seq2seq: dropped %d of %d training pairs over the limits", dropped, len(src))
    if not len(train["src"]):
        raise ValueError("No training pair fits max_src_len/max_tgt_len; raise them.")
    src, tgt = _split(p, dc.eval_split, "eval_split")
    evals, truncated = pair_arrays(p.tokenizer, src, tgt, max_src, max_tgt, drop_long=False)
    if truncated:
        logging.info("seq2seq: truncated %d of %d eval pairs to the limits", truncated, len(src))
    it = ExampleIterator(
        train,
        batch_size=batch_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
    )
    batches = eval_batches(
        evals,
        batch_size=batch_size,
        process_index=process_index,
        process_count=process_count,
        max_batches=int(dc.get("eval_batches", 0) or 0),
    )
    return it, lambda: batches


# ---------------------------------------------------------------- the family
def make(config: ml_collections.ConfigDict) -> base.Family:
    """The seq2seq `Family` of `config` (see `base_config`)."""
    from attn_jax.data.pairs import load_pair_data
    from attn_jax.models.seq2seq import EncoderDecoder, Seq2SeqConfig

    model_cfg = Seq2SeqConfig.from_config(config.model)
    dc = config.data
    label_smoothing = float(config.train.get("label_smoothing", 0.0))
    max_src, max_tgt = int(dc.max_src_len), int(dc.max_tgt_len)
    S, T = max_src + 1, max_tgt + 1
    if model_cfg.position == "learned" and model_cfg.max_len < max(S, T):
        raise ValueError(
            f"config.model.max_len={model_cfg.max_len} is shorter than the padded source "
            f"({S}) or target ({T}) length; raise it to >= {max(S, T)}."
        )
    decode_cfg = decode_config(**dict(config.get("decode", {}) or {}))
    state: dict[str, Any] = {}

    def pairs():
        if "pairs" not in state:
            data = load_pair_data(dc)
            if model_cfg.vocab_size < data.tokenizer.vocab_size:
                raise ValueError(
                    f"config.model.vocab_size={model_cfg.vocab_size} is smaller than the "
                    f"tokenizer's {data.tokenizer.vocab_size}; set it to that."
                )
            state["pairs"] = data
        return state["pairs"]

    def model(rngs):
        return EncoderDecoder(model_cfg, rngs=rngs)

    def data(**kwargs):
        return _pair_batches(pairs(), dc, max_src, max_tgt, **kwargs)

    def loss(model, batch, rng):
        logits_BTV = model(
            batch["src"],
            batch["src_len"],
            batch["tgt_in"],
            deterministic=rng is None,
            dropout_rng=rng,
        )
        return base.classification_loss(
            logits_BTV, batch["tgt_out"], batch["weights"], label_smoothing
        )

    def eval_sums(model, batch):
        logits_BTV = model(batch["src"], batch["src_len"], batch["tgt_in"], deterministic=True)
        return base.classification_sums(logits_BTV, batch["tgt_out"], batch["weights"])

    def decode_eval(model, final: bool = True) -> dict[str, float]:
        """Decodes `decode_split` (greedy or beam, config.decode) and scores it."""
        del final  # the same decode mid-run or at the end
        p = pairs()
        src, refs = _split(p, dc.decode_split, "decode_split")
        n = int(dc.get("decode_examples", 0) or 0)
        if n:
            src, refs = src[:n], refs[:n]
        hyps = decode_texts(
            model,
            p.tokenizer,
            src,
            max_src_len=max_src,
            max_len=int(decode_cfg.max_len or T),
            beam_size=int(decode_cfg.beam_size),
            length_penalty=float(decode_cfg.length_penalty),
            batch_size=int(decode_cfg.batch_size or config.train.batch_size),
        )
        return {**p.score(hyps, list(refs)), "decoded": float(len(hyps))}

    return base.Family(
        name="seq2seq",
        unit="tokens",
        model=model,
        data=data,
        loss=loss,
        eval_sums=eval_sums,
        eval_finalize=base.classification_finalize,
        sizes=base.checked_sizes(counts, config, "attn_jax.families.seq2seq.counts"),
        uses_dropout=bool(model_cfg.dropout or model_cfg.attn_dropout),
        decode_eval=decode_eval,
    )
