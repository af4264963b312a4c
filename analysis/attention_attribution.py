"""Attention weights vs input x gradient, per layer: the monograph's caveat, measured (issue 18).

  python analysis/attention_attribution.py --workdir runs/attention_heads/trials/<run_id> \
      --out results/attention_heads/attribution [--n_texts 16] [--seq_len 64] [--target loss]

Restores an LM run read-only, cuts --n_texts windows of --seq_len + 1 bytes from
the validation plays (evenly spaced, so every run reads the same text), and for
the last position t of each window compares, per layer l, the head-mean
attention of query t over keys 0..t with the input x gradient attribution of
the residual stream entering block l at those keys
(`attn_jax.interp.attribution.attention_vs_attribution`), where the explained
scalar is the loss of the next byte (--target loss) or its logit
(--target logit). Spearman's rho per layer and text; Jain & Wallace (2019) found
such correlations weak. Writes attribution.json (per layer: mean, std, median,
quartiles, every rho) and attribution.png/svg (rho per layer: each text a dot,
mean +- std). Misuse is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
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

from attn_jax.interp import attribution, plots
from attn_jax.interp.report import natural_key

TARGETS = ("loss", "logit")


def rank_correlations(attention_BS, attribution_BS, query: int) -> np.ndarray:
    """rho [B]: Spearman of attention vs attribution over the causal keys 0..query."""
    att, attr = np.asarray(attention_BS), np.asarray(attribution_BS)
    if att.shape != attr.shape or att.ndim != 2:
        raise ValueError(f"need two [B, S] arrays, got {att.shape} and {attr.shape}.")
    keys = slice(0, query + 1)
    return np.array([attribution.spearman(a[keys], g[keys]) for a, g in zip(att, attr)])


def summarize(rho_LB: dict[str, np.ndarray]) -> list[dict]:
    """Per layer (in depth order): mean, std, median and quartiles of rho over texts."""
    out = []
    for layer, key in enumerate(sorted(rho_LB, key=natural_key)):
        rho = np.asarray(rho_LB[key], np.float64)
        ok = rho[np.isfinite(rho)]
        q25, med, q75 = np.percentile(ok, [25, 50, 75]) if ok.size else (np.nan,) * 3
        out.append(
            {
                "layer": layer,
                "block": key,
                "n": int(ok.size),
                "mean": float(ok.mean()) if ok.size else None,
                "std": float(ok.std(ddof=1)) if ok.size > 1 else None,
                "median": float(med),
                "q25": float(q25),
                "q75": float(q75),
                "rho": [None if not np.isfinite(x) else float(x) for x in rho],
            }
        )
    return out


def validation_windows(n_texts: int, length: int) -> np.ndarray:
    """[n_texts, length] byte windows evenly spaced over the validation plays (joined)."""
    from attn_jax.data.sources import shakespeare_documents

    data = np.frombuffer(
        "".join(t for _, t in shakespeare_documents("validation")).encode("utf-8"), np.uint8
    )
    starts = np.linspace(0, len(data) - length - 1, n_texts).astype(np.int64)
    return np.stack([data[s : s + length] for s in starts]).astype(np.int32)


def target_fn(next_B, target: str):
    """outputs -> the scalar explained: summed over texts (independent, so grads stay per text)."""
    import jax
    import jax.numpy as jnp

    def fn(logits_BTV):
        last_BV = logits_BTV[:, -1, :]
        picked_B = jnp.take_along_axis(last_BV, next_B[:, None], axis=1)[:, 0]
        if target == "logit":
            return picked_B.sum()
        return (jax.nn.logsumexp(last_BV, axis=-1) - picked_B).sum()

    return fn


def analyze(workdir: str, out: str, n_texts: int = 16, seq_len: int = 64, target="loss") -> dict:
    """Restores the run, measures rho per layer and text, writes JSON and the figure."""
    if target not in TARGETS:
        raise ValueError(f"Unknown --target {target!r}; valid: {', '.join(TARGETS)}.")
    if n_texts < 2 or seq_len < 3:
        raise ValueError(f"need --n_texts >= 2 and --seq_len >= 3, got {n_texts}, {seq_len}.")
    config = generate.load_run_config(workdir)
    if config.get("family", "lm") != "lm" or config.data.get("tokenizer", "byte") != "byte":
        raise ValueError(f"{workdir}: this script serves byte-level LM runs.")
    model, step = generate.restore_model(config, workdir)
    ids_BT = validation_windows(n_texts, seq_len + 1)
    tokens_BT, next_B = ids_BT[:, :-1], ids_BT[:, -1]
    query = seq_len - 1
    per_block = attribution.attention_vs_attribution(
        model, tokens_BT, query=query, target_fn=target_fn(next_B, target)
    )
    rho = {
        key: rank_correlations(v["attention"], v["attribution"], query)
        for key, v in per_block.items()
    }
    layers = summarize(rho)
    os.makedirs(out, exist_ok=True)
    figures = _figure(layers, os.path.join(out, "attribution"), f"{workdir} (step {step})")
    record = {
        "workdir": str(workdir),
        "step": int(step),
        "size": config.model.get("size"),
        "target": target,
        "n_texts": n_texts,
        "seq_len": seq_len,
        "query": query,
        "layers": layers,
        "figures": [os.path.basename(p) for p in figures],
    }
    with open(os.path.join(out, "attribution.json"), "w") as f:
        json.dump(record, f, indent=1)
    return record


def _figure(layers: list[dict], prefix: str, title: str) -> list[str]:
    plt = plots.pyplot()

    fig, ax = plt.subplots(figsize=(max(3.5, 1.1 * len(layers) + 2), 3.6))
    rng = np.random.default_rng(0)
    for r in layers:
        rho = np.array([x for x in r["rho"] if x is not None])
        ax.scatter(r["layer"] + rng.uniform(-0.12, 0.12, rho.size), rho, s=10, alpha=0.5)
        if r["mean"] is not None:
            ax.errorbar(r["layer"], r["mean"], yerr=r["std"] or 0, fmt="ks", capsize=4)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="layer", ylabel="Spearman rho (attention vs input x grad)", ylim=(-1, 1))
    ax.set_xticks([r["layer"] for r in layers])
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return plots.save_figure(fig, prefix)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--workdir", required=True, help="a run directory (config.json, checkpoints/)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--n_texts", type=int, default=16, help="held-out windows")
    p.add_argument("--seq_len", type=int, default=64, help="tokens per window (query = last)")
    p.add_argument("--target", default="loss", choices=TARGETS, help="the scalar explained")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns that read_only is read-only
    try:
        record = analyze(args.workdir, args.out, args.n_texts, args.seq_len, args.target)
    except (generate.GenerateError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for r in record["layers"]:
        mean, std = (np.nan if x is None else x for x in (r["mean"], r["std"]))
        print(f"layer {r['layer']}: rho mean {mean:.3f} std {std:.3f} (n={r['n']})")
    print(f"wrote {args.out}/attribution.json, " + ", ".join(record["figures"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
