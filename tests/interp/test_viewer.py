"""The HTML viewer's page: self-contained, its embedded weights round-trip, filters apply.

(The page's JavaScript runs in headless Chromium in test_browser.py, a slow test.)
"""

import base64
import json
import re

import numpy as np
import pytest

from attn_jax.interp import html


def _report(tmp_path, rng):
    w = {}
    for key, (n, t, s) in {
        "blocks.0.attn.weights": (3, 5, 5),
        "blocks.1.attn.weights": (3, 5, 5),
    }.items():
        x = rng.random((n, t, s)).astype(np.float32)
        w[key] = x / x.sum(-1, keepdims=True)
    np.savez(tmp_path / "weights.npz", **w)
    record = {"text": "a <b> </script> c", "tokens": list("abcde"), "heads": []}
    (tmp_path / "attention.json").write_text(json.dumps(record))
    return w


def _embedded(page: str) -> dict:
    blob = re.search(r"const DATA = (.*?);\n", page, re.S).group(1)
    return json.loads(blob.replace("<\\/", "</"))


def test_page_is_self_contained_and_weights_round_trip(tmp_path):
    w = _report(tmp_path, np.random.default_rng(0))
    page = html.write_html(tmp_path).read_text()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page)
    assert "http://" not in page
    assert "https://" not in page
    assert page.count("</script>") == page.count("<script")  # the title cannot close it
    data = _embedded(page)
    assert [d["name"] for d in data["layers"]] == sorted(w)
    for layer in data["layers"]:
        n, t, s = w[layer["name"]].shape
        q = np.frombuffer(base64.b64decode(layer["q"]), np.uint8).reshape(n, t, s)
        scale = np.array(layer["scale"], np.float32).reshape(n, t)
        shown = q / 255.0 * scale[..., None]
        bound = scale[..., None] / 510 + 1e-6
        assert np.all(np.abs(shown - w[layer["name"]]) <= bound)


def test_filters_keep_only_the_layers_and_heads_asked(tmp_path):
    w = _report(tmp_path, np.random.default_rng(1))
    key = "blocks.1.attn.weights"
    data = _embedded(html.write_html(tmp_path, layers=[key], heads=[2]).read_text())
    assert [d["name"] for d in data["layers"]] == [key]
    layer = data["layers"][0]
    assert layer["heads"] == [2]
    q = np.frombuffer(base64.b64decode(layer["q"]), np.uint8).reshape(1, 5, 5)
    shown = q / 255.0 * np.array(layer["scale"], np.float32).reshape(1, 5)[..., None]
    np.testing.assert_allclose(shown[0], w[key][2], atol=1 / 255)
    with pytest.raises(ValueError, match="not in the report"):
        html.write_html(tmp_path, layers=["blocks.9.attn.weights"])
    with pytest.raises(ValueError, match="out of range"):
        html.write_html(tmp_path, heads=[3])


def test_layer_kind_and_labels_come_from_the_reports_layer_info(tmp_path):
    """A cross layer whose name does not say so (e.g. a fusion block's) is shown as cross,
    with its own key labels, because the report says so."""
    rng = np.random.default_rng(2)
    x = rng.random((2, 3, 4)).astype(np.float32)
    np.savez(tmp_path / "weights.npz", **{"fusion.0.mix": x / x.sum(-1, keepdims=True)})
    info = {"tokens": list("abc"), "key_tokens": ["p0", "p1", "p2", "reg0"], "kind": "cross"}
    record = {"tokens": list("abc"), "heads": [], "layer_info": {"fusion.0.mix": info}}
    (tmp_path / "attention.json").write_text(json.dumps(record))
    (layer,) = _embedded(html.write_html(tmp_path).read_text())["layers"]
    assert layer["kind"] == "cross"
    assert (layer["T"], layer["S"]) == (3, 4)
    assert layer["keys"] == info["key_tokens"]
