"""experiments/translate.py: the configs resolve; the smoke variant trains, decodes and scores.

The smoke run reads the real Bible packages (`make data`); without them it fails with
the MissingDataError that names that command.
"""

import json
import os

import pytest

from attn_jax import configs
from attn_jax.train.loop import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPERIMENT = os.path.join(REPO, "experiments", "translate.py")


def test_default_is_the_original_recipe():
    config = configs.load_config(EXPERIMENT)
    assert (config.family, config.data.name, config.data.direction) == ("seq2seq", "bible", "en-es")
    assert config.model.norm == "post"
    assert config.model.position == "sinusoidal"
    assert config.model.tie_embeddings
    assert config.model.vocab_size == config.data.sp_vocab_size
    assert config.train.schedule == "rsqrt"
    assert config.train.label_smoothing == 0.1
    assert config.decode.beam_size > 1
    assert config.train.seq_len == config.data.max_tgt_len + 1
    reverse = configs.load_config(f"{EXPERIMENT}:direction=es-en,beam=1")
    assert reverse.data.direction == "es-en"
    assert reverse.decode.beam_size == 1


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
    assert 0.0 <= ev["bleu"] <= 100.0
    assert 0.0 <= ev["chrf"] <= 100.0
    assert ev["loss"] > 0  # teacher-forced loss on the validation books
    with open(tmp_path / "summary.json") as f:
        assert json.load(f)["eval"]["bleu"] == ev["bleu"]
