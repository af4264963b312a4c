"""Confusion matrix and per-class accuracy of a trained image classifier (a ViT run).

  python analysis/confusion.py --workdir runs/vit [--out results/vit]

Restores the run's latest checkpoint read-only (attn_jax.generate.restore_model:
nothing in the workdir is written), predicts every test image through the
family's own eval batches (the normalization the run trained with; padding
rows dropped), and writes <out>/confusion.json (matrix rows = true class,
columns = predicted; per-class accuracy; top-1) and <out>/confusion.png / .svg
(row-normalized, counts in the cells). Prints top-1 and the most confused pairs.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

try:
    from attn_jax import generate
except ModuleNotFoundError:  # run as a script from a checkout: put the repo root on the path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from attn_jax import generate


def class_names(config) -> list[str]:
    from attn_jax.data import images

    n = int(config.model.num_classes)
    if config.data.name == "fashion_mnist":
        return list(images.FASHION_MNIST_CLASSES)
    return [str(i) for i in range(n)]


def confusion(config, model) -> np.ndarray:
    """[C, C] counts over the run's test split: rows true class, columns predicted."""
    import jax

    from attn_jax import families

    if config.get("family") != "vit":
        raise SystemExit(f"analysis/confusion.py reads ViT runs; this one is {config.family!r}.")
    _, eval_batches = families.get_family(config).data(batch_size=500, seed=0)
    predict = jax.jit(lambda images: model(images).argmax(-1))
    n = int(config.model.num_classes)
    counts = np.zeros((n, n), np.int64)
    for batch in eval_batches():
        valid = np.asarray(batch["valid"]) > 0
        pred = np.asarray(predict(batch["image"]))[valid]
        np.add.at(counts, (np.asarray(batch["label"])[valid], pred), 1)
    return counts


def plot(counts: np.ndarray, names: list[str], title: str, out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(counts.shape):
        color = "white" if rates[i, j] > 0.5 else "black"
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    paths = []
    for ext in ("png", "svg"):
        paths.append(str(out / f"confusion.{ext}"))
        fig.savefig(paths[-1], dpi=200)
    plt.close(fig)
    return paths


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--workdir", required=True, help="a ViT run directory (config.json, checkpoints/)"
    )
    ap.add_argument("--out", default=None, help="output folder (default: the workdir's analysis/)")
    args = ap.parse_args(argv)
    try:
        config = generate.load_run_config(args.workdir)
        model, step = generate.restore_model(config, args.workdir)
    except generate.GenerateError as e:
        raise SystemExit(str(e)) from None
    out = pathlib.Path(args.out or pathlib.Path(args.workdir) / "analysis")
    out.mkdir(parents=True, exist_ok=True)
    counts = confusion(config, model)
    names = class_names(config)
    top1 = float(np.trace(counts) / counts.sum())
    per_class = {n: float(counts[i, i] / max(counts[i].sum(), 1)) for i, n in enumerate(names)}
    off = [(int(counts[i, j]), names[i], names[j]) for i, j in np.ndindex(counts.shape) if i != j]
    worst = sorted(off, reverse=True)[:5]
    title = f"{config.data.name} test, step {step}: top-1 {100 * top1:.2f}% ({counts.sum()} images)"
    result = {
        "workdir": str(args.workdir),
        "step": int(step),
        "top1": top1,
        "classes": names,
        "per_class_accuracy": per_class,
        "confusion": counts.tolist(),
        "most_confused": [{"count": c, "true": t, "predicted": p} for c, t, p in worst],
        "figures": plot(counts, names, title, out),
    }
    (out / "confusion.json").write_text(json.dumps(result, indent=1))
    print(title)
    for n, a in sorted(per_class.items(), key=lambda x: x[1]):
        print(f"  {n:>12s}: {100 * a:.1f}%")
    print("most confused (true -> predicted): " + "; ".join(f"{t} -> {p} {c}" for c, t, p in worst))
    print(f"wrote {out / 'confusion.json'} and {', '.join(result['figures'])}")
    return result


if __name__ == "__main__":
    main()
