"""analysis/attention.py on a trained LM run: figures, JSON and the weights of the restored model."""

import json
import os

import numpy as np
import pytest
from interp_helpers import QUIET, REPO, load_script

from attn_jax import configs, generate
from attn_jax.data.tokenizers import ByteTokenizer
from attn_jax.interp import run_with_cache
from attn_jax.train.loop import train_and_evaluate


def _cli():
    return load_script("attention")


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    config = configs.load_config(os.path.join(REPO, "experiments/lm.py:smoke"))
    config = configs.apply_overrides(
        config, {**QUIET, "train.steps": 2, "train.eval_at_tokens": (), "train.warmup_steps": 1}
    )
    workdir = str(tmp_path_factory.mktemp("lm"))
    assert train_and_evaluate(config, workdir)["status"] == "done"
    return workdir


def test_report_of_a_trained_lm(lm_run, tmp_path, capsys):
    text = "To be, or not to be."
    out = str(tmp_path / "att")
    argv = ["--workdir", lm_run, "--text", text, "--out", out, "--heads", "1,0"]
    assert _cli().main([*argv, "--delimiters", ",."]) == 0
    assert "tokens" in capsys.readouterr().out
    for name in ("heatmaps.png", "heatmaps.svg", "heads.csv", "weights.npz", "attention.html"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    with open(os.path.join(out, "attention.json")) as f:
        record = json.load(f)
    assert record["layer_info"]["blocks.0.attn"] == {
        "tokens": list(text),
        "key_tokens": list(text),
        "kind": "self",
        "causal": True,
    }
    config = generate.load_run_config(lm_run)
    L = int(config.model.num_layers)
    assert len(record["tokens"]) == len(text)
    assert [(h["layer"], h["head"]) for h in record["heads"][:2]] == [
        ("blocks.0.attn", 1),
        ("blocks.0.attn", 0),
    ]
    assert len(record["heads"]) == 2 * L
    assert {h["type"] for h in record["heads"]} <= {"sink", "positional", "broad", "content"}
    assert "delimiter" in record["heads"][0]["stats"]
    # the figure's data are the restored model's weights for those heads
    model, _ = generate.restore_model(config, lm_run)
    ids = ByteTokenizer().encode(text)[None].astype(np.int32)
    _, cache = run_with_cache(model, ids, heads=[1, 0])
    saved = np.load(os.path.join(out, "weights.npz"))
    np.testing.assert_allclose(
        saved[f"blocks.{L - 1}.attn"], cache[f"blocks.{L - 1}.attn.weights"][0]
    )


def test_usage_errors(lm_run, tmp_path, capsys):
    cli = _cli()
    assert cli.main(["--workdir", str(tmp_path), "--text", "x y", "--out", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert cli.main(["--workdir", lm_run, "--text", "x", "--out", str(tmp_path / "o")]) == 2
    assert "at least 2 tokens" in capsys.readouterr().err
