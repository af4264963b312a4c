"""analysis/report.py: the results page holds only numbers that come from records.

The page is built from a small set of records (copies of committed ones, in a temporary
root), then every number in it is found again: each registered number is recomputed
from its (file, key) inputs, and no other number (outside code spans and links) may
appear. A page with one number typed in by hand fails the same check.
"""

import json
import os
import pathlib
import re
import shutil

import pytest

from attn_jax import configs

REPO = pathlib.Path(__file__).resolve().parents[1]
RECORDS = (
    "results/lm_budget/summary.json",
    "results/scan/results.jsonl",
    "results/vit/summary.json",
    "results/vit_scaling/fit/fit.json",
    "results/vit_scaling/fit/vision_scaling.png",
    "benchmarks/results/attention.json",
    "results/data_efficiency/results.jsonl",
    "results/data_efficiency/analysis/data_efficiency.json",
    "results/data_efficiency/analysis/data_efficiency.png",
)
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _report():
    return configs.import_file(str(REPO / "analysis" / "report.py"))


def unaccounted(report, page) -> list[str]:
    """Numbers in the page text that no record accounts for; checks each registered one."""
    for n in page.numbers:
        values = [
            float(report.resolve(report.read_json(page.root / rel), tuple(key)))
            for rel, key in n["inputs"]
        ]
        assert format(report.REDUCERS[n["how"]](values), n["fmt"]) == n["text"], n
    known = {n["text"].lstrip("+-") for n in page.numbers} | set(page.labels)
    text = "\n".join(page.lines)
    text = re.sub(r"`[^`]*`", "", text)  # commands, dates and CPU names
    text = re.sub(r"\]\([^)]*\)", "]", text)  # figure paths
    return [t for t in NUMBER.findall(text) if t.lstrip("+-") not in known]


@pytest.fixture
def root(tmp_path):
    for rel in RECORDS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    return tmp_path


def test_every_number_comes_from_a_record_and_every_figure_exists(root):
    report = _report()
    out = root / "docs" / "RESULTS.md"
    page = report.main(["--root", str(root), "--out", str(out)])
    assert out.exists()
    assert unaccounted(report, page) == []
    assert len(page.numbers) > 30
    for fig in page.figures:
        assert os.path.exists(fig)
    text = out.read_text()
    for link in re.findall(r"\]\(([^)]+)\)", text):
        assert (out.parent / link).exists(), link
    # The records it was given are quoted; the ones it was not say how to make them.
    lm = json.loads((root / RECORDS[0]).read_text())
    assert f"**{lm['eval']['loss']:.4f} nats/byte**" in text
    assert "Not run yet: `python -m attn_jax.sweep run sweeps/mechanisms.py" in text
    # A sweep is dated by its last-finished run, not by its first record.
    runs = report.read_json(root / "results/data_efficiency/results.jsonl")
    last = max(r["machine"]["finished_utc"] for r in runs)
    assert last != runs[0]["machine"]["finished_utc"]
    section = text[text.index("## Limits: data efficiency") :]
    assert f"finished `{last}`" in section.split("\n\n")[1]
    saved = json.loads((out.parent / "RESULTS.numbers.json").read_text())
    assert len(saved["numbers"]) == len(page.numbers)


def test_a_number_typed_by_hand_is_caught(root):
    report = _report()
    page = report.build(root, root / "docs" / "RESULTS.md")
    page.add("The LM reaches 1.4321 nats/byte.")
    assert unaccounted(report, page) == ["1.4321"]
    page.numbers[0]["text"] = "9.999"  # a registered number that its record does not give
    with pytest.raises(AssertionError):
        unaccounted(report, page)


def test_a_missing_figure_is_an_error(root):
    report = _report()
    (root / "results/vit_scaling/fit/vision_scaling.png").unlink()
    with pytest.raises(FileNotFoundError, match="vision_scaling.png"):
        report.build(root, root / "docs" / "RESULTS.md")
