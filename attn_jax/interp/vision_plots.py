"""Figures of attention over images: overlay grids and the mean-distance scatter (PNG + SVG).

Dimension key: H/W image height/width, C channels, g patches per side, L layers,
N heads.

An overlay is a patch map (g x g, one value per patch) drawn over the image,
each patch as one flat p x p cell (nearest upsampling: the map has one value per
patch, so a smooth interpolation would invent structure). The data behind every
figure is written by the caller (attention.json, .npz).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from attn_jax.interp import plots


def display_image(image_HWC) -> np.ndarray:
    """The image rescaled to [0, 1] for display (a normalized input has any range): HW or HWC."""
    x = np.asarray(image_HWC, np.float32)
    if x.ndim != 3:
        raise ValueError(f"display_image needs an image [H, W, C], got shape {x.shape}.")
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return x[..., 0] if x.shape[-1] == 1 else x


def upsample(map_gg, height: int, width: int) -> np.ndarray:
    """A g x g patch map repeated to height x width pixels (each patch one flat cell)."""
    m = np.asarray(map_gg, np.float32)
    if m.ndim != 2 or height % m.shape[0] or width % m.shape[1]:
        raise ValueError(f"A patch map {m.shape} does not tile a {height}x{width} image.")
    return np.kron(m, np.ones((height // m.shape[0], width // m.shape[1]), np.float32))


def _overlay(ax, image, map_gg, *, vmax: float | None, alpha: float) -> None:
    """One image with its patch map drawn on top (inferno, `alpha`), no ticks."""
    H, W = image.shape[:2]
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    m = upsample(map_gg, H, W)
    top = float(m.max()) if vmax is None else vmax
    ax.imshow(m, cmap="inferno", alpha=alpha, vmin=0.0, vmax=max(top, 1e-12))
    ax.set_xticks([])
    ax.set_yticks([])


def overlay_grid(
    image_HWC,
    maps_RCgg,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    out_prefix: str,
    title: str = "",
    shared_scale: bool = False,
    alpha: float = 0.6,
    with_image: bool = True,
) -> list[str]:
    """A grid of patch-map overlays on one image: rows x columns of g x g maps.

    Args:
      image_HWC: the image (any range: rescaled for display).
      maps_RCgg: [rows, columns, g, g] patch maps (attention mass per patch).
      row_labels, col_labels: labels of the rows (left) and columns (top).
      out_prefix: path without extension (PNG and SVG are written).
      title: figure title.
      shared_scale: one colour scale for all maps (default: each map its own max,
        which shows where a map looks even when its total mass is small).
      alpha: opacity of the maps.
      with_image: a first column with the plain image.

    Returns:
      The paths written.
    """
    plt = plots.pyplot()
    maps = np.asarray(maps_RCgg, np.float32)
    if maps.ndim != 4 or maps.shape[:2] != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"maps {maps.shape} do not match {len(row_labels)} rows x {len(col_labels)} columns."
        )
    image = display_image(image_HWC)
    rows, cols = maps.shape[:2]
    extra = 1 if with_image else 0
    fig, axes = plt.subplots(
        rows, cols + extra, figsize=(1.7 * (cols + extra) + 0.6, 1.7 * rows + 0.7), squeeze=False
    )
    vmax = float(maps.max()) if shared_scale else None
    for r in range(rows):
        if with_image:
            axes[r, 0].imshow(image, cmap="gray" if image.ndim == 2 else None)
            axes[r, 0].set_xticks([])
            axes[r, 0].set_yticks([])
        axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
        for c in range(cols):
            _overlay(axes[r, c + extra], image, maps[r, c], vmax=vmax, alpha=alpha)
            if r == 0:
                axes[r, c + extra].set_title(col_labels[c], fontsize=8)
    if with_image:
        axes[0, 0].set_title("image", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return plots.save_figure(fig, out_prefix)


def distance_scatter(
    distance_LN,
    *,
    out_prefix: str,
    title: str = "",
    ylabel: str = "mean attention distance (px)",
    reference: float | None = None,
) -> list[str]:
    """Mean attention distance by depth: x = layer, one dot per head (Dosovitskiy et al. 2021, fig. 7)."""
    plt = plots.pyplot()
    d = np.asarray(distance_LN, np.float64)
    if d.ndim != 2:
        raise ValueError(f"distance_scatter needs [layers, heads], got shape {d.shape}.")
    L, N = d.shape
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for n in range(N):
        ax.scatter(np.arange(L), d[:, n], s=18, label=f"head {n}")
    if reference is not None:  # uniform attention: what a head with no locality scores
        ax.axhline(reference, color="gray", linestyle="--", linewidth=0.8, label="uniform")
    ax.set_xticks(np.arange(L))
    ax.set_xlabel("network depth (layer)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=6, ncol=2)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return plots.save_figure(fig, out_prefix)
