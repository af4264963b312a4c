"""Figures of attention weights: a per-head heatmap grid with token labels (PNG + SVG),
and a source-target alignment grid for cross-attention.

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
    layer_labels: dict[str, tuple[Sequence[str], Sequence[str]]] | None = None,
    out_prefix: str,
    title: str = "",
) -> list[str]:
    """One row per layer, one column per head, of weights_NTS; writes PNG and SVG.

    Args:
      weights: {layer name: weights_NTS} in row order (one example).
      q_labels: T query token labels (rows of each map).
      k_labels: S key token labels (default: q_labels).
      head_titles: {layer name: N subtitles} (e.g. head types); default "h<n>".
      layer_labels: {layer name: (query labels, key labels)} for layers whose maps
        are not T x S (cross-attention, or another stack's tokens); others use
        q_labels / k_labels.
      out_prefix: path without extension.
      title: figure title.

    Returns:
      The paths written.
    """
    plt = pyplot()

    k_labels = q_labels if k_labels is None else k_labels
    names = list(weights)
    if not names:
        raise ValueError("heatmap_grid needs at least one layer of weights.")
    labels = {n: (layer_labels or {}).get(n, (q_labels, k_labels)) for n in names}
    N = max(np.asarray(weights[n]).shape[0] for n in names)
    longest = max(max(len(q), len(k)) for q, k in labels.values())
    cell = float(np.clip(0.12 * longest, 2.0, 6.0))
    fig, axes = plt.subplots(
        len(names), N, figsize=(cell * N + 1.0, cell * len(names) + 0.8), squeeze=False
    )
    # ~half a label slot per token: 20 tokens in a 2.4-inch cell get 4 pt, not overlapping 9 pt
    fontsize = float(np.clip(36.0 * cell / max(longest, 1), 3.0, 9.0))
    for r, name in enumerate(names):
        w_NTS = np.asarray(weights[name], np.float32)
        rows, cols = labels[name]
        T, S = len(rows), len(cols)
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
            _ticks(ax, cols, "x", fontsize)
            _ticks(ax, rows, "y", fontsize)
    return _save(fig, out_prefix, title)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_prefix: str) -> list[str]:
    """Writes fig as out_prefix.png (150 dpi) and .svg, closes it; returns both paths."""
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    paths = [f"{out_prefix}.png", f"{out_prefix}.svg"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    pyplot().close(fig)
    return paths


def _save(fig, out_prefix: str, title: str) -> list[str]:
    """A grid's title and layout, then `save_figure`."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_prefix)


def alignment_grid(
    alignments: dict[str, np.ndarray],
    target_labels: Sequence[str],
    source_labels: Sequence[str],
    *,
    out_prefix: str,
    title: str = "",
) -> list[str]:
    """One panel per decoder layer of its head-mean cross-attention, a T x S matrix.

    Source tokens on x, target tokens on y, as in Bahdanau et al. (2015, fig. 3),
    with each cell's weight written in when the matrix is small enough to read.

    Args:
      alignments: {layer name: weights_TS} (rows sum to 1 over the source).
      target_labels: T labels of the rows (decoder positions).
      source_labels: S labels of the columns (encoder positions).
      out_prefix: path without extension.
      title: figure title.

    Returns:
      The paths written (PNG and SVG).
    """
    plt = pyplot()

    names = list(alignments)
    if not names:
        raise ValueError("alignment_grid needs at least one layer.")
    T, S = len(target_labels), len(source_labels)
    width = float(np.clip(0.3 * S + 1.5, 3.0, 12.0))
    height = float(np.clip(0.25 * T + 1.5, 3.0, 16.0))
    fig, axes = plt.subplots(1, len(names), figsize=(width * len(names), height), squeeze=False)
    fontsize = float(np.clip(300.0 / max(T, S, 1), 4.0, 9.0))
    for ax, name in zip(axes[0], names, strict=True):
        w_TS = np.asarray(alignments[name], np.float32)
        if w_TS.shape != (T, S):
            raise ValueError(f"{name}: alignment {w_TS.shape} does not match {T} x {S} labels.")
        ax.imshow(w_TS, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_title(f"{name} (head mean)", fontsize=9)
        _ticks(ax, source_labels, "x", fontsize)
        _ticks(ax, target_labels, "y", fontsize)
        ax.set_xlabel("source (white 0, black 1)", fontsize=8)
        ax.set_ylabel("target", fontsize=8)
        if T * S <= 400:
            for t, s in zip(*np.nonzero(w_TS >= 0.1), strict=True):
                color = "white" if w_TS[t, s] > 0.5 else "black"
                ax.text(
                    s, t, f"{w_TS[t, s]:.1f}", ha="center", va="center", fontsize=5, color=color
                )
    return _save(fig, out_prefix, title)
