"""Per-position held-out loss of LMs trained at a short length, evaluated at a long one.

  python analysis/length_generalization.py runs/length [--eval-len 2048] [--windows 64]

For every finished run of the sweep (sweeps/length.py; tags `position` and
`seed`), restores its final checkpoint and scores `--windows` non-overlapping
windows of `--eval-len` tokens of the held-out split, evenly spaced over it: the
mean next-token loss (nats per token; bytes here) at each position t, which
conditions on the t tokens before it. A causal LM's loss at position t is the
same inside any window that starts where this one does, so the mean over
positions < L is the loss of evaluating at length L: one pass gives the table
at every L.

Writes <sweep>/length/positions.json (per run: the loss per 16-position bin and
the mean over positions < L and over (L/2, L] for L = 128 .. eval_len; the
record a rerun reuses when the run's checkpoint step has not changed),
<sweep>/length/length.md (the tables, mean and spread over seeds) and
<sweep>/length/length_generalization.{png,svg} (loss by position per scheme).
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

BIN = 16


def lengths(train_len: int, eval_len: int) -> list[int]:
    """train_len, 2 train_len, ... up to eval_len (eval_len included)."""
    out, L = [], train_len
    while L < eval_len:
        out.append(L)
        L *= 2
    return out + [eval_len]


def position_losses(model, tokens: np.ndarray, eval_len: int, windows: int, batch: int = 4):
    """Mean next-token loss per position [eval_len] over `windows` evenly spaced windows."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    available = (len(tokens) - 1) // eval_len
    if available < 1:
        raise SystemExit(f"the held-out split has {len(tokens)} tokens: no window of {eval_len}")
    count = min(windows, available)
    starts = (np.arange(count) * available // count) * eval_len
    rows = tokens[starts[:, None] + np.arange(eval_len + 1)[None, :]]

    @nnx.jit
    def nll(model, window_BT1):
        logits = model(window_BT1[:, :-1], deterministic=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, window_BT1[:, 1:])

    total = np.zeros(eval_len)
    for i in range(0, count, batch):
        chunk = rows[i : i + batch]
        pad = batch - chunk.shape[0]  # one compiled shape: pad the last batch, drop its rows
        padded = np.concatenate([chunk, np.repeat(chunk[:1], pad, 0)]) if pad else chunk
        out = np.asarray(jax.device_get(nll(model, jnp.asarray(padded, jnp.int32))))
        total += out[: chunk.shape[0]].sum(0)
    return total / count, count


def evaluate_run(rec: dict, sweep_dir: pathlib.Path, eval_len: int, windows: int) -> dict:
    """The per-position record of one run (restores its latest checkpoint)."""
    from attn_jax import generate
    from attn_jax.data.pipeline import get_tokens

    workdir = sweep_dir / rec["sweep"]["workdir"]
    config = generate.load_run_config(str(workdir))
    if int(config.model.max_len) < eval_len:
        raise SystemExit(f"{workdir}: model.max_len {config.model.max_len} < --eval-len {eval_len}")
    model, step = generate.restore_model(config, str(workdir))
    tokens = get_tokens(config.data, config.data.eval_split)
    loss_T, count = position_losses(model, tokens, eval_len, windows)
    available = (len(tokens) - 1) // eval_len
    train_len = int(config.train.seq_len)
    table = {}
    for L in lengths(train_len, eval_len):
        table[str(L)] = {
            "mean_below": float(loss_T[:L].mean()),
            "mean_upper_half": float(loss_T[L // 2 : L].mean()),
        }
    tags = rec["sweep"]["tags"]
    return {
        "run_id": rec["run_id"],
        "position": tags["position"],
        "seed": tags.get("seed", rec.get("seed")),
        "step": int(step),
        "train_len": train_len,
        "eval_len": eval_len,
        "windows": int(count),
        "windows_available": int(available),
        "train_eval_loss": (rec.get("eval") or {}).get("loss"),
        "bin": BIN,
        "loss_by_bin": [round(float(x), 5) for x in loss_T.reshape(-1, BIN).mean(1)],
        "by_length": table,
    }


def summarize(runs: list[dict]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """position -> L -> (mean, sd over seeds, seeds) of the mean loss below L."""
    out: dict[str, dict] = {}
    for r in runs:
        for L, v in r["by_length"].items():
            out.setdefault(r["position"], {}).setdefault(L, []).append(v["mean_below"])
    return {
        p: {L: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v))
            for L, v in by_L.items()}
        for p, by_L in out.items()
    }  # fmt: skip


def table_md(runs: list[dict]) -> str:
    summ = summarize(runs)
    Ls = sorted({int(L) for r in runs for L in r["by_length"]})
    head = "| position | " + " | ".join(f"L {L}" for L in Ls) + " | L max / L train |"
    lines = [
        "Held-out loss (nats/byte) evaluated at length L (mean over positions < L), mean "
        "+- sd over seeds:",
        "",
        head,
        "|---" * (len(Ls) + 2) + "|",
    ]
    for p, by_L in summ.items():
        cells = [f"{by_L[str(L)][0]:.3f} +- {by_L[str(L)][1]:.3f}" for L in Ls]
        ratio = by_L[str(Ls[-1])][0] / by_L[str(Ls[0])][0]
        lines.append(
            f"| {p} ({by_L[str(Ls[0])][2]} seeds) | " + " | ".join(cells) + f" | {ratio:.2f} |"
        )
    lines += ["", "Loss on positions (L/2, L] only (where a longer window starts to matter):", ""]
    lines += [head.replace(" L max / L train |", ""), "|---" * (len(Ls) + 1) + "|"]
    for p in summ:
        cells = []
        for L in Ls:
            v = [r["by_length"][str(L)]["mean_upper_half"] for r in runs if r["position"] == p]
            cells.append(f"{np.mean(v):.3f}")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    positions = list(dict.fromkeys(r["position"] for r in runs))
    colors = dict(zip(positions, plt.cm.tab10(np.arange(len(positions))), strict=True))
    for p in positions:
        curves = np.array([r["loss_by_bin"] for r in runs if r["position"] == p])
        x = (np.arange(curves.shape[1]) + 0.5) * BIN
        ax.plot(x, curves.mean(0), color=colors[p], lw=1.4, label=f"{p} ({len(curves)} seeds)")
        if len(curves) > 1:
            ax.fill_between(x, curves.min(0), curves.max(0), color=colors[p], alpha=0.15, lw=0)
    train_len = runs[0]["train_len"]
    ax.axvline(train_len, color="k", ls=":", lw=1)
    ax.text(train_len * 1.05, ax.get_ylim()[1], " training length", va="top", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"position in the window (bins of {BIN})")
    ax.set_ylabel("held-out loss (nats/byte)")
    ax.set_title(
        f"Loss by position, trained at T {train_len}: mean over seeds, band = min..max",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from attn_jax.interp.plots import save_figure

    return save_figure(fig, str(out / "length_generalization"))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("path", help="the sweep folder (results.jsonl and trials/)")
    ap.add_argument("--eval-len", type=int, default=2048)
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--out", default=None, help="default: <path>/length")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    sweep_dir = pathlib.Path(args.path)
    out = pathlib.Path(args.out) if args.out else sweep_dir / "length"
    out.mkdir(parents=True, exist_ok=True)
    recs, _ = records.read_records(sweep_dir)
    done = [r for r in recs if r.get("status") == "done" and "position" in r["sweep"]["tags"]]
    if not done:
        raise SystemExit(f"{sweep_dir}: no finished run tagged with a position scheme.")
    saved_path = out / "positions.json"
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {"runs": []}
    # Reused when the checkpoint and the windows scored (min(--windows, available)) match.
    known = {(r["run_id"], r["eval_len"]): r for r in saved["runs"]}
    runs = []
    for i, rec in enumerate(done):
        cached = known.get((rec["run_id"], args.eval_len))
        if (
            cached is not None
            and cached["step"] == rec.get("steps")
            and cached["windows"] == min(args.windows, cached.get("windows_available", -1))
        ):
            runs.append(cached)
            continue
        print(f"[{i + 1}/{len(done)}] {rec['sweep']['tags']['position']} seed "
              f"{rec['sweep']['tags'].get('seed')}: scoring {args.windows} windows of "
              f"{args.eval_len}", flush=True)  # fmt: skip
        runs.append(evaluate_run(rec, sweep_dir, args.eval_len, args.windows))
        # Written after every run: a killed evaluation keeps what it scored.
        saved_path.write_text(json.dumps({"source": str(sweep_dir), "runs": runs}, indent=1))
    saved_path.write_text(json.dumps({"source": str(sweep_dir), "runs": runs}, indent=1))
    text = table_md(runs)
    (out / "length.md").write_text(text)
    result = {"runs": runs, "summary": summarize(runs)}
    if not args.no_plots:
        result["figures"] = plot(runs, out)
    print(text)
    print(f"wrote {saved_path}, {out / 'length.md'}"
          + (f", {', '.join(result['figures'])}" if not args.no_plots else ""))  # fmt: skip
    return result


if __name__ == "__main__":
    main()
