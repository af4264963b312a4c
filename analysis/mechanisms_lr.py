"""Which learning rate each attention mechanism wants (sweeps/mechanisms_lr.py).

  python analysis/mechanisms_lr.py runs/mechanisms_lr [--out DIR]

Reads the sweep's results.jsonl (or a folder of */summary.json): per finished run
its mechanism, size and lr_multiplier tags and its held-out eval.loss. Per
mechanism the multiplier of the width rule's LR table with the lowest mean loss
over the sizes that ran every multiplier (one number per mechanism: a per-size
choice would follow single-seed noise), and whether that best sits at the edge of
the grid (then the grid should be widened before the choice is trusted).

Writes <out>/mechanisms_lr.json, mechanisms_lr.md (the table) and
mechanisms_lr.png/.svg (loss vs multiplier, one panel per mechanism, a line per size).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

try:
    from attn_jax.scaling import records
except ModuleNotFoundError:  # run as a script from a checkout: put the repo root on the path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from attn_jax.scaling import records


def losses(path) -> dict[str, dict[str, dict[float, float]]]:
    """mechanism -> size -> lr_multiplier -> held-out loss of the finished run."""
    recs, _ = records.read_records(path)
    out: dict[str, dict[str, dict[float, float]]] = {}
    for r in recs:
        tags = (r.get("sweep") or {}).get("tags") or {}
        loss = (r.get("eval") or {}).get("loss")
        if r.get("status") != "done" or loss is None or "lr_multiplier" not in tags:
            continue
        by_size = out.setdefault(tags["mechanism"], {}).setdefault(tags["size"], {})
        by_size[float(tags["lr_multiplier"])] = float(loss)
    if not out:
        raise SystemExit(f"{path}: no finished runs with mechanism and lr_multiplier tags.")
    return out


def choose(table: dict[str, dict[float, float]]) -> dict:
    """The multiplier with the lowest mean loss over the sizes that ran all of them."""
    multipliers = sorted({m for row in table.values() for m in row})
    sizes = [s for s, row in table.items() if all(m in row for m in multipliers)]
    if not sizes:
        raise ValueError("No size ran every learning rate of the grid.")
    means = {m: float(np.mean([table[s][m] for s in sizes])) for m in multipliers}
    best = min(means, key=means.get)
    per_size = {s: min(table[s], key=table[s].get) for s in table}
    return {
        "multipliers": multipliers,
        "sizes": sizes,
        "mean_loss": means,
        "best_multiplier": best,
        "at_edge": best in (multipliers[0], multipliers[-1]),
        "gain_vs_1": means.get(1.0, float("nan")) - means[best],
        "best_per_size": per_size,
    }


def markdown(result: dict, data: dict) -> str:
    lines = []
    for mech, choice in result.items():
        mults = choice["multipliers"]
        lines += [f"### {mech}", ""]
        lines.append("| size | " + " | ".join(f"x{m:g}" for m in mults) + " | best |")
        lines.append("|---" * (len(mults) + 2) + "|")
        for size, row in data[mech].items():
            cells = [f"{row[m]:.3f}" if m in row else "" for m in mults]
            lines.append(
                f"| {size} | " + " | ".join(cells) + f" | x{choice['best_per_size'][size]:g} |"
            )
        cells = [f"**{choice['mean_loss'][m]:.3f}**" for m in mults]
        lines.append("| mean | " + " | ".join(cells) + f" | **x{choice['best_multiplier']:g}** |")
        edge = " (at the grid's edge)" if choice["at_edge"] else ""
        lines += [
            "",
            f"Chosen: x{choice['best_multiplier']:g}{edge}; mean loss "
            f"{choice['gain_vs_1']:+.3f} nats/byte better than the softmax-tuned x1.",
            "",
        ]
    return "\n".join(lines)


def plot(data: dict, result: dict, out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(4.2 * len(data), 3.4), squeeze=False)
    for ax, (mech, by_size) in zip(axes[0], data.items(), strict=True):
        for size, row in by_size.items():
            ms = sorted(row)
            ax.plot(ms, [row[m] for m in ms], "o-", label=size)
        ax.axvline(result[mech]["best_multiplier"], color="gray", ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("LR multiplier (x width rule)")
        ax.set_title(mech)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out loss (nats/byte) at 2^21 tokens")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    paths = []
    for ext in ("png", "svg"):
        path = out / f"mechanisms_lr.{ext}"
        fig.savefig(path, dpi=120)
        paths.append(str(path))
    plt.close(fig)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", help="sweep folder (results.jsonl) or a folder of summaries")
    parser.add_argument("--out", default=None, help="output folder (default <path>/analysis)")
    args = parser.parse_args(argv)
    data = losses(args.path)
    result = {mech: choose(table) for mech, table in sorted(data.items())}
    out = pathlib.Path(args.out or pathlib.Path(args.path) / "analysis")
    out.mkdir(parents=True, exist_ok=True)
    figures = plot(data, result, out)
    payload = {"source": str(args.path), "choices": result, "losses": data, "figures": figures}
    (out / "mechanisms_lr.json").write_text(json.dumps(payload, indent=2, default=str))
    table = markdown(result, data)
    (out / "mechanisms_lr.md").write_text(table)
    print(table)
    print(f"wrote {out}/mechanisms_lr.json, .md, .png, .svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
