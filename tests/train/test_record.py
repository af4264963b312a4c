"""The run record: every contract field, atomic write, NaN-free JSON."""

import json
import math

import ml_collections
import pytest

from attn_jax.train import record


def _config():
    return ml_collections.ConfigDict(dict(experiment="lm", family="lm", seed=3, train={"lr": 1.0}))


def test_record_has_every_field_and_valid_json(tmp_path):
    rec = record.make_record(_config(), status="diverged", final_train_loss=math.nan, eval={})
    assert set(record.FIELDS) <= set(rec)
    assert rec["final_train_loss"] is None
    assert rec["seed"] == 3
    assert rec["config"] == {"experiment": "lm", "family": "lm", "seed": 3, "train.lr": 1.0}
    path = record.write_record(str(tmp_path), rec)
    with open(path) as f:
        assert json.load(f) == rec
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left


def test_bad_status_raises():
    with pytest.raises(ValueError, match="done"):
        record.make_record(_config(), status="finished")


def test_machine_says_what_when_and_how_loaded():
    import os
    import time

    m = record.machine(time.time() - 3.0, (0.5, 0.25, 0.125))
    assert m["cores"] == len(os.sched_getaffinity(0))
    assert m["cpu"]
    assert m["started_utc"] < m["finished_utc"]  # ISO strings of one format sort by time
    assert m["started_utc"].endswith("+00:00")
    assert m["load_avg_start"] == [0.5, 0.25, 0.125]
    assert len(m["load_avg_end"]) == 3
