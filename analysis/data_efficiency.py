"""Accuracy vs training-set size for the ViT and the CNN, and where they cross.

  python analysis/data_efficiency.py runs/data_efficiency [--out DIR]

Reads the sweep's results.jsonl (sweeps/data_efficiency.py; or a folder of
*/summary.json): per finished run its arch and train_images tags and its
eval.accuracy on the whole test split. Per (arch, size) the mean over seeds, and
with two or more seeds a 95% t-interval of the mean. The gap is ViT minus CNN
(percentage points); a crossover is where the gap changes sign between two
adjacent sizes, placed by linear interpolation in log(size). No law is
extrapolated past the sizes that were run.

Writes <out>/data_efficiency.json, data_efficiency.md (the table) and
data_efficiency.png/.svg (accuracy vs images, both archs, log x; the gap below).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import numpy as np

try:
    from attn_jax.scaling import records
except ModuleNotFoundError:  # run as a script from a checkout: put the repo root on the path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from attn_jax.scaling import records

ARCHS = ("vit", "cnn")


def accuracies(path) -> dict[str, dict[int, list[float]]]:
    """arch -> train_images -> [test accuracy of each finished seed]."""
    recs, _ = records.read_records(path)
    out: dict[str, dict[int, list[float]]] = {}
    for r in recs:
        tags = (r.get("sweep") or {}).get("tags") or {}
        acc = (r.get("eval") or {}).get("accuracy")
        if r.get("status") != "done" or acc is None or "arch" not in tags:
            continue
        out.setdefault(tags["arch"], {}).setdefault(int(tags["train_images"]), []).append(
            float(acc)
        )
    missing = [a for a in ARCHS if a not in out]
    if missing:
        raise SystemExit(f"{path}: no finished runs of {', '.join(missing)} with eval.accuracy.")
    return out


def summarize(values: list[float]) -> dict:
    """mean, n and (n >= 2) the 95% t-interval of the mean, as fractions."""
    v = np.asarray(values, np.float64)
    out = {"mean": float(v.mean()), "n": len(v), "values": v.tolist()}
    if len(v) >= 2:
        from scipy import stats

        half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
        out.update(lo=float(v.mean() - half), hi=float(v.mean() + half))
    return out


def crossovers(sizes: list[int], gap: list[float]) -> list[dict]:
    """Where the gap changes sign between adjacent sizes (log-linear interpolation)."""
    found = []
    for (n0, g0), (n1, g1) in zip(zip(sizes, gap), zip(sizes[1:], gap[1:]), strict=False):
        if g0 == 0 or (g0 < 0) != (g1 < 0):
            t = 0.0 if g0 == 0 else g0 / (g0 - g1)
            at = math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0)))
            found.append({"train_images": at, "vit_better_after": g1 > 0})
    return found


def analyse(acc: dict[str, dict[int, list[float]]]) -> dict:
    """The table rows, the gap per size and the crossovers."""
    sizes = sorted(set(acc["vit"]) & set(acc["cnn"]))
    rows = []
    for n in sizes:
        vit, cnn = summarize(acc["vit"][n]), summarize(acc["cnn"][n])
        row = {
            "train_images": n,
            "vit": vit,
            "cnn": cnn,
            "gap_pp": 100 * (vit["mean"] - cnn["mean"]),
        }
        paired = min(len(acc["vit"][n]), len(acc["cnn"][n]))
        if paired >= 2:  # seeds pair up (same data order and subset)
            d = summarize([a - b for a, b in zip(acc["vit"][n], acc["cnn"][n], strict=False)])
            row["gap_interval_pp"] = [100 * d["lo"], 100 * d["hi"]]
        rows.append(row)
    gap = [r["gap_pp"] for r in rows]
    return {
        "rows": rows,
        "crossovers": crossovers(sizes, gap),
        "gap_shrinks": bool(len(gap) >= 2 and abs(gap[-1]) < abs(gap[0])),
    }


def _pct(s: dict) -> str:
    text = f"{100 * s['mean']:.2f}"
    if "lo" in s:
        text += f" [{100 * s['lo']:.2f}, {100 * s['hi']:.2f}]"
    return text


def table(result: dict) -> str:
    lines = [
        "| train images | ViT s6 accuracy % | CNN s accuracy % | ViT - CNN (points) | seeds |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        gap = f"{r['gap_pp']:+.2f}"
        if "gap_interval_pp" in r:
            lo, hi = r["gap_interval_pp"]
            gap += f" [{lo:+.2f}, {hi:+.2f}]"
        seeds = f"{r['vit']['n']} / {r['cnn']['n']}"
        lines.append(
            f"| {r['train_images']:,} | {_pct(r['vit'])} | {_pct(r['cnn'])} | {gap} | {seeds} |"
        )
    cross = result["crossovers"]
    lines.append("")
    if cross:
        lines += [
            f"Crossover near {c['train_images']:,.0f} images (the ViT is "
            f"{'better' if c['vit_better_after'] else 'worse'} after)."
            for c in cross
        ]
    else:
        sign = "behind" if result["rows"][0]["gap_pp"] < 0 else "ahead of"
        lines.append(
            f"No crossover between the sizes run: the ViT stays {sign} the CNN throughout."
        )
    return "\n".join(lines) + "\n"


def plot(result: dict, out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attn_jax.interp.plots import save_figure

    rows = result["rows"]
    n = np.array([r["train_images"] for r in rows], np.float64)
    fig, (ax, ax_gap) = plt.subplots(
        2, 1, figsize=(6, 5.5), sharex=True, gridspec_kw={"height_ratios": [2.2, 1]}
    )
    for arch, label, color in (("vit", "ViT s6 (203k)", "C0"), ("cnn", "CNN s (73k)", "C1")):
        mean = np.array([100 * r[arch]["mean"] for r in rows])
        ax.plot(n, mean, "o-", color=color, label=label)
        if all("lo" in r[arch] for r in rows):
            lo = np.array([100 * r[arch]["lo"] for r in rows])
            hi = np.array([100 * r[arch]["hi"] for r in rows])
            ax.fill_between(n, lo, hi, color=color, alpha=0.2, lw=0)
    ax.set_ylabel("test accuracy (%)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Fashion-MNIST: accuracy vs training images (same steps)", fontsize=9)
    ax_gap.axhline(0, color="0.5", lw=0.8)
    ax_gap.plot(n, [r["gap_pp"] for r in rows], "ko-", ms=4)
    ax_gap.set_ylabel("ViT - CNN (points)")
    ax_gap.set_xscale("log")
    ax_gap.set_xlabel("training images")
    ax_gap.set_xticks(n, [f"{int(x / 1000)}k" for x in n])
    ax_gap.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, str(out / "data_efficiency"))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("path", help="sweep folder (results.jsonl) or a folder of runs")
    ap.add_argument("--out", default=None, help="output folder (default: <path>/analysis)")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    path = pathlib.Path(args.path)
    out = pathlib.Path(args.out) if args.out else path / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    result = {"source": str(path), **analyse(accuracies(path))}
    if not args.no_plots:
        result["figures"] = plot(result, out)
    (out / "data_efficiency.json").write_text(json.dumps(result, indent=1))
    text = table(result)
    (out / "data_efficiency.md").write_text(text)
    print(text, end="")
    print(f"wrote {out / 'data_efficiency.json'}")
    return result


if __name__ == "__main__":
    main()
