"""notebooks/attn_jax_colab.ipynb: committed clean, and every cell runs headless on CPU.

The fast tests read the notebook's JSON only (no kernel, no notebook packages): it is
nbformat 4 with no stored outputs, every code cell compiles, and the datasheet peaks it
cites are the ones MFU is divided by. The slow test executes it with nbclient in an
ipykernel of this Python (`pip install -e '.[notebook]'`, which `make test-all` does),
with the repository as working directory and no network, and checks `problems`: every
code cell ran, no output is an error, every promised figure was drawn.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import re
import sys

import pytest

from attn_jax.scaling import plots as scaling_plots
from attn_jax.train import metrics

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "attn_jax_colab.ipynb"
# The figures the notebook promises, under its output folder: every figure of the fit
# (attn_jax.scaling.plots.SPECS) and the attention heatmaps.
FIGURES = [f"fit/{name}.png" for name in scaling_plots.SPECS] + ["attention/heatmaps.png"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load(path=NOTEBOOK) -> dict:
    return json.loads(path.read_text())


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _text(output: dict) -> str:
    text = output.get("text", "")
    return text if isinstance(text, str) else "".join(text)


def problems(nb: dict, out_dir: pathlib.Path) -> list[str]:
    """What is wrong with an executed notebook: one line per problem (none: it passed)."""
    found = []
    images = 0
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell.get("execution_count") is None:
            found.append(f"cell {i} did not run")
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                found.append(f"cell {i} raised {output['ename']}: {output['evalue']}")
            png = output.get("data", {}).get("image/png")
            if png is not None:
                raw = base64.b64decode(png if isinstance(png, str) else "".join(png))
                if raw.startswith(PNG_MAGIC):
                    images += 1
                else:
                    found.append(f"cell {i} shows an image/png output that is not a PNG")
    if images < len(FIGURES):
        found.append(f"{images} figures shown, {len(FIGURES)} promised")
    for figure in FIGURES:
        path = out_dir / figure
        if not (path.is_file() and path.read_bytes().startswith(PNG_MAGIC)):
            found.append(f"{figure} was not drawn in {out_dir}")
    return found


def outputs_text(nb: dict) -> str:
    """Everything the code cells printed (stdout and stderr), in order."""
    return "".join(
        _text(o)
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o["output_type"] == "stream"
    )


def test_notebook_is_committed_clean_and_its_code_compiles():
    nb = _load()
    assert nb["nbformat"] == 4
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 6
    for i, cell in enumerate(code):
        clear = "clear them before committing (Jupyter: Edit > Clear outputs of all cells)"
        assert cell["outputs"] == [], f"code cell {i} has stored outputs: {clear}"
        assert cell["execution_count"] is None, f"code cell {i} has an execution count: {clear}"
        # Plain Python (no shell magics): the same cells run in Colab and under nbclient.
        compile(_source(cell), f"{NOTEBOOK.name}[code cell {i}]", "exec")
    # The install cell is the first cell that runs and never assumes Colab.
    assert "def find_checkout" in _source(code[0])
    assert "ATTN_JAX_GIT" in _source(code[0])


def test_cited_datasheet_peaks_are_the_ones_mfu_uses():
    rows = re.findall(
        r"^\| (TPU v\w+) \| (\d+) \|", "".join(_source(c) for c in _load()["cells"]), re.M
    )
    assert len(rows) == 6, rows
    for chip, tflops in rows:
        assert metrics.DATASHEET_PEAK_FLOPS[chip] == float(tflops) * 1e12, chip


def _png_output() -> dict:
    data = base64.b64encode(PNG_MAGIC + b"rest").decode()
    return {"output_type": "display_data", "data": {"image/png": data}, "metadata": {}}


def test_problems_catches_a_failed_cell_an_unrun_cell_and_a_missing_figure(tmp_path):
    for figure in FIGURES:
        (tmp_path / figure).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / figure).write_bytes(PNG_MAGIC + b"rest")
    good = {
        "cells": [
            {"cell_type": "markdown", "source": "# title"},
            {"cell_type": "code", "execution_count": 1, "outputs": [_png_output()] * 7},
        ]
    }
    assert problems(good, tmp_path) == []
    error = {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}
    failed = {
        "cells": [
            *good["cells"],
            {"cell_type": "code", "execution_count": 2, "outputs": [error]},
            {"cell_type": "code", "execution_count": None, "outputs": []},
        ]
    }
    assert problems(failed, tmp_path) == ["cell 2 raised ValueError: boom", "cell 3 did not run"]
    few = {"cells": [{"cell_type": "code", "execution_count": 1, "outputs": [_png_output()]}]}
    assert problems(few, tmp_path) == [f"1 figures shown, {len(FIGURES)} promised"]
    (tmp_path / "attention" / "heatmaps.png").unlink()
    assert problems(good, tmp_path) == [f"attention/heatmaps.png was not drawn in {tmp_path}"]


@pytest.mark.slow
def test_notebook_runs_headless_on_cpu(tmp_path, monkeypatch):
    try:
        import nbclient
        import nbformat
    except ImportError as e:
        pytest.fail(f"{e}: pip install -e '.[notebook]' (make test-all does)")
    # A kernel of this very Python, whatever kernelspecs the machine has.
    kernels = tmp_path / "jupyter" / "kernels" / "attn_jax_test"
    kernels.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "attn_jax test", "language": "python"}
    (kernels / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    out = tmp_path / "out"
    monkeypatch.setenv("ATTN_JAX_NOTEBOOK_OUT", str(out))
    monkeypatch.setenv("ATTN_JAX_REPO", str(REPO))
    monkeypatch.setenv("ATTN_JAX_GIT", "")  # nothing to clone from
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # and nothing to download, were pip to run
    # One CPU device, as on a Colab CPU runtime (conftest forces 8 for the other tests).
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", os.environ["XLA_FLAGS"])
    monkeypatch.setenv("XLA_FLAGS", flags.strip())

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="attn_jax_test",
        timeout=900,
        allow_errors=True,  # run on, so `problems` names every failing cell
        resources={"metadata": {"path": str(REPO)}},
    )
    client.execute()
    executed = json.loads(nbformat.writes(nb))
    assert problems(executed, out) == []
    printed = outputs_text(executed)
    assert "nothing to install" in printed, printed[:2000]  # the test never reaches the network
    assert "(cpu)" in printed
    assert "measured f32 matmul" in printed
    assert "L(N, D) = " in printed
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 12
    assert {r["status"] for r in records} == {"done"}
    assert all(r["mfu"] > 0 and r["mfu_peak"]["source"] == "measured f32 matmul" for r in records)
