"""An attention report: weights of one input, per-head statistics and types, figures.

Dimension key: B batch (1 here), L layers, N heads, T queries, S keys.

`write_report` takes what `run_with_cache` captured for one example and writes,
in `out_dir`:
  heatmaps.png, heatmaps.svg  one row per layer, one column per head (token labels)
  attention.json              tokens, layers, layer_info (per layer its query and key
                              tokens, kind self/cross, causal), thresholds, and per head
                              its stats (`measures.head_stats`) and type
                              (`measures.classify_heads`)
  heads.csv                   the same statistics, one row per head
  weights.npz                 {layer key: weights_NTS float32}, the data behind the figure
                              (what an HTML viewer embeds)
`lm_report` is the LM's front end: text -> tokens -> capture -> report; the
MLM and seq2seq front ends are in `attn_jax.interp.text_reports`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence

import numpy as np

from attn_jax.interp import measures, plots
from attn_jax.interp.capture import run_with_cache

REPORT_VERSION = 1


def natural_key(key: str) -> tuple:
    """Sort key ordering "blocks.2" before "blocks.10" (jit returns dicts sorted as strings)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split("."))


def _finite(x: float):
    return None if not np.isfinite(x) else float(x)


# Measures that name a position in both sequences (query t vs key t): only defined
# when queries and keys are the same tokens, so None for cross-attention layers.
POSITIONAL_STATS = ("mean_distance", "previous_token", "diagonal", "next_token")


def _layer_info(layer: str, given: dict, tokens, token_ids, causal: bool) -> dict:
    """A layer's full layer_info entry: what `given` says, else the report's defaults
    (a cross layer is not causal, and its keys, another sequence, have no default ids)."""
    kind = given.get("kind", "self")
    if kind not in ("self", "cross"):
        raise ValueError(f"{layer}: kind must be 'self' or 'cross', got {kind!r}.")
    queries = list(given.get("tokens", tokens))
    ids = given.get("token_ids", token_ids)
    return {
        "tokens": queries,
        "key_tokens": list(given.get("key_tokens", queries)),
        "kind": kind,
        "causal": bool(given.get("causal", causal and kind == "self")),
        "token_ids": ids,
        "key_token_ids": given.get("key_token_ids", ids if kind == "self" else None),
    }


def _layer_stats(w, info: dict, delimiter_ids) -> dict[str, np.ndarray]:
    """`measures.head_stats` of one layer; positional measures NaN for a cross layer."""
    key_ids = info.get("key_token_ids")
    tokens_BS = None if key_ids is None else np.asarray(key_ids)[None]
    if info["kind"] == "self":
        return measures.head_stats(
            w, causal=info["causal"], tokens_BS=tokens_BS, delimiter_ids=delimiter_ids
        )
    stats = {
        "entropy": measures.entropy(w),
        "normalized_entropy": measures.normalized_entropy(w, causal=info["causal"]),
        "first_token": measures.first_token_score(w),
    }
    if tokens_BS is not None and len(delimiter_ids):
        stats["delimiter"] = measures.delimiter_score(w, tokens_BS, delimiter_ids)
    nan = np.full((w.shape[1],), np.nan)
    return {**stats, **{name: nan for name in POSITIONAL_STATS}}


def rewrite_record(out_dir: str, record: dict) -> None:
    """Writes `record` as out_dir/attention.json (a front end adding files calls it again)."""
    with open(os.path.join(out_dir, "attention.json"), "w") as f:
        json.dump(record, f, indent=1)


def write_report(
    weights: dict[str, np.ndarray],
    tokens: Sequence[str],
    out_dir: str,
    *,
    causal: bool,
    token_ids: Sequence[int] | None = None,
    delimiter_ids: Sequence[int] = (),
    heads: Sequence[int] | None = None,
    meta: dict | None = None,
    layer_info: dict[str, dict] | None = None,
) -> dict:
    """Writes the report of one example's attention weights; returns the JSON record.

    Self-attention layers are square, T x T over `tokens`; a layer listed in
    `layer_info` may have its own queries and keys (cross-attention: T target x S
    source). For a cross layer the measures that compare query and key positions
    (POSITIONAL_STATS) are None; entropy, first-token (sink) and delimiter apply.

    Args:
      weights: {key like "blocks.3.attn.weights": weights_BnTS} with B = 1.
      tokens: T token strings (labels) of the layers not in `layer_info`.
      out_dir: output directory (created).
      causal: the default for self-attention layers: causal (normalized entropy
        counts allowed keys only, no next-token score).
      token_ids: T token ids (for the delimiter score).
      delimiter_ids: ids whose attention mass is the delimiter score.
      heads: the query heads the weights hold (default 0..n-1).
      meta: extra fields for attention.json (workdir, step, text, ...).
      layer_info: {layer (key without ".weights"): {"tokens", "key_tokens", "kind"
        ("self" | "cross"), "causal", "token_ids", "key_token_ids"}}, any subset;
        the rest default to `tokens`, `token_ids`, "self" and `causal`.

    Returns:
      The record written to attention.json; its "layer_info" gives every layer's
      tokens, key_tokens, kind and causal (what attention.html reads).
    """
    os.makedirs(out_dir, exist_ok=True)
    ids = None if token_ids is None else [int(i) for i in token_ids]
    records, per_layer, titles, infos = [], {}, {}, {}
    for key in sorted(weights, key=natural_key):
        layer = key.removesuffix(".weights")
        info = _layer_info(layer, (layer_info or {}).get(layer, {}), tokens, ids, causal)
        w = np.asarray(weights[key], np.float32)
        T, S = len(info["tokens"]), len(info["key_tokens"])
        if w.ndim != 4 or w.shape[0] != 1 or w.shape[2:] != (T, S):
            raise ValueError(f"{key}: need [1, n, {T}, {S}] ({info['kind']}), got {w.shape}.")
        if info["kind"] == "self" and T != S:
            raise ValueError(f"{key}: a self-attention layer needs T == S, got {T} x {S}.")
        head_ids = list(range(w.shape[1])) if heads is None else [int(h) for h in heads]
        stats = _layer_stats(w, info, delimiter_ids)
        types = measures.classify_heads(stats)
        per_layer[layer] = w[0]
        titles[layer] = [f"{t['type']}" for t in types]
        infos[layer] = {k: info[k] for k in ("tokens", "key_tokens", "kind", "causal")}
        for i, (h, t) in enumerate(zip(head_ids, types)):
            records.append(
                {
                    "layer": layer,
                    "head": h,
                    "kind": info["kind"],
                    "type": t["type"],
                    "type_score": _finite(t["score"]),
                    "type_detail": t["detail"],
                    "stats": {name: _finite(v[i]) for name, v in stats.items()},
                }
            )
    labels = [plots.token_label(t) for t in tokens]
    layer_labels = {
        name: (
            [plots.token_label(t) for t in i["tokens"]],
            [plots.token_label(t) for t in i["key_tokens"]],
        )
        for name, i in infos.items()
    }
    figures = plots.heatmap_grid(
        per_layer,
        labels,
        head_titles=titles,
        layer_labels=layer_labels,
        out_prefix=os.path.join(out_dir, "heatmaps"),
        title=(meta or {}).get("title", ""),
    )
    np.savez_compressed(os.path.join(out_dir, "weights.npz"), **per_layer)
    record = {
        "version": REPORT_VERSION,
        **{k: v for k, v in (meta or {}).items() if k != "title"},
        "tokens": list(tokens),
        "token_ids": ids,
        "layers": list(per_layer),
        "causal": causal,
        "layer_info": infos,
        "thresholds": measures.THRESHOLDS,
        "heads": records,
        "files": {
            "figures": [os.path.basename(p) for p in figures],
            "weights": "weights.npz",
            "table": "heads.csv",
        },
    }
    rewrite_record(out_dir, record)
    stat_names = sorted({k for r in records for k in r["stats"]})
    with open(os.path.join(out_dir, "heads.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["layer", "head", "kind", "type", "type_score", *stat_names])
        for r in records:
            writer.writerow(
                [r["layer"], r["head"], r["kind"], r["type"], r["type_score"]]
                + [r["stats"].get(k) for k in stat_names]
            )
    return record


def lm_report(
    model,
    tokenizer,
    text: str,
    out_dir: str,
    *,
    layers=None,
    heads=None,
    delimiters: str = "",
    max_len: int = 0,
    meta: dict | None = None,
) -> dict:
    """A causal LM's report on `text` (truncated to `max_len` tokens when > 0)."""
    ids = np.asarray(tokenizer.encode(text), np.int32)
    if max_len:
        ids = ids[:max_len]
    if len(ids) < 2:
        raise ValueError("The text must give at least 2 tokens; pass a longer --text.")
    _, cache = run_with_cache(model, ids[None], layers=layers, heads=heads)
    delimiter_ids = sorted(
        {int(i) for ch in delimiters for i in np.asarray(tokenizer.encode(ch)).reshape(-1)}
    )
    tokens = [tokenizer.decode(np.asarray([i])) for i in ids]
    return write_report(
        dict(cache),
        tokens,
        out_dir,
        causal=True,
        token_ids=ids,
        delimiter_ids=delimiter_ids,
        heads=heads,
        meta={"text": text, **(meta or {})},
    )
