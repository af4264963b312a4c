"""analysis/attention_sweep.py and analysis/attention_attribution.py on tiny trained runs."""

import json
import os

import interp_helpers
import numpy as np
import pytest

from attn_jax import configs
from attn_jax.sweep import store
from attn_jax.train.loop import train_and_evaluate

REPO = interp_helpers.REPO
QUIET = {
    **interp_helpers.QUIET,
    "train.steps": 2,
    "train.eval_at_tokens": (),
    "train.warmup_steps": 1,
}
TEXT = "ROMEO: But soft, what light through yonder window breaks?"


def _script(name):
    return interp_helpers.load_script(name)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A sweep directory as the runner leaves it: two done trials (1 and 2 layers), 2 steps each."""
    out = str(tmp_path_factory.mktemp("sweep"))
    for run_id, layers in (("onelayer0000", 1), ("twolayer0000", 2)):
        config = configs.load_config(os.path.join(REPO, "experiments/lm.py:smoke"))
        config = configs.apply_overrides(config, {**QUIET, "model.num_layers": layers})
        workdir = store.trial_dir(out, run_id)
        record = train_and_evaluate(config, workdir)
        assert record["status"] == "done"
        store.append_result(out, {**record, "run_id": run_id})
    return out


def test_table_counts_add_up_to_layers_times_heads(sweep_dir, tmp_path):
    out = str(tmp_path / "att")
    record = _script("attention_sweep").analyze(sweep_dir, out, text=TEXT)
    assert len(record["sizes"]) == 2
    for row in record["sizes"]:
        types = sum(row[t] for t in ("sink", "positional", "broad", "content"))
        assert types == row["heads"] == row["layers"] * row["heads_per_layer"]
    assert sorted(r["layers"] for r in record["sizes"]) == [1, 2]
    assert len(record["layers"]) == 3  # 1 + 2 layer rows
    for row in record["layers"]:
        assert sum(row[t] for t in ("sink", "positional", "broad", "content")) == row["heads"]
        assert 0 < row["depth"] < 1
    for name in ("heads_by_size.md", "heads_by_size.csv", "layers.csv", "heads.csv"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    for name in ("head_type_shares", "distance_by_depth"):
        for ext in ("png", "svg"):
            assert os.path.getsize(os.path.join(out, f"{name}.{ext}")) > 0


def test_sweep_script_rejects_a_folder_without_trials(tmp_path, capsys):
    assert _script("attention_sweep").main([str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:")
    assert "no finished trial" in err
    assert "\n" not in err


def test_rank_correlation_is_one_when_attention_equals_attribution():
    rank_correlations = _script("attention_attribution").rank_correlations
    rng = np.random.default_rng(0)
    att_BS = rng.random((3, 10))
    attr_BS = att_BS.copy()
    attr_BS[:, 7:] = -att_BS[:, 7:]  # keys after the query are not attended: ignored
    np.testing.assert_allclose(rank_correlations(att_BS, attr_BS, query=6), 1.0)
    np.testing.assert_allclose(rank_correlations(att_BS, 2 - attr_BS, query=6), -1.0)


def test_attribution_script_end_to_end(sweep_dir, tmp_path, capsys):
    workdir = store.trial_dir(sweep_dir, "twolayer0000")
    out = str(tmp_path / "attr")
    argv = ["--workdir", workdir, "--out", out, "--n_texts", "3", "--seq_len", "16"]
    assert _script("attention_attribution").main(argv) == 0
    assert "layer 1" in capsys.readouterr().out
    with open(os.path.join(out, "attribution.json")) as f:
        record = json.load(f)
    assert [r["layer"] for r in record["layers"]] == [0, 1]
    for r in record["layers"]:
        assert len(r["rho"]) == 3
        assert r["n"] == 3
        assert all(-1 <= x <= 1 for x in r["rho"])
    for ext in ("png", "svg"):
        assert os.path.getsize(os.path.join(out, f"attribution.{ext}")) > 0
