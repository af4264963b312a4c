"""Attention reports of the text families: an LM, the MLM encoder and seq2seq runs.

Dimension key: B batch (1 here), N heads, T queries (target), S keys (source).

Each front end has the signature `report_fn(config, model, step, args) -> record`
that `analysis/attention.py` dispatches on by `config.family`: `config` is the
run's config, `model` the restored NNX module, `step` its checkpoint step and
`args` the CLI namespace (text, target, out, layers, heads, delimiters,
max_tokens). Each captures one example (`capture.run_with_cache`) and calls
`report.write_report`, which writes the figures, attention.json, heads.csv and
weights.npz; bad input is a ValueError of one sentence.

- lm: causal self-attention over the text's tokens (`report.lm_report`).
- mlm: [CLS] bytes [SEP] through the bidirectional encoder; non-causal
  statistics (the next-token score is defined); [SEP] counts as a delimiter
  (Clark et al. 2019's [SEP] heads).
- seq2seq (translation, SCAN): the source is --text + EOS; the target is
  --target, or the model's greedy decode of the source
  (`families.seq2seq.decode_texts`, the decode its evaluation uses). The decoder
  reads BOS + target, so decoder row t reads target token t - 1 (BOS at t = 0)
  and predicts target token t (EOS at the end). Layers: encoder self-attention
  (bidirectional), decoder self-attention (causal) and decoder -> encoder
  cross-attention (T x S, source keys); EOS of the source is a delimiter.
  Beside the report: cross_alignment.png/.svg (per decoder layer the head-mean
  T x S matrix, source on x, target on y labelled by the token each row
  predicts; Bahdanau et al. 2015, fig. 3) and cross_alignment.csv, its data.
"""

from __future__ import annotations

import csv
import os

import numpy as np


def _meta(config, args, step: int, **extra) -> dict:
    return {
        "workdir": str(args.workdir),
        "step": int(step),
        "family": config.get("family", "lm"),
        "title": f"{args.workdir} (step {step})",
        **extra,
    }


def _require_text(args, family: str) -> str:
    if not args.text:
        raise ValueError(f"A {family} run needs --text TEXT (the input to report on).")
    return args.text


def _max_len(config, args) -> int:
    """--max_tokens, capped by the model's position table when it has one."""
    return min(args.max_tokens, int(config.model.get("max_len", 0) or args.max_tokens))


def lm(config, model, step: int, args) -> dict:
    """A causal LM's report on --text (bytes or the run's sentencepiece tokens)."""
    from attn_jax.data.tokenizers import get_tokenizer
    from attn_jax.interp import report

    text = _require_text(args, "lm")
    max_len = _max_len(config, args)
    return report.lm_report(
        model,
        get_tokenizer(config.data),
        text,
        args.out,
        layers=args.layers,
        heads=args.heads,
        delimiters=args.delimiters,
        max_len=max_len,
        meta=_meta(config, args, step),
    )


def mlm(config, model, step: int, args) -> dict:
    """The MLM encoder's report on [CLS] + the bytes of --text + [SEP] (bidirectional)."""
    from attn_jax.data import mlm as mlm_data
    from attn_jax.interp import report
    from attn_jax.interp.capture import run_with_cache

    text = _require_text(args, "mlm")
    max_len = _max_len(config, args)
    ids = mlm_data.encode(text)[: max(max_len - 2, 0)]
    if len(ids) < 1 or max_len < 3:
        raise ValueError("The text must give at least 1 byte within --max_tokens >= 3.")
    tokens_T = np.concatenate([[mlm_data.CLS], ids, [mlm_data.SEP]]).astype(np.int32)
    _, cache = run_with_cache(
        model,
        tokens_T[None],
        np.asarray([len(tokens_T)], np.int32),
        layers=args.layers,
        heads=args.heads,
    )
    names = {v: k for k, v in mlm_data.SPECIAL_TOKENS.items()}
    labels = [names.get(int(i)) or mlm_data.decode([i]) for i in tokens_T]
    delimiter_ids = {mlm_data.SEP} | {int(i) for i in mlm_data.encode(args.delimiters or "")}
    return report.write_report(
        dict(cache),
        labels,
        args.out,
        causal=False,
        token_ids=tokens_T,
        delimiter_ids=sorted(delimiter_ids),
        heads=args.heads,
        meta=_meta(config, args, step, text=text),
    )


def _encode(tokenizer, text: str, what: str) -> np.ndarray:
    try:
        return np.asarray(tokenizer.encode(text), np.int32).reshape(-1)
    except ValueError as err:
        raise ValueError(f"{what} cannot be tokenized by this run's tokenizer: {err}") from None


def _piece(tokenizer, i: int) -> str:
    """The label of one id: the special tokens by name, else the tokenizer's text."""
    from attn_jax.data.pairs import BOS, EOS, PAD

    special = {PAD: "<pad>", BOS: "<s>", EOS: "</s>"}
    return special.get(int(i)) or tokenizer.decode(np.asarray([i], np.int32))


def seq2seq(config, model, step: int, args) -> dict:
    """An encoder-decoder's report: encoder, decoder and cross attention of one pair."""
    from attn_jax.data.pairs import BOS, EOS, load_pair_data
    from attn_jax.families import seq2seq as s2s
    from attn_jax.interp import plots, report
    from attn_jax.interp.capture import run_with_cache

    source = _require_text(args, "seq2seq")
    tokenizer = load_pair_data(config.data).tokenizer
    max_src = int(config.data.max_src_len)
    src_ids = _encode(tokenizer, source, "--text")[:max_src]
    if not len(src_ids):
        raise ValueError("--text is empty after tokenization; give a source sentence.")
    # Learned positions stop at max_len; the decoder reads BOS + target.
    max_tgt = int(config.decode.get("max_len", 0) or int(config.data.max_tgt_len) + 1)
    max_tgt = min(max_tgt, int(config.model.max_len)) - 1
    target = args.target
    decoded = target is None
    if decoded:
        (target,) = s2s.decode_texts(
            model, tokenizer, [source], max_src_len=max_src, max_len=max_tgt + 1, batch_size=1
        )
    tgt_ids = _encode(tokenizer, target, "--target")[:max_tgt]
    src_S = np.append(src_ids, EOS).astype(np.int32)
    tgt_in_T = np.concatenate([[BOS], tgt_ids]).astype(np.int32)
    _, cache = run_with_cache(
        model,
        src_S[None],
        np.asarray([len(src_S)], np.int32),
        tgt_in_T[None],
        layers=args.layers,
        heads=args.heads,
    )
    src_tokens = [_piece(tokenizer, i) for i in src_S]
    tgt_tokens = [_piece(tokenizer, i) for i in tgt_in_T]
    predicts = [_piece(tokenizer, i) for i in np.append(tgt_ids, EOS)]
    src_list, tgt_list = src_S.tolist(), tgt_in_T.tolist()
    encoder = {"tokens": src_tokens, "token_ids": src_list, "kind": "self", "causal": False}
    decoder = {"tokens": tgt_tokens, "token_ids": tgt_list, "kind": "self", "causal": True}
    cross = {
        "tokens": tgt_tokens,
        "key_tokens": src_tokens,
        "token_ids": tgt_list,
        "key_token_ids": src_list,
        "kind": "cross",
        "causal": False,
    }
    layer_info = {}
    for key in cache:
        layer = key.removesuffix(".weights")
        if layer.startswith("encoder."):
            layer_info[layer] = encoder
        elif layer.endswith("cross_attn"):
            layer_info[layer] = cross
        else:
            layer_info[layer] = decoder
    delimiter_ids = {EOS}
    if args.delimiters:
        delimiter_ids |= {int(i) for i in _encode(tokenizer, args.delimiters, "--delimiters")}
    record = report.write_report(
        dict(cache),
        src_tokens,
        args.out,
        causal=False,
        token_ids=src_S,
        delimiter_ids=sorted(delimiter_ids),
        heads=args.heads,
        layer_info=layer_info,
        meta=_meta(
            config,
            args,
            step,
            text=source,
            source=source,
            target=target,
            target_source="greedy decode" if decoded else "--target",
            source_tokens=src_tokens,
            target_tokens=tgt_tokens,
            target_predicts=predicts,
        ),
    )
    alignments = {
        key.removesuffix(".weights"): np.asarray(w, np.float32)[0].mean(0)
        for key, w in sorted(cache.items(), key=lambda kv: report.natural_key(kv[0]))
        if key.endswith("cross_attn.weights")
    }
    if alignments:
        prefix = os.path.join(args.out, "cross_alignment")
        figures = plots.alignment_grid(
            alignments,
            [plots.token_label(t) for t in predicts],
            [plots.token_label(t) for t in src_tokens],
            out_prefix=prefix,
            title=f"{args.workdir} (step {step}): {source!r}"[:100],
        )
        _write_alignment_csv(f"{prefix}.csv", alignments, predicts, src_tokens)
        record["files"]["figures"] += [os.path.basename(p) for p in figures]
        record["files"]["alignment"] = "cross_alignment.csv"
        report.rewrite_record(args.out, record)
    return record


def _write_alignment_csv(path: str, alignments: dict, predicts, src_tokens) -> None:
    """The data of cross_alignment.png: one row per (layer, target t, source s)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["layer", "t", "target_predicts", "s", "source_token", "weight"])
        for layer, w_TS in alignments.items():
            for t, s in np.ndindex(*w_TS.shape):
                writer.writerow([layer, t, predicts[t], s, src_tokens[s], f"{w_TS[t, s]:.6f}"])
