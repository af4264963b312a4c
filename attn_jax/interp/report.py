"""An attention report: weights of one input, per-head statistics and types, figures.

Dimension key: B batch (1 here), L layers, N heads, T queries, S keys.

`write_report` takes what `run_with_cache` captured for one example and writes,
in `out_dir`:
  heatmaps.png, heatmaps.svg  one row per layer, one column per head (token labels)
  attention.json              tokens, layers, thresholds, and per head its stats
                              (`measures.head_stats`) and type (`measures.classify_heads`)
  heads.csv                   the same statistics, one row per head
  weights.npz                 {layer key: weights_NTS float32}, the data behind the figure
                              (what an HTML viewer embeds)
`lm_report` is the LM's front end: text -> tokens -> capture -> report.
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
) -> dict:
    """Writes the report of one example's self-attention weights; returns the JSON record.

    Args:
      weights: {key like "blocks.3.attn.weights": weights_BnTS} with B = 1.
      tokens: T token strings (labels).
      out_dir: output directory (created).
      causal: the attention is causal (normalized entropy counts allowed keys only).
      token_ids: T token ids (for the delimiter score).
      delimiter_ids: ids whose attention mass is the delimiter score.
      heads: the query heads the weights hold (default 0..n-1).
      meta: extra fields for attention.json (workdir, step, text, ...).
    """
    os.makedirs(out_dir, exist_ok=True)
    tokens_B = None if token_ids is None else np.asarray(token_ids)[None]
    records, per_layer, titles = [], {}, {}
    for key in sorted(weights, key=natural_key):
        w = np.asarray(weights[key], np.float32)
        if w.shape[0] != 1 or w.shape[2:] != (len(tokens), len(tokens)):
            raise ValueError(f"{key}: need [1, n, T, T] for T={len(tokens)}, got {w.shape}.")
        layer = key[: -len(".weights")] if key.endswith(".weights") else key
        head_ids = list(range(w.shape[1])) if heads is None else [int(h) for h in heads]
        stats = measures.head_stats(
            w, causal=causal, tokens_BS=tokens_B, delimiter_ids=delimiter_ids
        )
        types = measures.classify_heads(stats)
        per_layer[layer] = w[0]
        titles[layer] = [f"{t['type']}" for t in types]
        for i, (h, t) in enumerate(zip(head_ids, types)):
            records.append(
                {
                    "layer": layer,
                    "head": h,
                    "type": t["type"],
                    "type_score": _finite(t["score"]),
                    "type_detail": t["detail"],
                    "stats": {name: _finite(v[i]) for name, v in stats.items()},
                }
            )
    labels = [plots.token_label(t) for t in tokens]
    figures = plots.heatmap_grid(
        per_layer,
        labels,
        head_titles=titles,
        out_prefix=os.path.join(out_dir, "heatmaps"),
        title=(meta or {}).get("title", ""),
    )
    np.savez_compressed(os.path.join(out_dir, "weights.npz"), **per_layer)
    record = {
        "version": REPORT_VERSION,
        **{k: v for k, v in (meta or {}).items() if k != "title"},
        "tokens": list(tokens),
        "token_ids": None if token_ids is None else [int(i) for i in token_ids],
        "layers": list(per_layer),
        "causal": causal,
        "thresholds": measures.THRESHOLDS,
        "heads": records,
        "files": {
            "figures": [os.path.basename(p) for p in figures],
            "weights": "weights.npz",
            "table": "heads.csv",
        },
    }
    with open(os.path.join(out_dir, "attention.json"), "w") as f:
        json.dump(record, f, indent=1)
    stat_names = sorted({k for r in records for k in r["stats"]})
    with open(os.path.join(out_dir, "heads.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["layer", "head", "type", "type_score", *stat_names])
        for r in records:
            writer.writerow(
                [r["layer"], r["head"], r["type"], r["type_score"]]
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
