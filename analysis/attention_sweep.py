"""Head types and attention distance across a sweep's model sizes (issue 18).

  python analysis/attention_sweep.py runs/attention_heads --out results/attention_heads
      [--text "..."] [--max_tokens 128]

For every finished LM trial of SWEEP_OUT (its results.jsonl; workdirs under
SWEEP_OUT/trials/<run_id>), restores the final checkpoint read-only
(`generate.restore_model`), captures the attention weights on one fixed
held-out text (default: 128 bytes of the validation play
a-midsummer-night-s-dream from character 20000, so every size reads the same
tokens) and classifies every head (`attn_jax.interp.measures`, THRESHOLDS).
Writes to --out:
  heads_by_size.md / .csv  per size: non-embedding params, layers x heads, the
                           count of each head type, mean entropy (nats),
                           normalized entropy, mean attention distance (tokens),
                           and the mean distance per relative depth
  layers.csv               per size and layer: relative depth, the same means and counts
  heads.csv                every head: size, layer, head, type, its statistics
  head_type_shares.png/svg head-type shares vs non-embedding params
  distance_by_depth.png/svg mean attention distance vs relative depth, one line per size
  attention_sweep.json     all of the above as one record
Relative depth of layer l of L is (l + 0.5) / L (the layer's centre), so a
one-layer model sits at 0.5. Misuse is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import sys

import numpy as np

try:
    from attn_jax import generate
except ModuleNotFoundError:  # run as a script from a checkout: put the repo root on the path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from attn_jax import generate

from attn_jax.interp import measures, plots
from attn_jax.interp.report import natural_key

DEFAULT_PLAY, DEFAULT_OFFSET = "a-midsummer-night-s-dream", 20_000


class SweepError(ValueError):
    """A sweep directory this script cannot read; the message names the fix."""


def held_out_text(n_chars: int, offset: int = DEFAULT_OFFSET, play: str = DEFAULT_PLAY) -> str:
    """`n_chars` characters of a validation play from `offset` (DESIGN.md's split)."""
    from attn_jax.data.sources import shakespeare_documents

    plays = dict(shakespeare_documents("validation"))
    return plays[play][offset : offset + n_chars]


def finished_trials(sweep_out: str) -> list[dict]:
    """The latest run record of every done trial with a workdir, in results.jsonl order."""
    from attn_jax.sweep import store

    if not os.path.isdir(sweep_out):
        raise SweepError(f"{sweep_out} is not a directory: pass a sweep's --out directory.")
    records = [r for r in store.latest_results(sweep_out).values() if r.get("status") == "done"]
    trials = []
    for r in records:
        workdir = store.trial_dir(sweep_out, r["run_id"])
        if os.path.isdir(os.path.join(workdir, "checkpoints")):
            trials.append({**r, "workdir": workdir})
    if not trials:
        raise SweepError(
            f"{sweep_out} has no finished trial with a checkpoint (results.jsonl and "
            "trials/<run_id>/checkpoints/): run the sweep first, e.g. python -m attn_jax.sweep "
            "run sweeps/attention_heads.py --out " + sweep_out
        )
    return trials


def head_records(weights: dict, size: str) -> list[dict]:
    """One record per head (layer index, relative depth, type, stats) of one model's capture."""
    keys = sorted(weights, key=natural_key)
    L = len(keys)
    out = []
    for layer, key in enumerate(keys):
        stats = measures.head_stats(np.asarray(weights[key]), causal=True)
        for head, t in enumerate(measures.classify_heads(stats)):
            out.append(
                {
                    "size": size,
                    "layer": layer,
                    "num_layers": L,
                    "depth": (layer + 0.5) / L,
                    "head": head,
                    "type": t["type"],
                    "detail": t["detail"],
                    **{k: float(v[head]) for k, v in stats.items()},
                }
            )
    return out


def _means(heads: list[dict]) -> dict:
    return {
        "entropy": float(np.nanmean([h["entropy"] for h in heads])),
        "normalized_entropy": float(np.nanmean([h["normalized_entropy"] for h in heads])),
        "mean_distance": float(np.nanmean([h["mean_distance"] for h in heads])),
        **{t: sum(h["type"] == t for h in heads) for t in measures.HEAD_TYPES},
    }


def size_table(heads: list[dict], params: dict[str, int]) -> tuple[list[dict], list[dict]]:
    """(one row per size, one row per size and layer) from `head_records` of every size."""
    sizes = sorted({h["size"] for h in heads}, key=lambda s: params[s])
    rows, layer_rows = [], []
    for size in sizes:
        hs = [h for h in heads if h["size"] == size]
        L = hs[0]["num_layers"]
        per_layer = []
        for layer in range(L):
            lh = [h for h in hs if h["layer"] == layer]
            per_layer.append(
                {"size": size, "layer": layer, "depth": lh[0]["depth"], "heads": len(lh)}
                | _means(lh)
            )
        layer_rows += per_layer
        rows.append(
            {
                "size": size,
                "params_non_embedding": int(params[size]),
                "layers": L,
                "heads_per_layer": len(hs) // L,
                "heads": len(hs),
                **_means(hs),
                "distance_by_depth": " ".join(
                    f"{r['depth']:.2f}:{r['mean_distance']:.2f}" for r in per_layer
                ),
            }
        )
    return rows, layer_rows


def _write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _markdown(rows: list[dict], text: str, n_tokens: int) -> str:
    cols = ["size", "non-emb params", "L x N", *measures.HEAD_TYPES]
    cols += ["entropy (nats)", "norm. entropy", "distance", "distance by relative depth"]
    lines = [
        f"Head types per size on {n_tokens} held-out tokens ({text[:40]!r}...); "
        f"thresholds {measures.THRESHOLDS}.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in rows:
        cells = [
            r["size"],
            f"{r['params_non_embedding']:,}",
            f"{r['layers']} x {r['heads_per_layer']}",
        ]
        cells += [str(r[t]) for t in measures.HEAD_TYPES]
        cells += [f"{r['entropy']:.3f}", f"{r['normalized_entropy']:.3f}"]
        cells += [f"{r['mean_distance']:.2f}", r["distance_by_depth"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _figures(rows: list[dict], layer_rows: list[dict], out: str) -> list[str]:
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    n = np.array([r["params_non_embedding"] for r in rows], float)
    for t in measures.HEAD_TYPES:
        share = [r[t] / r["heads"] for r in rows]
        ax.plot(n, share, "o-", label=t)
    for r, x in zip(rows, n):
        ax.annotate(r["size"], (x, 1.0), fontsize=7, ha="center", va="bottom")
    ax.set(xscale="log", xlabel="non-embedding parameters", ylabel="share of heads", ylim=(0, 1.08))
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths = plots.save_figure(fig, os.path.join(out, "head_type_shares"))

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for r in rows:
        lr = [x for x in layer_rows if x["size"] == r["size"]]
        label = f"{r['size']} ({r['layers']}x{r['heads_per_layer']})"
        ax.plot([x["depth"] for x in lr], [x["mean_distance"] for x in lr], "o-", label=label)
    ax.set(xlabel="relative depth (layer + 0.5) / L", ylabel="mean attention distance (tokens)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return paths + plots.save_figure(fig, os.path.join(out, "distance_by_depth"))


def analyze(sweep_out: str, out: str, text: str | None = None, max_tokens: int = 128) -> dict:
    """Restores every finished trial, classifies its heads, writes tables and figures to `out`."""
    from attn_jax.data.tokenizers import get_tokenizer
    from attn_jax.interp import run_with_cache

    trials = finished_trials(sweep_out)
    text = held_out_text(4 * max_tokens) if text is None else text
    heads, params, info = [], {}, []
    for r in trials:
        config = generate.load_run_config(r["workdir"])
        if config.get("family", "lm") != "lm":
            raise SweepError(f"{r['workdir']} is a {config.family!r} run; this serves LM sweeps.")
        size = str(config.model.get("size", r["run_id"]))
        if size in params:  # two trials of one size (seeds, budgets): tell them apart
            size = f"{size}/{r['run_id'][:6]}"
        model, step = generate.restore_model(config, r["workdir"])
        ids = np.asarray(get_tokenizer(config.data).encode(text), np.int32)[:max_tokens]
        if len(ids) < 2:
            raise SweepError("The text must give at least 2 tokens; pass a longer --text.")
        _, cache = run_with_cache(model, ids[None])
        heads += head_records({k: np.asarray(v) for k, v in cache.items()}, size)
        params[size] = int(r["params_non_embedding"])
        info.append({"size": size, "run_id": r["run_id"], "step": int(step), "eval": r.get("eval")})
    rows, layer_rows = size_table(heads, params)
    os.makedirs(out, exist_ok=True)
    _write_csv(os.path.join(out, "heads_by_size.csv"), rows)
    _write_csv(os.path.join(out, "layers.csv"), layer_rows)
    _write_csv(os.path.join(out, "heads.csv"), heads)
    with open(os.path.join(out, "heads_by_size.md"), "w") as f:
        f.write(_markdown(rows, text, len(ids)))
    figures = _figures(rows, layer_rows, out)
    record = {
        "sweep": str(sweep_out),
        "text": text[: len(ids)] if len(text) >= len(ids) else text,
        "n_tokens": int(len(ids)),
        "thresholds": measures.THRESHOLDS,
        "trials": info,
        "sizes": rows,
        "layers": layer_rows,
        "figures": [os.path.basename(p) for p in figures],
    }
    with open(os.path.join(out, "attention_sweep.json"), "w") as f:
        json.dump(record, f, indent=1)
    return record


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("sweep_out", help="a sweep's --out directory (results.jsonl, trials/)")
    p.add_argument("--text", default=None, help="input text (default: held-out Shakespeare)")
    p.add_argument("--out", default=None, help="output directory (default: SWEEP_OUT/attention)")
    p.add_argument("--max_tokens", type=int, default=128, help="truncate the text to this many")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns that read_only is read-only
    out = args.out or os.path.join(args.sweep_out, "attention")
    try:
        record = analyze(args.sweep_out, out, text=args.text, max_tokens=args.max_tokens)
    except (generate.GenerateError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for r in record["sizes"]:
        counts = {t: r[t] for t in measures.HEAD_TYPES}
        print(f"{r['size']:>4} {r['layers']}x{r['heads_per_layer']}: {counts}")
    print(f"wrote {out}/heads_by_size.md, " + ", ".join(record["figures"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
