"""Figures of attention weights: a per-head heatmap grid with token labels (PNG + SVG).

Dimension key: L layers, N heads, T queries, S keys.

SVG beside every PNG, since vector figures are what papers need (bertviz users
ask for them); the data behind a figure is written by the caller (JSON/NPZ).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

# Beyond this many tokens, tick labels are thinned to every k-th token.
MAX_LABELS = 48


def token_label(text: str) -> str:
    """A printable tick label: visible space and newline, escapes for control characters."""
    text = text.replace(" ", "\u2423").replace("\n", "\u23ce").replace("\t", "\u21e5")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text) or "\u2205"


def _ticks(ax, labels: Sequence[str], axis: str, fontsize: float) -> None:
    step = max(1, int(np.ceil(len(labels) / MAX_LABELS)))
    idx = np.arange(0, len(labels), step)
    names = [labels[i] for i in idx]
    if axis == "x":
        ax.set_xticks(idx, names, rotation=90, fontsize=fontsize)
    else:
        ax.set_yticks(idx, names, fontsize=fontsize)


def heatmap_grid(
    weights: dict[str, np.ndarray],
    q_labels: Sequence[str],
    k_labels: Sequence[str] | None = None,
    *,
    head_titles: dict[str, Sequence[str]] | None = None,
    out_prefix: str,
    title: str = "",
) -> list[str]:
    """One row per layer, one column per head, of weights_NTS; writes PNG and SVG.

    Args:
      weights: {layer name: weights_NTS} in row order (one example).
      q_labels: T query token labels (rows of each map).
      k_labels: S key token labels (default: q_labels).
      head_titles: {layer name: N subtitles} (e.g. head types); default "h<n>".
      out_prefix: path without extension.
      title: figure title.

    Returns:
      The paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k_labels = q_labels if k_labels is None else k_labels
    names = list(weights)
    if not names:
        raise ValueError("heatmap_grid needs at least one layer of weights.")
    N = max(np.asarray(weights[n]).shape[0] for n in names)
    T, S = len(q_labels), len(k_labels)
    cell = float(np.clip(0.12 * max(T, S), 2.0, 6.0))
    fig, axes = plt.subplots(
        len(names), N, figsize=(cell * N + 1.0, cell * len(names) + 0.8), squeeze=False
    )
    fontsize = float(np.clip(240.0 / max(T, S, 1), 3.0, 9.0))
    for r, name in enumerate(names):
        w_NTS = np.asarray(weights[name], np.float32)
        if w_NTS.shape[1:] != (T, S):
            raise ValueError(f"{name}: weights {w_NTS.shape[1:]} do not match {T} x {S} labels.")
        for n in range(N):
            ax = axes[r, n]
            if n >= w_NTS.shape[0]:
                ax.axis("off")
                continue
            ax.imshow(w_NTS[n], cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
            sub = (head_titles or {}).get(name)
            ax.set_title(f"{name} h{n}" + (f": {sub[n]}" if sub else ""), fontsize=8)
            _ticks(ax, k_labels, "x", fontsize)
            _ticks(ax, q_labels, "y", fontsize)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    paths = [f"{out_prefix}.png", f"{out_prefix}.svg"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths
