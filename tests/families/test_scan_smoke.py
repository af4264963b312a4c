"""experiments/scan.py: every split x position resolves; the smoke variant trains end to end."""

import json
import os

import pytest

from attn_jax import configs
from attn_jax.data import scan
from attn_jax.models.lm import LM_POSITIONS
from attn_jax.train.loop import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPERIMENT = os.path.join(REPO, "experiments", "scan.py")


@pytest.mark.parametrize("split", sorted(scan.SPLITS))
def test_every_split_and_position_resolves(split):
    for position in LM_POSITIONS:
        config = configs.load_config(f"{EXPERIMENT}:split={split},position={position}")
        assert config.family == "seq2seq"
        assert config.data.split == split
        assert config.model.position == position
        # Training pairs must fit the padded target (none dropped), decoding must reach 48.
        longest = max(len(a.split()) for _, a in scan.split(split)["train"])
        assert config.data.max_tgt_len == longest
        assert config.decode.max_len == 48 + 1


def test_bad_split_and_position_are_clear_errors():
    with pytest.raises(ValueError, match="split='jump'.*addprim_jump"):
        configs.load_config(f"{EXPERIMENT}:split=jump")
    with pytest.raises(ValueError, match="position='abs'.*sinusoidal"):
        configs.load_config(f"{EXPERIMENT}:position=abs")


@pytest.mark.usefixtures("fast_compile")
def test_smoke_trains_decodes_and_scores(tmp_path):
    config = configs.apply_overrides(
        configs.load_config(f"{EXPERIMENT}:smoke"), {"train.num_devices": 1}
    )
    record = train_and_evaluate(config, str(tmp_path))
    assert record["status"] == "done", record.get("error")
    assert record["family"] == "seq2seq"
    assert record["steps"] == config.train.steps
    ev = record["eval"]
    assert ev["decoded"] == config.data.decode_examples
    assert 0.0 <= ev["exact_match"] <= 1.0
    assert ev["loss"] > 0  # the teacher-forced loss on the carved-out validation commands
    with open(tmp_path / "summary.json") as f:
        assert json.load(f)["eval"]["exact_match"] == ev["exact_match"]


def test_sweep_covers_every_position_seed_and_split():
    from attn_jax.sweep import spec

    trials = spec.resolve(spec.load_sweep(os.path.join(REPO, "sweeps", "scan.py")))
    points = {
        (t.config.data.split, t.config.model.position, t.config.seed): t.run_id for t in trials
    }
    assert len(trials) == len(points) == 6 * 3 + 3  # length at the default runs once
    for position in LM_POSITIONS:
        for seed in (0, 1, 2):
            assert ("length", position, seed) in points
    for split in ("simple", "addprim_jump", "addprim_turn_left"):
        assert (split, "sinusoidal", 0) in points
