"""One results page, regenerated from run records and benchmark records only.

  python analysis/report.py [--root .] [--out docs/RESULTS.md]

Reads what the project's commands left under results/ and benchmarks/results/
(run records: summary.json, results.jsonl; and what the analysis commands wrote
from them: fit.json, compare.json, positions.json, downstream.json, attention
benchmark JSON) and writes docs/RESULTS.md plus its own figures in
docs/results/. Every number on the page is rendered through `Page.num` from a
(file, key) of those records, optionally reduced (mean, sd, a log-log slope):
`Page.numbers` lists each with its inputs, and tests/test_report.py recomputes
every one from the files and checks that the page holds no other number. A
section whose records are missing says which command makes them instead.

Each section names the command that produced its records and, where the record
has it (`machine`, since 2026-12-03), the date, the CPU and the load average;
older records say when their files were committed instead.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Sequence

import numpy as np

Key = tuple  # path into a JSON document: str keys and int indices


def _slope(xs):
    """Slope of log y on log x; xs = x_1..x_n, y_1..y_n."""
    n = len(xs) // 2
    return float(np.polyfit(np.log(xs[:n]), np.log(xs[n:]), 1)[0])


REDUCERS: dict[str, Callable[[Sequence[float]], float]] = {
    "value": lambda xs: float(xs[0]),
    "percent": lambda xs: 100.0 * float(xs[0]),
    "error_percent": lambda xs: 100.0 * (1.0 - float(xs[0])),
    "mean": lambda xs: float(np.mean(xs)),
    "mean_percent": lambda xs: 100.0 * float(np.mean(xs)),
    "sd": lambda xs: float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0,
    "ratio": lambda xs: float(xs[0]) / float(xs[1]),
    "loglog_slope": _slope,
}


def read_json(path: pathlib.Path):
    """A JSON file, or a JSON-lines file as a list of its records."""
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def resolve(doc, key: Key):
    for part in key:
        doc = doc[part]
    return doc


class Page:
    """Markdown lines, the numbers they show (with where each came from) and figures."""

    def __init__(self, root: pathlib.Path, out: pathlib.Path):
        self.root, self.out = root, out
        self.lines: list[str] = []
        self.numbers: list[dict] = []
        self.figures: list[str] = []
        self.labels: list[str] = []  # numbers that name things (a column's L, a layer)
        self._cache: dict[str, object] = {}

    def doc(self, rel: str):
        if rel not in self._cache:
            self._cache[rel] = read_json(self.root / rel)
        return self._cache[rel]

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def num(self, fmt: str, inputs: Sequence[tuple[str, Key]], how: str = "value") -> str:
        """Formats REDUCERS[how] of the values at `inputs` ((file, key) pairs); records it."""
        values = [float(resolve(self.doc(rel), key)) for rel, key in inputs]
        text = format(REDUCERS[how](values), fmt)
        self.numbers.append(
            {"text": text, "fmt": fmt, "how": how, "inputs": [[r, list(k)] for r, k in inputs]}
        )
        return text

    def label(self, value) -> str:
        """A number that names something (an approach, a length, a layer), not a result."""
        self.labels.append(str(value))
        return str(value)

    def v(self, rel: str, *key, fmt: str = ".3f", how: str = "value") -> str:
        return self.num(fmt, [(rel, key)], how)

    def figure(self, rel: str, caption: str) -> None:
        """A figure by its path under root; it must exist."""
        path = self.root / rel
        if not path.exists():
            raise FileNotFoundError(f"figure {rel} named by the page does not exist")
        link = os.path.relpath(path, self.out.parent)
        self.figures.append(str(path))
        self.lines += [f"![{caption}]({link})", ""]

    def add(self, *lines: str) -> None:
        self.lines += list(lines)

    def when(self, rel: str, machine_key: Key = ("machine",)) -> str:
        """'date, CPU, load' from a record's `machine`, or when the file was committed."""
        if not self.exists(rel):
            return f"`{rel}` is not here: date, machine and load unknown"
        doc = self.doc(rel)
        if isinstance(doc, list) and machine_key[:1] == ("latest",):  # a sweep: its last run
            finished = [str((r.get("machine") or {}).get("finished_utc") or "") for r in doc]
            machine_key = (max(range(len(doc)), key=finished.__getitem__), *machine_key[1:])
        try:
            m = resolve(doc, machine_key)
        except (KeyError, IndexError, TypeError):
            m = None
        if m:
            load = self.num(".1f", [(rel, (*machine_key, "load_avg_start", 0))])
            cores = self.num(".0f", [(rel, (*machine_key, "cores"))])
            return f"finished `{m['finished_utc']}` on `{m['cpu']}`, {cores} cores, load {load} at start"
        try:
            date = subprocess.run(
                ["git", "log", "-1", "--format=%cs", "--", rel],
                cwd=self.root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            date = ""
        return (
            f"records committed `{date or 'outside git'}`; the record predates its `machine` field"
        )


def _open(page: Page, title: str, command: str, rel: str, sweep: str | None = None) -> bool:
    """A section's heading and command; False (and how to make them) when `rel` is missing.

    Dated by `rel`'s own `machine`, or with `sweep` (a results.jsonl) by the sweep's
    last-finished run.
    """
    if not page.exists(rel):
        page.add(f"## {title}", "", f"Not run yet: `{command}`.", "")
        return False
    when = (sweep, ("latest", "machine")) if sweep else (rel,)
    page.add(f"## {title}", "", f"`{command}` ({page.when(*when)}).", "")
    return True


def headline_lm(page: Page) -> None:
    rel = "results/lm_budget/summary.json"
    title = "The best LM a time budget buys"
    command = (
        "python -m attn_jax.main --config experiments/lm.py:budget=800 --workdir runs/lm_budget"
    )
    if not _open(page, title, command, rel):
        return
    page.add(
        f"Budget {page.v(rel, 'time_budget', 'budget_s', fmt='.0f')} s; "
        f"the loop planned {page.v(rel, 'time_budget', 'steps_planned', fmt='.0f')} steps and finished in "
        f"{page.v(rel, 'time_budget', 'process_seconds', fmt='.0f')} process-seconds. Held-out loss "
        f"**{page.v(rel, 'eval', 'loss', fmt='.4f')} nats/byte** on all validation windows, "
        f"{page.v(rel, 'params_non_embedding', fmt='.3g')} non-embedding parameters, "
        f"{page.v(rel, 'tokens_seen', fmt='.3g')} tokens.",
        "",
    )


def demo_fit(page: Page) -> None:
    rel = "results/demo/fit/fit.json"
    title = "The demo sweep's scaling law"
    command = "make demo  (sweeps/demo.py, then analysis/fit.py)"
    if not _open(page, title, command, rel, "results/demo/results.jsonl"):
        return
    p = ("approach3", "params")
    law = (
        f"L = {page.v(rel, *p, 'E')} + {page.v(rel, *p, 'A', fmt='.3g')} / N^"
        f"{page.v(rel, *p, 'alpha')} + {page.v(rel, *p, 'B', fmt='.3g')} / D^{page.v(rel, *p, 'beta')}"
    )
    rows = []
    for i, name in enumerate(("approach1", "approach2", "approach3")):
        e = ("exponents", name)
        rows.append(
            f"| {page.label(i + 1)} | {page.v(rel, *e, 'a')} | [{page.v(rel, *e, 'lo')}, {page.v(rel, *e, 'hi')}] |"
        )
    held = ("leave_largest_out",)
    page.add(
        f"Approach 3: {law}. Allocation exponent a (N_opt ~ C^a) by Chinchilla's three approaches:",
        "",
        f"| approach | a | {page.label(95)}% bootstrap interval |",
        "|---|---|---|",
        *rows,
        "",
        f"Fitted without its largest size, the law predicts that size's losses within "
        f"{page.v(rel, *held, 'mean_abs_rel_error', fmt='.2f', how='percent')}% mean, "
        f"{page.v(rel, *held, 'max_abs_rel_error', fmt='.2f', how='percent')}% max.",
        "",
    )
    page.figure("results/demo/fit/isoflop.png", "IsoFLOP profiles of the demo sweep")


def mechanisms(page: Page) -> None:
    rel = "results/mechanisms/compare/compare.json"
    title = "The attention mechanism as a scaling axis"
    command = (
        "python -m attn_jax.sweep run sweeps/mechanisms.py --out results/mechanisms --executor "
        "local --workers 2; python analysis/compare_mechanisms.py results/mechanisms"
    )
    if not _open(page, title, command, rel, "results/mechanisms/results.jsonl"):
        return
    page.add(
        f"Approach 3 per mechanism, {page.label(95)}% bootstrap intervals in brackets:",
        "",
        "| mechanism | E | alpha | beta | a | held-out size, max error |",
        "|---|---|---|---|---|---|",
    )
    for name in page.doc(rel)["groups"]:
        g = ("groups", name)
        cells = [page.v(rel, *g, "params", "E")]
        for q in ("alpha", "beta", "a"):
            point = page.v(rel, *g, *(("a",) if q == "a" else ("params", q)))
            iv = (*g, "intervals", q)
            cells.append(f"{point} [{page.v(rel, *iv, 'lo')}, {page.v(rel, *iv, 'hi')}]")
        held = page.v(rel, *g, "held_out", "max_abs_rel_error", fmt=".2f", how="percent") + "%"
        if page.doc(rel)["groups"][name]["held_out"].get("seed_rel_sd") is not None:
            sd = page.v(rel, *g, "held_out", "seed_rel_sd", fmt=".2f", how="percent")
            held += f" (seed mean; sd across seeds {sd}%)"
        cells.append(held)
        page.add(f"| {name} | " + " | ".join(cells) + " |")
    page.add("")
    page.figure(
        "results/mechanisms/compare/mechanisms_compute.png", "loss vs compute per mechanism"
    )
    page.figure("results/mechanisms/compare/mechanisms_exponents.png", "exponents per mechanism")


def vision_scaling(page: Page) -> None:
    rel = "results/vit_scaling/fit/fit.json"
    title = "Vision scaling (saturating law)"
    command = (
        "python -m attn_jax.sweep run sweeps/vit_scaling.py --out results/vit_scaling; "
        "python analysis/vision_scaling.py results/vit_scaling"
    )
    if not _open(page, title, command, rel, "results/vit_scaling/results.jsonl"):
        return
    iv = lambda q: f"[{page.v(rel, 'intervals', q, 'lo')}, {page.v(rel, 'intervals', q, 'hi')}]"
    page.add(
        f"E = {page.v(rel, 'params', 'a', fmt='.3g')} (C + d)^-{page.v(rel, 'params', 'b')} + "
        f"{page.v(rel, 'params', 'c')}; {page.label(95)}% intervals b {iv('b')}, c {iv('c')}. Held-out "
        f"largest-compute point predicted within "
        f"{page.v(rel, 'held_out', 'rel_error', fmt='.1f', how='percent')}%.",
        "",
    )
    page.figure("results/vit_scaling/fit/vision_scaling.png", "ViT error vs compute")


def families(page: Page) -> None:
    rows = []
    spec = [
        ("Translation en-es (BLEU)", "results/translate/summary.json", ("eval", "bleu"), ".1f", "value"),
        ("ViT on Fashion-MNIST (test accuracy %)", "results/vit/summary.json", ("eval", "accuracy"), ".1f", "percent"),
        ("CLIP zero-shot on easy-VQA (%)", "results/clip/summary.json", ("eval", "zero_shot_accuracy"), ".1f", "percent"),
        ("VQA, image + question (accuracy %)", "results/vqa/both/summary.json", ("eval", "accuracy"), ".1f", "percent"),
        ("MLM probe, author of a passage (%)", "results/mlm/downstream.json", ("results", "author", "probe", "accuracy"), ".1f", "percent"),
    ]  # fmt: skip
    for label, rel, key, fmt, how in spec:
        if page.exists(rel):
            rows.append(f"| {label} | {page.v(rel, *key, fmt=fmt, how=how)} | {page.when(rel)} |")
    if not rows:
        return
    page.add("## Model families", "", "| result | value | when |", "|---|---|---|", *rows, "")


def length(page: Page) -> None:
    rel = "results/length/length/positions.json"
    title = "Limits: length generalization"
    command = (
        "python -m attn_jax.sweep run sweeps/length.py --out results/length; "
        "python analysis/length_generalization.py results/length"
    )
    if not _open(page, title, command, rel, "results/length/results.jsonl"):
        return
    runs = page.doc(rel)["runs"]
    Ls = sorted({int(L) for r in runs for L in r["by_length"]})
    page.add(
        "Held-out loss (nats/byte) evaluated at length L, mean over seeds (sd):",
        "",
        "| position | " + " | ".join(f"L {page.label(L)}" for L in Ls) + " |",
        "|---" * (len(Ls) + 1) + "|",
    )
    for pos in dict.fromkeys(r["position"] for r in runs):
        idx = [i for i, r in enumerate(runs) if r["position"] == pos]
        cells = []
        for L in Ls:
            inputs = [(rel, ("runs", i, "by_length", str(L), "mean_below")) for i in idx]
            cells.append(f"{page.num('.3f', inputs, 'mean')} ({page.num('.3f', inputs, 'sd')})")
        page.add(f"| {pos} | " + " | ".join(cells) + " |")
    page.add("")
    page.figure("results/length/length/length_generalization.png", "loss by position")


def data_efficiency(page: Page) -> None:
    rel = "results/data_efficiency/analysis/data_efficiency.json"
    title = "Limits: data efficiency (ViT vs CNN)"
    command = (
        "python -m attn_jax.sweep run sweeps/data_efficiency.py --out results/data_efficiency "
        "--executor local --workers 1; "
        "python analysis/data_efficiency.py results/data_efficiency"
    )
    if not _open(page, title, command, rel, "results/data_efficiency/results.jsonl"):
        return
    rows = page.doc(rel)["rows"]
    page.add(
        "Fashion-MNIST test accuracy (%) after the same optimizer steps and images seen "
        "(`sweeps/data_efficiency.py`), trained on the first n training images (mean over seeds):",
        "",
        "| n | ViT s6 | CNN s | ViT - CNN (points) |",
        "|---|---|---|---|",
    )
    for i, r in enumerate(rows):
        vit = page.v(rel, "rows", i, "vit", "mean", fmt=".2f", how="percent")
        cnn = page.v(rel, "rows", i, "cnn", "mean", fmt=".2f", how="percent")
        gap = page.v(rel, "rows", i, "gap_pp", fmt="+.2f")
        page.add(f"| {page.label(r['train_images'])} | {vit} | {cnn} | {gap} |")
    cross = page.doc(rel)["crossovers"]
    page.add("")
    if cross:
        for j, c in enumerate(cross):
            n = page.v(rel, "crossovers", j, "train_images", fmt=",.0f")
            after = "better" if c["vit_better_after"] else "worse"
            page.add(f"The curves cross near {n} images (the ViT is {after} after).", "")
    else:
        page.add("No crossover within the sizes run.", "")
    page.figure(
        "results/data_efficiency/analysis/data_efficiency.png", "accuracy vs training images"
    )


def scan(page: Page) -> None:
    rel = "results/scan/results.jsonl"
    command = "python -m attn_jax.sweep run sweeps/scan.py --out results/scan"
    title = "Limits: systematic generalization (SCAN)"
    if not _open(page, title, command, rel, rel):
        return
    recs = page.doc(rel)
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(recs):
        if r.get("status") == "done":
            t = r["sweep"]["tags"]
            groups.setdefault((t["split"], t.get("position", "default")), []).append(i)
    page.add(
        "Exact-match accuracy (%), mean over seeds:",
        "",
        "| split | position | seeds | exact match % |",
        "|---|---|---|---|",
    )
    for (split, pos), idx in groups.items():
        inputs = [(rel, (i, "eval", "exact_match")) for i in idx]
        page.add(
            f"| {split} | {pos} | {page.label(len(idx))} | "
            f"{page.num('.1f', inputs, 'mean_percent')} |"
        )
    page.add("")


def kernels(page: Page, min_T: int = 2048) -> None:
    rel = "benchmarks/results/attention.json"
    if not page.exists(rel):
        page.add(
            "## Limits: computational scalability",
            "",
            "Not run yet: `python benchmarks/attention.py`.",
            "",
        )
        return
    res = page.doc(rel)["results"]
    by_kernel: dict[str, list[int]] = {}
    for i, r in enumerate(res):
        if r["status"] == "ok" and r["T"] >= min_T:
            by_kernel.setdefault(r["kernel"], []).append(i)
    shape = ", ".join(f"{k} {page.v(rel, 'shape', k, fmt='.0f')}" for k in ("B", "N", "H"))
    page.add(
        "## Limits: computational scalability",
        "",
        f"`python benchmarks/attention.py` ({shape}, causal, fwd+bwd; `{page.doc(rel)['cpu']}`, "
        f"{page.v(rel, 'cores', fmt='.0f')} cores, load {page.v(rel, 'load_avg_end', 0, fmt='.1f')} "
        f"at the end). Fitted exponent k of time ~ T^k over T >= {page.label(min_T)} "
        f"({page.label(2)} = quadratic, {page.label(1)} = linear):",
        "",
        "| kernel | points | T range | exponent k |",
        "|---|---|---|---|",
    )
    for kernel, idx in sorted(by_kernel.items()):
        if len(idx) < 2:
            continue
        inputs = [(rel, ("results", i, "T")) for i in idx] + [
            (rel, ("results", i, "time_s")) for i in idx
        ]
        T_lo = page.v(rel, "results", idx[0], "T", fmt=".0f")
        T_hi = page.v(rel, "results", idx[-1], "T", fmt=".0f")
        slope = page.num(".2f", inputs, "loglog_slope")
        page.add(f"| {kernel} | {page.label(len(idx))} | {T_lo} to {T_hi} | {slope} |")
    page.add("")
    if page.exists("benchmarks/results/attention.png"):
        page.figure("benchmarks/results/attention.png", "kernel time and memory vs T")


def attribution(page: Page) -> None:
    rel = "results/attention_heads/attribution/xs/attribution.json"
    if not page.exists(rel):
        return
    layers = page.doc(rel)["layers"]
    cells = [
        f"layer {page.label(layer['layer'])}: {page.v(rel, 'layers', i, 'median', fmt='.2f')}"
        for i, layer in enumerate(layers)
    ]
    page.add(
        "## Limits: interpretability",
        "",
        "`python analysis/attention_attribution.py` on the xs LM: median Spearman rank "
        "correlation, over texts, between a layer's attention weights and input x gradient "
        f"attribution: {'; '.join(cells)} ({page.when(rel)}). Attention is a partial guide "
        "to what the prediction depends on.",
        "",
    )


SECTIONS = (
    headline_lm,
    demo_fit,
    mechanisms,
    vision_scaling,
    families,
    length,
    data_efficiency,
    scan,
    kernels,
    attribution,
)


def build(root: pathlib.Path, out: pathlib.Path) -> Page:
    page = Page(root, out)
    page.add(
        "# Results",
        "",
        "Generated by `python analysis/report.py` from the run records under results/ and "
        "the benchmark records under benchmarks/results/; do not edit by hand. Every "
        "number comes from a record (tests/test_report.py checks it).",
        "",
    )
    for section in SECTIONS:
        section(page)
    return page


def main(argv=None) -> Page:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parents[1]))
    ap.add_argument("--out", default=None, help="default: <root>/docs/RESULTS.md")
    args = ap.parse_args(argv)
    root = pathlib.Path(args.root)
    out = pathlib.Path(args.out) if args.out else root / "docs" / "RESULTS.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    page = build(root, out)
    out.write_text("\n".join(page.lines) + "\n")
    sources = {"numbers": page.numbers, "labels": page.labels, "figures": page.figures}
    (out.parent / (out.stem + ".numbers.json")).write_text(json.dumps(sources, indent=0))
    print(f"wrote {out}: {len(page.numbers)} numbers from records, {len(page.figures)} figures")
    return page


if __name__ == "__main__":
    sys.exit(main() and 0)
