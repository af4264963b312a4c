"""The HTML viewer in a real headless Chromium: it opens on the first head, a click on
another head of another layer draws that head's weights, the head menu and the mean work,
and a cross-attention layer (T x S, its own key labels) renders.

What the page drew is read back two ways, both compared with weights.npz within the
page's documented bound (row max / 510 for the uint8 codes): the viewer's
`attnViewer.current()` and the heatmap canvas's pixels (one more 1/510 for the colour).
Needs `make browser` (chromium unpacked under the data root); without it the test fails.
"""

import json

import numpy as np
import pytest

from attn_jax.data import sources
from attn_jax.interp import browser, html, report

T = 6
CROSS = "decoder.blocks.0.cross"
KEY_TOKENS = ["<s>", "la", "casa", "</s>"]  # "</s>" must not close the page's script


def _rows(x_NTS):
    return (x_NTS / x_NTS.sum(-1, keepdims=True)).astype(np.float32)


def _causal_random(rng, n):
    x = rng.random((n, T, T)) * np.tril(np.ones((T, T)))
    return _rows(x**3)


def _write(tmp_path):
    """A report with a distinct pattern per head, plus a cross-attention layer."""
    eye = np.eye(T)
    prev = np.eye(T, k=-1)
    prev[0, 0] = 1
    first = np.zeros((T, T))
    first[:, 0] = 1
    uniform = np.tril(np.ones((T, T)))
    rng = np.random.default_rng(0)
    w = {
        "blocks.0.attn.weights": _rows(np.stack([eye, prev, first])),
        "blocks.1.attn.weights": np.concatenate([_rows(uniform[None]), _causal_random(rng, 2)]),
    }
    tokens = ["the", "cat", "<b>", "sat", "on", "mat"]
    report.write_report({k: v[None] for k, v in w.items()}, tokens, str(tmp_path), causal=True)
    # write_report takes self-attention only: the cross layer is added as a model's would be.
    shown = dict(np.load(tmp_path / "weights.npz"))
    shown[CROSS] = _rows(rng.random((2, T, len(KEY_TOKENS))) ** 3)
    np.savez(tmp_path / "weights.npz", **shown)
    record = json.loads((tmp_path / "attention.json").read_text())
    record["layer_info"] = {CROSS: {"key_tokens": KEY_TOKENS}}
    (tmp_path / "attention.json").write_text(json.dumps(record))
    return html.write_html(tmp_path), shown, tokens


@pytest.fixture
def page_and_weights(tmp_path):
    path, weights, tokens = _write(tmp_path)
    try:
        b = browser.launch(sources.data_root(""))
    except browser.MissingBrowserError as e:
        pytest.fail(str(e))  # not a skip: the viewer would go untested
    with b:
        page = b.open(path.as_uri())
        yield page, weights, tokens
        assert page.errors == [], f"the page raised: {page.errors}"


_READ = """(() => {
  const c = document.getElementById("heatmap"), g = c.getContext("2d");
  const cell = Number(c.dataset.cell), pad = Number(c.dataset.pad);
  const T = (c.height - pad) / cell, S = (c.width - pad) / cell, red = [];
  for (let t = 0; t < T; t++) for (let s = 0; s < S; s++)
    red.push(g.getImageData(pad + s * cell + (cell >> 1), pad + t * cell + (cell >> 1), 1, 1)
      .data[0]);
  return {layer: c.dataset.layer, head: c.dataset.head, T, S, cell, pad, red,
          current: window.attnViewer.current()};
})()"""


def _shown(page):
    """(canvas layer, canvas head, weights from current(), weights from the pixels)."""
    r = page.evaluate(_READ)
    cur = r["current"]
    assert (cur["layer"], str(cur["head"])) == (r["layer"], r["head"])
    t, s = int(r["T"]), int(r["S"])
    assert (t, s) == (r["T"], r["S"]), "the canvas is not a whole number of cells"
    from_pixels = 1 - np.array(r["red"], np.float32).reshape(t, s) / 255
    return r["layer"], r["head"], np.array(cur["weights"]).reshape(t, s), from_pixels, r


def _assert_shows(page, layer, head, w_TS):
    got_layer, got_head, current, pixels, _ = _shown(page)
    assert (got_layer, got_head) == (layer, str(head))
    assert current.shape == w_TS.shape
    bound = np.broadcast_to(w_TS.max(-1, keepdims=True) / 510 + 1e-6, w_TS.shape)
    np.testing.assert_array_less(np.abs(current - w_TS), bound)
    np.testing.assert_array_less(np.abs(pixels - w_TS), bound + 1 / 510)


@pytest.mark.slow
def test_clicks_show_the_heads_weights(page_and_weights):
    page, w, _ = page_and_weights
    _assert_shows(page, "blocks.0.attn", 0, w["blocks.0.attn"][0])  # opens on the first head

    page.click('#stats tr[data-layer="blocks.1.attn"][data-head="2"]')
    _assert_shows(page, "blocks.1.attn", 2, w["blocks.1.attn"][2])
    selected = page.evaluate(
        "[...document.querySelectorAll('#stats tr.sel')].map(r => r.dataset.layer + '/' +"
        " r.dataset.head)"
    )
    assert selected == ["blocks.1.attn/2"]

    page.click('#stats tr[data-layer="blocks.0.attn"][data-head="1"]')
    _assert_shows(page, "blocks.0.attn", 1, w["blocks.0.attn"][1])

    for head in ("0", "mean"):  # the head menu, as a person's choice fires it
        page.evaluate(
            f"(() => {{const m = document.getElementById('head'); m.value = '{head}';"
            " m.dispatchEvent(new Event('change', {bubbles: true}));})()"
        )
        want = w["blocks.0.attn"].mean(0) if head == "mean" else w["blocks.0.attn"][0]
        _assert_shows(page, "blocks.0.attn", head, want)


@pytest.mark.slow
def test_cross_attention_layer_renders_with_its_key_labels(page_and_weights):
    page, w, tokens = page_and_weights
    page.evaluate(
        "(() => {const m = document.getElementById('kind'); m.value = 'cross';"
        " m.dispatchEvent(new Event('change', {bubbles: true}));})()"
    )
    _assert_shows(page, CROSS, 0, w[CROSS][0])
    page.click(f'#heads button[data-layer="{CROSS}"][data-head="1"]')  # no stats rows here
    _assert_shows(page, CROSS, 1, w[CROSS][1])
    *_, r = _shown(page)
    cell, pad = r["cell"], r["pad"]
    for t, s in [(1, 2), (5, 3)]:
        page.hover("#heatmap", pad + s * cell + cell / 2, pad + t * cell + cell / 2)
        text = page.evaluate("document.getElementById('cell-readout').textContent")
        label, value = text.rsplit(": ", 1)
        assert label == f"query {tokens[t]} -> key {KEY_TOKENS[s]}"
        assert abs(float(value) - w[CROSS][1, t, s]) <= w[CROSS][1, t].max() / 510 + 5e-4
