"""The MLM family end to end: experiments/mlm.py:smoke through train_and_evaluate, then
analysis/mlm_downstream.py on that workdir (tiny passage counts)."""

import json
import math
import os

import jax
import pytest

from attn_jax import configs
from attn_jax.data import mlm as mlm_data
from attn_jax.train.loop import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = {
    "train.progress_bar": False,
    "train.tensorboard": False,
    "train.report_mfu": False,
}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """(workdir, record) of the smoke pretraining run, XLA optimizations off."""
    prev = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        config = configs.load_config(os.path.join(REPO, "experiments/mlm.py:smoke"))
        config = configs.apply_overrides(config, QUIET)
        workdir = str(tmp_path_factory.mktemp("mlm_smoke"))
        yield workdir, train_and_evaluate(config, workdir)
    finally:
        jax.config.update("jax_disable_most_optimizations", prev)


def test_smoke_pretrains_end_to_end(smoke_run):
    workdir, record = smoke_run
    assert record["status"] == "done"
    assert record["family"] == "mlm"
    assert record["steps"] == 8
    # the loss falls from about ln(260) = 5.56 (a uniform guess over the vocabulary)
    assert record["final_train_loss"] < math.log(mlm_data.VOCAB_SIZE) - 0.2
    evals = record["eval"]
    assert math.isfinite(evals["loss"])
    assert evals["loss"] < math.log(mlm_data.VOCAB_SIZE)
    # the loss is taken on masked bytes only: ~15% of the 62-byte payloads of 16 passages
    masked = evals.get("count", evals.get("eval_tokens"))  # the loop reports eval_tokens
    assert 0.08 * 16 * 62 < masked < 0.25 * 16 * 62
    assert record["params_total"] == record["params_embedding"] + record["params_non_embedding"]
    assert os.path.isdir(os.path.join(workdir, "checkpoints"))


def _downstream_module():
    # registered in sys.modules (under a hashed name): its dataclasses look it up there
    return configs.import_file(os.path.join(REPO, "analysis", "mlm_downstream.py"), register=True)


def _with_stand_in_austen(real_load_works):
    """load_works plus two stand-in "novels" and a held-out one, so the author task has two
    classes without the Austen corpus: Shakespeare's text as prose (no newlines, lower case)."""

    def load_works(corpora, split, data_dir="", max_works=0):
        works = real_load_works("shakespeare", split, data_dir, max_works)
        prose = [
            mlm_data.Work("austen", f"novel-{w.work_id}", w.data.replace(b"\n", b" ").lower())
            for w in works[:2]
        ]
        return works + prose

    return load_works


def test_downstream_runs_on_the_smoke_workdir(smoke_run, tmp_path, monkeypatch):
    workdir, _ = smoke_run
    before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    monkeypatch.setattr(mlm_data, "load_works", _with_stand_in_austen(mlm_data.load_works))
    prev = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        report = _downstream_module().main(
            [
                workdir,
                "--out",
                str(tmp_path),
                "--passage_bytes",
                "256",
                "--author_train",
                "6",
                "--author_test",
                "3",
                "--work_train",
                "3",
                "--work_test",
                "2",
                "--finetune_steps",
                "2",
                "--finetune_batch",
                "4",
                "--feature_batch",
                "32",
            ]
        )
    finally:
        jax.config.update("jax_disable_most_optimizations", prev)
    with open(tmp_path / "downstream.json") as f:
        saved = json.load(f)
    assert saved["results"] == json.loads(json.dumps(report["results"]))
    for task, classes in (("author", 2), ("work", 6)):
        result = saved["results"][task]
        assert result["classes"] == classes
        for method in ("probe", "finetune", "bytes", "tfidf"):
            assert 0.0 <= result[method]["accuracy"] <= 1.0, (task, method)
    assert saved["results"]["author"]["train_passages"] == 12
    # the pretraining workdir is read, never written
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before
