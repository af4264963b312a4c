"""analysis/length_generalization.py: per-position loss past the training length.

The script's one-pass premise is checked as a claim about outputs: for a causal LM the
per-position losses of the first L positions of a long window equal those of the window
cut to L. End to end, two tiny runs of a sweep folder trained at T 32 are scored at 64.
"""

import json
import os

import interp_helpers
import numpy as np
import pytest
from flax import nnx

from attn_jax import configs
from attn_jax.models import DecoderLM, LMConfig
from attn_jax.sweep import store
from attn_jax.train.loop import train_and_evaluate

REPO = interp_helpers.REPO


def _script():
    return interp_helpers.load_script("length_generalization")


@pytest.mark.parametrize("position", ["alibi", "learned"])
def test_prefix_of_a_long_window_is_the_short_window(position):
    script = _script()
    model = DecoderLM(
        LMConfig(
            vocab_size=64, d_model=32, num_layers=2, num_heads=2, max_len=64, position=position
        ),
        rngs=nnx.Rngs(0),
    )
    tokens = np.random.default_rng(0).integers(0, 64, 64 * 6 + 1)
    long, n = script.position_losses(model, tokens, 64, windows=6)
    assert n == 6
    assert long.shape == (64,)
    # The same window starts (every 64 tokens), cut to 16 and 32 positions.
    starts = np.arange(6) * 64
    for L in (16, 32):
        short = np.mean(
            [script.position_losses(model, tokens[s : s + L + 1], L, windows=1)[0] for s in starts],
            axis=0,
        )
        np.testing.assert_allclose(short, long[:L], rtol=2e-5, atol=2e-5)
    assert script.lengths(128, 2048) == [128, 256, 512, 1024, 2048]
    assert script.lengths(32, 100) == [32, 64, 100]


def test_sweep_folder_is_scored_per_position_and_reused(tmp_path, capsys):
    out = str(tmp_path)
    quiet = {**interp_helpers.QUIET, "train.steps": 3, "train.eval_at_tokens": ()}
    for run_id, position in (("alibi0000000", "alibi"), ("sinus0000000", "sinusoidal")):
        config = configs.load_config(
            os.path.join(REPO, f"experiments/lm.py:smoke,position={position}")
        )
        config = configs.apply_overrides(config, {**quiet, "model.max_len": 64})
        record = train_and_evaluate(config, store.trial_dir(out, run_id))
        tags = {"position": position, "seed": 0}
        store.append_result(
            out,
            {**record, "run_id": run_id, "sweep": {"workdir": f"trials/{run_id}", "tags": tags}},
        )
    script = _script()
    result = script.main([out, "--eval-len", "64", "--windows", "8"])
    assert {r["position"] for r in result["runs"]} == {"alibi", "sinusoidal"}
    for r in result["runs"]:
        assert r["train_len"] == 32
        assert len(r["loss_by_bin"]) == 64 // script.BIN
        assert set(r["by_length"]) == {"32", "64"}
        assert r["by_length"]["64"]["mean_below"] == pytest.approx(
            np.mean(r["loss_by_bin"]), rel=1e-4
        )
    md = (tmp_path / "length" / "length.md").read_text()
    assert "| alibi (1 seeds) |" in md
    assert "L 64" in md
    assert all(os.path.getsize(p) > 1000 for p in result["figures"])
    saved = json.loads((tmp_path / "length" / "positions.json").read_text())
    assert len(saved["runs"]) == 2
    capsys.readouterr()
    again = script.main([out, "--eval-len", "64", "--windows", "8", "--no-plots"])
    assert "scoring" not in capsys.readouterr().out  # reused: the checkpoints did not change
    assert again["runs"] == result["runs"]
    script.main([out, "--eval-len", "64", "--windows", "4", "--no-plots"])
    assert "scoring 4 windows" in capsys.readouterr().out  # other windows: scored afresh
    with pytest.raises(SystemExit, match="max_len 64 < --eval-len 128"):
        script.main([out, "--eval-len", "128", "--no-plots"])
